// Starts the real `switchyard` binary (from SWITCHYARD_BIN) on 127.0.0.1:0, and learns the port the
// kernel gave it from the broker's ready file: no port is found free and released for another
// process to take, and no log line is parsed.

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before } from "node:test";
import { Client, type ClientOptions } from "@switchyard/client";

/** A running broker and a client connected to it. */
export interface TestBroker {
  /** `127.0.0.1:PORT`, as the broker's ready file names it. */
  readonly address: string;
  /** The broker's process id, for a test that signals it. */
  readonly pid: number;
  readonly client: Client;
  /**
   * Another connection, for tests that need one (a stalled stream must not hold up others), with
   * `options` over the ones the broker was started with.
   */
  connect(options?: ClientOptions): Promise<Client>;
  /** What the broker logged so far, for failure messages. */
  log(): string;
  /** Stops the broker as an operator would (SIGTERM, then SIGKILL after 5 s), leaving clients open. */
  shutdown(): Promise<void>;
  /** Kills the broker (SIGKILL), as a crash would, leaving clients open. */
  kill(): Promise<void>;
  /** Closes every client made here and stops the broker. */
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;
/** How often the ready file is looked for. */
const READY_POLL_MS = 20;
const ANSI = /\x1b\[[0-9;]*m/g;

/** What `--ready-file` holds once the broker serves. */
interface Ready {
  listen: string;
  pid: number;
}

/** This process's environment without SWITCHYARD_* settings: the broker runs as the test says. */
function cleanEnvironment(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith("SWITCHYARD_")),
  );
}

/**
 * Starts a broker with `args` added to `--listen LISTEN` (127.0.0.1:0, or the address of a broker
 * stopped before, to restart it); its clients connect with `clientOptions` (TLS and a token, for a
 * broker started with them).
 */
export async function startBroker(
  args: string[] = [],
  clientOptions: ClientOptions = {},
  listen = "127.0.0.1:0",
): Promise<TestBroker> {
  const bin = process.env.SWITCHYARD_BIN;
  if (!bin) {
    throw new Error("SWITCHYARD_BIN must name the switchyard server binary");
  }
  const dir = mkdtempSync(join(tmpdir(), "switchyard-test-"));
  const readyFile = join(dir, "ready.json");
  const child = spawn(
    bin,
    ["serve", "--listen", listen, "--ready-file", readyFile, "--shutdown-grace", "1s", ...args],
    {
      env: { ...cleanEnvironment(), NO_COLOR: "1", RUST_LOG: process.env.RUST_LOG ?? "info" },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  // If this test process dies first, the broker must not outlive it.
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);

  let log = "";
  const onOutput = (chunk: Buffer) => {
    log += chunk.toString().replace(ANSI, "");
  };
  child.stdout?.on("data", onOutput);
  child.stderr?.on("data", onOutput);
  let failed: Error | undefined;
  child.once("error", (error) => {
    failed = error;
  });
  child.once("exit", (code, signal) => {
    failed ??= new Error(`${bin} exited (${code ?? signal}) before it was ready:\n${log}`);
  });

  let ready: Ready;
  try {
    ready = await waitForReadyFile(
      readyFile,
      () => failed,
      () => log,
    );
    if (ready.pid !== child.pid) {
      throw new Error(`the ready file names pid ${ready.pid}, not ${child.pid}:\n${log}`);
    }
  } catch (error) {
    child.kill("SIGKILL");
    process.removeListener("exit", killOnExit);
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const address = ready.listen;

  const clients: Client[] = [];
  const connect = async (options: ClientOptions = {}) => {
    const client = await Client.connect(address, {
      callTimeoutMs: 5_000,
      ...clientOptions,
      ...options,
    });
    clients.push(client);
    return client;
  };
  const client = await connect();
  return {
    address,
    pid: ready.pid,
    client,
    connect,
    log: () => log,
    shutdown: () => stopChild(child),
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGKILL");
        await exited;
      }
    },
    stop: async () => {
      await Promise.all(clients.map((c) => c.close()));
      await stopChild(child);
      process.removeListener("exit", killOnExit);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The broker's ready file once it exists (the broker writes it beside its path and renames it, so it
 * is whole then), polled for at most START_TIMEOUT_MS; fails at once if the broker has failed.
 */
async function waitForReadyFile(
  path: string,
  failure: () => Error | undefined,
  log: () => string,
): Promise<Ready> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!existsSync(path)) {
    const failed = failure();
    if (failed) {
      throw failed;
    }
    if (Date.now() > deadline) {
      throw new Error(`no ready file ${path} within ${START_TIMEOUT_MS} ms:\n${log()}`);
    }
    await sleep(READY_POLL_MS);
  }
  return JSON.parse(readFileSync(path, "utf8")) as Ready;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return;
  }
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

/**
 * One broker for the tests of a file: started in `before`, stopped in `after`. The object can be
 * used at the top of the file; its members reach the broker once it runs.
 */
export function brokerForThisFile(
  args: string[] = [],
  clientOptions: ClientOptions = {},
): TestBroker {
  let current: TestBroker | undefined;
  before(
    async () => {
      current = await startBroker(args, clientOptions);
    },
    { timeout: START_TIMEOUT_MS * 2 },
  );
  after(
    async () => {
      await current?.stop();
    },
    { timeout: STOP_TIMEOUT_MS * 3 },
  );
  const running = () => {
    if (!current) {
      throw new Error("the broker starts in before(); use it inside a test");
    }
    return current;
  };
  return {
    get address() {
      return running().address;
    },
    get pid() {
      return running().pid;
    },
    get client() {
      return running().client;
    },
    connect: (options) => running().connect(options),
    log: () => running().log(),
    shutdown: () => running().shutdown(),
    kill: () => running().kill(),
    stop: () => running().stop(),
  };
}
