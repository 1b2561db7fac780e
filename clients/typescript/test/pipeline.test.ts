// The fast paths: the Publisher (order and an outcome each, a refused frame, backpressure, waiting
// for room) and the Requester (a burst at once, refusals by reason, a broker restart).

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  ClosedError,
  FullError,
  InvalidArgumentError,
  NoRespondersError,
  Status,
  SwitchyardError,
  TimedOutError,
} from "@switchyard/client";
import { startBroker } from "./support/broker.js";
import { Inbox, sleep, unique, within } from "./support/wait.js";

/// Messages published through a Publisher are routed in order, each with its own Published.
test("a publisher routes in order with an outcome each", { timeout: 30_000 }, async () => {
  const broker = await startBroker();
  try {
    const topic = unique("pub.order");
    const subscription = new Inbox(await broker.client.subscribe(topic));
    const publisher = broker.client.publisher();
    const pendings = [];
    for (let i = 0; i < 1000; i++) {
      pendings.push(await publisher.publish({ topic, payload: String(i) }));
    }
    await within(publisher.flush(), 10_000, "the flush");
    const published = await Promise.all(pendings.map((pending) => pending.published));
    assert.ok(published.every((p) => p.id !== "" && p.subscribers === 1));
    const received = await subscription.take(1000, 5_000, "the messages");
    received.forEach((event, i) => {
      assert.ok(event.kind === "message", JSON.stringify(event));
      assert.equal(event.message.payload.toString(), String(i));
      assert.equal(event.message.id, published[i]!.id);
    });
    await publisher.close();
    await assert.rejects(publisher.publish({ topic, payload: "late" }), ClosedError);
  } finally {
    await broker.stop();
  }
});

/// A refused frame fails its messages only; the stream goes on.
test("a refused frame fails its messages only", { timeout: 30_000 }, async () => {
  const broker = await startBroker();
  try {
    const topic = unique("pub.refused");
    const publisher = broker.client.publisher({ maxBatch: 1 });
    const good = await publisher.publish({ topic, payload: "a" });
    const bad = await publisher.publish({ topic: "bad..topic", payload: "b" });
    const after = await publisher.publish({ topic, payload: "c" });
    assert.ok((await good.published).id);
    await assert.rejects(bad.published, InvalidArgumentError);
    assert.ok((await after.published).id);
    await publisher.close();
  } finally {
    await broker.stop();
  }
});

/// With waitForRoom, a frame for a full group waits until a consumer makes room.
test("a publisher waits for room when asked", { timeout: 30_000 }, async () => {
  const broker = await startBroker(["--max-publish-wait", "10s"]);
  try {
    const topic = unique("pub.room");
    await broker.client.admin.declareGroup({ topic, group: "capped", maxLength: 1 });
    await broker.client.publish({ topic, payload: "fills it" });
    const impatient = broker.client.publisher();
    await assert.rejects(
      (await impatient.publish({ topic, payload: "refused" })).published,
      (error: unknown) => {
        assert.ok(error instanceof FullError, `expected a FullError, got ${String(error)}`);
        // The frame's refusal names what a unary call's would: the group, the message, the limit.
        assert.deepEqual(error.metadata, { group: "capped", index: "0", max_length: "1" });
        return true;
      },
    );
    await impatient.close();

    const patient = broker.client.publisher({ waitForRoom: true });
    const waiting = (await patient.publish({ topic, payload: "waits" })).published;
    let answered = false;
    void waiting.finally(() => (answered = true)).catch(() => {});
    await sleep(300);
    assert.equal(answered, false, "answered while the group was full");
    const consumer = new Inbox(await broker.client.consume({ topic, group: "capped" }));
    const [delivery] = await consumer.take(1);
    assert.ok(await delivery!.ack());
    assert.equal((await within(waiting, 5_000, "the waiting publish")).groups, 1);
    await patient.close();
  } finally {
    await broker.stop();
  }
});

/// With one frame in flight and one message of queue, a broker that stops answering (SIGSTOP) holds
/// the publisher back: the next publish waits until its signal aborts it, and everything taken goes
/// through once the broker runs again.
test("a publisher holds back when the broker stops answering", { timeout: 30_000 }, async () => {
  const broker = await startBroker();
  try {
    const publisher = broker.client.publisher({ maxBatch: 1, maxInFlight: 1, queueSize: 1 });
    await (
      await publisher.publish({ topic: "pub.warm", payload: "stream open" })
    ).published;
    process.kill(broker.pid, "SIGSTOP");
    let taken;
    try {
      taken = [
        await publisher.publish({ topic: "pub.held", payload: "0" }), // in flight
        await publisher.publish({ topic: "pub.held", payload: "1" }), // queued
      ];
      await assert.rejects(
        publisher.publish({ topic: "pub.held", payload: "2" }, AbortSignal.timeout(300)),
      );
    } finally {
      process.kill(broker.pid, "SIGCONT");
    }
    for (const pending of taken) {
      assert.ok((await within(pending.published, 5_000, "a held message")).id);
    }
    await (
      await publisher.publish({ topic: "pub.held", payload: "2" })
    ).published;
    await publisher.close();
  } finally {
    await broker.stop();
  }
});

/// Requests made at once on one Requester each get their own reply; refusals come by reason.
test("a requester pipelines a burst and refuses by reason", { timeout: 30_000 }, async () => {
  const broker = await startBroker();
  try {
    const topic = unique("rpc.burst");
    const responder = await broker.client.serve(topic, "echo", (request) => request.payload, {
      concurrency: 64,
    });
    const requester = broker.client.requester();
    const replies = await within(
      Promise.all(
        [...Array(300).keys()].map((i) => requester.request({ topic, payload: `r${i}` })),
      ),
      10_000,
      "the burst",
    );
    assert.deepEqual(
      replies.map((reply) => reply.payload.toString()),
      [...Array(300).keys()].map((i) => `r${i}`),
    );
    await assert.rejects(
      requester.request({ topic: unique("rpc.nobody"), payload: "x" }),
      NoRespondersError,
    );
    const silent = unique("rpc.silent");
    const subscription = await broker.client.subscribe(silent);
    await assert.rejects(
      requester.request({ topic: silent, payload: "x" }, { timeoutMs: 300 }),
      TimedOutError,
    );
    await subscription.close();
    requester.close();
    await assert.rejects(requester.request({ topic, payload: "late" }), ClosedError);
    await responder.close();
  } finally {
    await broker.stop();
  }
});

/// A request in flight when the broker dies fails with UNAVAILABLE; once a broker is back on the
/// address, the next request opens a new stream and is answered.
test("a requester opens again after a broker restart", { timeout: 60_000 }, async () => {
  const first = await startBroker();
  let second: Awaited<ReturnType<typeof startBroker>> | undefined;
  const client = await first.connect();
  try {
    const topic = unique("rpc.restart");
    const subscription = new Inbox(await client.subscribe(topic));
    const requester = client.requester();
    const inFlight = requester.request({ topic, payload: "x" }, { timeoutMs: 10_000 });
    void inFlight.catch(() => {});
    await subscription.next(5_000, "the request at the broker");
    await first.kill();
    await assert.rejects(inFlight, (error: unknown) => {
      assert.ok(error instanceof SwitchyardError, String(error));
      assert.equal(error.code, Status.UNAVAILABLE);
      return true;
    });
    second = await startBroker([], {}, first.address);
    for (;;) {
      try {
        await requester.request({ topic: unique("rpc.none"), payload: "x" }, { timeoutMs: 1_000 });
      } catch (error) {
        if (error instanceof NoRespondersError) {
          break; // answered by the new broker
        }
        await sleep(50);
      }
    }
    requester.close();
  } finally {
    await client.close();
    await second?.stop();
    await first.stop();
  }
});
