// Publish/subscribe against a real broker: fan-out, order, wildcards, unsubscribe, gaps.

import assert from "node:assert/strict";
import { test } from "node:test";
import type { Message, SubscriptionEvent } from "@switchyard/client";
import { brokerForThisFile, startBroker } from "./support/broker.js";
import { Inbox, eventually, unique } from "./support/wait.js";

const broker = brokerForThisFile();

function messageOf(event: SubscriptionEvent): Message {
  assert.equal(event.kind, "message", `expected a message, got ${JSON.stringify(event)}`);
  return (event as { message: Message }).message;
}

/// Every subscriber gets every message, in publish order, with what the publisher set.
test("fan-out reaches every subscriber in publish order", { timeout: 30_000 }, async () => {
  const topic = unique("fan.out");
  const subscriptions = await Promise.all([1, 2, 3].map(() => broker.client.subscribe(topic)));
  const inboxes = subscriptions.map((s) => new Inbox(s));

  const first = await broker.client.publish({
    topic,
    payload: "m0",
    headers: { source: "test" },
    key: "k0",
    correlationId: "c0",
  });
  assert.equal(first.subscribers, 3);
  assert.equal(first.groups, 0);
  assert.match(first.id, /^[0-9a-f-]{36}$/);
  const batch = await broker.client.publishBatch(
    Array.from({ length: 49 }, (_, i) => ({ topic, payload: `m${i + 1}` })),
  );
  assert.equal(batch.length, 49);
  assert.ok(batch.every((p) => p.subscribers === 3));

  for (const inbox of inboxes) {
    const messages = (await inbox.take(50, 5_000, "fan-out messages")).map(messageOf);
    assert.deepEqual(
      messages.map((m) => m.payload.toString()),
      Array.from({ length: 50 }, (_, i) => `m${i}`),
    );
    assert.deepEqual(
      messages.map((m) => m.id),
      [first.id, ...batch.map((p) => p.id)],
    );
    const [m0] = messages;
    assert.equal(m0?.topic, topic);
    assert.deepEqual(m0?.headers, { source: "test" });
    assert.equal(m0?.key, "k0");
    assert.equal(m0?.correlationId, "c0");
    assert.ok(m0?.publishedAt instanceof Date);
  }
  await Promise.all(subscriptions.map((s) => s.close()));
});

/// `*` matches exactly one token, a trailing `>` one or more, and nothing else matches.
test("wildcards match whole tokens", { timeout: 30_000 }, async () => {
  const root = unique("wild");
  const patterns = {
    star: `${root}.*.created`,
    tail: `${root}.>`,
    exact: `${root}.eu.created`,
    middle: `${root}.*.*`,
  };
  const inboxes = Object.fromEntries(
    await Promise.all(
      Object.entries(patterns).map(async ([name, pattern]) => [
        name,
        new Inbox(await broker.client.subscribe(pattern)),
      ]),
    ),
  ) as Record<keyof typeof patterns, Inbox<SubscriptionEvent>>;

  const expected: Record<string, (keyof typeof patterns)[]> = {
    [`${root}.eu.created`]: ["star", "tail", "exact", "middle"],
    [`${root}.us.created`]: ["star", "tail", "middle"],
    [`${root}.eu.deleted`]: ["tail", "middle"],
    [`${root}.eu.x.created`]: ["tail"],
    [root]: [],
    [`${root}x.eu.created`]: [],
  };
  for (const [topic, matching] of Object.entries(expected)) {
    const published = await broker.client.publish({ topic, payload: topic });
    assert.equal(published.subscribers, matching.length, `subscribers of ${topic}`);
  }
  for (const [name, inbox] of Object.entries(inboxes)) {
    const want = Object.entries(expected)
      .filter(([, matching]) => matching.includes(name as keyof typeof patterns))
      .map(([topic]) => topic);
    const got = (await inbox.take(want.length, 5_000, `${name} messages`)).map(
      (e) => messageOf(e).topic,
    );
    assert.deepEqual(got, want, `what ${name} (${patterns[name as keyof typeof patterns]}) got`);
    await inbox.nothingFor(200, name);
  }
});

/// Leaving the `for await` loop unsubscribes: the broker stops offering messages to it.
test("breaking out of the loop unsubscribes", { timeout: 30_000 }, async () => {
  const topic = unique("leave.me");
  const subscription = await broker.client.subscribe(topic);
  assert.equal((await broker.client.publish({ topic, payload: "one" })).subscribers, 1);
  for await (const event of subscription) {
    assert.equal(messageOf(event).payload.toString(), "one");
    break;
  }
  await eventually(
    async () => (await broker.client.publish({ topic, payload: "again" })).subscribers === 0,
    5_000,
    "the broker to drop the subscription",
  );
});

/// A subscriber that does not read loses messages to its own buffer, and is told exactly how many.
test("a stalled subscriber gets a gap with the exact count", { timeout: 60_000 }, async () => {
  const slow = await startBroker(["--subscriber-buffer", "4"]);
  try {
    const topic = unique("gap");
    // The stalled subscription gets its own connection, so HTTP/2 flow control held up by it
    // cannot slow the publisher's calls.
    const reader = await slow.connect();
    const subscription = await reader.subscribe(topic);
    const total = 3_000;
    const payload = "x".repeat(1024);
    for (let start = 0; start < total; start += 500) {
      await slow.client.publishBatch(
        Array.from({ length: 500 }, (_, i) => ({
          topic,
          payload,
          headers: { n: String(start + i) },
        })),
      );
    }
    const inbox = new Inbox(subscription);
    let expectedNext = 0;
    let gaps = 0;
    while (expectedNext < total) {
      const event = await inbox.next(5_000, `event for message ${expectedNext}`);
      assert.notEqual(event.kind, "disconnected");
      if (event.kind === "gap") {
        assert.ok(event.missed > 0);
        gaps += 1;
        expectedNext += event.missed;
      } else if (event.kind === "message") {
        assert.equal(
          event.message.headers.n,
          String(expectedNext),
          "messages stay in order around gaps",
        );
        expectedNext += 1;
      }
    }
    assert.equal(expectedNext, total, "delivered plus missed is every message");
    assert.ok(gaps > 0, "the subscriber fell behind, so there was at least one gap");
    await subscription.close();
  } finally {
    await slow.stop();
  }
});
