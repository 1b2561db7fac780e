// A settlement named a delivery the broker no longer holds; nothing happened to it.

package dev.switchyard.client;

/**
 * An ack, nack, reject or extend named a delivery that is not outstanding: already settled,
 * redelivered under a new id after its ack deadline, or taken back when its consumer's stream ended
 * (a reconnect, or a broker restart). Nothing happened to it. It comes from the broker's {@code
 * unknown_ids}, not from a status; its code is {@code NOT_FOUND}.
 */
public final class UnknownDeliveryException extends SwitchyardException {
  private static final long serialVersionUID = 1L;

  /** An exception for these details. */
  public UnknownDeliveryException(ErrorDetails details) {
    super(details);
  }

  /** An exception for these details, caused by {@code cause}. */
  public UnknownDeliveryException(ErrorDetails details, Throwable cause) {
    super(details, cause);
  }

  /** The exception for the delivery with this id. */
  static UnknownDeliveryException of(String deliveryId) {
    return new UnknownDeliveryException(
        ErrorDetails.of(
            io.grpc.Status.NOT_FOUND.withDescription("delivery " + deliveryId + " is not outstanding")));
  }
}
