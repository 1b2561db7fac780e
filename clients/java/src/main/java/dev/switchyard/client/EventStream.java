// What Subscription and GroupConsumer share: blocking reads with and without a timeout, an
// iterator, and close.

package dev.switchyard.client;

import java.time.Duration;
import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.Optional;

/**
 * A stream of events from the broker, read by blocking: {@link #poll(Duration)} with a bound,
 * {@link #next()} without, or a for-each loop. Reads may come from several threads. A dropped
 * connection does not end it (it reopens by itself); it ends when closed, or when the broker ends
 * it for good, and every read after that throws why.
 *
 * @param <T> what it yields
 */
public abstract class EventStream<T> implements Iterable<T>, AutoCloseable {
  EventStream() {}

  /**
   * Takes the next event, waiting at most timeoutNanos (Long.MAX_VALUE: for ever); null if none
   * came in time.
   */
  abstract T take(long timeoutNanos) throws InterruptedException;

  /**
   * The next event, waiting at most timeout; empty if none came in time.
   *
   * @throws ClosedException once closed
   * @throws SwitchyardException once the broker ended the stream (a {@link
   *     GroupDeletedException}, say)
   * @throws CancelledException if the thread is interrupted while it waits
   */
  public Optional<T> poll(Duration timeout) {
    try {
      return Optional.ofNullable(take(Math.max(0, timeout.toNanos())));
    } catch (InterruptedException e) {
      throw Errors.interrupted(e);
    }
  }

  /**
   * The next event, waiting as long as it takes.
   *
   * @throws ClosedException once closed
   * @throws SwitchyardException once the broker ended the stream
   * @throws CancelledException if the thread is interrupted while it waits
   */
  public T next() {
    try {
      return take(Long.MAX_VALUE);
    } catch (InterruptedException e) {
      throw Errors.interrupted(e);
    }
  }

  /**
   * The events as an iterator whose {@code hasNext} blocks for the next one. It ends quietly once
   * the stream is closed; an end the caller did not ask for (the broker ending the stream) is thrown
   * by {@code hasNext}.
   */
  @Override
  public Iterator<T> iterator() {
    return new Iterator<>() {
      private T peeked;
      private boolean ended;

      @Override
      public boolean hasNext() {
        if (peeked != null) {
          return true;
        }
        if (ended) {
          return false;
        }
        try {
          peeked = EventStream.this.next();
          return true;
        } catch (ClosedException closed) {
          ended = true;
          return false;
        }
      }

      @Override
      public T next() {
        if (!hasNext()) {
          throw new NoSuchElementException("the stream is closed");
        }
        T out = peeked;
        peeked = null;
        return out;
      }
    };
  }

  /** Ends the stream; reads then throw {@link ClosedException}. Idempotent. */
  @Override
  public abstract void close();
}
