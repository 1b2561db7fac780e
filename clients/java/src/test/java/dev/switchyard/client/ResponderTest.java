// Responders: bounded concurrency, a handler exception rejects, a graceful close, and the end of
// a responder whose group is deleted.

package dev.switchyard.client;

import static dev.switchyard.client.Streams.group;
import static dev.switchyard.client.Streams.nextMessage;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ResponderTest {
  @RegisterExtension final Brokers brokers = new Brokers();

  /** No more than the concurrency handlers run at once, and every request is still answered. */
  @Test
  void concurrencyIsBounded() throws Exception {
    SwitchyardClient client = brokers.client(brokers.start());
    AtomicInteger running = new AtomicInteger();
    AtomicInteger most = new AtomicInteger();
    brokers.closeLater(client.serve("svc.slow", "slow", request -> {
      most.accumulateAndGet(running.incrementAndGet(), Math::max);
      Thread.sleep(20);
      running.decrementAndGet();
      return Reply.of(request.payload());
    }, ServeOptions.builder().concurrency(3).build()));
    List<CompletableFuture<Message>> replies = new ArrayList<>();
    for (int i = 0; i < 30; i++) {
      replies.add(client.request("svc.slow", Integer.toString(i), Duration.ofSeconds(20)));
    }
    for (int i = 0; i < 30; i++) {
      assertEquals(Integer.toString(i), Await.result(replies.get(i)).payloadUtf8());
    }
    assertTrue(most.get() <= 3, most.get() + " handlers ran at once");
    assertTrue(most.get() >= 2, "the handlers never overlapped");
  }

  /** A handler that throws rejects its request to the dead-letter topic; the requester times out. */
  @Test
  void aHandlerExceptionRejects() throws Exception {
    SwitchyardClient client = brokers.client(brokers.start());
    Await.result(client.admin().declareGroup(GroupConfig.builder("svc.fail", "fail").deadLetterTopic("svc.dead").build()));
    Subscription dead = brokers.closeLater(client.subscribe("svc.dead"));
    LinkedBlockingQueue<Throwable> reported = new LinkedBlockingQueue<>();
    brokers.closeLater(client.serve("svc.fail", "fail", request -> {
      throw new IllegalStateException("cannot");
    }, ServeOptions.builder().onError((request, error) -> reported.add(error)).build()));
    Await.failure(client.request("svc.fail", "x", Duration.ofMillis(500)), TimedOutException.class);
    Throwable error = reported.poll(Await.WAIT.toMillis(), TimeUnit.MILLISECONDS);
    assertInstanceOf(IllegalStateException.class, error);
    assertEquals("rejected", nextMessage(dead).headers().get("x-dead-letter-reason"));
  }

  /**
   * close() takes no more requests but lets the handler in hand finish: its reply reaches the
   * requester, the request is acked (not handed back to be handled again), and only then does
   * close return and the responder leave the group.
   */
  @Test
  void closeIsGraceful() throws Exception {
    SwitchyardClient client = brokers.client(brokers.start());
    Await.result(client.admin().declareGroup(GroupConfig.builder("svc.slow", "slow").build()));
    CountDownLatch entered = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    AtomicInteger handled = new AtomicInteger();
    Responder responder = client.serve("svc.slow", "slow", request -> {
      handled.incrementAndGet();
      entered.countDown();
      release.await();
      return Reply.of(request.payload());
    });
    CompletableFuture<Message> reply = client.request("svc.slow", "slow one", Duration.ofSeconds(20));
    assertTrue(entered.await(Await.WAIT.toMillis(), TimeUnit.MILLISECONDS), "the handler never got the request");
    CompletableFuture<Void> closing = CompletableFuture.runAsync(responder::close);
    Thread.sleep(200);
    assertFalse(closing.isDone(), "close returned while its handler was still running");
    release.countDown();
    assertEquals("slow one", Await.result(reply).payloadUtf8());
    Await.result(closing);
    assertTrue(responder.done().isDone() && !responder.done().isCompletedExceptionally());
    Await.until("the responder has left its group", () -> group(client, "svc.slow", "slow").consumers() == 0);
    GroupInfo g = group(client, "svc.slow", "slow");
    assertEquals(1, g.acked());
    assertEquals(0, g.ready());
    assertEquals(0, g.inFlight());
    assertEquals(0, g.redelivered());
    assertEquals(1, handled.get());
  }

  /** A responder whose group is deleted ends, and done() says why. */
  @Test
  void aDeletedGroupEndsTheResponder() throws Exception {
    SwitchyardClient client = brokers.client(brokers.start());
    Responder responder = brokers.closeLater(client.serve("svc.gone", "gone", request -> Reply.of("x")));
    Await.result(client.admin().deleteGroup("svc.gone", "gone"));
    Await.failure(responder.done(), GroupDeletedException.class);
  }
}
