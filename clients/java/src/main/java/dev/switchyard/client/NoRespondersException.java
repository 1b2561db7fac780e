// NO_RESPONDERS: a request found nobody to answer it.

package dev.switchyard.client;

/**
 * A request found no subscriber and no group on its topic ({@code NO_RESPONDERS}; {@link
 * #metadata()} names the {@code topic}). It fails at once, without waiting for its timeout. Its code
 * is {@code UNAVAILABLE}, so it is also an {@link UnavailableException}: catch this one first.
 */
public final class NoRespondersException extends UnavailableException {
  private static final long serialVersionUID = 1L;

  /** An exception for these details. */
  public NoRespondersException(ErrorDetails details) {
    super(details);
  }

  /** An exception for these details, caused by {@code cause}. */
  public NoRespondersException(ErrorDetails details, Throwable cause) {
    super(details, cause);
  }
}
