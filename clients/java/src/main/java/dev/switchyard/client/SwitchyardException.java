// The root of the client's exceptions: every failure is one, typed by the broker's reason.

package dev.switchyard.client;

import io.grpc.Status;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;

/**
 * A call that failed. Unchecked, like the exceptions of grpc-java, and always of the most specific
 * subclass the broker's reason names (see the reason table of the broker's
 * {@code docs/semantics.md}): catch {@link NoRespondersException}, {@link GroupFullException} and so
 * on, or test {@link #reason()}; never the message's text, which is for people and may change.
 *
 * <p>A status without a reason (the broker could not be reached, or a proxy answered) takes the
 * class of its gRPC code: {@link UnavailableException} for {@code UNAVAILABLE}, and so on.
 */
public class SwitchyardException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final transient ErrorDetails details;

  /** An exception for these details. */
  public SwitchyardException(ErrorDetails details) {
    this(details, details.status().getCause());
  }

  /** An exception for these details, caused by {@code cause}. */
  public SwitchyardException(ErrorDetails details, Throwable cause) {
    super(describe(details), cause);
    this.details = details;
  }

  private static String describe(ErrorDetails details) {
    Status status = details.status();
    String text = status.getDescription() == null ? "" : ": " + status.getDescription();
    String reason = details.reason() == null ? "" : " (" + details.reason() + ")";
    return status.getCode() + reason + text;
  }

  /** The broker's stable reason, such as {@code NO_RESPONDERS}, if the status carried one. */
  public Optional<String> reason() {
    return Optional.ofNullable(details.reason());
  }

  /** The gRPC status: its code, and the broker's message. */
  public Status status() {
    return details.status();
  }

  /** The gRPC status code, short for {@code status().getCode()}. */
  public Status.Code code() {
    return details.status().getCode();
  }

  /** What the reason is about ({@code group}, {@code topic}, {@code limit}...); empty without one. */
  public Map<String, String> metadata() {
    return details.metadata();
  }

  /** The path of the offending field, such as {@code messages[0].topic}, from a BadRequest. */
  public Optional<String> field() {
    return Optional.ofNullable(details.field());
  }

  /** How long the broker suggests waiting before trying again, where waiting can help. */
  public Optional<Duration> retryAfter() {
    return Optional.ofNullable(details.retryAfter());
  }

  /** All of the above in one record. */
  public ErrorDetails details() {
    return details;
  }
}
