// OUT_OF_RANGE: one gRPC message was over the broker's --max-request-bytes.

package dev.switchyard.client;

/**
 * One gRPC message was larger than the broker's {@code --max-request-bytes} ({@code OUT_OF_RANGE}),
 * reported by the gRPC layer before the broker saw it: send smaller batches.
 */
public final class MessageTooLargeException extends SwitchyardException {
  private static final long serialVersionUID = 1L;

  /** An exception for these details. */
  public MessageTooLargeException(ErrorDetails details) {
    super(details);
  }

  /** An exception for these details, caused by {@code cause}. */
  public MessageTooLargeException(ErrorDetails details, Throwable cause) {
    super(details, cause);
  }
}
