// INVALID_ARGUMENT: input the broker (or the client's own checks) refused.

package dev.switchyard.client;

/**
 * Malformed input ({@code INVALID_ARGUMENT}): a bad topic or pattern, a payload over the limit, a
 * string that is not UTF-8, or a client option that cannot be used. {@link #field()} names it, as
 * {@code messages[1].topic} or {@code tls.ca}.
 */
public class InvalidArgumentException extends SwitchyardException {
  private static final long serialVersionUID = 1L;

  /** An exception for these details. */
  public InvalidArgumentException(ErrorDetails details) {
    super(details);
  }

  /** An exception for these details, caused by {@code cause}. */
  public InvalidArgumentException(ErrorDetails details, Throwable cause) {
    super(details, cause);
  }
}
