// NOT_FOUND: the group is not there.

package dev.switchyard.client;

/**
 * Something named is not there ({@code NOT_FOUND}); see the subclasses.
 */
public class NotFoundException extends SwitchyardException {
  private static final long serialVersionUID = 1L;

  /** An exception for these details. */
  public NotFoundException(ErrorDetails details) {
    super(details);
  }

  /** An exception for these details, caused by {@code cause}. */
  public NotFoundException(ErrorDetails details, Throwable cause) {
    super(details, cause);
  }
}
