// DEADLINE_EXCEEDED, REQUEST_TIMED_OUT: no answer in time.

package dev.switchyard.client;

/**
 * No reply to a request in time ({@code REQUEST_TIMED_OUT}, with its {@code timeout_ms}), or no
 * answer from the broker within the call's deadline ({@code DEADLINE_EXCEEDED} without a reason).
 */
public final class TimedOutException extends SwitchyardException {
  private static final long serialVersionUID = 1L;

  /** An exception for these details. */
  public TimedOutException(ErrorDetails details) {
    super(details);
  }

  /** An exception for these details, caused by {@code cause}. */
  public TimedOutException(ErrorDetails details, Throwable cause) {
    super(details, cause);
  }
}
