// Bounded waits: every wait in these tests ends, with a message saying what did not happen.

import assert from "node:assert/strict";

/** `promise`, or a rejection naming `what` after `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Reads an async iterator with a bound on each read. A read that timed out stays pending and is
 * reused by the next one, so no item is lost to an abandoned `next()`.
 */
export class Inbox<T> {
  private pending: Promise<IteratorResult<T>> | undefined;

  constructor(private readonly source: AsyncIterator<T>) {}

  /** The next item; fails if none comes within `ms` or the stream ends. */
  async next(ms = 5_000, what = "the next item"): Promise<T> {
    const result = await this.read(ms, what);
    assert.ok(!result.done, `the stream ended while waiting for ${what}`);
    return result.value;
  }

  /** The next item if one comes within `ms`, else undefined (the read stays pending for the next). */
  async poll(ms: number): Promise<T | undefined> {
    this.pending ??= this.source.next();
    const outcome = await Promise.race([this.pending, sleep(ms).then(() => undefined)]);
    if (outcome === undefined) {
      return undefined;
    }
    this.pending = undefined;
    assert.ok(!outcome.done, "the stream ended");
    return outcome.value;
  }

  /** The next `count` items, each within `ms`. */
  async take(count: number, ms = 5_000, what = "items"): Promise<T[]> {
    const items: T[] = [];
    while (items.length < count) {
      items.push(await this.next(ms, `${what} (${items.length} of ${count} so far)`));
    }
    return items;
  }

  /** Asserts that nothing arrives for `ms`. */
  async nothingFor(ms: number, what = "the stream"): Promise<void> {
    this.pending ??= this.source.next();
    const outcome = await Promise.race([
      this.pending.then(() => "item" as const),
      sleep(ms).then(() => "quiet" as const),
    ]);
    assert.equal(outcome, "quiet", `${what} yielded something when nothing was expected`);
  }

  /** The way the stream ends: resolves on a clean end, rejects with its error. Fails on an item. */
  async end(ms = 5_000, what = "the stream to end"): Promise<void> {
    const result = await this.read(ms, what);
    assert.ok(result.done, `expected ${what}, got an item`);
  }

  private async read(ms: number, what: string): Promise<IteratorResult<T>> {
    this.pending ??= this.source.next();
    const result = await within(this.pending, ms, what).catch((error: unknown) => {
      if (error instanceof Error && error.message.startsWith("timed out")) {
        throw error;
      }
      this.pending = undefined;
      throw error;
    });
    this.pending = undefined;
    return result;
  }
}

/** Distinct names per test, so tests sharing a broker never see each other's traffic. */
let counter = 0;
export function unique(prefix: string): string {
  counter += 1;
  return `${prefix}${counter}`;
}

/** Polls `check` until it returns true, for at most `ms`. */
export async function eventually(
  check: () => Promise<boolean>,
  ms: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    }
    await sleep(25);
  }
}
