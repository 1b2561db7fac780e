// How a queue group shares its messages among its consumers.

package dev.switchyard.client;

import switchyard.v1.BrokerOuterClass;

/** How a group hands out messages; fixed when the group is created. */
public enum ConsumeMode {
  /** Competing consumers: each message goes to one of the group's consumers. */
  SHARED,
  /**
   * One active consumer, which gets the messages in publish order; another is refused ({@link
   * GroupExclusiveTakenException}) or, as a standby, waits to take over.
   */
  EXCLUSIVE;

  BrokerOuterClass.ConsumeMode toPb() {
    return this == EXCLUSIVE
        ? BrokerOuterClass.ConsumeMode.CONSUME_MODE_EXCLUSIVE
        : BrokerOuterClass.ConsumeMode.CONSUME_MODE_SHARED;
  }

  static ConsumeMode fromPb(BrokerOuterClass.ConsumeMode mode) {
    return mode == BrokerOuterClass.ConsumeMode.CONSUME_MODE_EXCLUSIVE ? EXCLUSIVE : SHARED;
  }
}
