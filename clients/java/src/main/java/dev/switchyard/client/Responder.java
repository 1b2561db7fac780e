// The responder side of request/reply: consume requests from a group, run the handler with
// bounded concurrency, publish each reply to its reply-to with its correlation id, then ack.

package dev.switchyard.client;

import java.time.Duration;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Answers requests on a topic as a member of a queue group, made by {@link
 * SwitchyardClient#serve}: requests in a group go to one responder each, so responders scale by
 * adding more. At most {@link ServeOptions#concurrency()} handlers run at once, on worker threads
 * of its own. Each reply goes through a {@link Publisher} (one PublishStream), and its request is
 * acked once the reply is routed; a handler that throws rejects its request; a reply that cannot be
 * published nacks it for another try.
 *
 * <p>{@link #close()} stops gracefully: it takes no more requests, lets the handlers in hand finish
 * (for at most {@link ServeOptions.Builder#drainTimeout}), publishes their replies and acks their
 * requests, and only then leaves the group. Leaving at once would hand those requests back to the
 * group while their answers are on the way, to be handled a second time.
 */
public final class Responder implements AutoCloseable {
  /** How often the reader looks whether it was told to stop. */
  private static final Duration STOP_CHECK = Duration.ofMillis(100);

  private final SwitchyardClient client;
  private final RequestHandler handler;
  private final ServeOptions options;
  private final GroupConsumer consumer;
  private final Publisher replies;
  private final ExecutorService workers;
  /** A permit per free worker: the reader takes one before it takes a request. */
  private final Semaphore free;
  /** Replies and settlements on their way, for the drain. */
  private final Set<CompletableFuture<?>> settling = ConcurrentHashMap.newKeySet();
  private final Thread reader;
  private final AtomicBoolean stopping = new AtomicBoolean();
  private final CompletableFuture<Void> done = new CompletableFuture<>();

  Responder(SwitchyardClient client, String topic, String group, RequestHandler handler, ServeOptions options) {
    this.client = client;
    this.handler = handler;
    this.options = options;
    this.consumer =
        client.consume(
            topic,
            group,
            ConsumeOptions.builder().prefetch(options.concurrency()).ackDeadline(options.ackDeadline()).build());
    this.replies = client.publisher();
    this.free = new Semaphore(options.concurrency());
    AtomicInteger n = new AtomicInteger();
    this.workers =
        Executors.newFixedThreadPool(
            options.concurrency(),
            runnable -> {
              Thread t = new Thread(runnable, "switchyard-responder-" + group + "-" + n.incrementAndGet());
              t.setDaemon(true);
              return t;
            });
    this.reader = new Thread(this::read, "switchyard-responder-" + group);
    this.reader.setDaemon(true);
    this.reader.start();
  }

  /**
   * Completes once the responder has stopped: normally after {@link #close()}, or exceptionally
   * with why its consumer ended (a {@link GroupDeletedException} when its group is deleted).
   */
  public CompletableFuture<Void> done() {
    return done;
  }

  /** Stops gracefully (see the class comment) and returns once it has. Idempotent. */
  @Override
  public void close() {
    stopping.set(true);
    try {
      done.get();
    } catch (ExecutionException endedEarlier) {
      // The consumer had ended by itself; done() carries why.
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** Hands requests to free workers until stopped, or until the consumer ends; then drains. */
  private void read() {
    SwitchyardException ended = null;
    try {
      while (!stopping.get()) {
        // Bounded waits rather than an interrupt from close(): an interrupt could land in the drain.
        if (!free.tryAcquire(STOP_CHECK.toNanos(), TimeUnit.NANOSECONDS)) {
          continue;
        }
        Optional<Delivery> request = consumer.poll(STOP_CHECK);
        if (request.isEmpty() || stopping.get()) {
          // Taken after the stop: not started, it goes back to the group when the consumer leaves.
          free.release();
          continue;
        }
        Delivery d = request.get();
        workers.execute(
            () -> {
              try {
                answer(d);
              } finally {
                free.release();
              }
            });
      }
    } catch (InterruptedException | CancelledException interrupted) {
      // Nobody else interrupts this thread; taken as a stop.
      Thread.interrupted();
    } catch (ClosedException closed) {
      // The client was closed under the responder.
    } catch (SwitchyardException e) {
      ended = e;
    }
    drain();
    if (ended != null) {
      done.completeExceptionally(ended);
    } else {
      done.complete(null);
    }
  }

  /** Waits for the handlers in hand, their replies and acks, then closes the publisher and leaves. */
  private void drain() {
    workers.shutdown();
    try {
      if (!workers.awaitTermination(options.drainTimeout().toNanos(), TimeUnit.NANOSECONDS)) {
        workers.shutdownNow();
        workers.awaitTermination(client.callTimeout().toNanos(), TimeUnit.NANOSECONDS);
      }
      CompletableFuture.allOf(settling.toArray(CompletableFuture[]::new))
          .handle((ignored, error) -> null)
          .get(client.callTimeout().toNanos(), TimeUnit.NANOSECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (ExecutionException | TimeoutException notAll) {
      // What did not settle in time goes back to the group when the consumer leaves.
    }
    replies.close();
    consumer.close();
  }

  /** Runs the handler on one request and settles it. */
  private void answer(Delivery d) {
    Message request = d.message();
    Reply reply;
    try {
      reply = handler.handle(request);
    } catch (Exception e) {
      options.onError().accept(request, e);
      track(request, d.reject());
      return;
    }
    if (reply == null || request.replyTo().isEmpty()) {
      // Nothing to send, or a plain message rather than a request: nobody waits for an answer.
      track(request, d.ack());
      return;
    }
    CompletableFuture<Void> answered;
    try {
      answered =
          replies
              .publish(reply.answering(request))
              .handle((published, error) -> error)
              .thenCompose(
                  error -> {
                    if (error == null) {
                      return d.ack();
                    }
                    options.onError().accept(request, Errors.fromThrowable(error));
                    return d.nack();
                  });
    } catch (SwitchyardException publisherClosed) {
      options.onError().accept(request, publisherClosed);
      answered = d.nack();
    }
    track(request, answered);
  }

  /** Keeps a settlement for the drain, and reports it if it fails. */
  private void track(Message request, CompletableFuture<Void> settlement) {
    settling.add(settlement);
    settlement.whenComplete(
        (ok, error) -> {
          settling.remove(settlement);
          if (error != null) {
            options.onError().accept(request, Errors.fromThrowable(error));
          }
        });
  }
}
