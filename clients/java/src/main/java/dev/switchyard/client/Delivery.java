// One message handed to one consumer, and the settlements that end it.

package dev.switchyard.client;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;

/**
 * One message handed to one {@link GroupConsumer}. Settle it with exactly one of {@link #ack()},
 * {@link #nack(Duration)} or {@link #reject()} ({@link #extend()} may come first, as often as
 * needed). Settlements are queued and sent in batches, few Ack calls for many deliveries; each
 * returns a future that completes once the broker has it, or fails with {@link
 * UnknownDeliveryException} if the broker no longer held the delivery (settled already, redelivered
 * after its deadline, or taken back when its consumer's stream ended).
 *
 * <p>A delivery left unsettled goes back to the group when its ack deadline passes or when its
 * consumer closes (see {@link GroupConsumer#close()}), and is redelivered with the next attempt.
 */
public final class Delivery {
  private final Message message;
  private final String id;
  private final int attempt;
  private final Settler settler;

  Delivery(Message message, String id, int attempt, Settler settler) {
    this.message = message;
    this.id = id;
    this.attempt = attempt;
    this.settler = settler;
  }

  /** The message. */
  public Message message() {
    return message;
  }

  /** The id that settles this delivery only; a redelivery of the message gets a new one. */
  public String id() {
    return id;
  }

  /** 1 on the first delivery of the message, 2 on the first redelivery, ... */
  public int attempt() {
    return attempt;
  }

  /** Done: the group forgets the message. */
  public CompletableFuture<Void> ack() {
    return settler.settle(Settler.Action.ACK, id, 0);
  }

  /** Failed: redeliver it at once (ahead of newer messages). */
  public CompletableFuture<Void> nack() {
    return nack(Duration.ZERO);
  }

  /**
   * Failed: redeliver it after delay, without holding back the messages behind it. Once the group's
   * {@code max_deliveries} is reached, it goes to the dead-letter topic instead.
   */
  public CompletableFuture<Void> nack(Duration delay) {
    return settler.settle(Settler.Action.NACK, id, Wire.millis(delay));
  }

  /** Poison: to the group's dead-letter topic now, or dropped if it has none. */
  public CompletableFuture<Void> reject() {
    return settler.settle(Settler.Action.REJECT, id, 0);
  }

  /** Still working: restart the ack deadline. */
  public CompletableFuture<Void> extend() {
    return settler.settle(Settler.Action.EXTEND, id, 0);
  }

  @Override
  public String toString() {
    return "Delivery{id=" + id + ", attempt=" + attempt + ", " + message + "}";
  }
}
