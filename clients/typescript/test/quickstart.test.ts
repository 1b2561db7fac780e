// The README's quickstart is examples/quickstart.ts verbatim, and it runs against a real broker.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { brokerForThisFile } from "./support/broker.js";

/** The package's root: this file runs as build/test/quickstart.test.js. */
const root = join(__dirname, "..", "..");

const broker = brokerForThisFile();

/// The quickstart in the README is the example that this suite compiles and runs.
test("the README shows examples/quickstart.ts as it is", () => {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const example = readFileSync(join(root, "examples", "quickstart.ts"), "utf8");
  assert.ok(
    readme.includes("```ts\n" + example + "```\n"),
    "README.md must contain examples/quickstart.ts verbatim in a ```ts block",
  );
});

/// The quickstart does what the README says it prints, and can run twice against one broker.
test("the quickstart runs", { timeout: 60_000 }, async () => {
  const expected = [
    'subscriber got orders.created {"sku":"A1"}',
    "worker got cat.png attempt 1",
    "worker got dog.png attempt 1",
    "worker got dog.png attempt 2",
    "reply HELLO",
    "no responders for svc.nobody",
  ];
  for (const run of [1, 2]) {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [join(root, "build", "examples", "quickstart.js")],
      { env: { ...process.env, SWITCHYARD_ADDRESS: broker.address }, timeout: 20_000 },
    );
    assert.deepEqual(stdout.trim().split("\n"), expected, `output of run ${run}`);
  }
});
