// The batching publisher: messages queued from any thread go out on one PublishStream, several
// frames in flight at once, each message with a future of its own.

package dev.switchyard.client;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import switchyard.v1.BrokerGrpc;
import switchyard.v1.BrokerOuterClass;
import switchyard.v1.BrokerOuterClass.PublishStreamRequest;
import switchyard.v1.BrokerOuterClass.PublishStreamResponse;

/**
 * Publishes through one PublishStream, for producers that send many: a frame on an open stream
 * costs a few bytes where a unary call costs headers, trailers and a round trip. Made by {@link
 * SwitchyardClient#publisher(PublisherOptions)}; thread-safe.
 *
 * <p>Messages are routed in the order {@link #publish} was called (calls from several threads in
 * the order they queued). What queued up while earlier frames were on their way goes as one frame
 * (at most {@link PublisherOptions#maxBatch()} messages, all or nothing), with at most {@link
 * PublisherOptions#maxInFlight()} frames waiting for their answer.
 *
 * <p><b>Backpressure:</b> {@link #publish} <em>blocks</em> the calling thread while {@link
 * PublisherOptions#queueSize()} messages wait to be sent, and returns the message's future once it
 * is queued. {@link #offer} waits at most a given time instead, and {@link #waitForRoom} only waits.
 *
 * <p>Each message's future completes with its {@link Published} (its id), or fails with its
 * frame's refusal ({@link InvalidArgumentException}, {@link GroupFullException}, ...), or with a
 * {@link DisconnectedException} when the stream broke before the answer: the message may or may
 * not have been routed, and is not sent again. The next frame opens a new stream.
 *
 * <pre>{@code
 * try (Publisher publisher = client.publisher()) {
 *   for (String line : lines) {
 *     publisher.publish(OutgoingMessage.of("logs.app", line)); // blocks while the queue is full
 *   }
 *   publisher.flush().join();
 * }
 * }</pre>
 */
public final class Publisher implements AutoCloseable {
  private final SwitchyardClient client;
  private final PublisherOptions options;
  /** Messages whose outcome is not known yet, for {@link #flush()}. */
  private final Set<CompletableFuture<Published>> outstanding = ConcurrentHashMap.newKeySet();

  private final ReentrantLock lock = new ReentrantLock();
  /** Signalled when the queue shrinks or the publisher closes. */
  private final Condition room = lock.newCondition();
  // Guarded by lock.
  private final ArrayDeque<Queued> queue = new ArrayDeque<>();
  private int inFlight;
  private boolean closed;
  private FrameStream<PublishStreamRequest, PublishStreamResponse> stream;

  /** A message waiting to be sent, and its outcome. */
  private record Queued(BrokerOuterClass.Message message, CompletableFuture<Published> outcome) {}

  Publisher(SwitchyardClient client, PublisherOptions options) {
    this.client = client;
    this.options = options;
  }

  /**
   * Queues message, blocking while the queue is full, and returns the future of its outcome.
   *
   * @throws ClosedException once the publisher is closed (also to a call blocked when it closes)
   * @throws CancelledException if the thread is interrupted while it waits for room
   */
  public CompletableFuture<Published> publish(OutgoingMessage message) {
    return offer(message, null).orElseThrow();
  }

  /**
   * Queues message if there is room within wait, and returns the future of its outcome; empty if
   * the queue stayed full that long (the message is then not queued).
   *
   * @throws ClosedException once the publisher is closed
   */
  public Optional<CompletableFuture<Published>> offer(OutgoingMessage message, Duration wait) {
    BrokerOuterClass.Message wire = Wire.toPb(message);
    lock.lock();
    try {
      if (!awaitRoom(wait)) {
        return Optional.empty();
      }
      CompletableFuture<Published> outcome = new CompletableFuture<>();
      outstanding.add(outcome);
      outcome.whenComplete((published, error) -> outstanding.remove(outcome));
      queue.add(new Queued(wire, outcome));
      pump();
      return Optional.of(outcome);
    } finally {
      lock.unlock();
    }
  }

  /**
   * Waits until the queue has room for a message, as long as it takes. Another thread may take the
   * room first.
   *
   * @throws ClosedException once the publisher is closed
   */
  public void waitForRoom() {
    lock.lock();
    try {
      awaitRoom(null);
    } finally {
      lock.unlock();
    }
  }

  /**
   * Waits until the queue has room for a message, at most timeout; true if it has. Another thread
   * may take the room first: it tells a producer when trying again makes sense.
   *
   * @throws ClosedException once the publisher is closed
   */
  public boolean waitForRoom(Duration timeout) {
    lock.lock();
    try {
      return awaitRoom(timeout);
    } finally {
      lock.unlock();
    }
  }

  /**
   * A future that completes once every message queued before this call has its outcome (routed or
   * failed: it never fails itself).
   */
  public CompletableFuture<Void> flush() {
    return CompletableFuture.allOf(outstanding.toArray(CompletableFuture[]::new))
        .handle((ignored, error) -> null);
  }

  /** Closes the publisher, waiting at most the client's call timeout; see {@link #close(Duration)}. */
  @Override
  public void close() {
    close(client.callTimeout());
  }

  /**
   * Stops taking messages (a {@link #publish} blocked for room throws {@link ClosedException}),
   * sends those queued, waits at most timeout for their outcomes, and closes the stream. What is
   * still unanswered after timeout fails with {@link ClosedException}. Idempotent.
   *
   * @return whether every message had its outcome in time
   */
  public boolean close(Duration timeout) {
    lock.lock();
    try {
      closed = true;
      room.signalAll();
    } finally {
      lock.unlock();
    }
    boolean flushed = true;
    try {
      flush().get(timeout.toNanos(), TimeUnit.NANOSECONDS);
    } catch (TimeoutException slow) {
      flushed = false;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      flushed = false;
    } catch (ExecutionException cannotHappen) {
      // flush() never fails.
    }
    List<Queued> abandoned;
    FrameStream<PublishStreamRequest, PublishStreamResponse> last;
    lock.lock();
    try {
      abandoned = new ArrayList<>(queue);
      queue.clear();
      last = stream;
      stream = null;
    } finally {
      lock.unlock();
    }
    ClosedException closedError = Errors.closed("the publisher");
    abandoned.forEach(q -> q.outcome().completeExceptionally(closedError));
    if (last != null) {
      // Fails what is still in flight (nothing, after a flush in time) and ends the call.
      last.end(closedError);
    }
    return flushed;
  }

  /** Waits for room (wait null: for ever); false if wait passed. Caller holds lock. */
  private boolean awaitRoom(Duration wait) {
    long left = wait == null ? Long.MAX_VALUE : Math.max(0, wait.toNanos());
    try {
      while (!closed && queue.size() >= options.queueSize()) {
        if (wait == null) {
          room.await();
        } else if (left <= 0) {
          return false;
        } else {
          left = room.awaitNanos(left);
        }
      }
    } catch (InterruptedException e) {
      throw Errors.interrupted(e);
    }
    if (closed) {
      throw Errors.closed("the publisher");
    }
    return true;
  }

  /** Sends frames of what is queued while there are slots for them. Caller holds lock. */
  private void pump() {
    while (inFlight < options.maxInFlight() && !queue.isEmpty()) {
      List<Queued> batch = new ArrayList<>(Math.min(queue.size(), options.maxBatch()));
      while (batch.size() < options.maxBatch() && !queue.isEmpty()) {
        batch.add(queue.poll());
      }
      inFlight++;
      if (stream == null || stream.broken()) {
        stream =
            FrameStream.open(
                client, BrokerGrpc.getPublishStreamMethod(), PublishStreamResponse::getSequence, "publish");
      }
      FrameStream.Sent<PublishStreamResponse> sent =
          stream.send(
              sequence -> {
                PublishStreamRequest.Builder frame =
                    PublishStreamRequest.newBuilder()
                        .setSequence(sequence)
                        .setWaitForRoom(options.brokerWaitsForRoom());
                batch.forEach(q -> frame.addMessages(q.message()));
                return frame.build();
              });
      // Off this thread: the answer may already be there, and this thread holds the lock.
      sent.answer().whenCompleteAsync((answer, error) -> answered(batch, answer, error), client.callbacks());
    }
    room.signalAll();
  }

  /** Gives each message of a frame its outcome, then frees the frame's slot. */
  private void answered(List<Queued> batch, PublishStreamResponse answer, Throwable error) {
    SwitchyardException failure = null;
    if (error != null) {
      failure = Errors.fromThrowable(error);
    } else if (answer.hasError()) {
      failure = Errors.fromStreamError(answer.getError());
    } else if (answer.getPublished().getPublishedCount() != batch.size()) {
      failure =
          Errors.protocol(
              "the broker answered for " + answer.getPublished().getPublishedCount() + " of " + batch.size() + " messages");
    }
    for (int i = 0; i < batch.size(); i++) {
      CompletableFuture<Published> outcome = batch.get(i).outcome();
      if (failure != null) {
        outcome.completeExceptionally(failure);
      } else {
        outcome.complete(Wire.fromPb(answer.getPublished().getPublished(i)));
      }
    }
    lock.lock();
    try {
      inFlight--;
      pump();
    } finally {
      lock.unlock();
    }
  }
}
