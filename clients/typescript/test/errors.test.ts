// The broker's status codes as the client reports them, and group administration.

import assert from "node:assert/strict";
import { test } from "node:test";
import { Status, SwitchyardError } from "@switchyard/client";
import { brokerForThisFile } from "./support/broker.js";
import { Inbox, unique } from "./support/wait.js";

const broker = brokerForThisFile(["--max-payload-bytes", "1024"]);

/** A matcher for `assert.rejects`: a SwitchyardError with `code`, naming `field` when given. */
function refused(code: Status, field?: string, details?: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof SwitchyardError, `expected a SwitchyardError, got ${String(error)}`);
    assert.equal(error.code, code, `code of "${error.message}"`);
    if (field !== undefined) {
      assert.equal(error.field, field, `field of "${error.message}"`);
      assert.ok(error.details.startsWith(`${field}: `), `"${error.details}" starts with the field`);
    }
    if (details) {
      assert.match(error.details, details);
    }
    return true;
  };
}

/// Malformed input is INVALID_ARGUMENT, and the message starts with the path of the field.
test("bad input is INVALID_ARGUMENT naming the field", { timeout: 30_000 }, async () => {
  const root = unique("bad");
  const watcher = new Inbox(await broker.client.subscribe(`${root}.>`));
  const client = broker.client;

  await assert.rejects(
    client.publishBatch([{ topic: `${root}.ok` }, { topic: `${root}.*` }]),
    refused(Status.INVALID_ARGUMENT, "messages[1].topic"),
  );
  await assert.rejects(
    client.publish({ topic: "" }),
    refused(Status.INVALID_ARGUMENT, "messages[0].topic"),
  );
  await assert.rejects(
    client.publish({ topic: "a..b" }),
    refused(Status.INVALID_ARGUMENT, "messages[0].topic"),
  );
  await assert.rejects(client.publishBatch([]), refused(Status.INVALID_ARGUMENT, "messages"));
  await assert.rejects(
    client.publish({ topic: `${root}.big`, payload: Buffer.alloc(1025) }),
    refused(Status.INVALID_ARGUMENT, "messages[0].payload", /1025 bytes/),
  );
  await assert.rejects(
    client.publish({ topic: `${root}.h`, headers: { "": "v" } }),
    refused(Status.INVALID_ARGUMENT, "messages[0].headers"),
  );
  await assert.rejects(client.subscribe("orders.>.x"), refused(Status.INVALID_ARGUMENT, "topic"));
  await assert.rejects(
    client.consume({ topic: root, group: "a.b" }),
    refused(Status.INVALID_ARGUMENT, "group"),
  );
  await assert.rejects(
    client.consume({ topic: root, group: "g", standby: true }),
    refused(Status.INVALID_ARGUMENT, "standby"),
  );
  await assert.rejects(
    client.request({ topic: root }, { timeoutMs: 400_000 }),
    refused(Status.INVALID_ARGUMENT, "timeout_ms"),
  );
  await assert.rejects(
    client.request({ topic: `${root}.*` }),
    refused(Status.INVALID_ARGUMENT, "message.topic"),
  );
  await assert.rejects(
    client.admin.declareGroup({ topic: root, group: "" }),
    refused(Status.INVALID_ARGUMENT, "group"),
  );
  // Nothing of a refused batch was routed, not even its valid first message.
  await watcher.nothingFor(200, "a subscriber of the refused batch's topics");
});

/// A settlement the broker refuses fails alone, and leaves the delivery unsettled.
test("a nack delay over the limit is INVALID_ARGUMENT", { timeout: 30_000 }, async () => {
  const topic = unique("settle");
  const consumer = await broker.client.consume({ topic, group: "g" });
  await broker.client.publishBatch([{ topic }, { topic }]);
  const [first, second] = await new Inbox(consumer).take(2);
  const [refusedNack, ack] = await Promise.allSettled([first!.nack(3_600_001), second!.ack()]);
  assert.equal(refusedNack.status, "rejected");
  if (refusedNack.status === "rejected") {
    refused(Status.INVALID_ARGUMENT, "nack_delay_ms")(refusedNack.reason);
  }
  assert.deepEqual(
    ack,
    { status: "fulfilled", value: true },
    "the ack in the same turn went through",
  );
  assert.equal(first!.settled, false);
  assert.equal(await first!.ack(), true, "the refused delivery can still be settled");
  await consumer.close();
});

/// Values the wire cannot carry are refused in the client, before any call.
test("out-of-range numbers are a RangeError", { timeout: 30_000 }, async () => {
  await assert.rejects(broker.client.request({ topic: "a" }, { timeoutMs: -1 }), RangeError);
  await assert.rejects(
    broker.client.consume({ topic: "a", group: "g", prefetch: 1.5 }),
    RangeError,
  );
  await assert.rejects(
    broker.client.admin.declareGroup({ topic: "a", group: "g", maxLength: -3 }),
    RangeError,
  );
  await assert.rejects(
    broker.client.admin.declareGroup({ topic: "a", group: "g", maxBytes: 2 ** 60 }),
    RangeError,
  );
});

/// A group with maxBytes refuses a batch past it, and reports what it holds in `bytes`.
test("a group past its maxBytes is RESOURCE_EXHAUSTED", { timeout: 30_000 }, async () => {
  const topic = unique("bytes");
  const group = unique("capped");
  await broker.client.admin.declareGroup({ topic, group, maxBytes: 2_500 });
  const payload = "x".repeat(512);
  await broker.client.publishBatch([
    { topic, payload },
    { topic, payload },
    { topic, payload },
  ]);
  await assert.rejects(
    broker.client.publishBatch([{ topic, payload }]),
    refused(Status.RESOURCE_EXHAUSTED, undefined, /max_bytes/),
  );
  const info = (await broker.client.admin.listGroups()).find((g) => g.group === group);
  assert.ok(info !== undefined && info.bytes > 3 * 512 && info.bytes <= 2_500, `${info?.bytes}`);
  await broker.client.admin.deleteGroup(topic, group);
});

/// A publish that would overfill a group is RESOURCE_EXHAUSTED, and routes nothing of its batch.
test("a full group is RESOURCE_EXHAUSTED and nothing is routed", { timeout: 30_000 }, async () => {
  const topic = unique("full");
  const group = unique("small");
  const other = unique("elsewhere");
  await broker.client.admin.declareGroup({ topic, group, maxLength: 2 });
  const watcher = new Inbox(await broker.client.subscribe(other));
  await broker.client.publishBatch([{ topic }, { topic }]);

  await assert.rejects(
    broker.client.publishBatch([{ topic: other, payload: "innocent" }, { topic }]),
    refused(
      Status.RESOURCE_EXHAUSTED,
      undefined,
      new RegExp(`^messages\\[1\\]: group ${group} is full \\(2 messages\\)`),
    ),
  );
  await watcher.nothingFor(200, "a subscriber of the refused batch's other message");
  const info = (await broker.client.admin.listGroups()).find((g) => g.group === group);
  assert.equal(info?.ready, 2, "the group holds what it held before");
  await broker.client.admin.deleteGroup(topic, group);
});

/// Redeclaring with other settings is FAILED_PRECONDITION naming the setting.
test("a conflicting declaration is FAILED_PRECONDITION", { timeout: 30_000 }, async () => {
  const topic = unique("conf");
  const group = unique("g");
  await broker.client.admin.declareGroup({ topic, group, maxDeliveries: 3 });
  await broker.client.admin.declareGroup({ topic, group, maxDeliveries: 3 });
  await assert.rejects(
    broker.client.admin.declareGroup({ topic, group, maxDeliveries: 4 }),
    refused(Status.FAILED_PRECONDITION, undefined, /max_deliveries/),
  );
  await assert.rejects(
    broker.client.admin.declareGroup({ topic, group, maxDeliveries: 3, mode: "exclusive" }),
    refused(Status.FAILED_PRECONDITION, undefined, /mode/),
  );
  await broker.client.admin.deleteGroup(topic, group);
});

/// Deleting an unknown group is NOT_FOUND; deleting a group ends its consumers with NOT_FOUND.
test("NOT_FOUND for unknown and deleted groups", { timeout: 30_000 }, async () => {
  await assert.rejects(
    broker.client.admin.deleteGroup(unique("nowhere"), "nobody"),
    refused(Status.NOT_FOUND, undefined, /^group nobody\b.*not found/),
  );
  const topic = unique("doomed");
  const group = unique("g");
  const consumer = await broker.client.consume({ topic, group });
  await broker.client.admin.deleteGroup(topic, group);
  await assert.rejects(
    new Inbox(consumer).end(5_000, "the consumer to end"),
    refused(Status.NOT_FOUND, undefined, /was deleted/),
  );
});

/// Declare, list with settings and counters, delete.
test("admin declares, lists and deletes groups", { timeout: 30_000 }, async () => {
  const topic = unique("adm");
  const group = unique("g");
  await broker.client.admin.declareGroup({
    topic: `${topic}.*`,
    group,
    mode: "exclusive",
    maxLength: 10,
    ackDeadlineMs: 1_000,
    maxDeliveries: 2,
    deadLetterTopic: `${topic}dead`,
  });
  await broker.client.publishBatch([
    { topic: `${topic}.a` },
    { topic: `${topic}.b` },
    { topic: `${topic}.c.d` },
  ]);
  const listed = (await broker.client.admin.listGroups()).find((g) => g.group === group);
  assert.deepEqual(listed, {
    topic: `${topic}.*`,
    group,
    mode: "exclusive",
    ready: 2,
    inFlight: 0,
    consumers: 0,
    delivered: 0,
    acked: 0,
    redelivered: 0,
    deadLettered: 0,
    // Two messages with empty payloads, charged 128 bytes each (docs/reliability.md, Overload and limits).
    bytes: 256,
  });
  await broker.client.admin.deleteGroup(`${topic}.*`, group);
  const after = await broker.client.admin.listGroups();
  assert.ok(!after.some((g) => g.group === group), "the group is gone");
});
