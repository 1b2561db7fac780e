// What a failed call says about itself: its gRPC status and the broker's google.rpc details.

package dev.switchyard.client;

import io.grpc.Status;
import java.time.Duration;
import java.util.Map;
import java.util.Objects;

/**
 * The parts of a refusal that a {@link SwitchyardException} carries: the gRPC status, and what the
 * broker's {@code grpc-status-details-bin} trailer adds to it (its {@code ErrorInfo} reason and
 * metadata, the first {@code BadRequest} field, the {@code RetryInfo} delay).
 *
 * @param status the gRPC status (code and the broker's message, which is for people and may change)
 * @param reason the broker's stable reason, such as {@code GROUP_FULL}; {@code null} when the status
 *     carried none (the broker could not be reached, or the client made the error itself)
 * @param metadata what the reason is about ({@code group}, {@code topic}, {@code max_length}...);
 *     empty without a reason
 * @param field the path of the offending field from a {@code BadRequest}, such as {@code
 *     messages[1].topic}; {@code null} without one
 * @param retryAfter how long the broker suggests waiting before trying again; {@code null} where
 *     waiting does not help
 */
public record ErrorDetails(
    Status status, String reason, Map<String, String> metadata, String field, Duration retryAfter) {

  /** Checks the status and copies the metadata, so the record cannot change under its holder. */
  public ErrorDetails {
    Objects.requireNonNull(status, "status");
    metadata = metadata == null ? Map.of() : Map.copyOf(metadata);
  }

  /** Details of a status that carried nothing else: no reason, metadata, field or delay. */
  public static ErrorDetails of(Status status) {
    return new ErrorDetails(status, null, Map.of(), null, null);
  }
}
