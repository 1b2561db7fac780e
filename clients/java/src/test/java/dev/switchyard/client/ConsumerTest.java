// Consumers: settlements batched into few Ack calls, extending a deadline, what closing does to
// unsettled deliveries, and reading with the iterator.

package dev.switchyard.client;

import static dev.switchyard.client.Streams.group;
import static dev.switchyard.client.Streams.nextDelivery;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ConsumerTest {
  @RegisterExtension final Brokers brokers = new Brokers();

  /** Many settlements made at once go in few Ack calls, and each still gets its own outcome. */
  @Test
  void settlementsAreBatched() throws Exception {
    CallCounter calls = new CallCounter();
    SwitchyardClient client = brokers.client(brokers.start(), b -> b.interceptor(calls));
    int total = 300;
    GroupConsumer consumer = brokers.closeLater(client.consume("jobs", "workers", ConsumeOptions.builder().prefetch(total).build()));
    List<OutgoingMessage> batch = new ArrayList<>();
    for (int i = 0; i < total; i++) {
      batch.add(OutgoingMessage.of("jobs", Integer.toString(i)));
    }
    Await.result(client.publishBatch(batch));
    List<Delivery> held = new ArrayList<>();
    for (int i = 0; i < total; i++) {
      held.add(nextDelivery(consumer));
    }
    List<CompletableFuture<Void>> acks = new ArrayList<>();
    for (Delivery d : held) {
      acks.add(d.ack());
    }
    for (CompletableFuture<Void> ack : acks) {
      Await.result(ack);
    }
    assertTrue(calls.count("Ack") < total / 2, total + " acks took " + calls.count("Ack") + " Ack calls");
    assertEquals(total, group(client, "jobs", "workers").acked());
  }

  /** Extend restarts the deadline: a delivery extended in time is still ackable past the first one. */
  @Test
  void extendKeepsADelivery() throws Exception {
    SwitchyardClient client = brokers.client(brokers.start());
    Duration deadline = Duration.ofMillis(1500);
    GroupConsumer consumer = brokers.closeLater(client.consume("slow", "workers", ConsumeOptions.builder().ackDeadline(deadline).build()));
    Await.result(client.publish("slow", "work"));
    Delivery d = nextDelivery(consumer);
    // Three extensions a third of a deadline apart carry the delivery well past its first deadline.
    for (int i = 0; i < 3; i++) {
      Thread.sleep(deadline.toMillis() / 3);
      Await.result(d.extend());
    }
    Await.result(d.ack());
    assertEquals(0, group(client, "slow", "workers").redelivered());
  }

  /**
   * Closing a consumer sends the settlements it made, then leaves: what it held unsettled goes to
   * the group's other consumers with the next attempt, and settling it afterwards is refused.
   */
  @Test
  void closingHandsBackWhatIsUnsettled() throws Exception {
    SwitchyardClient client = brokers.client(brokers.start());
    GroupConsumer first = client.consume("jobs", "workers", ConsumeOptions.builder().prefetch(2).build());
    Await.result(client.publish("jobs", "acked"));
    Await.result(client.publish("jobs", "unsettled"));
    Delivery acked = nextDelivery(first);
    Delivery unsettled = nextDelivery(first);
    GroupConsumer second = brokers.closeLater(client.consume("jobs", "workers"));
    acked.ack(); // not waited for: close sends it before leaving
    first.close();
    Delivery again = nextDelivery(second);
    assertEquals(unsettled.message().id(), again.message().id());
    assertEquals(2, again.attempt());
    Await.failure(unsettled.ack(), ClosedException.class);
    Await.result(again.ack());
    GroupInfo g = group(client, "jobs", "workers");
    assertEquals(2, g.acked());
    assertEquals(1, g.redelivered());
    assertThrows(ClosedException.class, () -> first.poll(Duration.ZERO));
    assertFalse(first.iterator().hasNext(), "a closed consumer's iterator ends quietly");
  }

  /** A for-each loop over a consumer reads deliveries until it is closed from another thread. */
  @Test
  void iteratorEndsWhenClosed() throws Exception {
    SwitchyardClient client = brokers.client(brokers.start());
    GroupConsumer consumer = client.consume("jobs", "workers");
    for (int i = 0; i < 3; i++) {
      Await.result(client.publish("jobs", Integer.toString(i)));
    }
    List<String> got = new ArrayList<>();
    for (Delivery d : consumer) {
      got.add(d.message().payloadUtf8());
      Await.result(d.ack());
      if (got.size() == 3) {
        CompletableFuture.runAsync(consumer::close);
      }
    }
    assertEquals(List.of("0", "1", "2"), got);
  }
}
