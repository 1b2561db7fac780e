// RESOURCE_EXHAUSTED: the broker has no room for this.

package dev.switchyard.client;

/**
 * The broker has no room for this ({@code RESOURCE_EXHAUSTED}): too many streams open ({@code
 * TOO_MANY_STREAMS}), a durable broker's disk is full ({@code DISK_FULL}), or one of {@link
 * GroupFullException}'s reasons.
 */
public class ResourceExhaustedException extends SwitchyardException {
  private static final long serialVersionUID = 1L;

  /** An exception for these details. */
  public ResourceExhaustedException(ErrorDetails details) {
    super(details);
  }

  /** An exception for these details, caused by {@code cause}. */
  public ResourceExhaustedException(ErrorDetails details, Throwable cause) {
    super(details, cause);
  }
}
