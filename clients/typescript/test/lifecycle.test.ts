// How streams end: closing the client, and the broker shutting down.

import assert from "node:assert/strict";
import { test } from "node:test";
import { Status, SwitchyardError } from "@switchyard/client";
import { startBroker } from "./support/broker.js";
import { Inbox, unique, within } from "./support/wait.js";

/// `client.close()` ends its responders, subscriptions and consumers cleanly, after sending pending acks: what
/// was acked stays acked, what was not goes back to the group.
test("closing the client ends its streams cleanly", { timeout: 30_000 }, async () => {
  const broker = await startBroker();
  try {
    const topic = unique("closing");
    const group = unique("g");
    const client = await broker.connect();
    const subscription = new Inbox(await client.subscribe(topic));
    const consumer = new Inbox(await client.consume({ topic, group }));
    const responder = await client.serve(unique("svc.closing"), "responders", () => "ok");
    await broker.client.publishBatch([
      { topic, payload: "acked" },
      { topic, payload: "held" },
    ]);
    await subscription.take(2);
    const [acked] = await consumer.take(2);
    void acked!.ack(); // not awaited: close() must still send it before leaving
    await client.close();
    await subscription.end(5_000, "the subscription to end at close");
    await consumer.end(5_000, "the consumer to end at close");
    await within(responder.done, 5_000, "the responder to stop at close");

    const next = new Inbox(await broker.client.consume({ topic, group }));
    const [again] = await next.take(1, 5_000, "the unacked message");
    assert.equal(again!.message.payload.toString(), "held");
    assert.equal(again!.attempt, 2);
    await next.nothingFor(200, "the group after the held message");
    await again!.ack();
  } finally {
    await broker.stop();
  }
});

/// When the broker shuts down, open streams end with UNAVAILABLE.
test("a broker shutdown ends streams with UNAVAILABLE", { timeout: 30_000 }, async () => {
  const broker = await startBroker();
  try {
    const subscription = new Inbox(await broker.client.subscribe(unique("shutdown")));
    const consumer = new Inbox(
      await broker.client.consume({ topic: unique("shutdown"), group: "g" }),
    );
    const ends = [
      subscription.end(10_000, "the subscription"),
      consumer.end(10_000, "the consumer"),
    ];
    const shutdown = broker.shutdown();
    await Promise.all(
      ends.map((end) =>
        assert.rejects(end, (error: unknown) => {
          assert.ok(error instanceof SwitchyardError, String(error));
          assert.equal(error.code, Status.UNAVAILABLE);
          return true;
        }),
      ),
    );
    await shutdown;
  } finally {
    await broker.stop();
  }
});
