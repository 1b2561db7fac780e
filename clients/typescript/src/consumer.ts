// Queue-group consumers: a stream of deliveries, each settled through the Ack RPC, batched per tick.

import type { BrokerClient, Delivery as PbDelivery } from "./gen/switchyard/v1/broker.js";
import { AckRequest } from "./gen/switchyard/v1/broker.js";
import { SwitchyardError, Status } from "./errors.js";
import { ServerStream } from "./stream.js";
import { type ConsumeMode, type Message, fromPbMessage, toUint32Millis } from "./wire.js";
import { unary } from "./unary.js";

/** What `Client.consume` joins, and how. */
export interface ConsumeOptions {
  /** A topic pattern: `*` is one token, a trailing `>` one or more. */
  topic: string;
  /** The group's name: one token. The group is created with the broker's defaults if it is new. */
  group: string;
  /** `"shared"` (default): competing consumers. `"exclusive"`: one active consumer, in order. */
  mode?: ConsumeMode;
  /** Most unsettled deliveries this consumer holds at once. 0 or unset: the broker's default. */
  prefetch?: number;
  /** Ack deadline of this consumer's deliveries, in ms. Unset: the group's. */
  ackDeadlineMs?: number;
  /** Exclusive groups only: wait and take over when the active consumer leaves, instead of failing. */
  standby?: boolean;
  /**
   * Called with the error (an `UNAVAILABLE` usually) each time the connection drops, before the
   * consumer joins its group again by itself, with backoff. The iteration yields nothing for it and
   * does not end: what the consumer held goes back to the group, and settling it returns `false`.
   */
  onDisconnect?: (error: SwitchyardError) => void;
}

/**
 * A member of a queue group. Iterate it with `for await` to get `Delivery`s, and settle each one.
 * Leaving the loop or `close()` leaves the group; the broker redelivers what was not settled.
 * The iteration throws the broker's error when it ends the consumer for good (e.g. `NOT_FOUND` when
 * the group is deleted); a dropped connection does not end it (see `ConsumeOptions.onDisconnect`).
 */
export class Consumer extends ServerStream<Delivery> {
  private constructor(
    start: () => ReturnType<BrokerClient["consume"]>,
    private readonly settler: Settler,
    private readonly onDisconnect: ((error: SwitchyardError) => void) | undefined,
  ) {
    super(start);
  }

  /** @internal Use `Client.consume`. */
  static async open(
    start: () => ReturnType<BrokerClient["consume"]>,
    settler: Settler,
    timeoutMs: number,
    onDisconnect?: (error: SwitchyardError) => void,
  ): Promise<Consumer> {
    const consumer = new Consumer(start, settler, onDisconnect);
    await consumer.opened(timeoutMs);
    return consumer;
  }

  protected dropped(error: SwitchyardError): undefined {
    this.onDisconnect?.(error);
    return undefined;
  }

  /**
   * Sends the settlements made so far, then leaves the group. Settling first means an ack made just
   * before `close()` is not overtaken by the broker requeueing that delivery.
   */
  override async close(): Promise<void> {
    await this.settler.idle();
    await super.close();
  }

  protected convert(raw: unknown): Delivery {
    const delivery = raw as PbDelivery;
    if (!delivery.message) {
      throw new SwitchyardError(Status.INTERNAL, "the broker sent a delivery without a message");
    }
    return new Delivery(
      fromPbMessage(delivery.message),
      delivery.deliveryId,
      delivery.attempt,
      this.settler,
    );
  }
}

/** What a delivery's finalizer needs, kept apart from the delivery so as not to hold it. */
interface Unsettled {
  readonly id: string;
  readonly settler: Settler;
  /** Settled, or its id handed to the caller: the finalizer leaves it alone. */
  done: boolean;
}

/**
 * Nacks a delivery collected unsettled: JavaScript says so only when the collector runs, so this
 * is sooner than the ack deadline, not at once. A failure (the broker gone) is the deadline's to
 * mend.
 */
const forgotten = new FinalizationRegistry<Unsettled>((state) => {
  if (!state.done) {
    state.settler.settle("nack", state.id, 0).catch(() => {});
  }
});

/**
 * One message handed to this consumer. Settle it with one of `ack`, `nack` or `reject`; `extend`
 * buys time. Each returns whether the broker still had the delivery outstanding: `false` means it
 * had already been settled, had expired and gone back to the group, or its consumer had left.
 * A delivery never settled goes back to the group at its ack deadline, or when its consumer leaves;
 * one garbage-collected unsettled is nacked when the collector finds it, unless its `id` was read
 * (to settle it by id elsewhere).
 */
export class Delivery {
  #settled = false;
  readonly #settler: Settler;
  readonly #state: Unsettled;

  /** @internal Made by `Consumer`. */
  constructor(
    readonly message: Message,
    id: string,
    /** 1 on the first delivery, 2 on the first redelivery, and so on. */
    readonly attempt: number,
    settler: Settler,
  ) {
    this.#settler = settler;
    this.#state = { id, settler, done: false };
    forgotten.register(this, this.#state);
  }

  /**
   * The id that settles this delivery; a redelivery of the same message has a new one. Whoever
   * reads it settles the delivery: it is not nacked when collected.
   */
  get id(): string {
    this.#state.done = true;
    return this.#state.id;
  }

  /** Whether `ack`, `nack` or `reject` was called (and its call has not failed). */
  get settled(): boolean {
    return this.#settled;
  }

  /** Done: the broker removes the message. */
  ack(): Promise<boolean> {
    return this.finish("ack", 0);
  }

  /** Failed: the broker redelivers the message, after `delayMs` (default at once). */
  nack(delayMs = 0): Promise<boolean> {
    return this.finish("nack", delayMs);
  }

  /** Poison: the broker sends the message to the group's dead-letter topic, or drops it. */
  reject(): Promise<boolean> {
    return this.finish("reject", 0);
  }

  /** Still working: the broker restarts this delivery's ack deadline. */
  extend(): Promise<boolean> {
    if (this.#settled) {
      return Promise.resolve(false);
    }
    return this.#settler.settle("extend", this.#state.id, 0);
  }

  private finish(action: Exclude<Action, "extend">, delayMs: number): Promise<boolean> {
    if (this.#settled) {
      // The broker would answer with the id in `unknown_ids`; no need to ask.
      return Promise.resolve(false);
    }
    let delay: number;
    try {
      delay = toUint32Millis(delayMs, "delayMs");
    } catch (error) {
      return Promise.reject(error);
    }
    // Marked at once, so a second settlement in the same turn is not sent; unmarked if the call
    // fails (the broker refused it, or it never arrived), since then nothing was settled.
    this.#settled = true;
    this.#state.done = true;
    return this.#settler.settle(action, this.#state.id, delay).catch((error: unknown) => {
      this.#settled = false;
      throw error;
    });
  }
}

type Action = "ack" | "nack" | "reject" | "extend";

interface Pending {
  readonly id: string;
  resolve(outstanding: boolean): void;
  reject(error: Error): void;
}

/**
 * Ids per Ack call. The broker's default limit (`--max-ack-ids`) is 10000; staying well under it
 * keeps one call small and works against a broker configured lower.
 */
const MAX_IDS_PER_CALL = 1000;

/**
 * Batches settlements: everything settled in the same event-loop turn goes in one Ack call (one per
 * distinct nack delay, since a call carries one delay), sent on the next turn. Each settlement's
 * promise resolves when that call returns.
 */
export class Settler {
  private plain: { action: Exclude<Action, "nack">; pending: Pending }[] = [];
  private nacks = new Map<number, Pending[]>();
  private scheduled = false;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly broker: BrokerClient,
    private readonly callTimeoutMs: number,
  ) {}

  settle(action: Action, id: string, delayMs: number): Promise<boolean> {
    return new Promise((resolve, reject) => {
      const pending = { id, resolve, reject };
      if (action === "nack") {
        const bucket = this.nacks.get(delayMs) ?? [];
        bucket.push(pending);
        this.nacks.set(delayMs, bucket);
      } else {
        this.plain.push({ action, pending });
      }
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Sends what is queued and waits for every Ack call in flight to return. */
  async idle(): Promise<void> {
    this.flush();
    await Promise.allSettled([...this.inFlight]);
  }

  private flush(): void {
    this.scheduled = false;
    const plain = this.plain;
    const nacks = this.nacks;
    this.plain = [];
    this.nacks = new Map();
    for (let start = 0; start < plain.length; start += MAX_IDS_PER_CALL) {
      const chunk = plain.slice(start, start + MAX_IDS_PER_CALL);
      const ids = (action: Action) =>
        chunk.filter((entry) => entry.action === action).map((entry) => entry.pending.id);
      this.send(
        AckRequest.fromPartial({
          ackIds: ids("ack"),
          rejectIds: ids("reject"),
          extendIds: ids("extend"),
        }),
        chunk.map((entry) => entry.pending),
      );
    }
    for (const [delayMs, bucket] of nacks) {
      for (let start = 0; start < bucket.length; start += MAX_IDS_PER_CALL) {
        const chunk = bucket.slice(start, start + MAX_IDS_PER_CALL);
        this.send(
          AckRequest.fromPartial({ nackIds: chunk.map((p) => p.id), nackDelayMs: delayMs }),
          chunk,
        );
      }
    }
  }

  private send(request: AckRequest, pending: Pending[]): void {
    const call = unary(this.broker.ack.bind(this.broker), request, this.callTimeoutMs).then(
      (response) => {
        const unknown = new Set(response.unknownIds);
        for (const p of pending) {
          p.resolve(!unknown.has(p.id));
        }
      },
      (error: Error) => {
        for (const p of pending) {
          p.reject(error);
        }
      },
    );
    this.inFlight.add(call);
    void call.finally(() => this.inFlight.delete(call));
  }
}
