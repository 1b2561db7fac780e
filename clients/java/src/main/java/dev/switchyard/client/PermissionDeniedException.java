// PERMISSION_DENIED, NOT_ADMIN: the token may not do this.

package dev.switchyard.client;

/**
 * The token is known but may not do this: use that topic or pattern ({@code PERMISSION_DENIED};
 * {@link #metadata()} names the {@code token}, {@code action} and {@code topic}, and {@link
 * #field()} the field), or make an admin call without an admin token ({@code NOT_ADMIN}).
 */
public final class PermissionDeniedException extends SwitchyardException {
  private static final long serialVersionUID = 1L;

  /** An exception for these details. */
  public PermissionDeniedException(ErrorDetails details) {
    super(details);
  }

  /** An exception for these details, caused by {@code cause}. */
  public PermissionDeniedException(ErrorDetails details, Throwable cause) {
    super(details, cause);
  }
}
