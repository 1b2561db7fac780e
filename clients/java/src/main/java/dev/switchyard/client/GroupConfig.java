// A queue group to declare, with its limits, deadline and dead-letter topic.

package dev.switchyard.client;

import java.time.Duration;
import java.util.Objects;

/**
 * The settings of a group for {@link Admin#declareGroup}. Unset values take the broker's defaults.
 * Immutable; made by {@link #builder(String, String)}.
 *
 * <pre>{@code
 * client.admin().declareGroup(GroupConfig.builder("images.resize", "workers")
 *     .maxDeliveries(3)
 *     .deadLetterTopic("images.dead")
 *     .build()).join();
 * }</pre>
 */
public final class GroupConfig {
  private final String topic;
  private final String group;
  private final ConsumeMode mode;
  private final int maxLength;
  private final long maxBytes;
  private final Duration ackDeadline;
  private final int maxDeliveries;
  private final String deadLetterTopic;

  private GroupConfig(Builder b) {
    this.topic = b.topic;
    this.group = b.group;
    this.mode = b.mode;
    this.maxLength = b.maxLength;
    this.maxBytes = b.maxBytes;
    this.ackDeadline = b.ackDeadline;
    this.maxDeliveries = b.maxDeliveries;
    this.deadLetterTopic = b.deadLetterTopic;
  }

  /** A builder of the group (topic pattern, group name). */
  public static Builder builder(String topic, String group) {
    return new Builder(topic, group);
  }

  /** The group's topic pattern. */
  public String topic() {
    return topic;
  }

  /** The group's name. */
  public String group() {
    return group;
  }

  ConsumeMode mode() {
    return mode;
  }

  int maxLength() {
    return maxLength;
  }

  long maxBytes() {
    return maxBytes;
  }

  Duration ackDeadline() {
    return ackDeadline;
  }

  int maxDeliveries() {
    return maxDeliveries;
  }

  String deadLetterTopic() {
    return deadLetterTopic;
  }

  /** Builds a {@link GroupConfig}. */
  public static final class Builder {
    private final String topic;
    private final String group;
    private ConsumeMode mode = ConsumeMode.SHARED;
    private int maxLength;
    private long maxBytes;
    private Duration ackDeadline = Duration.ZERO;
    private int maxDeliveries;
    private String deadLetterTopic = "";

    private Builder(String topic, String group) {
      this.topic = Objects.requireNonNull(topic, "topic");
      this.group = Objects.requireNonNull(group, "group");
    }

    /** Shared (the default) or exclusive; fixed once the group exists. */
    public Builder mode(ConsumeMode mode) {
      this.mode = Objects.requireNonNull(mode, "mode");
      return this;
    }

    /**
     * The most messages the group holds (waiting, delayed and in flight); a publish past it fails
     * with {@link GroupFullException}. 0 is the broker's {@code --default-max-length}.
     */
    public Builder maxLength(int n) {
      this.maxLength = n;
      return this;
    }

    /** What the group's messages may take in bytes, as the broker's memory budget counts them; 0 is no limit. */
    public Builder maxBytes(long n) {
      this.maxBytes = n;
      return this;
    }

    /** The group's time to settle a delivery (whole milliseconds); zero is the broker's default. */
    public Builder ackDeadline(Duration deadline) {
      this.ackDeadline = Objects.requireNonNull(deadline, "deadline");
      return this;
    }

    /** How many deliveries a message gets before it is dead-lettered; 0 is unlimited. */
    public Builder maxDeliveries(int n) {
      this.maxDeliveries = n;
      return this;
    }

    /**
     * Where messages that ran out of deliveries, or were rejected, are published (with {@code
     * x-dead-letter-reason} and its kin); without one they are dropped.
     */
    public Builder deadLetterTopic(String topic) {
      this.deadLetterTopic = Objects.requireNonNull(topic, "topic");
      return this;
    }

    /** The settings. */
    public GroupConfig build() {
      return new GroupConfig(this);
    }
  }
}
