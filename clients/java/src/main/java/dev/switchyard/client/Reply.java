// The answer a RequestHandler gives: a payload, with headers and a key if it likes.

package dev.switchyard.client;

import com.google.protobuf.ByteString;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * A reply to a request. Immutable: the {@code with*} methods return a new one. The topic and the
 * correlation id are the request's reply-to and correlation id, set by the responder.
 */
public final class Reply {
  private final ByteString payload;
  private final Map<String, String> headers;
  private final String key;

  private Reply(ByteString payload, Map<String, String> headers, String key) {
    this.payload = payload;
    this.headers = Map.copyOf(headers);
    this.key = key;
  }

  /** A reply with a UTF-8 payload. */
  public static Reply of(String payload) {
    return new Reply(Message.utf8(payload), Map.of(), "");
  }

  /** A reply with this payload (copied). */
  public static Reply of(byte[] payload) {
    return new Reply(ByteString.copyFrom(payload), Map.of(), "");
  }

  /** This reply with one more header. */
  public Reply withHeader(String name, String value) {
    Map<String, String> more = new LinkedHashMap<>(headers);
    more.put(Objects.requireNonNull(name, "name"), Objects.requireNonNull(value, "value"));
    return new Reply(payload, more, key);
  }

  /** This reply with a key. */
  public Reply withKey(String key) {
    return new Reply(payload, headers, Objects.requireNonNull(key, "key"));
  }

  /** The message that answers request. */
  OutgoingMessage answering(Message request) {
    return OutgoingMessage.builder(request.replyTo())
        .payload(payload)
        .headers(headers)
        .key(key)
        .correlationId(request.correlationId())
        .build();
  }
}
