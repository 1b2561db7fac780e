// The shared scenarios of clients/scenarios.txt, one test each, named `scenario_<id>`: every client
// implements the same list against the real broker, and CI checks that each passed them all.

import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import {
  type Delivery,
  ExclusiveTakenError,
  type Message,
  NoRespondersError,
  type PendingPublish,
  Status,
  SwitchyardError,
  type SubscriptionEvent,
  UnauthenticatedError,
} from "@switchyard/client";
import { type TestBroker, brokerForThisFile, startBroker } from "./support/broker.js";
import { newTestPki } from "./support/pki.js";
import { Inbox, sleep, unique, within } from "./support/wait.js";

/** The broker most scenarios share; those that need other flags, or kill it, start their own. */
const broker = brokerForThisFile(["--max-publish-wait", "20s"]);

const text = (delivery: Delivery) => delivery.message.payload.toString();

/** The message of `event`, failing the test on a gap or a disconnect. */
function messageOf(event: SubscriptionEvent): Message {
  assert.ok(event.kind === "message", `expected a message, got ${JSON.stringify(event)}`);
  return event.message;
}

/** A matcher for `assert.rejects`: an error of `type` whose reason is `reason`, then `more`. */
function refusedWith<E extends SwitchyardError>(
  type: new (...args: never[]) => E,
  reason: string,
  more: (error: E) => void = () => {},
) {
  return (error: unknown) => {
    assert.ok(error instanceof type, `expected a ${type.name}, got ${String(error)}`);
    assert.equal(error.reason, reason, `reason of "${error.message}"`);
    more(error);
    return true;
  };
}

/** Runs `body` against a broker of its own started with `args`, its first client with `options`. */
async function withBroker(
  args: string[],
  options: Parameters<typeof startBroker>[1],
  body: (broker: TestBroker) => Promise<void>,
): Promise<void> {
  const own = await startBroker(args, options);
  try {
    await body(own);
  } finally {
    await own.stop();
  }
}

// The TLS scenarios: the test CA, a server certificate it signed, and a token file.
const pki = newTestPki();
after(() => rmSync(pki.dir, { recursive: true, force: true }));
const tokenFile = join(pki.dir, "tokens.json");
writeFileSync(
  tokenFile,
  JSON.stringify({ tokens: [{ name: "ops", token: "ops-secret", admin: true }] }),
);
const secureFlags = [
  "--tls-cert",
  pki.serverCertFile,
  "--tls-key",
  pki.serverKeyFile,
  "--auth-file",
  tokenFile,
];

/// Subscribers of a wildcard and of an exact topic each get every message, in order; a subscriber
/// that does not read, with a small buffer, gets gaps whose counts are exactly the messages it lost.
test("scenario_fanout_wildcards_gap", { timeout: 60_000 }, async () => {
  await withBroker(["--subscriber-buffer", "8"], {}, async (own) => {
    const base = unique("fan");
    const topic = `${base}.a`;
    const wildcard = new Inbox(await own.client.subscribe(`${base}.*`));
    const exact = new Inbox(await own.client.subscribe(topic));
    // The slow subscriber has its own connection, so what it does not read holds up nobody else.
    const slowClient = await own.connect({
      channelOptions: { "grpc-node.flow_control_window": 65535 },
    });
    const slowSubscription = await slowClient.subscribe(`${base}.>`);
    const slow = new Inbox(slowSubscription);

    const total = 600;
    const padding = "x".repeat(4096);
    for (let i = 0; i < total; i++) {
      const payload = String(i).padStart(6, "0") + padding;
      assert.equal((await own.client.publish({ topic, payload })).subscribers, 3);
      // In step: these readers keep up, so their buffers never overflow.
      for (const [name, sub] of [
        ["wildcard", wildcard],
        ["exact", exact],
      ] as const) {
        const message = messageOf(await sub.next(5_000, `${name} message ${i}`));
        assert.equal(message.topic, topic);
        assert.equal(message.payload.toString().slice(0, 6), payload.slice(0, 6), name);
      }
    }

    // Every message the slow one got is the next one not counted as lost, and the gaps add up to
    // what is missing between them.
    let accounted = 0;
    let gaps = 0;
    let received = 0;
    while (accounted < total) {
      const event = await slow.next(5_000, `the slow subscriber at ${accounted}`);
      assert.notEqual(event.kind, "disconnected");
      if (event.kind === "gap") {
        assert.ok(event.missed > 0);
        gaps += 1;
        accounted += event.missed;
      } else {
        const index = Number(messageOf(event).payload.toString().slice(0, 6));
        assert.equal(index, accounted, "each message is the next one not counted as lost");
        accounted += 1;
        received += 1;
      }
    }
    assert.equal(accounted, total, "received plus missed is every message");
    assert.ok(gaps > 0 && received < total, "the slow subscriber fell behind and was told so");

    // Caught up, it gets messages again, and so do the others.
    await own.client.publish({ topic, payload: "after" });
    for (const sub of [wildcard, exact, slow]) {
      assert.equal(
        messageOf(await sub.next(5_000, "the message after")).payload.toString(),
        "after",
      );
    }
  });
});

/// Consumers of one shared group receive disjoint sets that together are every message: each holds
/// at most its prefetch unacked, so each must take a share.
test("scenario_competing_consumers_disjoint", { timeout: 30_000 }, async () => {
  const topic = unique("scn.jobs");
  const group = unique("workers");
  const consumers = await Promise.all(
    [1, 2, 3].map(() => broker.client.consume({ topic, group, prefetch: 10 })),
  );
  try {
    const published = await broker.client.publishBatch(
      Array.from({ length: 30 }, (_, i) => ({ topic, payload: `job${i}` })),
    );
    const shares = await Promise.all(
      consumers.map((c) => new Inbox(c).take(10, 5_000, "a full prefetch")),
    );
    const ids = shares.map((share) => new Set(share.map((d) => d.message.id)));
    assert.ok(ids.every((set) => set.size === 10));
    const all = new Set(ids.flatMap((set) => [...set]));
    assert.equal(all.size, 30, "no message went to two consumers");
    assert.deepEqual([...all].sort(), published.map((p) => p.id).sort(), "together, every message");
    assert.deepEqual(await Promise.all(shares.flat().map((d) => d.ack())), Array(30).fill(true));
    const [info] = (await broker.client.admin.listGroups()).filter((g) => g.group === group);
    assert.equal(info?.acked, 30);
    assert.equal(info?.redelivered, 0);
  } finally {
    await Promise.all(consumers.map((c) => c.close()));
  }
});

/// A delivery left unsettled past the group's ack deadline comes back as attempt 2, under a new id;
/// the old one then settles nothing.
test("scenario_redelivery_after_deadline", { timeout: 30_000 }, async () => {
  const topic = unique("scn.late");
  const group = unique("workers");
  const deadlineMs = 500;
  await broker.client.admin.declareGroup({ topic, group, ackDeadlineMs: deadlineMs });
  const consumer = await broker.client.consume({ topic, group });
  try {
    const inbox = new Inbox(consumer);
    // The deadline starts when the broker sends the delivery, after the publish began.
    const publishedAt = Date.now();
    const original = await broker.client.publish({ topic, payload: "slow work" });
    const first = await inbox.next(5_000, "the first delivery");
    assert.equal(first.message.id, original.id);
    assert.equal(first.attempt, 1);
    const again = await inbox.next(10_000, "the redelivery");
    assert.ok(Date.now() - publishedAt >= deadlineMs, "redelivered before the deadline");
    assert.equal(again.message.id, original.id);
    assert.equal(again.attempt, 2);
    assert.notEqual(again.id, first.id);
    assert.equal(text(again), "slow work");
    assert.equal(await first.ack(), false, "the expired delivery settles nothing");
    assert.equal(await again.ack(), true);
    const [info] = (await broker.client.admin.listGroups()).filter((g) => g.group === group);
    assert.equal(info?.redelivered, 1);
    assert.equal(info?.acked, 1);
  } finally {
    await consumer.close();
    await broker.client.admin.deleteGroup(topic, group);
  }
});

/// A delivery nacked with a delay comes back as attempt 2, not before the delay; the message behind
/// it is delivered meanwhile.
test("scenario_nack_with_delay", { timeout: 30_000 }, async () => {
  const topic = unique("scn.retry");
  const consumer = await broker.client.consume({ topic, group: unique("workers") });
  try {
    const inbox = new Inbox(consumer);
    await broker.client.publish({ topic, payload: "a" });
    const a = await inbox.next(5_000, "a");
    const delayMs = 1_500;
    const nackedAt = Date.now();
    assert.ok(await a.nack(delayMs));
    await broker.client.publish({ topic, payload: "b" });
    const b = await inbox.next(5_000, "b, while a waits out its delay");
    assert.equal(text(b), "b");
    assert.equal(b.attempt, 1);
    assert.ok(await b.ack());
    const again = await inbox.next(delayMs + 5_000, "a after its delay");
    // The broker starts the delay when it gets the nack, which is after nackedAt.
    assert.ok(Date.now() - nackedAt >= delayMs, "redelivered before the delay");
    assert.equal(again.message.id, a.message.id);
    assert.equal(text(again), "a");
    assert.equal(again.attempt, 2);
    assert.ok(await again.ack());
  } finally {
    await consumer.close();
  }
});

/// A rejected delivery, and one that fails past the group's max deliveries, go to its dead-letter
/// topic with their original id and payload and the x-dead-letter headers.
test("scenario_dead_letter", { timeout: 30_000 }, async () => {
  const topic = unique("scn.work");
  const dead = unique("scn.dead");
  const group = unique("workers");
  await broker.client.admin.declareGroup({
    topic,
    group,
    maxDeliveries: 2,
    deadLetterTopic: dead,
  });
  const deadLetters = new Inbox(await broker.client.subscribe(dead));
  const consumer = await broker.client.consume({ topic, group });
  try {
    const inbox = new Inbox(consumer);
    const poison = await broker.client.publish({ topic, payload: "poison" });
    const delivery = await inbox.next(5_000, "the poison message");
    assert.equal(delivery.message.id, poison.id);
    assert.ok(await delivery.reject());
    let letter = messageOf(await deadLetters.next(5_000, "the rejected dead letter"));
    assert.deepEqual(
      [letter.id, letter.topic, letter.payload.toString()],
      [poison.id, dead, "poison"],
    );
    assert.deepEqual(letter.headers, {
      "x-dead-letter-reason": "rejected",
      "x-original-topic": topic,
      "x-dead-letter-group": group,
      "x-delivery-attempts": "1",
    });

    const failing = await broker.client.publish({ topic, payload: "fails" });
    for (const attempt of [1, 2]) {
      const d = await inbox.next(5_000, `attempt ${attempt}`);
      assert.equal(d.message.id, failing.id);
      assert.equal(d.attempt, attempt);
      assert.ok(await d.nack());
    }
    letter = messageOf(await deadLetters.next(5_000, "the max-deliveries dead letter"));
    assert.deepEqual(
      [letter.id, letter.topic, letter.payload.toString()],
      [failing.id, dead, "fails"],
    );
    assert.deepEqual(letter.headers, {
      "x-dead-letter-reason": "max-deliveries",
      "x-original-topic": topic,
      "x-dead-letter-group": group,
      "x-delivery-attempts": "2",
    });
    const [info] = (await broker.client.admin.listGroups()).filter((g) => g.group === group);
    assert.equal(info?.deadLettered, 2);
    assert.equal(info?.ready, 0);
    assert.equal(info?.inFlight, 0);
  } finally {
    await consumer.close();
    await broker.client.admin.deleteGroup(topic, group);
  }
});

/// A second consumer of a held exclusive group is refused with reason GROUP_EXCLUSIVE_TAKEN; the
/// holder goes on.
test("scenario_exclusive_rejected", { timeout: 30_000 }, async () => {
  const topic = unique("scn.bids");
  const group = unique("auction");
  const active = await broker.client.consume({ topic, group, mode: "exclusive" });
  try {
    await assert.rejects(
      broker.client.consume({ topic, group, mode: "exclusive" }),
      refusedWith(ExclusiveTakenError, "GROUP_EXCLUSIVE_TAKEN", (error) => {
        assert.equal(error.code, Status.FAILED_PRECONDITION);
        assert.equal(error.metadata["group"], group);
      }),
    );
    await broker.client.publish({ topic, payload: "still mine" });
    const delivery = await new Inbox(active).next(5_000, "the holder's delivery");
    assert.equal(text(delivery), "still mine");
    assert.ok(await delivery.ack());
  } finally {
    await active.close();
  }
});

/// A standby of an exclusive group takes over when the active consumer leaves, with what it held
/// unacked (in publish order, as attempt 2), then new messages.
test("scenario_exclusive_standby_takeover", { timeout: 30_000 }, async () => {
  const topic = unique("scn.ledger");
  const group = unique("book");
  const active = await broker.client.consume({ topic, group, mode: "exclusive" });
  const standby = await broker.client.consume({ topic, group, mode: "exclusive", standby: true });
  try {
    const [info] = (await broker.client.admin.listGroups()).filter((g) => g.group === group);
    assert.equal(info?.consumers, 2, "the standby is attached");
    await broker.client.publishBatch(
      Array.from({ length: 5 }, (_, i) => ({ topic, payload: `${i}` })),
    );
    const held = await new Inbox(active).take(5, 5_000, "the active consumer's deliveries");
    assert.deepEqual(held.map(text), ["0", "1", "2", "3", "4"]);
    assert.deepEqual(await Promise.all(held.slice(0, 2).map((d) => d.ack())), [true, true]);
    await active.close();

    const standbyInbox = new Inbox(standby);
    const takenOver = await standbyInbox.take(3, 5_000, "the standby's takeover");
    assert.deepEqual(
      takenOver.map((d) => [text(d), d.attempt]),
      [
        ["2", 2],
        ["3", 2],
        ["4", 2],
      ],
    );
    await broker.client.publish({ topic, payload: "5" });
    const fresh = await standbyInbox.next(5_000, "a new message after the takeover");
    assert.deepEqual([text(fresh), fresh.attempt], ["5", 1]);
    assert.deepEqual(await Promise.all([...takenOver, fresh].map((d) => d.ack())), [
      true,
      true,
      true,
      true,
    ]);
  } finally {
    await active.close();
    await standby.close();
  }
});

/// A responder's reply reaches the requester, and the responder saw the request's payload.
test("scenario_request_reply", { timeout: 30_000 }, async () => {
  const topic = unique("scn.greet");
  const seen: Message[] = [];
  const responder = await broker.client.serve(topic, "greeters", (request) => {
    seen.push(request);
    return `hello, ${request.payload.toString()}`;
  });
  try {
    const reply = await broker.client.request({ topic, payload: "ada" }, { timeoutMs: 5_000 });
    assert.equal(reply.payload.toString(), "hello, ada");
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.payload.toString(), "ada");
    assert.match(seen[0]!.replyTo, /^_INBOX\./);
    assert.equal(seen[0]!.correlationId, reply.correlationId);
  } finally {
    await responder.close();
  }
});

/// A request nobody can take fails at once with a NoRespondersError, matched by reason, well within
/// a timeout it does not wait for; the pipelined path says the same.
test("scenario_no_responders_by_reason", { timeout: 30_000 }, async () => {
  const topic = unique("scn.nobody");
  await assert.rejects(
    within(broker.client.request({ topic }, { timeoutMs: 30_000 }), 5_000, "the refusal"),
    refusedWith(NoRespondersError, "NO_RESPONDERS", (error) => {
      assert.equal(error.code, Status.UNAVAILABLE);
      assert.equal(error.topic, topic);
    }),
  );
  // A refused frame of the stream carries the reason, the code and the reason's metadata, as the
  // unary call's status does.
  const requester = broker.client.requester();
  try {
    await assert.rejects(
      within(requester.request({ topic }, { timeoutMs: 30_000 }), 5_000, "the refusal"),
      refusedWith(NoRespondersError, "NO_RESPONDERS", (error) => {
        assert.equal(error.code, Status.UNAVAILABLE);
        assert.equal(error.topic, topic);
        assert.equal(error.metadata["topic"], topic);
      }),
    );
  } finally {
    requester.close();
  }
});

/// Over TLS with the test CA and a valid bearer token, publish and subscribe work.
test("scenario_tls_and_token", { timeout: 30_000 }, async () => {
  await withBroker(secureFlags, { tls: { ca: pki.caPem }, token: "ops-secret" }, async (own) => {
    const topic = unique("secure");
    const inbox = new Inbox(await own.client.subscribe(topic));
    assert.equal((await own.client.publish({ topic, payload: "over tls" })).subscribers, 1);
    const message = messageOf(await inbox.next(5_000, "the message published over TLS"));
    assert.equal(message.payload.toString(), "over tls");
  });
});

/// An unknown token is refused with reason UNAUTHENTICATED, on a unary call and on a stream.
test("scenario_wrong_token", { timeout: 30_000 }, async () => {
  await withBroker(secureFlags, { tls: { ca: pki.caPem }, token: "ops-secret" }, async (own) => {
    const wrong = await own.connect({ token: "not-a-token" });
    const unauthenticated = refusedWith(UnauthenticatedError, "UNAUTHENTICATED", (error) =>
      assert.equal(error.code, Status.UNAUTHENTICATED),
    );
    await assert.rejects(wrong.publish({ topic: "secure.x", payload: "x" }), unauthenticated);
    await assert.rejects(wrong.subscribe("secure.>"), unauthenticated);
  });
});

/// A subscription and a consumer go on after the broker is killed and started again on the same
/// address: the subscription announces the drop with a `disconnected` event, the consumer through
/// `onDisconnect`, and both get what is published once the broker is back.
test("scenario_reconnect_after_restart", { timeout: 60_000 }, async () => {
  const first = await startBroker();
  let second: TestBroker | undefined;
  const client = await first.connect();
  try {
    const news = unique("scn.news");
    const tasks = unique("scn.tasks");
    const drops: SwitchyardError[] = [];
    const subscription = new Inbox(await client.subscribe(news));
    const consumer = new Inbox(
      await client.consume({ topic: tasks, group: "workers", onDisconnect: (e) => drops.push(e) }),
    );
    await client.publish({ topic: news, payload: "before" });
    assert.equal(messageOf(await subscription.next()).payload.toString(), "before");
    await client.publish({ topic: tasks, payload: "before" });
    const before = await consumer.next(5_000, "the delivery before the restart");
    assert.equal(text(before), "before");
    assert.ok(await before.ack());

    await first.kill();
    const dropped = await subscription.next(10_000, "the disconnected event");
    assert.ok(dropped.kind === "disconnected", JSON.stringify(dropped));
    assert.equal(dropped.error.code, Status.UNAVAILABLE);
    await within(
      (async () => {
        while (drops.length === 0) await sleep(20);
      })(),
      10_000,
      "onDisconnect",
    );
    assert.deepEqual(
      drops.map((error) => error.code),
      [Status.UNAVAILABLE],
    );
    second = await startBroker([], {}, first.address);

    // The new broker is empty: declaring the group keeps what is published before the consumer has
    // joined again (retried while the broker comes up).
    await within(
      (async () => {
        for (;;) {
          try {
            await client.admin.declareGroup({ topic: tasks, group: "workers" });
            return;
          } catch {
            await sleep(50);
          }
        }
      })(),
      10_000,
      "the group declared on the new broker",
    );
    await client.publish({ topic: tasks, payload: "after" });
    const delivery = await consumer.next(10_000, "a delivery after the restart");
    assert.equal(text(delivery), "after");
    assert.equal(delivery.attempt, 1);
    assert.ok(await delivery.ack());

    // Until the subscription is back, what is published is not seen: publish until one arrives;
    // then everything after it arrives, in order.
    let sent = 0;
    let firstSeen: string | undefined;
    const deadline = Date.now() + 10_000;
    while (firstSeen === undefined) {
      assert.ok(Date.now() < deadline, "the subscription did not come back");
      try {
        await client.publish({ topic: news, payload: `after${sent}` });
        sent++;
      } catch {
        // the channel is still reconnecting
      }
      const item = await subscription.poll(50);
      if (item !== undefined) {
        firstSeen = messageOf(item).payload.toString();
      }
    }
    const n = Number(firstSeen.replace("after", ""));
    await client.publish({ topic: news, payload: "last" });
    const expected = [...Array(sent - n - 1).keys()].map((i) => `after${n + 1 + i}`).concat("last");
    for (const want of expected) {
      assert.equal(messageOf(await subscription.next(5_000, want)).payload.toString(), want);
    }
    assert.equal(drops.length, 1, "one disconnect, announced once");
  } finally {
    await client.close();
    await second?.stop();
    await first.stop();
  }
});

/// 200 concurrent requests on the pipelined requester each get their own reply.
test("scenario_pipelined_request_burst", { timeout: 30_000 }, async () => {
  const topic = unique("scn.echo");
  const responder = await broker.client.serve(topic, "echo", (request) => request.payload, {
    concurrency: 64,
  });
  const requester = broker.client.requester();
  try {
    const words = [...Array(200).keys()].map((i) => `request ${i}`);
    const replies = await within(
      Promise.all(words.map((payload) => requester.request({ topic, payload }))),
      10_000,
      "the burst",
    );
    assert.deepEqual(
      replies.map((reply) => reply.payload.toString()),
      words,
    );
  } finally {
    requester.close();
    await responder.close();
  }
});

/// A publisher with a small queue makes the caller wait for room: with a full group that the broker
/// holds its frame for (`waitForRoom`), `publish` stops resolving once the frame in flight and the
/// queue are taken, and goes on as a consumer drains the group. Every message arrives once, in
/// order.
test("scenario_publish_backpressure", { timeout: 30_000 }, async () => {
  const topic = unique("scn.flow");
  const group = unique("capped");
  const total = 20;
  await broker.client.admin.declareGroup({ topic, group, maxLength: 2 });
  const subscription = await broker.client.subscribe(topic);
  const sub = new Inbox(subscription);
  const publisher = broker.client.publisher({
    maxBatch: 1,
    maxInFlight: 1,
    queueSize: 1,
    waitForRoom: true,
  });
  const pendings: PendingPublish[] = [];
  const publishing = (async () => {
    for (let i = 0; i < total; i++) {
      pendings.push(await publisher.publish({ topic, payload: String(i) }));
    }
  })();
  let published = false;
  void publishing.then(() => (published = true)).catch(() => {});
  let draining: Promise<void> | undefined;
  try {
    // The group takes two; the third waits at the broker, so the frame in flight and the queue
    // fill up, and `publish` stops resolving.
    const got = (await sub.take(2, 5_000, "the messages that fit")).map(messageOf);
    assert.deepEqual(
      got.map((m) => m.payload.toString()),
      ["0", "1"],
    );
    await within(
      (async () => {
        while (pendings.length < 3) await sleep(20);
      })(),
      5_000,
      "the publisher to take the messages it has room for",
    );
    await sleep(500);
    assert.equal(published, false, "every publish resolved while the group was full");
    assert.ok(pendings.length < total);
    let thirdAnswered = false;
    void pendings[2]!.published.finally(() => (thirdAnswered = true)).catch(() => {});
    await sleep(0);
    assert.equal(thirdAnswered, false, "the frame for the full group was answered");

    // A consumer makes room, one message at a time.
    const consumer = await broker.client.consume({ topic, group, prefetch: 1 });
    draining = (async () => {
      for await (const delivery of consumer) {
        await delivery.ack();
      }
    })();
    await within(publishing, 10_000, "every publish to resolve");
    await within(publisher.flush(), 10_000, "the flush");
    const outcomes = await Promise.all(pendings.map((pending) => pending.published));
    assert.ok(outcomes.every((outcome) => outcome.groups === 1));
    got.push(...(await sub.take(total - 2, 5_000, "the rest")).map(messageOf));
    assert.deepEqual(
      got.map((m) => m.payload.toString()),
      [...Array(total).keys()].map(String),
    );
    assert.deepEqual(
      got.map((m) => m.id),
      outcomes.map((outcome) => outcome.id),
    );
    // Nothing more than once: the next message is the fence.
    await within((await publisher.publish({ topic, payload: "fence" })).published, 5_000, "fence");
    assert.equal(messageOf(await sub.next(5_000, "the fence")).payload.toString(), "fence");
    await consumer.close();
  } finally {
    await publisher.close();
    await subscription.close();
    await draining;
    await broker.client.admin.deleteGroup(topic, group);
  }
});
