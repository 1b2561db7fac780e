// A subscription to a topic pattern: its events, read as an EventStream.

package dev.switchyard.client;

import switchyard.v1.BrokerGrpc;
import switchyard.v1.BrokerOuterClass.SubscribeRequest;
import switchyard.v1.BrokerOuterClass.SubscribeResponse;

/**
 * The events of one subscription, made by {@link SwitchyardClient#subscribe(String)}: every message
 * published to a matching topic after the subscription was made, in each publisher's order, with a
 * {@link SubscriptionEvent.Gap} where the broker had to drop messages for this slow reader, and a
 * {@link SubscriptionEvent.Disconnected} where the connection dropped (it then resubscribes by
 * itself, with backoff; what is published meanwhile is not seen). Closing it unsubscribes.
 *
 * <pre>{@code
 * try (Subscription orders = client.subscribe("orders.>")) {
 *   for (SubscriptionEvent event : orders) {
 *     if (event instanceof SubscriptionEvent.Received r) {
 *       System.out.println(r.message().topic() + " " + r.message().payloadUtf8());
 *     }
 *   }
 * }
 * }</pre>
 */
public final class Subscription extends EventStream<SubscriptionEvent> {
  private final ResumableStream<SubscribeRequest, SubscribeResponse> stream;

  Subscription(SwitchyardClient client, String pattern) {
    this.stream =
        ResumableStream.open(
            client,
            BrokerGrpc.getSubscribeMethod(),
            SubscribeRequest.newBuilder().setTopic(pattern).build(),
            "subscription",
            dropped -> {});
  }

  @Override
  SubscriptionEvent take(long timeoutNanos) throws InterruptedException {
    return stream.take(timeoutNanos, Subscription::event);
  }

  private static SubscriptionEvent event(ResumableStream.Item<SubscribeResponse> item) {
    if (item instanceof ResumableStream.Dropped<SubscribeResponse> dropped) {
      return new SubscriptionEvent.Disconnected(dropped.cause());
    }
    SubscribeResponse response = ((ResumableStream.Received<SubscribeResponse>) item).value();
    if (response.hasGap()) {
      return new SubscriptionEvent.Gap(response.getGap().getMissed());
    }
    return new SubscriptionEvent.Received(Wire.fromPb(response.getMessage()));
  }

  /** Unsubscribes; reads then throw {@link ClosedException}. Idempotent. */
  @Override
  public void close() {
    stream.close();
  }
}
