// A server stream of grpc-js as an async iterator: what subscriptions and consumers are built on. It
// opens its call again by itself after the connection drops.

import type { ClientReadableStream } from "@grpc/grpc-js";
import { Status, SwitchyardError, fromGrpcError, isServiceError } from "./errors.js";

/**
 * The waits between attempts to open a dropped stream again: from the first, doubling, never above
 * the last, each with up to as much again of random jitter, so that the clients of a restarted broker
 * do not all come back in step. One attempt may take at most REOPEN_TIMEOUT_MS, so a broker that
 * accepts connections but never answers is retried like one that refuses them.
 */
const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5_000;
const REOPEN_TIMEOUT_MS = 10_000;

/** The statuses after which a stream is opened again: the connection or the broker went away. */
function isTransient(error: Error): boolean {
  return (
    error instanceof SwitchyardError &&
    (error.code === Status.UNAVAILABLE ||
      error.code === Status.UNKNOWN ||
      error.code === Status.INTERNAL)
  );
}

/**
 * Items held for a slow reader before the gRPC stream is paused. Pausing stops grpc-js reading from
 * HTTP/2, so flow control reaches the broker, which then drops (subscriptions, reported as a gap) or
 * holds back (consumers, bounded by prefetch anyway). So memory here stays bounded.
 */
const HIGH_WATER = 256;

interface Reader<Item> {
  resolve(result: IteratorResult<Item, undefined>): void;
  reject(error: Error): void;
}

/**
 * An open server stream. Iterate it with `for await`; leaving the loop (`break`, `return`, a throw)
 * closes it, and so does `close()`. The iteration ends after the last item when the broker ends the
 * stream, or throws the `SwitchyardError` the broker ended it with. Closing it yourself is no error.
 * When the connection drops (a transient status), the stream does not end: the subclass's `dropped`
 * says what, if anything, the iteration yields there, and the call is opened again, with backoff,
 * while the failures stay transient.
 */
export abstract class ServerStream<Item> implements AsyncIterableIterator<Item, undefined> {
  /**
   * Resolves once the stream has ended, whichever way: the broker ended it, or it was closed. It
   * never rejects; the iteration is what reports an error.
   */
  readonly ended: Promise<void>;
  private markEnded!: () => void;
  private readonly items: Item[] = [];
  private readonly readers: Reader<Item>[] = [];
  /** Set once the stream can yield nothing more (the broker ended it, or `close()`). */
  private finished = false;
  /** How the broker ended the stream, reported once after the buffered items. */
  private failure: Error | undefined;
  private closedByUs = false;
  private paused = false;
  /** The opening handshake, until the response headers (or an early end) arrive. */
  private opening: { resolve(): void; reject(error: Error): void } | undefined;
  /** The call being read. */
  private call: ClientReadableStream<unknown>;
  /** Why the call failed transiently; its end then opens it again instead of finishing. */
  private dropping: SwitchyardError | undefined;
  /** Set while the call is being opened again: the old call's later `end` or `close` is stale. */
  private reopening = false;

  protected constructor(private readonly start: () => ClientReadableStream<unknown>) {
    this.ended = new Promise((resolve) => (this.markEnded = resolve));
    this.call = start();
    this.attach(this.call);
  }

  /** Reads `call`'s events, while it is the call being read. */
  private attach(call: ClientReadableStream<unknown>): void {
    const current = () => call === this.call;
    call.on("data", (raw: unknown) => current() && this.onData(raw));
    call.on("error", (error: unknown) => current() && this.onError(error));
    // grpc-js emits `error` as soon as the status arrives, possibly before data it still buffers;
    // `end` comes after that data, so it is what finishes the stream.
    call.on("end", () => current() && this.onEnd());
    call.on("close", () => current() && this.onEnd());
  }

  /** Converts one message of the wire into an item; a throw fails the stream with that error. */
  protected abstract convert(raw: unknown): Item;

  /**
   * What the iteration yields where the connection dropped with `error`, or undefined for nothing.
   * The stream then opens its call again by itself.
   */
  protected abstract dropped(error: SwitchyardError): Item | undefined;

  /**
   * Waits until the broker has answered the call with response headers, which is when it has set the
   * subscription or consumer up, or until it refused the call. Bounded by `timeoutMs`.
   */
  protected opened(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.opening = undefined;
        void this.close();
        reject(
          new SwitchyardError(
            Status.DEADLINE_EXCEEDED,
            `the broker did not answer the stream within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      this.opening = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.call.once("metadata", () => this.settleOpening());
    });
  }

  next(): Promise<IteratorResult<Item, undefined>> {
    const item = this.items.shift();
    if (item !== undefined) {
      if (this.paused && this.items.length < HIGH_WATER / 2) {
        this.paused = false;
        this.call.resume();
      }
      return Promise.resolve({ value: item, done: false });
    }
    if (this.finished) {
      const failure = this.failure;
      this.failure = undefined;
      return failure ? Promise.reject(failure) : Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => this.readers.push({ resolve, reject }));
  }

  /** Called when a `for await` loop is left early: closes the stream. */
  async return(): Promise<IteratorResult<Item, undefined>> {
    await this.close();
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Ends the stream: the broker unsubscribes it, or requeues what a consumer held. Idempotent. */
  async close(): Promise<void> {
    if (this.closedByUs) {
      return;
    }
    this.closedByUs = true;
    // What is buffered is dropped: for a consumer, the broker redelivers it elsewhere anyway.
    this.items.length = 0;
    this.call.cancel();
    this.finish();
  }

  private onData(raw: unknown): void {
    if (this.closedByUs) {
      return;
    }
    let item: Item;
    try {
      item = this.convert(raw);
    } catch (error) {
      this.failure = fromGrpcError(error);
      this.closedByUs = true;
      this.call.cancel();
      this.finish();
      return;
    }
    this.hand(item);
  }

  /** Gives `item` to a waiting reader, or buffers it. */
  private hand(item: Item): void {
    const reader = this.readers.shift();
    if (reader) {
      reader.resolve({ value: item, done: false });
      return;
    }
    this.items.push(item);
    if (!this.paused && this.items.length >= HIGH_WATER) {
      this.paused = true;
      this.call.pause();
    }
  }

  private onError(error: unknown): void {
    if (this.closedByUs && isServiceError(error) && error.code === Status.CANCELLED) {
      return;
    }
    const failure = fromGrpcError(error);
    if (!this.opening && !this.closedByUs && this.failure === undefined && isTransient(failure)) {
      // Opened again once grpc-js has handed over what it still buffers (`end`).
      this.dropping ??= failure as SwitchyardError;
    } else {
      this.failure ??= failure;
    }
    // Let grpc-js hand over what it still buffers, so `end` follows.
    if (this.paused) {
      this.paused = false;
      this.call.resume();
    }
    if (this.opening) {
      this.finish();
    }
  }

  /** The call ended: the stream too, unless the call dropped, when it is opened again. */
  private onEnd(): void {
    if (this.reopening) {
      return;
    }
    const dropping = this.dropping;
    this.dropping = undefined;
    if (dropping === undefined || this.closedByUs || this.finished) {
      this.finish();
      return;
    }
    const marker = this.dropped(dropping);
    if (marker !== undefined) {
      this.hand(marker);
    }
    this.reopening = true;
    void this.reopen().finally(() => (this.reopening = false));
  }

  /**
   * Opens the call again until the broker accepts it, the stream is closed, or the broker refuses it
   * for good (the stream then ends with that error). The first attempt goes at once.
   */
  private async reopen(): Promise<void> {
    let wait = FIRST_BACKOFF_MS;
    while (!this.closedByUs) {
      const call = this.start();
      try {
        await this.accepted(call);
      } catch (error) {
        call.cancel();
        const failure = fromGrpcError(error);
        if (!isTransient(failure)) {
          this.failure ??= failure;
          this.finish();
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, wait + Math.random() * wait));
        wait = Math.min(2 * wait, MAX_BACKOFF_MS / 2);
        continue;
      }
      if (this.closedByUs) {
        call.cancel();
        return;
      }
      this.paused = false;
      this.call = call;
      this.attach(call);
      return;
    }
  }

  /**
   * Resolves when the broker has answered `call` with response headers; rejects with its status if
   * it ended first, or after REOPEN_TIMEOUT_MS.
   */
  private accepted(call: ClientReadableStream<unknown>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new SwitchyardError(
              Status.UNAVAILABLE,
              `the broker did not answer the stream within ${REOPEN_TIMEOUT_MS} ms`,
            ),
          ),
        REOPEN_TIMEOUT_MS,
      );
      call.once("metadata", () => {
        clearTimeout(timer);
        resolve();
      });
      // Until `attach`, an error is this promise's (and a later one is ignored: an EventEmitter
      // without an `error` listener would throw it).
      call.on("error", (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  private finish(): void {
    if (this.finished) {
      return;
    }
    this.finished = true;
    this.markEnded();
    this.settleOpening();
    for (const reader of this.readers.splice(0)) {
      const failure = this.failure;
      this.failure = undefined;
      if (failure) {
        reader.reject(failure);
      } else {
        reader.resolve({ value: undefined, done: true });
      }
    }
  }

  private settleOpening(): void {
    const opening = this.opening;
    this.opening = undefined;
    if (!opening) {
      return;
    }
    if (this.failure) {
      const failure = this.failure;
      this.failure = undefined;
      opening.reject(failure);
    } else {
      opening.resolve();
    }
  }
}
