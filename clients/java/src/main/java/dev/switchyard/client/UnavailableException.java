// UNAVAILABLE: the broker cannot be reached, is shutting down, or its storage failed.

package dev.switchyard.client;

/**
 * The broker cannot be reached, is shutting down ({@code SHUTTING_DOWN}), its log failed ({@code
 * STORAGE_FAILED}) or its NATS cluster does not answer ({@code CLUSTER_UNAVAILABLE}). Trying again
 * later may work; {@link #retryAfter()} says when, if the broker said.
 */
public class UnavailableException extends SwitchyardException {
  private static final long serialVersionUID = 1L;

  /** An exception for these details. */
  public UnavailableException(ErrorDetails details) {
    super(details);
  }

  /** An exception for these details, caused by {@code cause}. */
  public UnavailableException(ErrorDetails details, Throwable cause) {
    super(details, cause);
  }
}
