// The responder side of request/reply: consume requests from a group, run the handler, publish the
// reply to the request's `replyTo` with its `correlationId`, then ack.

import type { Consumer, Delivery } from "./consumer.js";
import type { Message, OutgoingMessage, Payload, Published } from "./wire.js";

/** What a handler answers: a payload, or a payload with headers. */
export type Reply = Payload | { payload?: Payload; headers?: Record<string, string> };

/**
 * Answers one request; returning nothing sends an empty reply. A throw (or rejection) rejects the
 * request and sends no reply.
 */
export type RequestHandler = (request: Message) => Reply | undefined | Promise<Reply | undefined>;

/** Options of `Client.serve`. */
export interface ServeOptions {
  /**
   * Requests handled at once; it is the consumer's prefetch, so the broker never hands this responder
   * more. Default 16.
   */
  concurrency?: number;
  /** How long a handler may take before the broker gives the request to another responder. */
  ackDeadlineMs?: number;
  /**
   * Told about a handler that failed (the request is rejected, to the group's dead-letter topic if it
   * has one, and the requester times out) or a reply or settlement that could not be sent. Default:
   * `process.emitWarning`.
   */
  onError?: (error: unknown, request: Message) => void;
}

/**
 * A running responder. `close()` stops taking requests, lets the ones in hand finish (reply and ack),
 * then leaves the group. `done` settles when the responder stops: it resolves after `close()`, and
 * rejects with the broker's error if the broker ends the consumer (e.g. `NOT_FOUND`: group deleted).
 */
export class Responder {
  /** Settles when the responder has stopped; see the class comment. */
  readonly done: Promise<void>;
  readonly #consumer: Consumer;
  readonly #active = new Set<Promise<void>>();
  #stopping = false;

  /** @internal Use `Client.serve`. */
  constructor(
    consumer: Consumer,
    handler: RequestHandler,
    publish: (message: OutgoingMessage) => Promise<Published>,
    onError: (error: unknown, request: Message) => void,
  ) {
    this.#consumer = consumer;
    this.done = this.#run(handler, publish, onError);
    // `done` may never be awaited; its rejection must not crash the process as unhandled.
    this.done.catch(() => {});
  }

  /** Stops taking requests, finishes those in hand, and leaves the group. */
  async close(): Promise<void> {
    this.#stopping = true;
    await Promise.allSettled([...this.#active]);
    await this.#consumer.close();
    await this.done.catch(() => {});
  }

  async #run(
    handler: RequestHandler,
    publish: (message: OutgoingMessage) => Promise<Published>,
    onError: (error: unknown, request: Message) => void,
  ): Promise<void> {
    try {
      for await (const delivery of this.#consumer) {
        if (this.#stopping) {
          // Left unsettled: the broker gives it to another responder once this one has left.
          continue;
        }
        const task = respond(delivery, handler, publish, onError);
        this.#active.add(task);
        void task.finally(() => this.#active.delete(task));
      }
    } finally {
      await Promise.allSettled([...this.#active]);
    }
  }
}

/** Handles one request to the end; never rejects (failures go to `onError`). */
async function respond(
  delivery: Delivery,
  handler: RequestHandler,
  publish: (message: OutgoingMessage) => Promise<Published>,
  onError: (error: unknown, request: Message) => void,
): Promise<void> {
  const request = delivery.message;
  try {
    let reply: Reply | undefined;
    try {
      reply = await handler(request);
    } catch (error) {
      onError(error, request);
      await delivery.reject();
      return;
    }
    if (request.replyTo === "") {
      // Published to the topic directly rather than through Request: nobody waits for an answer.
      await delivery.ack();
      return;
    }
    try {
      await publish({
        ...replyParts(reply),
        topic: request.replyTo,
        correlationId: request.correlationId,
      });
    } catch (error) {
      onError(error, request);
      await delivery.nack();
      return;
    }
    await delivery.ack();
  } catch (error) {
    // A settlement that failed: the broker redelivers the request after its ack deadline.
    onError(error, request);
  }
}

function replyParts(reply: Reply | undefined): Pick<OutgoingMessage, "payload" | "headers"> {
  if (reply === undefined || reply === null) {
    return {};
  }
  if (typeof reply === "string" || reply instanceof Uint8Array) {
    return { payload: reply };
  }
  return { payload: reply.payload, headers: reply.headers };
}
