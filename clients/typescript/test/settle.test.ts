// Settlements against a real broker: made together, they go out in few Ack calls.

import assert from "node:assert/strict";
import { test } from "node:test";
import { InterceptingCall, type Interceptor } from "@grpc/grpc-js";
import { Client } from "@switchyard/client";
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
