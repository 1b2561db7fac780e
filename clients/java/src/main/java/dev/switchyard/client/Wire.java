// Conversions between the client's types and the generated protobuf messages.

package dev.switchyard.client;

import java.time.Duration;
import java.time.Instant;
import switchyard.v1.BrokerOuterClass;

/** The one place that knows the shape of the wire messages. */
final class Wire {
  private Wire() {}

  static BrokerOuterClass.Message toPb(OutgoingMessage m) {
    return BrokerOuterClass.Message.newBuilder()
        .setTopic(m.topic())
        .setPayload(m.payloadBytes())
        .putAllHeaders(m.headers())
        .setKey(m.key())
        .setReplyTo(m.replyTo())
        .setCorrelationId(m.correlationId())
        .build();
  }

  static Message fromPb(BrokerOuterClass.Message m) {
    Instant at =
        m.hasPublishedAt()
            ? Instant.ofEpochSecond(m.getPublishedAt().getSeconds(), m.getPublishedAt().getNanos())
            : null;
    return new Message(
        m.getId(),
        m.getTopic(),
        m.getPayload(),
        m.getHeadersMap(),
        m.getKey(),
        m.getReplyTo(),
        m.getCorrelationId(),
        at);
  }

  static Published fromPb(BrokerOuterClass.Published p) {
    return new Published(p.getId(), p.getSubscribers(), p.getGroups());
  }

  /**
   * A duration in the broker's whole milliseconds (a uint32), rounded up so that a short positive
   * duration does not become 0, which the broker reads as "its default". Null or negative is 0; past
   * the wire's range, the largest value, which the broker then refuses as too long.
   */
  static int millis(Duration d) {
    if (d == null || d.isNegative() || d.isZero()) {
      return 0;
    }
    long ms;
    try {
      ms = d.plusNanos(999_999).toMillis();
    } catch (ArithmeticException overflow) {
      ms = Long.MAX_VALUE;
    }
    return (int) Math.min(ms, 0xFFFF_FFFFL);
  }
}
