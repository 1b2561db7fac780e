// MODE_MISMATCH, GROUP_CONFLICT: the group exists with other settings.

package dev.switchyard.client;

/**
 * The group exists in the other mode ({@code MODE_MISMATCH}) or with another setting ({@code
 * GROUP_CONFLICT}); {@link #metadata()} has {@code setting}, {@code existing} and {@code requested}.
 */
public final class GroupConflictException extends FailedPreconditionException {
  private static final long serialVersionUID = 1L;

  /** An exception for these details. */
  public GroupConflictException(ErrorDetails details) {
    super(details);
  }

  /** An exception for these details, caused by {@code cause}. */
  public GroupConflictException(ErrorDetails details, Throwable cause) {
    super(details, cause);
  }
}
