// A real `switchyard` broker process for the browser test, and the `switchyard` command line as
// its client. The broker listens on 127.0.0.1:0 for both gRPC and HTTP and says where in its ready
// file, as in the TypeScript client's harness (clients/typescript/test/support/broker.ts): no port
// is found free and released for another process to take, and no log line is parsed.

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

/** The repository's root: tests/browser/support/../../.. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;
/** A client command that takes longer than this has hung: the test fails rather than waits. */
const COMMAND_TIMEOUT_MS = 15_000;
const READY_POLL_MS = 20;
const ANSI = /\x1b\[[0-9;]*m/g;

/** SWITCHYARD_BIN (relative to where the test runs), or the repository's debug build. */
export function binary() {
  const bin = process.env.SWITCHYARD_BIN
    ? resolve(process.env.SWITCHYARD_BIN)
    : join(REPO_ROOT, "target", "debug", "switchyard");
  if (!existsSync(bin)) {
    throw new Error(`no switchyard binary at ${bin}: run \`cargo build\` or set SWITCHYARD_BIN`);
  }
  return bin;
}

/** This process's environment without SWITCHYARD_* settings: each process runs as it is told. */
function cleanEnvironment() {
  return {
    ...Object.fromEntries(
      Object.entries(process.env).filter(([name]) => !name.startsWith("SWITCHYARD_")),
    ),
    NO_COLOR: "1",
  };
}

/** Waits for `child` to exit after SIGTERM, with SIGKILL after STOP_TIMEOUT_MS. */
async function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) {
    return;
  }
  const exited = new Promise((done) => child.once("exit", done));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

/**
 * Starts `switchyard serve` on 127.0.0.1:0 (HTTP too, unless `http` names an address) and resolves
 * once its ready file says where it listens. Fails with the broker's output if it exits first or
 * does not get ready in time.
 */
export async function startBroker({ http = "127.0.0.1:0", args = [] } = {}) {
  const bin = binary();
  const dir = mkdtempSync(join(tmpdir(), "switchyard-browser-"));
  const readyFile = join(dir, "ready.json");
  const argv = ["serve", "--listen", "127.0.0.1:0", "--http", http, "--ready-file", readyFile];
  argv.push("--shutdown-grace", "1s", ...args);
  const child = spawn(bin, argv, {
    env: { ...cleanEnvironment(), RUST_LOG: process.env.RUST_LOG ?? "info" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  // If the test process dies first, the broker must not outlive it.
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);

  let log = "";
  const onOutput = (chunk) => {
    log += chunk.toString().replace(ANSI, "");
  };
  child.stdout.on("data", onOutput);
  child.stderr.on("data", onOutput);
  let failed;
  child.once("error", (error) => {
    failed = error;
  });
  child.once("exit", (code, signal) => {
    failed ??= new Error(
      `${bin} ${argv.join(" ")} exited (${code ?? signal}) before it was ready:\n${log}`,
    );
  });

  let ready;
  try {
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!existsSync(readyFile)) {
      if (failed) throw failed;
      if (Date.now() > deadline) {
        throw new Error(`no ready file ${readyFile} within ${START_TIMEOUT_MS} ms:\n${log}`);
      }
      await sleep(READY_POLL_MS);
    }
    // The broker writes the file beside its path and renames it: it is whole once it exists.
    ready = JSON.parse(readFileSync(readyFile, "utf8"));
    if (!ready.http) {
      throw new Error(
        `the ready file has no "http" address (${JSON.stringify(ready)}): this broker does not ` +
          `report its HTTP listener\n${log}`,
      );
    }
  } catch (error) {
    child.kill("SIGKILL");
    process.removeListener("exit", killOnExit);
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }

  const server = `http://${ready.listen}`;
  const clients = new Set();

  /** Runs a client command to its end; resolves with its stdout, fails with its stderr. */
  const run = (command, { input } = {}) =>
    new Promise((done, fail) => {
      const client = spawn(bin, [...command, "--server", server], {
        env: cleanEnvironment(),
        stdio: ["pipe", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      client.stdout.on("data", (chunk) => (stdout += chunk));
      client.stderr.on("data", (chunk) => (stderr += chunk));
      const timer = setTimeout(() => client.kill("SIGKILL"), COMMAND_TIMEOUT_MS);
      client.once("error", fail);
      client.once("exit", (code, signal) => {
        clearTimeout(timer);
        if (code === 0) done(stdout);
        else
          fail(new Error(`switchyard ${command.join(" ")} failed (${code ?? signal}):\n${stderr}`));
      });
      client.stdin.end(input ?? "");
    });

  /**
   * Starts a client command that runs until stopped (a consumer, a subscriber, a publisher fed
   * through `write`). Its stdout is discarded, so it never blocks on a full pipe.
   */
  const spawnClient = (command) => {
    const client = spawn(bin, [...command, "--server", server], {
      env: cleanEnvironment(),
      stdio: ["pipe", "ignore", "pipe"],
    });
    let stderr = "";
    client.stderr.on("data", (chunk) => (stderr += chunk));
    const handle = {
      command: command.join(" "),
      stderr: () => stderr,
      running: () => client.exitCode === null && client.signalCode === null,
      /** Writes lines to its stdin: for `pub`, each line is a message. */
      write: (lines) => client.stdin.write(lines.map((line) => `${line}\n`).join("")),
      stop: async () => {
        clients.delete(handle);
        client.stdin.end();
        await stopChild(client);
      },
    };
    clients.add(handle);
    return handle;
  };

  return {
    /** gRPC, as `http://host:port` for `--server`. */
    server,
    /** The HTTP listener's base URL. */
    url: `http://${ready.http}`,
    /** The HTTP listener's `host:port`, for starting another broker there. */
    http: ready.http,
    log: () => log,
    run,
    spawnClient,
    /** Stops every client started here, then the broker (SIGTERM, SIGKILL after 5 s). */
    stop: async () => {
      await Promise.all([...clients].map((client) => client.stop()));
      await stopChild(child);
      process.removeListener("exit", killOnExit);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
