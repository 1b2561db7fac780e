// Publish/subscribe: each order event fans out to every service whose pattern matches its topic.

package dev.switchyard.examples;

import dev.switchyard.client.Message;
import dev.switchyard.client.OutgoingMessage;
import dev.switchyard.client.Subscription;
import dev.switchyard.client.SubscriptionEvent;
import dev.switchyard.client.SwitchyardClient;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Four services subscribe with patterns of their own: inventory and payment to every region's
 * new orders ({@code orders.*.created}), email to everything about European orders ({@code
 * orders.eu.>}), analytics to everything ({@code >}). Four order events are published, and each
 * service prints what reached it.
 */
public final class OrdersFanout {
  private static final Duration QUIET = Duration.ofMillis(500);

  private OrdersFanout() {}

  public static void main(String[] args) {
    Map<String, String> services = new LinkedHashMap<>();
    services.put("inventory", "orders.*.created");
    services.put("payment", "orders.*.created");
    services.put("email", "orders.eu.>");
    services.put("analytics", ">");
    List<OutgoingMessage> events = List.of(
        OutgoingMessage.builder("orders.eu.created").payload("order 1001: 2 x A1").key("1001").build(),
        OutgoingMessage.builder("orders.us.created").payload("order 1002: 1 x B7").key("1002").build(),
        OutgoingMessage.builder("orders.eu.shipped").payload("order 1001 shipped").key("1001").build(),
        OutgoingMessage.builder("orders.eu.created").payload("order 1003: 5 x A1").key("1003").build());

    try (SwitchyardClient client = SwitchyardClient.connect(ExampleArgs.address(args))) {
      Map<String, Subscription> subscriptions = new LinkedHashMap<>();
      services.forEach((name, pattern) -> {
        subscriptions.put(name, client.subscribe(pattern));
        System.out.println(pad(name) + "subscribed to " + pattern);
      });
      for (OutgoingMessage event : events) {
        int reached = client.publish(event).join().subscribers();
        System.out.println(pad("shop") + "published " + event.topic() + " (reached " + reached + " services)");
      }
      List<String> counts = new ArrayList<>();
      subscriptions.forEach((name, subscription) -> {
        // Everything was published before reading began: a quiet half second means all has arrived.
        int seen = 0;
        for (Optional<SubscriptionEvent> event = subscription.poll(QUIET);
            event.isPresent(); event = subscription.poll(QUIET)) {
          if (event.get() instanceof SubscriptionEvent.Received received) {
            Message m = received.message();
            System.out.println(pad(name) + m.topic() + ": " + m.payloadUtf8());
            seen++;
          }
        }
        subscription.close();
        counts.add(name + " " + seen);
      });
      System.out.println("summary: " + events.size() + " events; " + String.join(", ", counts));
    }
  }

  private static String pad(String who) {
    return String.format("%-11s", who + ":");
  }
}
