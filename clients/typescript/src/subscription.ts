// Fan-out subscriptions: every message published to a matching topic, and a gap where some were lost.

import type { BrokerClient, SubscribeResponse } from "./gen/switchyard/v1/broker.js";
import { Status, SwitchyardError } from "./errors.js";
import { ServerStream } from "./stream.js";
import { type Message, fromPbMessage } from "./wire.js";

/**
 * One event of a subscription: a message, or a gap where `missed` messages were dropped because this
 * subscriber fell more than the broker's `--subscriber-buffer` behind.
 */
export type SubscriptionEvent =
  | { readonly kind: "message"; readonly message: Message }
  | { readonly kind: "gap"; readonly missed: number };

/**
 * An active subscription. Iterate it with `for await`; leaving the loop or `close()` unsubscribes.
 * The broker ends it only with an error (e.g. `UNAVAILABLE` at shutdown), which the iteration throws;
 * it does not reconnect by itself.
 */
export class Subscription extends ServerStream<SubscriptionEvent> {
  /** @internal */
  static async open(
    call: ReturnType<BrokerClient["subscribe"]>,
    timeoutMs: number,
  ): Promise<Subscription> {
    const subscription = new Subscription(call);
    await subscription.opened(timeoutMs);
    return subscription;
  }

  protected convert(raw: unknown): SubscriptionEvent {
    const event = raw as SubscribeResponse;
    if (event.message) {
      return { kind: "message", message: fromPbMessage(event.message) };
    }
    if (event.gap) {
      return { kind: "gap", missed: event.gap.missed };
    }
    throw new SwitchyardError(Status.INTERNAL, "the broker sent an empty subscription event");
  }
}
