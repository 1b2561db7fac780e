// The threads every client shares: one timer, a pool for callbacks that must leave the caller's
// thread, and the cleaner that nacks deliveries collected unsettled.

package dev.switchyard.client;

import java.lang.ref.Cleaner;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Shared by all clients and never shut down, like grpc-java's own timer, so that work scheduled just
 * before a client closes (a reopen, a request's give-up, a frame's failure) is never refused: each
 * task checks whether its client is closed. Daemon threads; the pool's idle threads end after a
 * minute.
 */
final class ClientThreads {
  /** Timers: request give-ups, reopen backoffs, stream open deadlines. Their tasks are short. */
  static final ScheduledExecutorService TIMER =
      Executors.newSingleThreadScheduledExecutor(daemons("switchyard-timer"));

  /** Completions that must not run on the thread (or under the locks) of whoever triggered them. */
  static final ExecutorService CALLBACKS = Executors.newCachedThreadPool(daemons("switchyard-callback"));

  /**
   * Runs the action of each {@link Delivery} the collector found unsettled (it nacks it). One for
   * every delivery of every client: a Cleaner costs a thread, a delivery only a phantom reference.
   * Its actions only queue a nack, so one thread keeps up.
   */
  static final Cleaner CLEANER = Cleaner.create(daemons("switchyard-cleaner"));

  private ClientThreads() {}

  private static ThreadFactory daemons(String name) {
    AtomicInteger n = new AtomicInteger();
    return runnable -> {
      Thread t = new Thread(runnable, name + "-" + n.incrementAndGet());
      t.setDaemon(true);
      return t;
    };
  }
}
