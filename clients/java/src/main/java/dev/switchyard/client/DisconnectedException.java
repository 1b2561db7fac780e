// A stream broke under a call: what it carried may or may not have been handled.

package dev.switchyard.client;

/**
 * The stream a call was on broke before its answer came (the connection dropped, or the broker went
 * away): a publish on it may or may not have been routed, a request may or may not have been
 * handled; neither is sent again. Subscriptions announce it as a {@link SubscriptionEvent.Disconnected}
 * event and consumers pass it to {@link ConsumeOptions.Builder#onDisconnect}, then both reconnect by
 * themselves. {@link #status()} is the status the stream ended with.
 */
public final class DisconnectedException extends UnavailableException {
  private static final long serialVersionUID = 1L;

  /** An exception for these details. */
  public DisconnectedException(ErrorDetails details) {
    super(details);
  }

  /** An exception for these details, caused by {@code cause}. */
  public DisconnectedException(ErrorDetails details, Throwable cause) {
    super(details, cause);
  }
}
