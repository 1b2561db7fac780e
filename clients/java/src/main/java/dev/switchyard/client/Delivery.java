// One message handed to one consumer, the settlements that end it, and the nack of one the
// collector finds unsettled.

package dev.switchyard.client;

import java.lang.ref.Reference;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;

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
 * One dropped unsettled (extended or not) is nacked when the garbage collector finds it, so a
 * forgotten settlement costs a redelivery, not a prefetch slot held until the deadline; that is
 * when the collector runs, sooner than the deadline but not at once. Reading its {@link #id()}
 * turns this off: whoever has the id may settle it by id some other way.
 */
public final class Delivery {
  private final Message message;
  private final String id;
  private final int attempt;
  private final Settler settler;
  private final Unsettled state;

  Delivery(Message message, String id, int attempt, Settler settler) {
    this.message = message;
    this.id = id;
    this.attempt = attempt;
    this.settler = settler;
    this.state = new Unsettled(id, settler);
    ClientThreads.CLEANER.register(this, state);
  }

  /**
   * What the cleaner needs to nack a delivery collected unsettled. Kept apart from the delivery,
   * and static, because a cleaning action that reached the delivery would keep it reachable, and
   * it would never be collected.
   */
  private static final class Unsettled implements Runnable {
    private final String id;
    private final Settler settler;

    /** Settled, or its id handed to the caller: either way the cleaner must leave it alone. */
    final AtomicBoolean handedOver = new AtomicBoolean();

    Unsettled(String id, Settler settler) {
      this.id = id;
      this.settler = settler;
    }

    /** Run once, on the cleaner's thread, after the delivery was collected. */
    @Override
    public void run() {
      if (!handedOver.get()) {
        settler.nackForgotten(id);
      }
    }
  }

  /** The message. */
  public Message message() {
    return message;
  }

  /**
   * The id that settles this delivery only; a redelivery of the message gets a new one. Reading it
   * means this delivery is no longer nacked when collected unsettled: the caller may now settle it
   * by id some other way (another process, a raw Ack call), and the client must not nack it behind
   * that one's back.
   */
  public String id() {
    handOver();
    return id;
  }

  /** 1 on the first delivery of the message, 2 on the first redelivery, ... */
  public int attempt() {
    return attempt;
  }

  /** Done: the group forgets the message. */
  public CompletableFuture<Void> ack() {
    handOver();
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
    handOver();
    return settler.settle(Settler.Action.NACK, id, Wire.millis(delay));
  }

  /** Poison: to the group's dead-letter topic now, or dropped if it has none. */
  public CompletableFuture<Void> reject() {
    handOver();
    return settler.settle(Settler.Action.REJECT, id, 0);
  }

  /**
   * Still working: restart the ack deadline. It settles nothing: an extended delivery dropped
   * unsettled is still nacked when collected.
   */
  public CompletableFuture<Void> extend() {
    return settler.settle(Settler.Action.EXTEND, id, 0);
  }

  /**
   * Tells the cleaner to leave this delivery alone. The fence keeps the delivery reachable until the
   * flag is set: without it, the delivery could be collected (and nacked) while its own ack runs.
   */
  private void handOver() {
    state.handedOver.set(true);
    Reference.reachabilityFence(this);
  }

  @Override
  public String toString() {
    return "Delivery{id=" + id + ", attempt=" + attempt + ", " + message + "}";
  }
}
