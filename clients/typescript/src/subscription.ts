// Fan-out subscriptions: every message published to a matching topic, and a gap where some were lost.

import type { BrokerClient, SubscribeResponse } from "./gen/switchyard/v1/broker.js";
import { Status, SwitchyardError } from "./errors.js";
import { ServerStream } from "./stream.js";
import { type Message, fromPbMessage } from "./wire.js";

/**
 * One event of a subscription: a message; a gap where `missed` messages were dropped because this
 * subscriber fell more than the broker's `--subscriber-buffer` behind; or where the connection
 * dropped (`error` says why, an `UNAVAILABLE` usually): the subscription subscribes again by itself,
 * and what is published until it is back is not seen.
 */
export type SubscriptionEvent =
  | { readonly kind: "message"; readonly message: Message }
  | { readonly kind: "gap"; readonly missed: number }
  | { readonly kind: "disconnected"; readonly error: SwitchyardError };

/**
 * An active subscription. Iterate it with `for await`; leaving the loop or `close()` unsubscribes.
 * A dropped connection does not end it: it yields a `disconnected` event and subscribes again, with
 * backoff. The broker ends it only by refusing it for good, which the iteration throws.
 */
export class Subscription extends ServerStream<SubscriptionEvent> {
  /** @internal */
  static async open(
    start: () => ReturnType<BrokerClient["subscribe"]>,
    timeoutMs: number,
  ): Promise<Subscription> {
    const subscription = new Subscription(start);
    await subscription.opened(timeoutMs);
    return subscription;
  }

  protected dropped(error: SwitchyardError): SubscriptionEvent {
    return { kind: "disconnected", error };
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
