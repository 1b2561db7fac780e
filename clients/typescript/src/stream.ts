// A server stream of grpc-js as an async iterator: what subscriptions and consumers are built on.

import type { ClientReadableStream } from "@grpc/grpc-js";
import { Status, SwitchyardError, fromGrpcError, isServiceError } from "./errors.js";

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

  protected constructor(private readonly call: ClientReadableStream<unknown>) {
    this.ended = new Promise((resolve) => (this.markEnded = resolve));
    call.on("data", (raw: unknown) => this.onData(raw));
    call.on("error", (error: unknown) => this.onError(error));
    // grpc-js emits `error` as soon as the status arrives, possibly before data it still buffers;
    // `end` comes after that data, so it is what finishes the stream.
    call.on("end", () => this.finish());
    call.on("close", () => this.finish());
  }

  /** Converts one message of the wire into an item; a throw fails the stream with that error. */
  protected abstract convert(raw: unknown): Item;

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
    this.failure ??= fromGrpcError(error);
    // Let grpc-js hand over what it still buffers, so `end` follows.
    if (this.paused) {
      this.paused = false;
      this.call.resume();
    }
    if (this.opening) {
      this.finish();
    }
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
