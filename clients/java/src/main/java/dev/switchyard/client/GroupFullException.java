// GROUP_FULL, GROUP_BYTES_FULL, MEMORY_FULL: nothing of the batch was published.

package dev.switchyard.client;

/**
 * A group the batch would go to is at its {@code max_length} ({@code GROUP_FULL}) or {@code
 * max_bytes} ({@code GROUP_BYTES_FULL}), or the broker's memory budget is spent ({@code
 * MEMORY_FULL}). Nothing of the batch was published; {@link #retryAfter()} is set unless the batch
 * can never fit, and {@link #metadata()} names the group and its limit.
 */
public final class GroupFullException extends ResourceExhaustedException {
  private static final long serialVersionUID = 1L;

  /** An exception for these details. */
  public GroupFullException(ErrorDetails details) {
    super(details);
  }

  /** An exception for these details, caused by {@code cause}. */
  public GroupFullException(ErrorDetails details, Throwable cause) {
    super(details, cause);
  }
}
