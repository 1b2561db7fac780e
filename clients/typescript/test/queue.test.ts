// Work queues against a real broker: competing consumers, redelivery, nack delay, deadlines,
// dead letters.

import assert from "node:assert/strict";
import { test } from "node:test";
import type { Delivery, SubscriptionEvent } from "@switchyard/client";
import { brokerForThisFile } from "./support/broker.js";
import { Inbox, eventually, sleep, unique } from "./support/wait.js";

const broker = brokerForThisFile();

const text = (delivery: Delivery) => delivery.message.payload.toString();

/// Each message goes to exactly one consumer of the group; together they get every message once.
test("competing consumers get disjoint sets", { timeout: 30_000 }, async () => {
  const topic = unique("jobs");
  const group = unique("workers");
  const consumers = await Promise.all(
    [1, 2, 3].map(() => broker.client.consume({ topic, group, prefetch: 5 })),
  );
  const inboxes = consumers.map((c) => new Inbox(c));

  // 15 messages, 3 consumers holding at most 5 unsettled each: each must get exactly 5.
  const published = await broker.client.publishBatch(
    Array.from({ length: 15 }, (_, i) => ({ topic, payload: `job${i}` })),
  );
  assert.ok(published.every((p) => p.groups === 1 && p.subscribers === 0));
  const held = await Promise.all(inboxes.map((inbox) => inbox.take(5, 5_000, "a full prefetch")));
  const seen = held.flat().map(text);
  assert.equal(new Set(seen).size, 15, "no message went to two consumers");
  assert.deepEqual([...seen].sort(), published.map((_, i) => `job${i}`).sort());
  assert.ok(held.flat().every((d) => d.attempt === 1));
  for (const inbox of inboxes) {
    await inbox.nothingFor(100, "a consumer at its prefetch");
  }

  // Settling frees the slots; the next 30 are again split with no duplicates.
  assert.deepEqual(await Promise.all(held.flat().map((d) => d.ack())), Array(15).fill(true));
  await broker.client.publishBatch(
    Array.from({ length: 30 }, (_, i) => ({ topic, payload: `more${i}` })),
  );
  const more: string[] = [];
  let allIn: () => void = () => {};
  const done = new Promise<undefined>((resolve) => (allIn = () => resolve(undefined)));
  await Promise.all(
    inboxes.map(async (inbox) => {
      for (;;) {
        const delivery = await Promise.race([inbox.next(5_000, "the rest of the jobs"), done]);
        if (!delivery) {
          return;
        }
        more.push(text(delivery));
        await delivery.ack();
        if (more.length === 30) {
          allIn();
        }
      }
    }),
  );
  assert.equal(more.length, 30);
  assert.equal(new Set(more).size, 30, "no duplicates");
  const [info] = (await broker.client.admin.listGroups()).filter((g) => g.group === group);
  assert.equal(info?.acked, 45);
  assert.equal(info?.redelivered, 0);
  await Promise.all(consumers.map((c) => c.close()));
});

/// What a consumer held when its stream was cancelled goes back to the group, in order, as attempt 2;
/// its old delivery ids then settle nothing.
test("a cancelled consumer's deliveries are redelivered", { timeout: 30_000 }, async () => {
  const topic = unique("resize");
  const group = unique("g");
  const first = await broker.client.consume({ topic, group });
  await broker.client.publishBatch([1, 2, 3].map((i) => ({ topic, payload: `img${i}` })));
  const held = await new Inbox(first).take(3);
  assert.deepEqual(held.map(text), ["img1", "img2", "img3"]);
  await first.close();

  const second = await broker.client.consume({ topic, group });
  const again = await new Inbox(second).take(3, 5_000, "redeliveries");
  assert.deepEqual(again.map(text), ["img1", "img2", "img3"]);
  assert.deepEqual(
    again.map((d) => d.attempt),
    [2, 2, 2],
  );
  assert.deepEqual(
    again.map((d) => d.message.id),
    held.map((d) => d.message.id),
  );
  assert.ok(
    again.every((d, i) => d.id !== held[i]?.id),
    "a redelivery has a new delivery id",
  );

  assert.equal(await held[0]!.ack(), false, "the old delivery id is unknown");
  assert.deepEqual(await Promise.all(again.map((d) => d.ack())), [true, true, true]);
  assert.equal(await again[0]!.ack(), false, "a settled delivery settles nothing twice");
  await second.close();
});

/// A nack with a delay holds that message back, not the messages behind it.
test("nack with delay redelivers after the delay", { timeout: 30_000 }, async () => {
  const topic = unique("retry");
  const group = unique("g");
  const consumer = await broker.client.consume({ topic, group });
  const inbox = new Inbox(consumer);
  await broker.client.publish({ topic, payload: "flaky" });
  const first = await inbox.next();
  assert.equal(first.attempt, 1);
  const nackedAt = Date.now();
  assert.equal(await first.nack(1_000), true);

  await broker.client.publish({ topic, payload: "next" });
  const next = await inbox.next(2_000, "the message behind the delayed one");
  assert.equal(text(next), "next");
  assert.ok(Date.now() - nackedAt < 1_000, "the delayed message did not hold up the next one");
  await next.ack();

  const retry = await inbox.next(5_000, "the delayed redelivery");
  assert.equal(text(retry), "flaky");
  assert.equal(retry.attempt, 2);
  assert.ok(
    Date.now() - nackedAt >= 1_000,
    `redelivered after ${Date.now() - nackedAt} ms, before the delay`,
  );
  await retry.ack();
  await consumer.close();
});

/// An unsettled delivery returns at its ack deadline; `extend` restarts that deadline.
test("ack deadline redelivers, extend holds on", { timeout: 30_000 }, async () => {
  const topic = unique("slow");
  const group = unique("g");
  const consumer = await broker.client.consume({ topic, group, ackDeadlineMs: 1_000 });
  const inbox = new Inbox(consumer);
  await broker.client.publishBatch([
    { topic, payload: "forgotten" },
    { topic, payload: "extended" },
  ]);
  const [forgotten, extended] = await inbox.take(2);
  assert.equal(text(forgotten!), "forgotten");

  // Keep "extended" alive for 2.5 deadlines, while "forgotten" expires and comes back.
  const keepAlive = (async () => {
    for (let i = 0; i < 10; i += 1) {
      await sleep(250);
      assert.equal(await extended!.extend(), true, "extend while outstanding");
    }
  })();
  const redelivered = await inbox.next(3_000, "the expired delivery");
  assert.equal(text(redelivered), "forgotten");
  assert.equal(redelivered.attempt, 2);
  assert.equal(await redelivered.ack(), true);
  await keepAlive;
  await inbox.nothingFor(300, "an extended delivery");
  assert.equal(await extended!.ack(), true, "the extended delivery is still this consumer's");
  assert.equal(await forgotten!.ack(), false, "the expired delivery id is unknown");
  await consumer.close();
});

/// After max_deliveries, a message that fails again goes to the dead-letter topic with the headers
/// that say why; a rejected one goes there at once.
test("dead letters after max_deliveries and on reject", { timeout: 30_000 }, async () => {
  const topic = unique("payments");
  const group = unique("g");
  const deadLetterTopic = unique("payments.dead");
  await broker.client.admin.declareGroup({ topic, group, maxDeliveries: 2, deadLetterTopic });
  const dead = new Inbox<SubscriptionEvent>(await broker.client.subscribe(deadLetterTopic));
  const consumer = await broker.client.consume({ topic, group });
  const inbox = new Inbox(consumer);

  const [poison] = await broker.client.publishBatch([
    { topic, payload: "poison", headers: { a: "1" } },
  ]);
  for (const attempt of [1, 2]) {
    const delivery = await inbox.next(5_000, `attempt ${attempt}`);
    assert.equal(delivery.attempt, attempt);
    assert.equal(await delivery.nack(), true);
  }
  const exhausted = await dead.next(5_000, "the exhausted message on the dead-letter topic");
  assert.equal(exhausted.kind, "message");
  if (exhausted.kind === "message") {
    assert.equal(exhausted.message.id, poison?.id, "a dead letter keeps its original id");
    assert.equal(exhausted.message.payload.toString(), "poison");
    assert.equal(exhausted.message.headers.a, "1");
    assert.equal(exhausted.message.headers["x-dead-letter-reason"], "max-deliveries");
    assert.equal(exhausted.message.headers["x-original-topic"], topic);
    assert.equal(exhausted.message.headers["x-dead-letter-group"], group);
    assert.equal(exhausted.message.headers["x-delivery-attempts"], "2");
  }
  await inbox.nothingFor(200, "the group after the message was dead-lettered");

  await broker.client.publish({ topic, payload: "malformed" });
  const malformed = await inbox.next();
  assert.equal(await malformed.reject(), true);
  const rejected = await dead.next(5_000, "the rejected message on the dead-letter topic");
  assert.ok(
    rejected.kind === "message" && rejected.message.headers["x-dead-letter-reason"] === "rejected",
  );
  assert.ok(rejected.kind === "message" && rejected.message.headers["x-delivery-attempts"] === "1");

  await eventually(
    async () => {
      const info = (await broker.client.admin.listGroups()).find((g) => g.group === group);
      return info?.deadLettered === 2 && info.ready === 0 && info.inFlight === 0;
    },
    5_000,
    "the group to count two dead letters",
  );
  await consumer.close();
  await broker.client.admin.deleteGroup(topic, group);
});
