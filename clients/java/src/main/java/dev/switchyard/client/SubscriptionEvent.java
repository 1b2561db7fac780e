// What a subscription yields: a message, a gap where messages were dropped, or a disconnect.

package dev.switchyard.client;

/**
 * One event of a {@link Subscription}:
 *
 * <ul>
 *   <li>{@link Received}: a message published to a matching topic;
 *   <li>{@link Gap}: the subscriber fell behind and the broker dropped {@code missed} messages for
 *       it here (past its {@code --subscriber-buffer}), counted exactly;
 *   <li>{@link Disconnected}: the connection dropped; the subscription is being reopened by itself,
 *       and what was published meanwhile is not seen.
 * </ul>
 *
 * <pre>{@code
 * for (SubscriptionEvent event : subscription) {
 *   if (event instanceof SubscriptionEvent.Received r) {
 *     handle(r.message());
 *   } else if (event instanceof SubscriptionEvent.Gap g) {
 *     log.warn("missed {}", g.missed());
 *   }
 * }
 * }</pre>
 */
public sealed interface SubscriptionEvent {
  /** A message. */
  record Received(Message message) implements SubscriptionEvent {}

  /** The broker dropped {@code missed} messages for this slow subscriber before the next event. */
  record Gap(long missed) implements SubscriptionEvent {}

  /** The stream dropped with {@code cause}; the subscription resubscribes by itself. */
  record Disconnected(DisconnectedException cause) implements SubscriptionEvent {}
}
