// Consumers: settlements batched into few Ack calls, extending a deadline, what closing does to
// unsettled deliveries, the nack of a delivery collected unsettled, and reading with the iterator.

package dev.switchyard.client;

import static dev.switchyard.client.Streams.group;
import static dev.switchyard.client.Streams.nextDelivery;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.ref.WeakReference;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ConsumerTest {
  /** Longer than a test runs: a delivery that comes back within one was nacked, not timed out. */
  private static final Duration LONG_DEADLINE = Duration.ofSeconds(60);

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

  /**
   * A delivery dropped unsettled is nacked once the collector finds it: it comes back as attempt 2
   * while the test runs the collector, long before its 60 s ack deadline, which alone would not
   * bring it back within the test's 10 s.
   */
  @Test
  void aDeliveryCollectedUnsettledIsNacked() throws Exception {
    SwitchyardClient client = brokers.client(brokers.start());
    GroupConsumer consumer = brokers.closeLater(client.consume("jobs", "workers",
        ConsumeOptions.builder().prefetch(1).ackDeadline(LONG_DEADLINE).build()));
    Published p = Await.result(client.publish("jobs", "forgotten"));
    WeakReference<Delivery> dropped = takeAndDrop(consumer, false);
    Delivery again = collectUntilDelivered(consumer, Await.WAIT);
    assertNotNull(again, "not redelivered within " + Await.WAIT + " of running the collector"
        + (dropped.get() == null ? "" : ", and the delivery was never collected"));
    assertEquals(p.id(), again.message().id());
    assertEquals(2, again.attempt());
    Await.result(again.ack());
    GroupInfo g = group(client, "jobs", "workers");
    assertEquals(1, g.redelivered());
    assertEquals(1, g.acked());
  }

  /**
   * A delivery whose id was read is left to the caller: collected unsettled, it is not nacked. It is
   * dropped together with one whose id was not read, and must stay away once that one is back (the
   * cleaner got to both) and for a further second of collections, while a nack would bring it back
   * at once.
   */
  @Test
  void aDeliveryWhoseIdWasReadIsNotNackedWhenCollected() throws Exception {
    SwitchyardClient client = brokers.client(brokers.start());
    GroupConsumer consumer = brokers.closeLater(client.consume("jobs", "workers",
        ConsumeOptions.builder().prefetch(2).ackDeadline(LONG_DEADLINE).build()));
    Await.result(client.publish("jobs", "id read"));
    Await.result(client.publish("jobs", "forgotten"));
    WeakReference<Delivery> idRead = takeAndDrop(consumer, true);
    takeAndDrop(consumer, false);
    Delivery again = collectUntilDelivered(consumer, Await.WAIT);
    assertNotNull(again, "the delivery whose id was not read was not redelivered within " + Await.WAIT);
    assertEquals("forgotten", again.message().payloadUtf8(), "the delivery whose id was read was nacked");
    assertNull(idRead.get(), "the delivery whose id was read was not collected with the other");
    Delivery late = collectUntilDelivered(consumer, Duration.ofSeconds(1));
    assertNull(late, "the delivery whose id was read was nacked");
    Await.result(again.ack());
    assertEquals(1, group(client, "jobs", "workers").redelivered());
  }

  /**
   * Takes the next delivery, a first attempt, reads its id if told to, and lets go of it unsettled:
   * only a weak reference to it is left, out of this method's frame.
   */
  private static WeakReference<Delivery> takeAndDrop(GroupConsumer consumer, boolean readId) {
    Delivery d = nextDelivery(consumer);
    assertEquals(1, d.attempt());
    if (readId) {
      assertFalse(d.id().isEmpty());
    }
    return new WeakReference<>(d);
  }

  /** Runs the collector every 50 ms until a delivery comes (returned) or bound passes (null). */
  private static Delivery collectUntilDelivered(GroupConsumer consumer, Duration bound) {
    long deadline = System.nanoTime() + bound.toNanos();
    while (System.nanoTime() < deadline) {
      System.gc();
      Optional<Delivery> d = consumer.poll(Duration.ofMillis(50));
      if (d.isPresent()) {
        return d.get();
      }
    }
    return null;
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
