// The threads every client shares: one timer, and a pool for callbacks that must leave the
// caller's thread.

package dev.switchyard.client;

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
