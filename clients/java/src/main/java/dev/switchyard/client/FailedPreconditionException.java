// FAILED_PRECONDITION: the group's state forbids the call.

package dev.switchyard.client;

/**
 * The group's state forbids the call ({@code FAILED_PRECONDITION}); see the subclasses.
 */
public class FailedPreconditionException extends SwitchyardException {
  private static final long serialVersionUID = 1L;

  /** An exception for these details. */
  public FailedPreconditionException(ErrorDetails details) {
    super(details);
  }

  /** An exception for these details, caused by {@code cause}. */
  public FailedPreconditionException(ErrorDetails details, Throwable cause) {
    super(details, cause);
  }
}
