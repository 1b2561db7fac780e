// Settlements against a real broker: made together, they go out in few Ack calls.

import assert from "node:assert/strict";
import { test } from "node:test";
import { InterceptingCall, type Interceptor } from "@grpc/grpc-js";
import { Client, type Delivery } from "@switchyard/client";
import { brokerForThisFile } from "./support/broker.js";
import { Inbox, unique } from "./support/wait.js";

const broker = brokerForThisFile();

/// Forty acks made in one turn of the event loop go out in far fewer Ack calls, and each learns
/// its own outcome.
test("settlements made together go in few Ack calls", { timeout: 30_000 }, async () => {
  let acks = 0;
  const counting: Interceptor = (options, nextCall) => {
    if (options.method_definition.path.endsWith("/Ack")) {
      acks += 1;
    }
    return new InterceptingCall(nextCall(options));
  };
  const client = new Client(broker.address, { channelOptions: { interceptors: [counting] } });
  try {
    const topic = unique("jobs");
    const consumer = await client.consume({ topic, group: "workers", prefetch: 40 });
    await client.publishBatch(Array.from({ length: 40 }, (_, i) => ({ topic, payload: `j${i}` })));
    const held = await new Inbox(consumer).take(40, 5_000, "forty deliveries");
    assert.deepEqual(await Promise.all(held.map((d) => d.ack())), Array(40).fill(true));
    assert.ok(acks < 40, `40 acks took ${acks} Ack calls`);
    assert.equal(await held[0]?.ack(), false, "settled already");
    await consumer.close();
  } finally {
    await client.close();
  }
});

/// A delivery that is dropped unsettled and collected is nacked: with a 30 s ack deadline it comes
/// back as attempt 2 within seconds. One whose id was read is left to whoever read it.
test("a delivery collected unsettled is nacked", { timeout: 30_000 }, async () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  assert.ok(gc, "the tests run with --expose-gc");
  const topic = unique("jobs");
  const consumer = await broker.client.consume({ topic, group: "workers", ackDeadlineMs: 30_000 });
  const deliveries = consumer[Symbol.asyncIterator]();
  await broker.client.publish({ topic, payload: "forgotten" });
  // In a function of its own, so that nothing here keeps the delivery.
  const firstAttempt = async () => ((await deliveries.next()).value as Delivery).attempt;
  assert.equal(await firstAttempt(), 1);
  const next = deliveries.next();
  let again: IteratorResult<Delivery> | undefined;
  void next.then((result) => (again = result));
  const deadline = Date.now() + 10_000;
  while (again === undefined && Date.now() < deadline) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.ok(again && !again.done, "redelivered after the first was collected");
  assert.equal(again.value.attempt, 2);
  assert.equal(again.value.message.payload.toString(), "forgotten");
  assert.equal(await again.value.ack(), true);
  await consumer.close();
});
