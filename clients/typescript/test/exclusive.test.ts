// Exclusive groups against a real broker: one active consumer in order, refusals, standby takeover.

import assert from "node:assert/strict";
import { test } from "node:test";
import { type Delivery, Status, SwitchyardError } from "@switchyard/client";
import { brokerForThisFile } from "./support/broker.js";
import { Inbox, unique } from "./support/wait.js";

const broker = brokerForThisFile();

const text = (delivery: Delivery) => delivery.message.payload.toString();

/// One active consumer gets everything in order; a second is refused; a standby takes over what the
/// first had not acked, then carries on in order.
test("exclusive consumer with a standby", { timeout: 30_000 }, async () => {
  const topic = unique("bids");
  const group = unique("auction");
  const active = await broker.client.consume({ topic, group, mode: "exclusive" });

  await assert.rejects(
    broker.client.consume({ topic, group, mode: "exclusive" }),
    (error: unknown) => {
      assert.ok(error instanceof SwitchyardError);
      assert.equal(error.code, Status.FAILED_PRECONDITION);
      assert.match(
        error.details,
        new RegExp(`group ${group} is exclusive and already has an active consumer`),
      );
      return true;
    },
  );
  await assert.rejects(broker.client.consume({ topic, group, mode: "shared" }), {
    code: Status.FAILED_PRECONDITION,
  });
  const standby = await broker.client.consume({ topic, group, mode: "exclusive", standby: true });
  const standbyInbox = new Inbox(standby);

  await broker.client.publishBatch(
    Array.from({ length: 5 }, (_, i) => ({ topic, payload: `bid${i}` })),
  );
  const activeInbox = new Inbox(active);
  const got = await activeInbox.take(5);
  assert.deepEqual(got.map(text), ["bid0", "bid1", "bid2", "bid3", "bid4"]);
  await standbyInbox.nothingFor(200, "the standby while the active consumer runs");
  const [info] = (await broker.client.admin.listGroups()).filter((g) => g.group === group);
  assert.equal(info?.mode, "exclusive");
  assert.equal(info?.consumers, 2, "the standby counts as attached");

  assert.deepEqual(await Promise.all(got.slice(0, 2).map((d) => d.ack())), [true, true]);
  await active.close();

  const takenOver = await standbyInbox.take(3, 5_000, "the standby's takeover");
  assert.deepEqual(takenOver.map(text), ["bid2", "bid3", "bid4"]);
  assert.deepEqual(
    takenOver.map((d) => d.attempt),
    [2, 2, 2],
  );
  await broker.client.publishBatch([
    { topic, payload: "bid5" },
    { topic, payload: "bid6" },
  ]);
  const later = await standbyInbox.take(2);
  assert.deepEqual(later.map(text), ["bid5", "bid6"]);
  assert.ok(later.every((d) => d.attempt === 1));
  await Promise.all([...takenOver, ...later].map((d) => d.ack()));

  // With the standby now active, a newcomer without standby is refused again.
  await assert.rejects(broker.client.consume({ topic, group, mode: "exclusive" }), {
    code: Status.FAILED_PRECONDITION,
  });
  await standby.close();
});

/// In an exclusive group a nack with a delay holds back that message only; order holds otherwise.
test("exclusive order with a delayed nack", { timeout: 30_000 }, async () => {
  const topic = unique("ledger");
  const group = unique("single");
  const consumer = await broker.client.consume({ topic, group, mode: "exclusive" });
  const inbox = new Inbox(consumer);
  await broker.client.publishBatch(["a", "b", "c"].map((payload) => ({ topic, payload })));
  const [a, b, c] = await inbox.take(3);
  assert.deepEqual(
    [a, b, c].map((d) => text(d!)),
    ["a", "b", "c"],
  );
  await a!.nack(300);
  await b!.ack();
  await c!.ack();
  const again = await inbox.next(3_000, "the delayed message");
  assert.equal(text(again), "a");
  assert.equal(again.attempt, 2);
  await again.ack();
  await consumer.close();
});
