// The fast paths: a Publisher batching messages onto one PublishStream, and a Requester pipelining
// requests on one RequestStream. Both are bidirectional streams of numbered frames, each answered in
// place by its number; what they share is `Frames`. A stream that breaks fails the frames it carried
// (they may or may not have been handled; they are never sent again) and the next frame opens a new
// one.

import type { ClientDuplexStream } from "@grpc/grpc-js";
import type {
  BrokerClient,
  PublishStreamResponse,
  RequestStreamResponse,
  StreamError,
} from "./gen/switchyard/v1/broker.js";
import { PublishStreamRequest, RequestStreamRequest } from "./gen/switchyard/v1/broker.js";
import {
  Status,
  SwitchyardError,
  TimedOutError,
  fromGrpcError,
  fromStreamError,
} from "./errors.js";
import {
  type Message,
  type OutgoingMessage,
  type Published,
  fromPbMessage,
  fromPbPublished,
  toPbMessage,
  toUint32Millis,
} from "./wire.js";

/** What a frame of either stream looks like on the way back. */
interface Answer {
  sequence: number;
  error?: StreamError | undefined;
}

/** One stream of numbered frames and the answers they wait for. */
class Frames<Request extends { sequence: number }, Response extends Answer, Outcome> {
  private next = 0;
  private readonly waiting = new Map<
    number,
    { resolve(outcome: Outcome): void; reject(error: Error): void }
  >();
  /** Set once the stream is broken: every frame after fails with it. */
  failed: Error | undefined;

  constructor(
    private readonly call: ClientDuplexStream<Request, Response>,
    private readonly convert: (response: Response) => Outcome,
  ) {
    call.on("data", (response: Response) => this.answer(response));
    call.on("error", (error: unknown) => this.end(fromGrpcError(error)));
    call.on("end", () =>
      this.end(new SwitchyardError(Status.UNAVAILABLE, "the broker ended the stream")),
    );
  }

  /** Sends `frame` under the next number and resolves with its outcome. */
  send(frame: Request): Promise<Outcome> {
    if (this.failed) {
      return Promise.reject(this.failed);
    }
    this.next += 1;
    frame.sequence = this.next;
    const outcome = new Promise<Outcome>((resolve, reject) =>
      this.waiting.set(frame.sequence, { resolve, reject }),
    );
    // A write that fails ends the call, and `error` fails what waits, this frame too.
    this.call.write(frame);
    return outcome;
  }

  /** Drops the frame numbered `sequence`: its answer, if it comes, is ignored. */
  forget(sequence: number): void {
    this.waiting.delete(sequence);
  }

  get lastSequence(): number {
    return this.next;
  }

  /** Fails what still waits with `error` and cancels the call. */
  end(error: Error): void {
    this.failed ??= error;
    const waiting = [...this.waiting.values()];
    this.waiting.clear();
    for (const frame of waiting) {
      frame.reject(error);
    }
    this.call.cancel();
  }

  private answer(response: Response): void {
    const frame = this.waiting.get(response.sequence);
    if (!frame) {
      return;
    }
    this.waiting.delete(response.sequence);
    if (response.error) {
      frame.reject(fromStreamError(response.error));
      return;
    }
    try {
      frame.resolve(this.convert(response));
    } catch (error) {
      frame.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }
}

/** The error of a publisher or requester used after `close()`. */
export class ClosedError extends SwitchyardError {
  constructor(what: string) {
    super(Status.CANCELLED, `the ${what} is closed`);
  }
}

/** How a `Publisher` batches. */
export interface PublisherOptions {
  /** Most messages in one frame (all or nothing, like `publishBatch`). Default 500. */
  maxBatch?: number;
  /** Most frames awaiting their answer at once. Default 16. */
  maxInFlight?: number;
  /** Most messages waiting to be sent; `publish` waits while it is full. Default 4096. */
  queueSize?: number;
  /**
   * Ask the broker to hold a frame for a full group (up to its `--max-publish-wait`) instead of
   * refusing it with `FullError`.
   */
  waitForRoom?: boolean;
}

/** A message taken by a `Publisher`: `published` settles with its outcome. */
export interface PendingPublish {
  /**
   * Its `Published`, or the refusal of its frame (`InvalidArgumentError`, `FullError`, ...; an
   * `UNAVAILABLE` error when the stream broke before the answer, when it may or may not have been
   * routed).
   */
  readonly published: Promise<Published>;
}

interface Queued {
  message: OutgoingMessage;
  resolve(published: Published): void;
  reject(error: Error): void;
}

/**
 * Publishes through one PublishStream, in the order `publish` is called: what queued up while
 * earlier frames were on their way goes as one frame, with at most `maxInFlight` frames awaiting
 * their answer. `publish` waits while `queueSize` messages wait to be sent: the backpressure of a
 * broker slower than its publishers.
 */
export class Publisher {
  private readonly maxBatch: number;
  private readonly maxInFlight: number;
  private readonly queueSize: number;
  private readonly waitForRoom: boolean;
  private readonly queue: Queued[] = [];
  /** Publishers waiting for room in the queue. */
  private readonly roomWaiters: (() => void)[] = [];
  private inFlight = 0;
  private frames: Frames<PublishStreamRequest, PublishStreamResponse, Published[]> | undefined;
  private readonly outstanding = new Set<Promise<unknown>>();
  private closed = false;

  /** @internal Use `Client.publisher`. */
  constructor(
    private readonly broker: BrokerClient,
    options: PublisherOptions = {},
  ) {
    this.maxBatch = Math.max(1, options.maxBatch ?? 500);
    this.maxInFlight = Math.max(1, options.maxInFlight ?? 16);
    this.queueSize = Math.max(1, options.queueSize ?? 4096);
    this.waitForRoom = options.waitForRoom ?? false;
  }

  /**
   * Queues `message`, waiting while the queue is full (an `AbortSignal` gives up waiting), and
   * resolves with its `PendingPublish` once queued.
   */
  async publish(message: OutgoingMessage, signal?: AbortSignal): Promise<PendingPublish> {
    while (this.queue.length >= this.queueSize) {
      if (this.closed) {
        throw new ClosedError("publisher");
      }
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => reject(signal?.reason ?? new Error("aborted"));
        if (signal?.aborted) {
          onAbort();
          return;
        }
        signal?.addEventListener("abort", onAbort, { once: true });
        this.roomWaiters.push(() => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        });
      });
    }
    if (this.closed) {
      throw new ClosedError("publisher");
    }
    let queued!: Queued;
    const published = new Promise<Published>((resolve, reject) => {
      queued = { message, resolve, reject };
    });
    // Its refusal is the caller's to see through `published`, not an unhandled rejection.
    const settled = published.then(
      () => undefined,
      () => undefined,
    );
    this.outstanding.add(settled);
    void settled.then(() => this.outstanding.delete(settled));
    this.queue.push(queued);
    this.pump();
    return { published };
  }

  /** Resolves once every message published so far has its outcome. */
  async flush(): Promise<void> {
    await Promise.all([...this.outstanding]);
  }

  /** Stops taking messages, sends those queued, waits for their outcomes, closes the stream. */
  async close(): Promise<void> {
    this.closed = true;
    for (const wake of this.roomWaiters.splice(0)) {
      wake();
    }
    await this.flush();
    this.frames?.end(new ClosedError("publisher"));
    this.frames = undefined;
  }

  /** Sends frames while there are messages and room in flight. */
  private pump(): void {
    while (this.queue.length > 0 && this.inFlight < this.maxInFlight) {
      const batch = this.queue.splice(0, this.maxBatch);
      for (const wake of this.roomWaiters.splice(0, batch.length)) {
        wake();
      }
      this.inFlight += 1;
      if (!this.frames || this.frames.failed) {
        this.frames = new Frames(this.broker.publishStream(), (response) =>
          (response.published?.published ?? []).map(fromPbPublished),
        );
      }
      const frame = PublishStreamRequest.fromPartial({
        messages: batch.map((queued) => toPbMessage(queued.message)),
        waitForRoom: this.waitForRoom,
      });
      this.frames.send(frame).then(
        (published) => this.settle(batch, published, undefined),
        (error: Error) => this.settle(batch, [], error),
      );
    }
  }

  private settle(batch: Queued[], published: Published[], error: Error | undefined): void {
    this.inFlight -= 1;
    if (!error && published.length !== batch.length) {
      error = new SwitchyardError(
        Status.INTERNAL,
        `the broker answered for ${published.length} of ${batch.length} messages`,
      );
    }
    batch.forEach((queued, index) => {
      const outcome = published[index];
      if (error || !outcome) {
        queued.reject(error ?? new SwitchyardError(Status.INTERNAL, "no answer"));
      } else {
        queued.resolve(outcome);
      }
    });
    this.pump();
  }
}

/** How long past the broker's own request timeout a request waits for its answer here. */
const REQUEST_GRACE_MS = 1_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;

/**
 * Sends requests on one RequestStream, as many at once as its callers make: the cheaper way to make
 * many requests. `request` is `Client.request` on it, with the same timeout and errors
 * (`NoRespondersError` at once, `TimedOutError`).
 */
export class Requester {
  private frames: Frames<RequestStreamRequest, RequestStreamResponse, Message> | undefined;
  private closed = false;

  /** @internal Use `Client.requester`. */
  constructor(private readonly broker: BrokerClient) {}

  async request(message: OutgoingMessage, options: { timeoutMs?: number } = {}): Promise<Message> {
    if (this.closed) {
      throw new ClosedError("requester");
    }
    const timeoutMs = Math.max(
      toUint32Millis(options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS, "timeoutMs"),
      1,
    );
    if (!this.frames || this.frames.failed) {
      this.frames = new Frames(this.broker.requestStream(), (response) => {
        if (!response.reply) {
          throw new SwitchyardError(Status.INTERNAL, "the broker sent an empty reply");
        }
        return fromPbMessage(response.reply);
      });
    }
    const frames = this.frames;
    const answer = frames.send(
      RequestStreamRequest.fromPartial({ message: toPbMessage(message), timeoutMs }),
    );
    const sequence = frames.lastSequence;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new TimedOutError(
              Status.DEADLINE_EXCEEDED,
              `no answer within ${timeoutMs + REQUEST_GRACE_MS} ms`,
              { timeoutMs },
            ),
          ),
        timeoutMs + REQUEST_GRACE_MS,
      );
    });
    try {
      return await Promise.race([answer, late]);
    } finally {
      clearTimeout(timer);
      frames.forget(sequence);
    }
  }

  /** Fails the requests still waiting and closes the stream. */
  close(): void {
    this.closed = true;
    this.frames?.end(new ClosedError("requester"));
    this.frames = undefined;
  }
}
