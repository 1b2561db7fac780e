// How streams end: closing the client, and the broker shutting down.

import assert from "node:assert/strict";
import { test } from "node:test";
import { Status, SwitchyardError } from "@switchyard/client";
import { startBroker } from "./support/broker.js";
import { Inbox, sleep, unique, within } from "./support/wait.js";

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

/// When the broker shuts down, open streams do not end: the subscription yields a `disconnected`
/// event and the consumer tells `onDisconnect`, each with UNAVAILABLE (reason SHUTTING_DOWN), and
/// both go on trying to reconnect until closed.
test("a broker shutdown is a disconnect, not an end", { timeout: 30_000 }, async () => {
  const broker = await startBroker();
  try {
    const drops: SwitchyardError[] = [];
    const subscription = new Inbox(await broker.client.subscribe(unique("shutdown")));
    const consumer = await broker.client.consume({
      topic: unique("shutdown"),
      group: "g",
      onDisconnect: (error) => drops.push(error),
    });
    const consumed = new Inbox(consumer);
    await broker.shutdown();
    const event = await subscription.next(10_000, "the disconnected event");
    assert.equal(event.kind, "disconnected");
    assert.ok(event.kind === "disconnected" && event.error.code === Status.UNAVAILABLE);
    assert.equal(event.error.reason, "SHUTTING_DOWN");
    await within(
      (async () => {
        while (drops.length === 0) await sleep(20);
      })(),
      10_000,
      "onDisconnect",
    );
    assert.deepEqual(
      drops.map((error) => [error.code, error.reason]),
      [[Status.UNAVAILABLE, "SHUTTING_DOWN"]],
    );
    await consumed.nothingFor(300, "the consumer, which reconnects rather than ending");
    await consumer.close();
    await consumed.end(5_000, "the consumer to end at close");
  } finally {
    await broker.stop();
  }
});

/// A broker killed and started again on the same address: the subscription yields one
/// `disconnected`, then what is published once it is back, in order; the consumer tells
/// `onDisconnect` once, joins its group again and receives what is published after.
test("streams carry on through a broker restart", { timeout: 60_000 }, async () => {
  const first = await startBroker();
  let second: Awaited<ReturnType<typeof startBroker>> | undefined;
  const client = await first.connect();
  try {
    const topic = unique("restart");
    const drops: SwitchyardError[] = [];
    const subscription = new Inbox(await client.subscribe(topic));
    const consumer = new Inbox(
      await client.consume({
        topic: `${topic}.jobs`,
        group: "g",
        onDisconnect: (e) => drops.push(e),
      }),
    );
    await client.publish({ topic, payload: "before" });
    const before = await subscription.next();
    assert.ok(before.kind === "message" && before.message.payload.toString() === "before");
    await first.kill();
    const dropped = await subscription.next(10_000, "the disconnected event");
    assert.equal(dropped.kind, "disconnected");
    second = await startBroker([], {}, first.address);

    // What is published before the subscription is back is not seen: publish until one arrives.
    let sent = 0;
    let firstSeen: string | undefined;
    while (firstSeen === undefined) {
      try {
        await client.publish({ topic, payload: `after${sent}` });
        sent++;
      } catch {
        // the broker is still starting, or the channel reconnecting
      }
      const item = await subscription.poll(50);
      if (item !== undefined) {
        assert.equal(item.kind, "message");
        firstSeen = item.kind === "message" ? item.message.payload.toString() : "";
      }
    }
    const n = Number(firstSeen.replace("after", ""));
    await client.publish({ topic, payload: "last" });
    const expected = [...Array(sent - n - 1).keys()].map((i) => `after${n + 1 + i}`).concat("last");
    for (const want of expected) {
      const item = await subscription.next(5_000, want);
      assert.ok(item.kind === "message", JSON.stringify(item));
      assert.equal(item.message.payload.toString(), want);
    }

    // The restarted broker is empty: declare the group so it keeps what is published before the
    // consumer has joined again.
    for (;;) {
      try {
        await client.admin.declareGroup({ topic: `${topic}.jobs`, group: "g" });
        break;
      } catch {
        await sleep(50);
      }
    }
    await client.publish({ topic: `${topic}.jobs`, payload: "after" });
    const delivery = await consumer.next(10_000, "a delivery after the restart");
    assert.equal(delivery.message.payload.toString(), "after");
    assert.equal(delivery.attempt, 1);
    assert.ok(await delivery.ack());
    assert.deepEqual(
      drops.map((error) => error.code),
      [Status.UNAVAILABLE],
    );
  } finally {
    await client.close();
    await second?.stop();
    await first.stop();
  }
});
