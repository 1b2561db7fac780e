// CANCELLED: the call was cancelled, or the waiting thread interrupted.

package dev.switchyard.client;

/**
 * The call was cancelled ({@code CANCELLED}), or the thread that waited for it was interrupted (its
 * interrupt flag is then set again).
 */
public final class CancelledException extends SwitchyardException {
  private static final long serialVersionUID = 1L;

  /** An exception for these details. */
  public CancelledException(ErrorDetails details) {
    super(details);
  }

  /** An exception for these details, caused by {@code cause}. */
  public CancelledException(ErrorDetails details, Throwable cause) {
    super(details, cause);
  }
}
