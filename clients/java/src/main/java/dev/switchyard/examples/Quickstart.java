// The README's quickstart: publish/subscribe, a work queue and request/reply, in one program.

package dev.switchyard.examples;

import dev.switchyard.client.ConsumeOptions;
import dev.switchyard.client.Delivery;
import dev.switchyard.client.GroupConfig;
import dev.switchyard.client.GroupConsumer;
import dev.switchyard.client.Message;
import dev.switchyard.client.NoRespondersException;
import dev.switchyard.client.OutgoingMessage;
import dev.switchyard.client.Reply;
import dev.switchyard.client.Responder;
import dev.switchyard.client.Subscription;
import dev.switchyard.client.SubscriptionEvent;
import dev.switchyard.client.SwitchyardClient;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletionException;

public final class Quickstart {
  public static void main(String[] args) {
    String address = args.length > 0 ? args[0] : "127.0.0.1:50051";
    try (SwitchyardClient client = SwitchyardClient.connect(address)) {
      // 1. Publish/subscribe: every subscription whose pattern matches gets a copy.
      try (Subscription orders = client.subscribe("orders.>")) { // active once it returns
        client.publish(OutgoingMessage.builder("orders.created")
            .payload("{\"sku\":\"A1\"}")
            .header("source", "web")
            .build()).join();
        for (SubscriptionEvent event : orders) {
          if (event instanceof SubscriptionEvent.Received received) {
            Message m = received.message();
            System.out.println("subscriber got " + m.topic() + " " + m.payloadUtf8());
            break;
          }
        }
      }

      // 2. Work queue: declare the group first, so it keeps what is published before anyone consumes.
      client.admin().declareGroup(GroupConfig.builder("images.resize", "workers").maxDeliveries(3).build()).join();
      client.publishBatch(List.of(
          OutgoingMessage.of("images.resize", "cat.png"),
          OutgoingMessage.of("images.resize", "dog.png"))).join();
      try (GroupConsumer workers = client.consume("images.resize", "workers",
          ConsumeOptions.builder().prefetch(10).build())) {
        int done = 0;
        while (done < 2) {
          Delivery job = workers.next();
          String file = job.message().payloadUtf8();
          System.out.println("worker got " + file + " attempt " + job.attempt());
          if (file.equals("dog.png") && job.attempt() == 1) {
            job.nack(Duration.ofMillis(100)); // failed: the broker redelivers it in 100 ms
            continue;
          }
          job.ack(); // done: the broker forgets it
          done++;
        }
      } // closing sends the acks, then leaves the group

      // 3. Request/reply: a responder in group "upper" answers requests on "svc.upper".
      try (Responder upper = client.serve("svc.upper", "upper",
          request -> Reply.of(request.payloadUtf8().toUpperCase()))) {
        Message reply = client.request("svc.upper", "hello", Duration.ofSeconds(2)).join();
        System.out.println("reply " + reply.payloadUtf8());
      }
      try {
        client.request("svc.nobody", "anyone?", Duration.ofSeconds(2)).join();
      } catch (CompletionException e) {
        if (e.getCause() instanceof NoRespondersException) {
          System.out.println("nobody serves svc.nobody");
        }
      }
    }
  }
}
