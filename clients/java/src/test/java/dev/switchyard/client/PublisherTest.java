// The batching Publisher: order and an outcome per message, a refused frame answered in place, a
// broken stream that fails what it carried and a new one for what follows, and closing.

package dev.switchyard.client;

import static dev.switchyard.client.Streams.nextMessage;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
class PublisherTest {
  @RegisterExtension final Brokers brokers = new Brokers();

  /** Messages are routed in order, each with its own id, and flush waits for all of them. */
  @Test
  void routesInOrderWithAnOutcomeEach() throws Exception {
    SwitchyardClient client = brokers.client(brokers.start());
    Subscription sub = brokers.closeLater(client.subscribe("pub.order"));
    Publisher publisher = client.publisher();
    int total = 1000;
    List<CompletableFuture<Published>> outcomes = new ArrayList<>();
    for (int i = 0; i < total; i++) {
      outcomes.add(publisher.publish(OutgoingMessage.of("pub.order", Integer.toString(i))));
    }
    Await.result(publisher.flush());
    for (int i = 0; i < total; i++) {
      assertTrue(outcomes.get(i).isDone(), "message " + i + " has no outcome after flush");
      Published p = Await.result(outcomes.get(i));
      assertEquals(1, p.subscribers());
      Message m = nextMessage(sub);
      assertEquals(Integer.toString(i), m.payloadUtf8());
      assertEquals(p.id(), m.id());
    }
    assertTrue(publisher.close(Await.WAIT));
    assertThrows(ClosedException.class, () -> publisher.publish(OutgoingMessage.of("pub.order", "late")));
  }

  /** A frame the broker refuses fails its messages only, and the stream goes on. */
  @Test
  void aRefusedFrameIsAnsweredInPlace() throws Exception {
    CallCounter calls = new CallCounter();
    SwitchyardClient client = brokers.client(brokers.start(), b -> b.interceptor(calls));
    Subscription sub = brokers.closeLater(client.subscribe("pub.refused"));
    Publisher publisher = brokers.closeLater(client.publisher(PublisherOptions.builder().maxBatch(1).build()));
    CompletableFuture<Published> before = publisher.publish(OutgoingMessage.of("pub.refused", "1"));
    CompletableFuture<Published> bad = publisher.publish(OutgoingMessage.of("bad..topic", "2"));
    CompletableFuture<Published> after = publisher.publish(OutgoingMessage.of("pub.refused", "3"));
    Await.result(before);
    assertEquals("INVALID_ARGUMENT", Await.failure(bad, InvalidArgumentException.class).reason().orElseThrow());
    Await.result(after);
    assertEquals("1", nextMessage(sub).payloadUtf8());
    assertEquals("3", nextMessage(sub).payloadUtf8());
    assertEquals(1, calls.count("PublishStream"), "one stream throughout");
  }

  /**
   * Frames in flight when the broker dies fail with DisconnectedException (they may or may not have
   * been routed); once a broker is back, the next frame opens a new stream and goes through.
   */
  @Test
  void aBrokenStreamFailsWhatItCarriedAndTheNextOpensAnother() throws Exception {
    Broker first = brokers.start("--max-publish-wait", "30s");
    CallCounter calls = new CallCounter();
    SwitchyardClient client = brokers.client(first, b -> b.interceptor(calls));
    Await.result(client.admin().declareGroup(GroupConfig.builder("pub.held", "capped").maxLength(1).build()));
    Await.result(client.publish("pub.held", "fills it"));
    Publisher publisher = brokers.closeLater(client.publisher(PublisherOptions.builder().brokerWaitsForRoom(true).build()));
    CompletableFuture<Published> held = publisher.publish(OutgoingMessage.of("pub.held", "waits for room"));
    Await.until("the frame is at the broker", () -> calls.count("PublishStream") == 1);
    assertFalse(held.isDone());

    first.kill();
    DisconnectedException broken = Await.failure(held, DisconnectedException.class);
    assertTrue(broken instanceof UnavailableException);

    brokers.restart(first);
    Await.until("a publish goes through the new broker", () -> {
      CompletableFuture<Published> again = publisher.publish(OutgoingMessage.of("pub.other", "after"));
      try {
        Await.result(again);
        return true;
      } catch (AssertionError notYet) {
        return false;
      }
    });
    assertTrue(calls.count("PublishStream") >= 2, "a new stream after the break");
  }

  /**
   * With the broker stopped, close gives up after its timeout: what was in flight or queued fails
   * with ClosedException, and a publish blocked for room is released with ClosedException too.
   */
  @Test
  void closeKeepsToItsTimeout() throws Exception {
    Broker broker = brokers.start();
    SwitchyardClient client = brokers.client(broker);
    Publisher publisher = client.publisher(PublisherOptions.builder().maxBatch(1).maxInFlight(1).queueSize(1).build());
    Await.result(publisher.publish(OutgoingMessage.of("pub.close", "warm")));
    broker.pause();
    CompletableFuture<Published> inFlight = publisher.publish(OutgoingMessage.of("pub.close", "1"));
    CompletableFuture<Published> queued = publisher.publish(OutgoingMessage.of("pub.close", "2"));
    Optional<CompletableFuture<Published>> offered = publisher.offer(OutgoingMessage.of("pub.close", "3"), Duration.ofMillis(100));
    assertTrue(offered.isEmpty(), () -> "the queue is full, with " + inFlight + " in flight and " + queued + " queued");
    CompletableFuture<Void> blocked = CompletableFuture.runAsync(() -> publisher.publish(OutgoingMessage.of("pub.close", "4")));

    assertFalse(publisher.close(Duration.ofMillis(300)), "close with a stopped broker cannot flush");
    Await.failure(inFlight, ClosedException.class);
    Await.failure(queued, ClosedException.class);
    Await.failure(blocked, ClosedException.class);
    broker.resume();
  }
}
