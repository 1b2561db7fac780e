// The tuning of a Responder: concurrency, ack deadline, drain limit and error reports.

package dev.switchyard.client;

import java.time.Duration;
import java.util.Objects;
import java.util.function.BiConsumer;

/** How a {@link Responder} works. Immutable; {@link #defaults()} or {@link #builder()}. */
public final class ServeOptions {
  private static final System.Logger LOG = System.getLogger("dev.switchyard.client.Responder");

  private final int concurrency;
  private final Duration ackDeadline;
  private final Duration drainTimeout;
  private final BiConsumer<Message, Throwable> onError;

  private ServeOptions(Builder b) {
    this.concurrency = b.concurrency;
    this.ackDeadline = b.ackDeadline;
    this.drainTimeout = b.drainTimeout;
    this.onError = b.onError;
  }

  /** 16 at once, the group's ack deadline, 30 s to drain, errors logged. */
  public static ServeOptions defaults() {
    return builder().build();
  }

  /** A builder starting from the defaults. */
  public static Builder builder() {
    return new Builder();
  }

  /** How many requests are handled at once (also the consumer's prefetch). */
  public int concurrency() {
    return concurrency;
  }

  Duration ackDeadline() {
    return ackDeadline;
  }

  Duration drainTimeout() {
    return drainTimeout;
  }

  BiConsumer<Message, Throwable> onError() {
    return onError;
  }

  /** Builds {@link ServeOptions}. */
  public static final class Builder {
    private int concurrency = 16;
    private Duration ackDeadline = Duration.ZERO;
    private Duration drainTimeout = Duration.ofSeconds(30);
    private BiConsumer<Message, Throwable> onError =
        (request, error) ->
            LOG.log(System.Logger.Level.WARNING, "request " + request.id() + " to " + request.topic() + " not answered", error);

    private Builder() {}

    /**
     * How many requests are handled at once; the responder also asks for that prefetch, so it holds
     * no more requests than it works on.
     */
    public Builder concurrency(int n) {
      if (n <= 0) {
        throw Errors.invalidArgument("concurrency", "must be positive");
      }
      this.concurrency = n;
      return this;
    }

    /** How long a handler may take before its request goes to another responder; zero is the group's. */
    public Builder ackDeadline(Duration deadline) {
      this.ackDeadline = Objects.requireNonNull(deadline, "deadline");
      return this;
    }

    /**
     * How long {@link Responder#close()} lets the handlers in hand run before it interrupts them
     * (their requests then go back to the group).
     */
    public Builder drainTimeout(Duration timeout) {
      this.drainTimeout = Objects.requireNonNull(timeout, "timeout");
      return this;
    }

    /**
     * Told of each request that could not be answered: the handler's exception (the request is
     * rejected), a reply that could not be published (the request is nacked for another try), or a
     * settlement that failed. Called from a worker or gRPC thread. By default they are logged.
     */
    public Builder onError(BiConsumer<Message, Throwable> onError) {
      this.onError = Objects.requireNonNull(onError, "onError");
      return this;
    }

    /** The options. */
    public ServeOptions build() {
      return new ServeOptions(this);
    }
  }
}
