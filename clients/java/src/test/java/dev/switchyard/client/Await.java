// Bounded waits for the tests: futures, failures and conditions.

package dev.switchyard.client;

import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.fail;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BooleanSupplier;

/** Every wait of a test is bounded; none can hang the suite. */
final class Await {
  /** How long a test waits for anything it expects to happen. */
  static final Duration WAIT = Duration.ofSeconds(10);

  private Await() {}

  /** The future's value, failing the test if it failed or took longer than {@link #WAIT}. */
  static <T> T result(CompletableFuture<T> future) {
    try {
      return future.get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
    } catch (ExecutionException e) {
      throw new AssertionError("the call failed: " + e.getCause(), e.getCause());
    } catch (TimeoutException e) {
      throw new AssertionError("no result within " + WAIT);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted", e);
    }
  }

  /** The exception of type the future failed with (within {@link #WAIT}); fails the test otherwise. */
  static <E extends Throwable> E failure(CompletableFuture<?> future, Class<E> type) {
    try {
      Object value = future.get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
      return fail("succeeded with " + value + ", want " + type.getSimpleName());
    } catch (ExecutionException e) {
      return assertInstanceOf(type, e.getCause(), () -> "failed with " + e.getCause());
    } catch (TimeoutException e) {
      return fail("no outcome within " + WAIT + ", want " + type.getSimpleName());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted", e);
    }
  }

  /** Polls condition every 20 ms until it holds, failing the test after {@link #WAIT}. */
  static void until(String what, BooleanSupplier condition) throws InterruptedException {
    long deadline = System.nanoTime() + WAIT.toNanos();
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        fail("after " + WAIT.toSeconds() + " s, still not: " + what);
      }
      Thread.sleep(20);
    }
  }
}
