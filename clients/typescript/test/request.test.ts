// Request/reply against a real broker: the responder helper, no responders, timeouts, failures.

import assert from "node:assert/strict";
import { test } from "node:test";
import { NoRespondersError, Status, SwitchyardError, TimedOutError } from "@switchyard/client";
import { brokerForThisFile } from "./support/broker.js";
import { Inbox, unique, within } from "./support/wait.js";

const broker = brokerForThisFile();

/// A responder answers through the broker: the reply carries the request's correlation id.
test("request gets the responder's reply", { timeout: 30_000 }, async () => {
  const topic = unique("svc.upper");
  const seen: string[] = [];
  const responder = await broker.client.serve(topic, "upper", async (request) => {
    seen.push(request.replyTo);
    return { payload: request.payload.toString().toUpperCase(), headers: { by: "upper" } };
  });

  const reply = await broker.client.request({ topic, payload: "hello" }, { timeoutMs: 5_000 });
  assert.equal(reply.payload.toString(), "HELLO");
  assert.equal(reply.headers.by, "upper");
  assert.equal(reply.topic, seen[0], "the reply went to the request's inbox");
  assert.match(seen[0] ?? "", /^_INBOX\./);

  const mine = await broker.client.request({ topic, payload: "x", correlationId: "order-42" });
  assert.equal(mine.correlationId, "order-42", "a correlation id set by the caller is kept");
  assert.equal(mine.payload.toString(), "X");

  await responder.close();
  await within(responder.done, 5_000, "the responder to stop");
});

/// Requests to a group go to one responder each; adding responders spreads them.
test("responders in one group share the requests", { timeout: 30_000 }, async () => {
  const topic = unique("svc.who");
  const handled = { a: 0, b: 0 };
  const serve = (name: "a" | "b") =>
    broker.client.serve(
      topic,
      "who",
      async (request) => {
        handled[name] += 1;
        // Hold each request a little, so the other responder gets some while this one works.
        await new Promise((resolve) => setTimeout(resolve, 20));
        return `${name}:${request.payload.toString()}`;
      },
      { concurrency: 1 },
    );
  const responders = await Promise.all([serve("a"), serve("b")]);
  const replies = await Promise.all(
    Array.from({ length: 20 }, (_, i) => broker.client.request({ topic, payload: String(i) })),
  );
  assert.deepEqual(
    replies.map((r) => r.payload.toString().split(":")[1]),
    Array.from({ length: 20 }, (_, i) => String(i)),
  );
  assert.equal(handled.a + handled.b, 20, "each request was handled once");
  assert.ok(handled.a > 0 && handled.b > 0, `both responders worked: ${JSON.stringify(handled)}`);
  await Promise.all(responders.map((r) => r.close()));
});

/// Nobody on the topic: the broker says so at once, as NoRespondersError.
test("no responders fails at once", { timeout: 30_000 }, async () => {
  const topic = unique("svc.nobody");
  const started = Date.now();
  await assert.rejects(
    broker.client.request({ topic, payload: "anyone?" }, { timeoutMs: 10_000 }),
    (error) => {
      assert.ok(error instanceof NoRespondersError, `got ${String(error)}`);
      assert.ok(error instanceof SwitchyardError);
      assert.equal(error.code, Status.UNAVAILABLE);
      assert.equal(error.topic, topic);
      assert.match(error.message, new RegExp(`no responders for topic ${topic}`));
      return true;
    },
  );
  assert.ok(Date.now() - started < 2_000, "it did not wait for the timeout");
});

/// Someone listens but nobody answers: TimedOutError after the timeout, not before.
test("a request with no reply times out", { timeout: 30_000 }, async () => {
  const topic = unique("svc.silent");
  const listener = new Inbox(await broker.client.subscribe(topic));
  const started = Date.now();
  await assert.rejects(
    broker.client.request({ topic, payload: "hello?" }, { timeoutMs: 300 }),
    (error) => {
      assert.ok(error instanceof TimedOutError, `got ${String(error)}`);
      assert.equal(error.code, Status.DEADLINE_EXCEEDED);
      assert.equal(error.timeoutMs, 300);
      return true;
    },
  );
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 280 && elapsed < 3_000, `timed out after ${elapsed} ms`);
  const request = await listener.next();
  assert.ok(request.kind === "message" && request.message.replyTo.startsWith("_INBOX."));
  assert.ok(request.kind === "message" && request.message.correlationId !== "");
});

/// A handler that throws rejects the request (to the dead-letter topic here); the caller times out.
test("a failing handler rejects the request", { timeout: 30_000 }, async () => {
  const topic = unique("svc.broken");
  const group = unique("broken");
  const deadLetterTopic = unique("svc.dead");
  await broker.client.admin.declareGroup({ topic, group, deadLetterTopic });
  const dead = new Inbox(await broker.client.subscribe(deadLetterTopic));
  const errors: unknown[] = [];
  const responder = await broker.client.serve(
    topic,
    group,
    () => {
      throw new Error("boom");
    },
    { onError: (error) => errors.push(error) },
  );
  await assert.rejects(
    broker.client.request({ topic, payload: "p" }, { timeoutMs: 500 }),
    TimedOutError,
  );
  const letter = await dead.next();
  assert.ok(
    letter.kind === "message" && letter.message.headers["x-dead-letter-reason"] === "rejected",
  );
  assert.equal(errors.length, 1);
  assert.match(String(errors[0]), /boom/);
  await responder.close();
});

/// Deleting the group under a responder ends it, and `done` says why.
test(
  "a responder stops with NOT_FOUND when its group is deleted",
  { timeout: 30_000 },
  async () => {
    const topic = unique("svc.gone");
    const group = unique("gone");
    const responder = await broker.client.serve(topic, group, () => "ok");
    await broker.client.admin.deleteGroup(topic, group);
    await assert.rejects(within(responder.done, 5_000, "the responder to end"), {
      code: Status.NOT_FOUND,
    });
    await responder.close();
  },
);

/// Closing a responder takes no more requests and lets the one in hand finish: its reply reaches
/// the requester and its ack the group, before `close` settles.
test("closing a responder finishes the request in hand", { timeout: 30_000 }, async () => {
  const topic = unique("svc.slow");
  let started!: () => void;
  const handling = new Promise<void>((resolve) => (started = resolve));
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const responder = await broker.client.serve(topic, "slow", async (request) => {
    started();
    await released;
    return request.payload.toString().toUpperCase();
  });
  const asked = broker.client.request({ topic, payload: "busy" }, { timeoutMs: 5_000 });
  await within(handling, 5_000, "the handler to start");
  let closed = false;
  const closing = responder.close().then(() => (closed = true));
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(closed, false, "close waits for the request in hand");
  release();
  assert.equal((await within(asked, 5_000, "the reply")).payload.toString(), "BUSY");
  await within(closing, 5_000, "close to settle");
  const group = (await broker.client.admin.listGroups()).find(
    (g) => g.topic === topic && g.group === "slow",
  );
  assert.deepEqual([group?.acked, group?.inFlight, group?.ready], [1, 0, 0]);
  await assert.rejects(
    broker.client.request({ topic, payload: "after" }, { timeoutMs: 300 }),
    TimedOutError,
  );
});
