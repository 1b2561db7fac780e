// The waits between attempts to reopen a dropped stream: exponential, capped, with jitter.

package dev.switchyard.client;

import java.time.Duration;
import java.util.concurrent.ThreadLocalRandom;

/**
 * From {@link #FIRST}, doubling, each wait in {@code [base, 2 base)}, the base capped at half of
 * {@link #MAX} so no wait exceeds it: about 100-200 ms, 200-400 ms, ..., then 2.5-5 s. The jitter
 * matters: every client of a broker that restarts loses its streams at the same moment, and without
 * it they would all come back in step. Not thread-safe; each stream has its own.
 */
final class Backoff {
  static final Duration FIRST = Duration.ofMillis(100);
  static final Duration MAX = Duration.ofSeconds(5);

  private long baseMillis = FIRST.toMillis();

  /** The next wait, and the base doubled for the one after. */
  Duration next() {
    long wait = baseMillis + ThreadLocalRandom.current().nextLong(baseMillis);
    baseMillis = Math.min(2 * baseMillis, MAX.toMillis() / 2);
    return Duration.ofMillis(wait);
  }

  /** Back to the first wait, after an attempt that worked. */
  void reset() {
    baseMillis = FIRST.toMillis();
  }
}
