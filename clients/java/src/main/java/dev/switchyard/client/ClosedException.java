// The client, publisher, subscription or consumer was closed: it takes no more work.

package dev.switchyard.client;

/**
 * The client, publisher, subscription or consumer was closed, and takes no more work; what it still
 * held when its close gave up waiting fails with this. Its code is {@code CANCELLED}.
 */
public final class ClosedException extends SwitchyardException {
  private static final long serialVersionUID = 1L;

  /** An exception for these details. */
  public ClosedException(ErrorDetails details) {
    super(details);
  }

  /** An exception for these details, caused by {@code cause}. */
  public ClosedException(ErrorDetails details, Throwable cause) {
    super(details, cause);
  }
}
