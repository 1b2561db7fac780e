// UNAUTHENTICATED: no token, or one the broker does not know.

package dev.switchyard.client;

/**
 * The broker has authentication on and the call carried no token, or one it does not know ({@code
 * UNAUTHENTICATED}). See {@link ClientBuilder#token(String)}.
 */
public final class UnauthenticatedException extends SwitchyardException {
  private static final long serialVersionUID = 1L;

  /** An exception for these details. */
  public UnauthenticatedException(ErrorDetails details) {
    super(details);
  }

  /** An exception for these details, caused by {@code cause}. */
  public UnauthenticatedException(ErrorDetails details, Throwable cause) {
    super(details, cause);
  }
}
