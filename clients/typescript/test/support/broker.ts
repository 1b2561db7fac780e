// Starts the real `switchyard` binary (from SWITCHYARD_BIN) on an ephemeral loopback port.

import { type ChildProcess, spawn } from "node:child_process";
import { after, before } from "node:test";
import { Client } from "@switchyard/client";

/** A running broker and a client connected to it. */
export interface TestBroker {
  /** `127.0.0.1:PORT`, as the broker reported it. */
  readonly address: string;
  readonly client: Client;
  /** Another connection, for tests that need one (a stalled stream must not hold up others). */
  connect(): Promise<Client>;
  /** What the broker logged so far, for failure messages. */
  log(): string;
  /** Stops the broker as an operator would (SIGTERM, then SIGKILL after 5 s), leaving clients open. */
  shutdown(): Promise<void>;
  /** Closes every client made here and stops the broker. */
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;
/** The broker's startup line, e.g. `switchyard serving listen=Some(127.0.0.1:36679)`. */
const SERVING = /serving\b.*?(\d{1,3}(?:\.\d{1,3}){3}:\d+)/;
const ANSI = /\x1b\[[0-9;]*m/g;

/** Starts a broker with `args` added to `--listen 127.0.0.1:0`. */
export async function startBroker(args: string[] = []): Promise<TestBroker> {
  const bin = process.env.SWITCHYARD_BIN;
  if (!bin) {
    throw new Error("SWITCHYARD_BIN must name the switchyard server binary");
  }
  const child = spawn(bin, ["--listen", "127.0.0.1:0", "--shutdown-grace-secs", "1", ...args], {
    env: { ...process.env, NO_COLOR: "1", RUST_LOG: process.env.RUST_LOG ?? "info" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  // If this test process dies first, the broker must not outlive it.
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);

  let log = "";
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${bin} did not report its address within ${START_TIMEOUT_MS} ms:\n${log}`));
    }, START_TIMEOUT_MS);
    const onOutput = (chunk: Buffer) => {
      log += chunk.toString().replace(ANSI, "");
      const match = SERVING.exec(log);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout?.on("data", onOutput);
    child.stderr?.on("data", onOutput);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${bin} exited (${code ?? signal}) before serving:\n${log}`));
    });
  });

  const clients: Client[] = [];
  const connect = async () => {
    const client = await Client.connect(address, { callTimeoutMs: 5_000 });
    clients.push(client);
    return client;
  };
  const client = await connect();
  return {
    address,
    client,
    connect,
    log: () => log,
    shutdown: () => stopChild(child),
    stop: async () => {
      await Promise.all(clients.map((c) => c.close()));
      await stopChild(child);
      process.removeListener("exit", killOnExit);
    },
  };
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
export function brokerForThisFile(args: string[] = []): TestBroker {
  let current: TestBroker | undefined;
  before(
    async () => {
      current = await startBroker(args);
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
    get client() {
      return running().client;
    },
    connect: () => running().connect(),
    log: () => running().log(),
    shutdown: () => running().shutdown(),
    stop: () => running().stop(),
  };
}
