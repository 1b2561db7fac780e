// GROUP_EXCLUSIVE_TAKEN: an exclusive group already has its active consumer.

package dev.switchyard.client;

/**
 * An exclusive group already has its active consumer ({@code GROUP_EXCLUSIVE_TAKEN}; {@link
 * #metadata()} names the {@code group}). Ask for {@link ConsumeOptions.Builder#standby(boolean)} to
 * wait and take over instead.
 */
public final class GroupExclusiveTakenException extends FailedPreconditionException {
  private static final long serialVersionUID = 1L;

  /** An exception for these details. */
  public GroupExclusiveTakenException(ErrorDetails details) {
    super(details);
  }

  /** An exception for these details, caused by {@code cause}. */
  public GroupExclusiveTakenException(ErrorDetails details, Throwable cause) {
    super(details, cause);
  }
}
