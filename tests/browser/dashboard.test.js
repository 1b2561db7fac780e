// The dashboard in headless Chromium against a real broker: the page loads whole from the broker,
// shows the groups it was given, follows new traffic without a reload, opens a group's detail, says
// "disconnected" when the broker goes and recovers when one comes back, and works behind
// authentication with an admin token as the Basic password. The tests run in order on one broker
// and one page, each building on the state the one before left; together they leave a page worth
// a picture: target/dashboard.png, and docs/dashboard.png with SWITCHYARD_UPDATE_SCREENSHOT=1
// (which also runs the traffic longer, so the charts have a story).

import assert from "node:assert/strict";
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { REPO_ROOT, startBroker } from "./support/broker.js";
import { launchChromium } from "./support/chromium.js";

/** How long the page may take to show something: a few of its one-second refreshes. */
const WAIT_MS = 10_000;
const UPDATE_SCREENSHOT = process.env.SWITCHYARD_UPDATE_SCREENSHOT === "1";
/** Traffic before the picture; for docs/ long enough that the charts show its waves. */
const TRAFFIC_MS = UPDATE_SCREENSHOT ? 75_000 : 6_000;
const VIEWPORT = { width: 1400, height: 900 };

const BILLING = { topic: "orders.>", group: "billing" };
const MAILER = { topic: "emails.send", group: "mailer" };
const LEDGER = { topic: "payments.*", group: "ledger" };

let broker;
let replacement;
let browser;
let page;
let traffic;
/** Console errors and uncaught exceptions of the page: a healthy page has none. */
const problems = [];
/** Every URL the page asked for. */
const requested = [];

before(
  async () => {
    broker = await startBroker();
    await broker.run(["groups", "declare", BILLING.topic, "-g", BILLING.group]);
    await broker.run(["groups", "declare", MAILER.topic, "-g", MAILER.group]);
    // Deliveries nobody acks come back after 2 s, and die at the third try: redeliveries and dead
    // letters for the page to show.
    await broker.run([
      ...["groups", "declare", LEDGER.topic, "-g", LEDGER.group, "--mode", "exclusive"],
      ...["--ack-deadline", "2s", "--max-deliveries", "3"],
    ]);
    await publish("orders.created", 25);
    browser = await launchChromium();
    page = await browser.newPage({ viewport: VIEWPORT });
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console: ${message.text()}`);
    });
    page.on("pageerror", (error) => problems.push(`uncaught: ${error.message}`));
    page.on("request", (request) => requested.push(request.url()));
  },
  { timeout: 60_000 },
);

after(
  async () => {
    await traffic?.stop();
    await browser?.close();
    await broker?.stop();
    await replacement?.stop();
  },
  { timeout: 30_000 },
);

/** Publishes `count` messages to `topic` through `switchyard pub`, one per line of its stdin. */
async function publish(topic, count) {
  const lines = Array.from({ length: count }, (_, i) => JSON.stringify({ n: i, topic }));
  await broker.run(["pub", topic], { input: `${lines.join("\n")}\n` });
}

/** The groups table's row of `group`. */
const row = ({ topic, group }) =>
  `#groups-table tbody tr[data-topic="${topic}"][data-group="${group}"]`;
const cell = (group, field) => `${row(group)} td[data-field="${field}"]`;

/** Waits until `predicate(arg)` holds in the page; on a timeout, says what the page showed. */
async function until(what, predicate, arg) {
  try {
    await page.waitForFunction(predicate, arg, { timeout: WAIT_MS, polling: 100 });
  } catch (error) {
    const status = await page
      .evaluate(
        () => `${document.body.dataset.state}: ${document.getElementById("banner").textContent}`,
      )
      .catch(() => "unknown");
    throw new Error(
      `the page never showed ${what} within ${WAIT_MS} ms (${error.message.split("\n")[0]})\n` +
        `page state: ${status}\nproblems: ${problems.join("\n") || "none"}\n` +
        `broker log (last lines):\n${(replacement ?? broker).log().slice(-3000)}`,
    );
  }
}

/** Waits until each selector's element reads its text. */
function untilTexts(what, texts) {
  return until(
    what,
    (texts) =>
      Object.entries(texts).every(([s, text]) => document.querySelector(s)?.textContent === text),
    texts,
  );
}

const refreshes = () => page.evaluate(() => Number(document.body.dataset.updated));

/** The page, its script and uPlot come from the broker, and nothing from anywhere else. */
test("the page loads whole from the broker", async () => {
  // The charts must show the past at once: wait for some server-side history before loading.
  const deadline = Date.now() + WAIT_MS;
  const overview = async () => {
    const response = await fetch(`${broker.url}/api/overview`);
    assert.equal(response.status, 200, "GET /api/overview: does this broker serve the JSON API?");
    return response.json();
  };
  while ((await overview()).history.samples.length < 3) {
    assert.ok(Date.now() < deadline, "/api/overview never held 3 history samples");
    await sleep(200);
  }
  // Asked first without the browser, whose error for a 404 names no cause.
  const index = await fetch(`${broker.url}/`);
  assert.equal(index.status, 200, "GET / on the HTTP listener: is the dashboard merged into it?");
  assert.match(index.headers.get("content-type"), /^text\/html/);
  assert.equal(index.headers.get("cache-control"), "no-cache");
  await page.goto(`${broker.url}/`);
  await until(
    "a first refresh",
    () => document.body.dataset.state === "live" && Number(document.body.dataset.updated) >= 1,
  );
  const first = await page.evaluate(() => window.__dashboard.charts.rates.data[0].length);
  assert.ok(
    first >= 3,
    `the first drawing of the rates chart has ${first} points, not the history`,
  );
  assert.match(await page.textContent("#version"), /^v\d+\.\d+\.\d+/);
  assert.equal(await page.textContent("#storage"), "in-memory");
  assert.equal(await page.locator("#chart-rates canvas").count(), 1);
  assert.equal(await page.locator("#chart-queued canvas").count(), 1);
  const origin = new URL(broker.url).origin;
  const elsewhere = requested.filter((url) => !url.startsWith(`${origin}/`));
  assert.deepEqual(elsewhere, [], "the page asked for something not on the broker");
  for (const asset of ["dashboard.js", "dashboard.css", "uPlot.iife.min.js", "uPlot.min.css"]) {
    assert.ok(requested.includes(`${origin}/assets/${asset}`), `the page never loaded ${asset}`);
  }
  assert.deepEqual(problems, []);
});

/** What the broker was given before the page opened is on it at its first look. */
test("the groups table shows each group with its depth", async () => {
  await untilTexts("billing with 25 ready", {
    [cell(BILLING, "ready")]: "25",
    [cell(BILLING, "in_flight")]: "0",
    [cell(BILLING, "consumers")]: "0",
    [cell(BILLING, "mode")]: "shared",
    [cell(LEDGER, "mode")]: "exclusive",
    [cell(MAILER, "ready")]: "0",
    "#total-published": "25",
    "#queued-ready": "25",
  });
  assert.equal(await page.locator("#groups-table tbody tr").count(), 3);
  assert.equal(await page.textContent("#groups-count"), "3");
});

/** New messages reach the table, the tiles and both charts through polling alone. */
test("publishing more updates the table and the charts without a reload", async () => {
  await page.evaluate(() => {
    window.__sameDocument = true;
  });
  const chart = page.locator("#chart-rates canvas");
  const before = { shot: await chart.screenshot(), refreshes: await refreshes() };
  const publishedAt = Date.now();
  await publish("orders.created", 40);

  await untilTexts("billing with 65 ready", {
    [cell(BILLING, "ready")]: "65",
    "#total-published": "65",
    "#queued-ready": "65",
  });
  await until(
    "the 40 messages in the rates chart",
    (since) => {
      const [times, published] = window.__dashboard.charts.rates.data;
      return times.some((t, i) => t * 1000 >= since && published[i] > 0);
    },
    publishedAt,
  );
  await until("65 ready in the queued chart", () => {
    const ready = window.__dashboard.charts.queued.data[1];
    return ready[ready.length - 1] === 65;
  });
  assert.ok(await page.evaluate(() => window.__sameDocument), "the page was reloaded");
  assert.ok((await refreshes()) > before.refreshes);
  assert.ok(!before.shot.equals(await chart.screenshot()), "the rates chart looks the same");
});

/** A click on a row opens that group's counters and consumers; another row switches to it. */
test("a group's row opens its detail with its consumers", async () => {
  await publish(MAILER.topic, 12);
  // Holds 5 without acking: 7 ready, 5 in flight, one consumer.
  broker.spawnClient(["consume", MAILER.topic, "-g", MAILER.group, "--no-ack", "--prefetch", "5"]);
  await untilTexts("the mailer's consumer", { [cell(MAILER, "in_flight")]: "5" });
  await page.click(row(MAILER));
  const detail = '#group-detail:not([hidden])[data-topic="emails.send"][data-group="mailer"]';
  await untilTexts("the mailer's detail", {
    [`${detail} dd[data-field="ready"]`]: "7",
    [`${detail} dd[data-field="in_flight"]`]: "5",
    [`${detail} #group-consumers tbody tr td[data-field="in_flight"]`]: "5",
    [`${detail} #group-consumers tbody tr td[data-field="active"]`]: "active",
    "#group-consumers-count": "1",
  });
  assert.equal(await page.getAttribute(row(MAILER), "aria-selected"), "true");

  // The ledger's first consumer is active; the second waits as its standby.
  const ledger = ["consume", LEDGER.topic, "-g", LEDGER.group, "--mode", "exclusive"];
  broker.spawnClient([...ledger, "--no-ack", "--prefetch", "2"]);
  await untilTexts("the ledger's active consumer", { [cell(LEDGER, "consumers")]: "1" });
  broker.spawnClient([...ledger, "--standby", "--no-ack", "--prefetch", "2"]);
  await untilTexts("the ledger's standby", { [cell(LEDGER, "consumers")]: "2" });
  await page.click(row(LEDGER));
  await until("the ledger's detail with an active consumer and a standby", () => {
    const panel = document.querySelector('#group-detail:not([hidden])[data-group="ledger"]');
    const states = [...(panel?.querySelectorAll('#group-consumers td[data-field="active"]') ?? [])];
    return (
      states
        .map((td) => td.textContent)
        .sort()
        .join() === "active,standby"
    );
  });
  assert.equal(await page.getAttribute(row(MAILER), "aria-selected"), "false");

  await page.click("#group-detail-close");
  await until("the detail closed", () => document.getElementById("group-detail").hidden);
  await page.click(row(LEDGER));
  await until("the detail open again", () => !document.getElementById("group-detail").hidden);
});

/**
 * Publishes to three topics at rates that rise and fall, through one `switchyard pub` per topic
 * fed line by line, so the charts show waves rather than a flat line.
 */
function startTraffic() {
  const streams = [
    { topic: "orders.created", base: 60, swing: 45, period: 24 },
    { topic: "emails.send", base: 4, swing: 3, period: 15 },
    { topic: "payments.card", base: 1.5, swing: 1, period: 9 },
  ].map((stream) => ({ ...stream, publisher: broker.spawnClient(["pub", stream.topic]), owed: 0 }));
  const started = Date.now();
  const timer = setInterval(() => {
    const seconds = (Date.now() - started) / 1000;
    for (const s of streams) {
      s.owed += (s.base + s.swing * Math.sin((2 * Math.PI * seconds) / s.period)) / 10;
      const count = Math.floor(s.owed);
      s.owed -= count;
      if (count > 0) s.publisher.write(Array.from({ length: count }, () => `{"at":${Date.now()}}`));
    }
  }, 100);
  return {
    stop: async () => {
      clearInterval(timer);
      await Promise.all(streams.map((s) => s.publisher.stop()));
    },
  };
}

/** Under steady traffic the page keeps refreshing, shows the subscription and the connections. */
test(
  "under traffic the page stays live; a picture of it",
  { timeout: TRAFFIC_MS + 60_000 },
  async () => {
    broker.spawnClient(["consume", BILLING.topic, "-g", BILLING.group]);
    broker.spawnClient(["sub", "orders.*"]);
    traffic = startTraffic();
    const start = await refreshes();
    await sleep(TRAFFIC_MS);

    await untilTexts("the subscription", {
      '#subscriptions-table tbody tr[data-pattern="orders.*"] td[data-field="subscribers"]': "1",
    });
    // Three publishers, three consumers on two groups, a subscriber and the one on billing.
    await until(
      "the clients' connections",
      () => document.querySelectorAll("#connections-table tbody tr").length >= 7,
    );
    await until("billing's acks", () => {
      const acked = document.querySelector('tr[data-group="billing"] td[data-field="rates.acked"]');
      return Number(acked?.dataset.value) > 0;
    });
    const during = (await refreshes()) - start;
    assert.ok(during >= TRAFFIC_MS / 1000 - 2, `${during} refreshes in ${TRAFFIC_MS} ms`);
    assert.equal(await page.getAttribute("body", "data-state"), "live");
    assert.deepEqual(problems, []);

    mkdirSync(join(REPO_ROOT, "target"), { recursive: true });
    const picture = join(REPO_ROOT, "target", "dashboard.png");
    await page.screenshot({ path: picture, fullPage: true });
    if (UPDATE_SCREENSHOT) copyFileSync(picture, join(REPO_ROOT, "docs", "dashboard.png"));
  },
);

/** The page says when the broker is gone, and comes back by itself when one answers again. */
test("a stopped broker shows disconnected; a new one on the address recovers", async () => {
  await traffic.stop();
  traffic = undefined;
  await broker.stop();
  await until(
    "the disconnected state",
    () =>
      document.body.dataset.state === "disconnected" && !document.getElementById("banner").hidden,
  );
  assert.match(await page.textContent("#status-text"), /disconnected/);
  const before = await refreshes();

  replacement = await startBroker({ http: broker.http });
  await until(
    "the new broker's empty tables",
    (before) =>
      document.body.dataset.state === "live" &&
      Number(document.body.dataset.updated) > before &&
      document.getElementById("groups-table").dataset.rows === "0",
    before,
  );
  assert.ok(await page.evaluate(() => document.getElementById("banner").hidden));
});

/**
 * With authentication on, the page and its API need an admin token, which a browser sends as the
 * password of HTTP Basic (it asks for it itself after the 401); a wrong one is refused.
 */
test("behind authentication the page works with an admin token as the password", async () => {
  const guarded = await startBroker({ args: ["--auth-token", "s3cret-admin"] });
  const contexts = [];
  const open = async (password) => {
    const context = await browser.newContext({ httpCredentials: { username: "ops", password } });
    contexts.push(context);
    return context.newPage();
  };
  try {
    const wrong = await open("not-the-token");
    assert.equal((await wrong.goto(`${guarded.url}/`)).status(), 401);
    const right = await open("s3cret-admin");
    assert.equal((await right.goto(`${guarded.url}/`)).status(), 200);
    await right.waitForFunction(
      () => document.body.dataset.state === "live" && Number(document.body.dataset.updated) >= 2,
      null,
      { timeout: WAIT_MS },
    );
  } finally {
    await Promise.all(contexts.map((context) => context.close()));
    await guarded.stop();
  }
});
