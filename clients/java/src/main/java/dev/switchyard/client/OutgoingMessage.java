// A message to publish (or send as a request), made with a builder.

package dev.switchyard.client;

import com.google.protobuf.ByteString;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * A message to publish: a topic (dot-separated tokens, no wildcards) and a payload, with optional
 * headers, key, reply-to and correlation id. The broker sets the id and the time. Immutable; made
 * by {@link #of(String, String)}, {@link #of(String, byte[])} or {@link #builder(String)}.
 *
 * <pre>{@code
 * OutgoingMessage order = OutgoingMessage.builder("orders.created")
 *     .payload("{\"sku\":\"A1\"}")
 *     .header("source", "web")
 *     .key("customer-42")
 *     .build();
 * }</pre>
 */
public final class OutgoingMessage {
  private final String topic;
  private final ByteString payload;
  private final Map<String, String> headers;
  private final String key;
  private final String replyTo;
  private final String correlationId;

  private OutgoingMessage(Builder b) {
    this.topic = b.topic;
    this.payload = b.payload;
    this.headers = Map.copyOf(b.headers);
    this.key = b.key;
    this.replyTo = b.replyTo;
    this.correlationId = b.correlationId;
  }

  /** A message of topic with a UTF-8 payload. */
  public static OutgoingMessage of(String topic, String payload) {
    return builder(topic).payload(payload).build();
  }

  /** A message of topic with payload (copied). */
  public static OutgoingMessage of(String topic, byte[] payload) {
    return builder(topic).payload(payload).build();
  }

  /** A builder of a message to topic, with an empty payload until told otherwise. */
  public static Builder builder(String topic) {
    return new Builder(topic);
  }

  /** The topic. */
  public String topic() {
    return topic;
  }

  /** The payload, a fresh copy. */
  public byte[] payload() {
    return payload.toByteArray();
  }

  /** The headers, unmodifiable. */
  public Map<String, String> headers() {
    return headers;
  }

  /** The key, or an empty string. */
  public String key() {
    return key;
  }

  /** The reply-to topic, or an empty string. */
  public String replyTo() {
    return replyTo;
  }

  /** The correlation id, or an empty string. */
  public String correlationId() {
    return correlationId;
  }

  ByteString payloadBytes() {
    return payload;
  }

  /** A builder with this message's fields, to change some of them. */
  public Builder toBuilder() {
    return new Builder(topic)
        .payload(payload)
        .headers(headers)
        .key(key)
        .replyTo(replyTo)
        .correlationId(correlationId);
  }

  @Override
  public String toString() {
    return "OutgoingMessage{topic=" + topic + ", " + payload.size() + " bytes, headers=" + headers + "}";
  }

  /** Builds an {@link OutgoingMessage}. Not thread-safe; every setter returns the builder. */
  public static final class Builder {
    private String topic;
    private ByteString payload = ByteString.EMPTY;
    private final Map<String, String> headers = new LinkedHashMap<>();
    private String key = "";
    private String replyTo = "";
    private String correlationId = "";

    private Builder(String topic) {
      this.topic = Objects.requireNonNull(topic, "topic");
    }

    /** The topic. */
    public Builder topic(String topic) {
      this.topic = Objects.requireNonNull(topic, "topic");
      return this;
    }

    /** The payload, copied. */
    public Builder payload(byte[] payload) {
      this.payload = ByteString.copyFrom(payload);
      return this;
    }

    /** The payload as UTF-8. */
    public Builder payload(String payload) {
      this.payload = Message.utf8(payload);
      return this;
    }

    Builder payload(ByteString payload) {
      this.payload = payload;
      return this;
    }

    /** Adds (or replaces) one header. */
    public Builder header(String name, String value) {
      headers.put(Objects.requireNonNull(name, "name"), Objects.requireNonNull(value, "value"));
      return this;
    }

    /** Adds (or replaces) these headers. */
    public Builder headers(Map<String, String> more) {
      more.forEach(this::header);
      return this;
    }

    /** The key; the broker keeps and delivers it. */
    public Builder key(String key) {
      this.key = Objects.requireNonNull(key, "key");
      return this;
    }

    /** The topic a responder should answer on. */
    public Builder replyTo(String replyTo) {
      this.replyTo = Objects.requireNonNull(replyTo, "replyTo");
      return this;
    }

    /**
     * The id that pairs a reply with its request. For {@link SwitchyardClient#request} it is the id
     * the reply must carry; by default the broker makes one.
     */
    public Builder correlationId(String correlationId) {
      this.correlationId = Objects.requireNonNull(correlationId, "correlationId");
      return this;
    }

    /** The message. */
    public OutgoingMessage build() {
      return new OutgoingMessage(this);
    }
  }
}
