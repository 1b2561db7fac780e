// A message as the broker delivered it: to a subscriber, a consumer, a requester or a responder.

package dev.switchyard.client;

import com.google.protobuf.ByteString;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Map;
import java.util.Optional;

/**
 * One message received from the broker. Immutable. Optional fields the publisher left empty are
 * empty strings, as on the wire.
 */
public final class Message {
  private final String id;
  private final String topic;
  private final ByteString payload;
  private final Map<String, String> headers;
  private final String key;
  private final String replyTo;
  private final String correlationId;
  private final Instant publishedAt;

  Message(
      String id,
      String topic,
      ByteString payload,
      Map<String, String> headers,
      String key,
      String replyTo,
      String correlationId,
      Instant publishedAt) {
    this.id = id;
    this.topic = topic;
    this.payload = payload;
    this.headers = Map.copyOf(headers);
    this.key = key;
    this.replyTo = replyTo;
    this.correlationId = correlationId;
    this.publishedAt = publishedAt;
  }

  /** The broker's UUID v7 for the message; a redelivery or a dead letter keeps it. */
  public String id() {
    return id;
  }

  /** The topic it was published to, such as {@code orders.eu.created}. */
  public String topic() {
    return topic;
  }

  /** The payload, a fresh copy each call. */
  public byte[] payload() {
    return payload.toByteArray();
  }

  /** The payload read as UTF-8. */
  public String payloadUtf8() {
    return payload.toStringUtf8();
  }

  /** The headers, unmodifiable; dead letters carry {@code x-dead-letter-reason} and its kin. */
  public Map<String, String> headers() {
    return headers;
  }

  /** The key the publisher gave, or an empty string. */
  public String key() {
    return key;
  }

  /** Where a responder answers a request; empty for a plain message. */
  public String replyTo() {
    return replyTo;
  }

  /** What pairs a reply with its request; empty for a plain message. */
  public String correlationId() {
    return correlationId;
  }

  /** The broker's clock when it accepted the message, if it said. */
  public Optional<Instant> publishedAt() {
    return Optional.ofNullable(publishedAt);
  }

  @Override
  public String toString() {
    String text = payload.size() <= 64 && payload.isValidUtf8() ? payload.toStringUtf8() : payload.size() + " bytes";
    return "Message{id=" + id + ", topic=" + topic + ", payload=" + text + ", headers=" + headers + "}";
  }

  /** The payload as UTF-8 bytes, for comparisons in one place. */
  static ByteString utf8(String text) {
    return ByteString.copyFrom(text, StandardCharsets.UTF_8);
  }
}
