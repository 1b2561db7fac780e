// GROUP_DELETED: the consumer's group was deleted under it.

package dev.switchyard.client;

/**
 * The consumer's group was deleted ({@code GROUP_DELETED}): the consumer ends with this.
 */
public final class GroupDeletedException extends NotFoundException {
  private static final long serialVersionUID = 1L;

  /** An exception for these details. */
  public GroupDeletedException(ErrorDetails details) {
    super(details);
  }

  /** An exception for these details, caused by {@code cause}. */
  public GroupDeletedException(ErrorDetails details, Throwable cause) {
    super(details, cause);
  }
}
