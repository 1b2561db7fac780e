// The tuning of a Publisher: batch size, frames in flight, queue bound, and waiting for room.

package dev.switchyard.client;

/**
 * How a {@link Publisher} batches and bounds what it holds. Immutable; {@link #defaults()} or
 * {@link #builder()}.
 */
public final class PublisherOptions {
  private final int maxBatch;
  private final int maxInFlight;
  private final int queueSize;
  private final boolean brokerWaitsForRoom;

  private PublisherOptions(Builder b) {
    this.maxBatch = b.maxBatch;
    this.maxInFlight = b.maxInFlight;
    this.queueSize = b.queueSize;
    this.brokerWaitsForRoom = b.brokerWaitsForRoom;
  }

  /** 500 messages a frame, 16 frames in flight, 4096 messages queued, no waiting for room. */
  public static PublisherOptions defaults() {
    return builder().build();
  }

  /** A builder starting from the defaults. */
  public static Builder builder() {
    return new Builder();
  }

  /** The most messages one frame carries. */
  public int maxBatch() {
    return maxBatch;
  }

  /** How many frames may wait for their answer at once. */
  public int maxInFlight() {
    return maxInFlight;
  }

  /** How many messages may wait to be sent before {@link Publisher#publish} blocks. */
  public int queueSize() {
    return queueSize;
  }

  /** Whether the broker holds a frame for a full group instead of refusing it. */
  public boolean brokerWaitsForRoom() {
    return brokerWaitsForRoom;
  }

  /** Builds {@link PublisherOptions}. */
  public static final class Builder {
    private int maxBatch = 500;
    private int maxInFlight = 16;
    private int queueSize = 4096;
    private boolean brokerWaitsForRoom;

    private Builder() {}

    /**
     * The most messages one frame carries (a frame is what queued up while earlier frames were on
     * their way; all or nothing, like {@link SwitchyardClient#publishBatch}). Keep it within the
     * broker's {@code --max-batch-messages} (1000).
     */
    public Builder maxBatch(int n) {
      this.maxBatch = positive("maxBatch", n);
      return this;
    }

    /** How many frames may wait for their answer at once. */
    public Builder maxInFlight(int n) {
      this.maxInFlight = positive("maxInFlight", n);
      return this;
    }

    /**
     * How many messages may wait to be sent; past it {@link Publisher#publish} blocks, which is
     * the backpressure of a broker slower than its publishers.
     */
    public Builder queueSize(int n) {
      this.queueSize = positive("queueSize", n);
      return this;
    }

    /**
     * Ask the broker to hold a frame for a full group or memory budget (up to its {@code
     * --max-publish-wait}) instead of refusing it at once with {@link GroupFullException}; the
     * held frames then hold the publisher back too.
     */
    public Builder brokerWaitsForRoom(boolean wait) {
      this.brokerWaitsForRoom = wait;
      return this;
    }

    /** The options. */
    public PublisherOptions build() {
      return new PublisherOptions(this);
    }

    private static int positive(String field, int n) {
      if (n <= 0) {
        throw Errors.invalidArgument(field, "must be positive");
      }
      return n;
    }
  }
}
