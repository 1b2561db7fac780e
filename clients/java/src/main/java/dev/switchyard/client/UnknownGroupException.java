// UNKNOWN_GROUP: no such group.

package dev.switchyard.client;

/**
 * No such group ({@code UNKNOWN_GROUP}), as when deleting one that does not exist; {@link
 * #metadata()} names the {@code group} and {@code topic}.
 */
public final class UnknownGroupException extends NotFoundException {
  private static final long serialVersionUID = 1L;

  /** An exception for these details. */
  public UnknownGroupException(ErrorDetails details) {
    super(details);
  }

  /** An exception for these details, caused by {@code cause}. */
  public UnknownGroupException(ErrorDetails details, Throwable cause) {
    super(details, cause);
  }
}
