// Refusals reach the caller as the class of their google.rpc reason, with its metadata, field and
// retry delay.

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  ConflictError,
  FullError,
  InvalidArgumentError,
  NoRespondersError,
  NotFoundError,
  Status,
  SwitchyardError,
  TimedOutError,
  fromStreamError,
} from "@switchyard/client";
import { brokerForThisFile } from "./support/broker.js";
import { unique } from "./support/wait.js";

const broker = brokerForThisFile();

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

/// A request nobody can answer is NO_RESPONDERS, with the topic in its metadata.
test("NO_RESPONDERS is a NoRespondersError", { timeout: 30_000 }, async () => {
  const topic = unique("svc.nobody");
  await assert.rejects(
    broker.client.request({ topic }),
    refusedWith(NoRespondersError, "NO_RESPONDERS", (error) => {
      assert.equal(error.code, Status.UNAVAILABLE);
      assert.equal(error.topic, topic);
      assert.equal(error.metadata["topic"], topic);
    }),
  );
});

/// A group at its max_length is GROUP_FULL, saying how long to wait.
test("GROUP_FULL is a FullError with retryAfterMs", { timeout: 30_000 }, async () => {
  const topic = unique("full");
  const group = unique("one");
  await broker.client.admin.declareGroup({ topic, group, maxLength: 1 });
  await broker.client.publish({ topic });
  await assert.rejects(
    broker.client.publish({ topic }),
    refusedWith(FullError, "GROUP_FULL", (error) => {
      assert.equal(error.code, Status.RESOURCE_EXHAUSTED);
      assert.equal(error.metadata["group"], group);
      assert.equal(error.metadata["max_length"], "1");
      assert.ok((error.retryAfterMs ?? 0) > 0, `retryAfterMs ${error.retryAfterMs}`);
    }),
  );
  await broker.client.admin.deleteGroup(topic, group);
});

/// Joining a group in the other mode is MODE_MISMATCH, naming the setting and both values.
test("MODE_MISMATCH is a ConflictError", { timeout: 30_000 }, async () => {
  const topic = unique("mode");
  const group = unique("g");
  await broker.client.admin.declareGroup({ topic, group });
  await assert.rejects(
    broker.client.consume({ topic, group, mode: "exclusive" }),
    refusedWith(ConflictError, "MODE_MISMATCH", (error) => {
      assert.equal(error.code, Status.FAILED_PRECONDITION);
      assert.equal(error.metadata["group"], group);
      assert.equal(error.metadata["setting"], "mode");
    }),
  );
  await broker.client.admin.deleteGroup(topic, group);
});

/// Malformed input is INVALID_ARGUMENT, with the field from the BadRequest detail.
test(
  "INVALID_ARGUMENT is an InvalidArgumentError naming the field",
  { timeout: 30_000 },
  async () => {
    await assert.rejects(
      broker.client.publish({ topic: "" }),
      refusedWith(InvalidArgumentError, "INVALID_ARGUMENT", (error) => {
        assert.equal(error.field, "messages[0].topic");
        assert.equal(error.retryAfterMs, undefined, "waiting does not mend bad input");
      }),
    );
  },
);

/// Deleting a group that does not exist is UNKNOWN_GROUP.
test("UNKNOWN_GROUP is a NotFoundError", { timeout: 30_000 }, async () => {
  await assert.rejects(
    broker.client.admin.deleteGroup(unique("nowhere"), "nobody"),
    refusedWith(NotFoundError, "UNKNOWN_GROUP", (error) => {
      assert.equal(error.metadata["group"], "nobody");
    }),
  );
});

/// A refused stream frame is classed by its StreamError.reason, with its metadata; without a reason,
/// by its code where the code means one thing.
test("a stream frame's error is classed by its reason, else its code", () => {
  const metadata = { group: "small", index: "1", max_length: "2" };
  const full = fromStreamError({
    code: Status.RESOURCE_EXHAUSTED,
    message: "full",
    reason: "GROUP_FULL",
    metadata,
  });
  assert.ok(full instanceof FullError);
  assert.equal(full.reason, "GROUP_FULL");
  assert.deepEqual(full.metadata, { group: "small", index: "1", max_length: "2" });
  assert.notEqual(full.metadata, metadata, "the error's metadata is a copy of the frame's");
  assert.equal(full.field, undefined);
  assert.equal(full.retryAfterMs, undefined);
  const nobody = fromStreamError({
    code: Status.UNAVAILABLE,
    message: "no responders",
    reason: "NO_RESPONDERS",
    metadata: { topic: "jobs.resize" },
  });
  assert.ok(nobody instanceof NoRespondersError);
  assert.equal(nobody.topic, "jobs.resize");
  const late = fromStreamError({
    code: Status.DEADLINE_EXCEEDED,
    message: "no reply",
    reason: "REQUEST_TIMED_OUT",
    metadata: { timeout_ms: "250" },
  });
  assert.ok(late instanceof TimedOutError);
  assert.equal(late.timeoutMs, 250);
  const bare = fromStreamError({
    code: Status.NOT_FOUND,
    message: "gone",
    reason: "",
    metadata: {},
  });
  assert.ok(bare instanceof NotFoundError);
  assert.equal(bare.reason, undefined);
  assert.deepEqual(bare.metadata, {});
  // UNAVAILABLE is also a dropped connection: without the reason it is not NoResponders.
  const unavailable = fromStreamError({
    code: Status.UNAVAILABLE,
    message: "?",
    reason: "",
    metadata: {},
  });
  assert.equal(unavailable.constructor, SwitchyardError);
  const odd = fromStreamError({
    code: Status.ABORTED,
    message: "?",
    reason: "toString",
    metadata: {},
  });
  assert.equal(odd.constructor, SwitchyardError, "an unknown reason is a plain SwitchyardError");
  assert.equal(odd.reason, "toString");
});
