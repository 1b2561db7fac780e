// The options of a consumer: mode, prefetch, ack deadline, standby, and what to do on a drop.

package dev.switchyard.client;

import java.time.Duration;
import java.util.Objects;
import java.util.function.Consumer;

/** How a {@link GroupConsumer} joins its group. Immutable; {@link #defaults()} or {@link #builder()}. */
public final class ConsumeOptions {
  private final ConsumeMode mode;
  private final int prefetch;
  private final Duration ackDeadline;
  private final boolean standby;
  private final Consumer<DisconnectedException> onDisconnect;
  private final int maxAckBatch;

  private ConsumeOptions(Builder b) {
    this.mode = b.mode;
    this.prefetch = b.prefetch;
    this.ackDeadline = b.ackDeadline;
    this.standby = b.standby;
    this.onDisconnect = b.onDisconnect;
    this.maxAckBatch = b.maxAckBatch;
  }

  /** Shared, the broker's prefetch and the group's deadline, no standby. */
  public static ConsumeOptions defaults() {
    return builder().build();
  }

  /** A builder starting from the defaults. */
  public static Builder builder() {
    return new Builder();
  }

  ConsumeMode mode() {
    return mode;
  }

  int prefetch() {
    return prefetch;
  }

  Duration ackDeadline() {
    return ackDeadline;
  }

  boolean standby() {
    return standby;
  }

  Consumer<DisconnectedException> onDisconnect() {
    return onDisconnect;
  }

  int maxAckBatch() {
    return maxAckBatch;
  }

  /** Builds {@link ConsumeOptions}. */
  public static final class Builder {
    private ConsumeMode mode = ConsumeMode.SHARED;
    private int prefetch;
    private Duration ackDeadline = Duration.ZERO;
    private boolean standby;
    private Consumer<DisconnectedException> onDisconnect = dropped -> {};
    private int maxAckBatch = 256;

    private Builder() {}

    /** Shared (the default) or exclusive; it must match the group's mode if the group exists. */
    public Builder mode(ConsumeMode mode) {
      this.mode = Objects.requireNonNull(mode, "mode");
      return this;
    }

    /** The most unsettled deliveries this consumer holds; 0 is the broker's {@code --default-prefetch}. */
    public Builder prefetch(int prefetch) {
      if (prefetch < 0) {
        throw Errors.invalidArgument("prefetch", "must not be negative");
      }
      this.prefetch = prefetch;
      return this;
    }

    /**
     * How long this consumer has to settle a delivery before it goes back to the group (whole
     * milliseconds); zero is the group's.
     */
    public Builder ackDeadline(Duration deadline) {
      this.ackDeadline = Objects.requireNonNull(deadline, "deadline");
      return this;
    }

    /**
     * For {@link ConsumeMode#EXCLUSIVE}: wait behind the active consumer and take over everything
     * it had not acked when its stream ends, instead of being refused.
     */
    public Builder standby(boolean standby) {
      this.standby = standby;
      return this;
    }

    /**
     * Told each time the connection drops, before the consumer joins its group again by itself
     * (with backoff). The consumer yields nothing for it and does not end: what it held goes back to
     * the group and is redelivered, deliveries it had received but not handed out are dropped, and
     * settling one it had handed out fails with {@link UnknownDeliveryException}. Called from a gRPC
     * thread: keep it short.
     */
    public Builder onDisconnect(Consumer<DisconnectedException> callback) {
      this.onDisconnect = Objects.requireNonNull(callback, "callback");
      return this;
    }

    /**
     * The most delivery ids one Ack call carries (default 256); keep it within the broker's {@code
     * --max-ack-ids} (10,000), which refuses a larger call whole.
     */
    public Builder maxAckBatch(int n) {
      if (n <= 0) {
        throw Errors.invalidArgument("maxAckBatch", "must be positive");
      }
      this.maxAckBatch = n;
      return this;
    }

    /** The options. */
    public ConsumeOptions build() {
      return new ConsumeOptions(this);
    }
  }
}
