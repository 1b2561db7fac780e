// One server-streaming call (Subscribe or Consume) that the broker accepted, read through a
// flow-controlled inbox, and opened again by itself, with backoff, when the connection drops.

package dev.switchyard.client;

import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import java.time.Duration;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * The stream under {@link Subscription} and {@link GroupConsumer}.
 *
 * <p>{@link #open} returns once the broker has sent the response headers, which it does when the
 * subscription or consumer is in place: a message published after that cannot be missed, and a
 * refusal (a bad pattern, an exclusive group taken) is thrown there rather than by the first read.
 *
 * <p>Items go to an inbox that the reader drains; the call asks the broker for {@link #WINDOW}
 * items and for one more each time the reader takes one, so a reader that falls behind holds the
 * broker back (a subscriber then gets a gap) instead of filling memory.
 *
 * <p>When the call ends with a status that means the connection or the broker went away ({@link
 * #transient}), the inbox gets a {@link Dropped} item after what the call delivered, the drop
 * callback is told, and the call is opened again after a {@link Backoff} wait, for as long as the
 * failures stay transient: each attempt may take at most the client's call timeout, so a broker
 * that accepts connections but never answers is retried like one that refuses them. Any other end
 * (a refusal, the group deleted) is the stream's end, thrown to the reader.
 */
final class ResumableStream<Q, R> {
  /** How many items the broker may send ahead of the reader. */
  static final int WINDOW = 256;

  /** What the reader takes from the inbox. */
  sealed interface Item<R> {}

  /** An item of one attempt's call. */
  record Received<R>(R value, ResumableStream<?, R>.Attempt from) implements Item<R> {}

  /** The connection dropped here; the stream is being reopened. */
  record Dropped<R>(DisconnectedException cause) implements Item<R> {}

  /** The stream ended: closed (a {@link ClosedException}), or ended by the broker for good. */
  record Ended<R>(SwitchyardException why) implements Item<R> {}

  private final SwitchyardClient client;
  private final MethodDescriptor<Q, R> method;
  private final Q request;
  private final String what;
  private final Consumer<DisconnectedException> onDrop;
  private final LinkedBlockingQueue<Item<R>> inbox = new LinkedBlockingQueue<>();
  private final Backoff backoff = new Backoff();

  // Guarded by this: which attempt is current, and whether the stream is closed.
  private Attempt current;
  private boolean closed;
  private ScheduledFuture<?> reopening;

  private ResumableStream(
      SwitchyardClient client,
      MethodDescriptor<Q, R> method,
      Q request,
      String what,
      Consumer<DisconnectedException> onDrop) {
    this.client = client;
    this.method = method;
    this.request = request;
    this.what = what;
    this.onDrop = onDrop;
  }

  /**
   * Opens the stream and waits (at most the client's call timeout) for the broker to accept it.
   *
   * @param what what the stream is, for messages: "subscription", "consumer"
   * @param onDrop told of each drop, from a gRPC thread, before the stream is reopened
   * @throws SwitchyardException the broker's refusal, or a {@link TimedOutException}
   */
  static <Q, R> ResumableStream<Q, R> open(
      SwitchyardClient client,
      MethodDescriptor<Q, R> method,
      Q request,
      String what,
      Consumer<DisconnectedException> onDrop) {
    ResumableStream<Q, R> stream = new ResumableStream<>(client, method, request, what, onDrop);
    ResumableStream<Q, R>.Attempt first;
    synchronized (stream) {
      first = stream.start(true);
    }
    Duration timeout = client.callTimeout();
    try {
      first.accepted.get(timeout.toNanos(), TimeUnit.NANOSECONDS);
    } catch (ExecutionException refused) {
      throw Errors.fromThrowable(refused);
    } catch (TimeoutException slow) {
      first.cancel("not accepted in time");
      throw Errors.timedOut("the broker did not accept the " + what + " within " + timeout.toMillis() + " ms");
    } catch (InterruptedException e) {
      first.cancel("interrupted");
      throw Errors.interrupted(e);
    }
    return stream;
  }

  /**
   * Takes the next item within timeoutNanos, converted; items convert maps to null are skipped.
   * Returns null when nothing came in time.
   *
   * @throws SwitchyardException once the stream has ended: a {@link ClosedException} after {@link
   *     #close()}, else why the broker ended it
   */
  <T> T take(long timeoutNanos, Function<Item<R>, T> convert) throws InterruptedException {
    long deadline = System.nanoTime() + timeoutNanos;
    while (true) {
      long left = timeoutNanos == Long.MAX_VALUE ? Long.MAX_VALUE : deadline - System.nanoTime();
      Item<R> item = left == Long.MAX_VALUE ? inbox.take() : inbox.poll(Math.max(0, left), TimeUnit.NANOSECONDS);
      if (item == null) {
        return null;
      }
      if (item instanceof Ended<R> end) {
        // Left in the inbox, so that every later read (from any thread) ends the same way.
        inbox.add(end);
        throw end.why();
      }
      if (item instanceof Received<R> received) {
        received.from().call.request(1);
      }
      T converted = convert.apply(item);
      if (converted != null) {
        return converted;
      }
    }
  }

  /** Cancels the call; the reader then gets a {@link ClosedException}. Idempotent. */
  void close() {
    Attempt attempt;
    synchronized (this) {
      if (closed) {
        return;
      }
      closed = true;
      if (reopening != null) {
        reopening.cancel(false);
      }
      attempt = current;
      // What the transport had delivered is not handed out any more: the stream is closed.
      inbox.clear();
      inbox.add(new Ended<>(Errors.closed("the " + what)));
    }
    attempt.cancel("closed by the client");
  }

  /** Starts one attempt at the call, made current. Caller holds this. */
  private Attempt start(boolean first) {
    Attempt attempt = new Attempt(client.channel().newCall(method, CallOptions.DEFAULT), first);
    current = attempt;
    attempt.start();
    if (!first) {
      Duration timeout = client.callTimeout();
      client.scheduler().schedule(() -> attempt.expire(timeout), timeout.toNanos(), TimeUnit.NANOSECONDS);
    }
    return attempt;
  }

  private synchronized void scheduleReopen() {
    if (closed) {
      return;
    }
    Duration wait = backoff.next();
    reopening = client.scheduler().schedule(this::reopen, wait.toNanos(), TimeUnit.NANOSECONDS);
  }

  private synchronized void reopen() {
    if (closed) {
      return;
    }
    if (client.isClosed()) {
      end(Errors.closed("the client"));
      return;
    }
    // grpc-java waits its own backoff (growing to two minutes) before reconnecting a failed
    // connection; this stream's backoff is the one that should set the pace.
    client.channel().resetConnectBackoff();
    start(false);
  }

  /** Ends the stream for the reader with why. Caller holds this. */
  private void end(SwitchyardException why) {
    closed = true;
    inbox.add(new Ended<>(why));
  }

  /**
   * Whether a stream that ended with status may be opened again: the connection or the broker went
   * away (a broker shutting down ends its streams with UNAVAILABLE), rather than the broker refusing
   * the stream.
   */
  static boolean isTransient(Status status) {
    return switch (status.getCode()) {
      case UNAVAILABLE, UNKNOWN, INTERNAL, CANCELLED -> true;
      default -> false;
    };
  }

  /** What one attempt's call reports. */
  private void closed(Attempt attempt, Status status, Metadata trailers) {
    DisconnectedException dropped = null;
    synchronized (this) {
      if (attempt != current || closed) {
        return;
      }
      SwitchyardException why = Errors.fromStatus(status, trailers);
      if (!attempt.accepted.isDone()) {
        // Refused or failed while opening.
        if (attempt.first) {
          attempt.accepted.completeExceptionally(why);
        } else if ((isTransient(status) || attempt.expired) && !client.isClosed()) {
          scheduleReopen();
        } else {
          end(client.isClosed() ? Errors.closed("the client") : why);
        }
        return;
      }
      if (status.isOk()) {
        end(Errors.closed("the " + what + " (ended by the broker)"));
      } else if (isTransient(status) && !client.isClosed()) {
        dropped = Errors.disconnected(why);
        inbox.add(new Dropped<>(dropped));
        backoff.reset();
        scheduleReopen();
      } else {
        end(client.isClosed() ? Errors.closed("the client") : why);
      }
    }
    if (dropped != null) {
      onDrop.accept(dropped);
    }
  }

  private synchronized void accepted(Attempt attempt) {
    if (attempt == current && !attempt.first) {
      backoff.reset();
    }
  }

  /** One call of the stream: its listener, and the call's operations, serialised on the call. */
  final class Attempt extends ClientCall.Listener<R> {
    final ClientCall<Q, R> call;
    final boolean first;
    final java.util.concurrent.CompletableFuture<Void> accepted = new java.util.concurrent.CompletableFuture<>();
    /** Set when the attempt took longer than the call timeout to be accepted, and was cancelled. */
    volatile boolean expired;
    /** Set once the call has closed: what it delivered is from a stream that is gone. */
    volatile boolean dead;

    Attempt(ClientCall<Q, R> call, boolean first) {
      this.call = call;
      this.first = first;
    }

    void start() {
      synchronized (call) {
        call.start(this, new Metadata());
        call.sendMessage(request);
        call.halfClose();
        call.request(WINDOW);
      }
    }

    void cancel(String why) {
      synchronized (call) {
        call.cancel(why, null);
      }
    }

    void expire(Duration timeout) {
      if (!accepted.isDone()) {
        expired = true;
        cancel("not accepted within " + timeout.toMillis() + " ms");
      }
    }

    @Override
    public void onHeaders(Metadata headers) {
      accepted.complete(null);
      accepted(this);
    }

    @Override
    public void onMessage(R message) {
      inbox.add(new Received<>(message, this));
    }

    @Override
    public void onClose(Status status, Metadata trailers) {
      dead = true;
      closed(this, status, trailers);
    }
  }
}
