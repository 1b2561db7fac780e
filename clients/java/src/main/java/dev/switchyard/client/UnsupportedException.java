// UNIMPLEMENTED, UNSUPPORTED: the broker's backend does not do this.

package dev.switchyard.client;

/**
 * The backend the broker runs on does not do this, or not yet ({@code UNSUPPORTED}, or {@code
 * UNIMPLEMENTED} without a reason); the message says what.
 */
public final class UnsupportedException extends SwitchyardException {
  private static final long serialVersionUID = 1L;

  /** An exception for these details. */
  public UnsupportedException(ErrorDetails details) {
    super(details);
  }

  /** An exception for these details, caused by {@code cause}. */
  public UnsupportedException(ErrorDetails details, Throwable cause) {
    super(details, cause);
  }
}
