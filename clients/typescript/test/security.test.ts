// TLS, mutual TLS and bearer tokens against a broker started with them: what works, and how each
// refusal reaches the caller.

import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import {
  Client,
  type ClientOptions,
  PermissionDeniedError,
  Status,
  SwitchyardError,
  UnauthenticatedError,
} from "@switchyard/client";
import { type TestBroker, startBroker } from "./support/broker.js";
import { newTestPki } from "./support/pki.js";
import { Inbox, unique } from "./support/wait.js";

const pki = newTestPki();
after(() => rmSync(pki.dir, { recursive: true, force: true }));

/** The token file of these tests: an admin, and a token that may subscribe but publish nothing. */
const tokenFile = join(pki.dir, "tokens.json");
writeFileSync(
  tokenFile,
  JSON.stringify({
    tokens: [
      { name: "ops", token: "ops-secret", admin: true },
      { name: "reader", token: "reader-secret", publish: { allow: [] } },
    ],
  }),
);

const tlsFlags = ["--tls-cert", pki.serverCertFile, "--tls-key", pki.serverKeyFile];
const authFlags = ["--auth-file", tokenFile];
const trusted: ClientOptions = { tls: { ca: pki.caPem }, token: "ops-secret" };

/** Runs `body` against a broker started with `args`, whose first client has `options`. */
async function withBroker(
  args: string[],
  options: ClientOptions,
  body: (broker: TestBroker) => Promise<void>,
): Promise<void> {
  const broker = await startBroker(args, options);
  try {
    await body(broker);
  } finally {
    await broker.stop();
  }
}

/** Runs `body` with a client that is not waited on: its connection may fail, which is the point. */
async function withClient(
  address: string,
  options: ClientOptions,
  body: (client: Client) => Promise<void>,
): Promise<void> {
  const client = new Client(address, { callTimeoutMs: 5_000, ...options });
  try {
    await body(client);
  } finally {
    await client.close();
  }
}

/** Subscribes, publishes and reads the message back: the token rides on streams and unary calls. */
async function roundtrip(client: Client): Promise<void> {
  const topic = unique("secure");
  const inbox = new Inbox(await client.subscribe(topic));
  await client.publish({ topic, payload: "over tls" });
  const event = await inbox.next(5_000, "the message published over TLS");
  assert.equal(event.kind, "message");
  assert.equal(event.kind === "message" && event.message.payload.toString(), "over tls");
}

/** A matcher for `assert.rejects`: an error of `type` with `code`, and `reason` when given. */
function refused(
  type: new (...args: never[]) => SwitchyardError,
  code: Status,
  details?: RegExp,
  reason?: string,
) {
  return (error: unknown) => {
    assert.ok(error instanceof type, `expected a ${type.name}, got ${String(error)}`);
    assert.equal(error.code, code, `code of "${error.message}"`);
    if (reason !== undefined) {
      assert.equal(error.reason, reason, `reason of "${error.message}"`);
    }
    if (details) {
      assert.match(error.details, details);
    }
    return true;
  };
}

/// TLS with the broker's CA and a known token: publish, subscribe and admin calls work.
test("TLS with a token works", { timeout: 30_000 }, async () => {
  await withBroker([...tlsFlags, ...authFlags], trusted, async (broker) => {
    await roundtrip(broker.client);
    await broker.client.admin.listGroups();
  });
});

/// No token, or one the broker does not know, is an UnauthenticatedError, on unary calls and streams.
test("a missing or wrong token is UnauthenticatedError", { timeout: 30_000 }, async () => {
  await withBroker([...tlsFlags, ...authFlags], trusted, async (broker) => {
    for (const token of [undefined, "not-a-token"]) {
      const client = await broker.connect({ tls: { ca: pki.caPem }, token });
      const unauthenticated = refused(
        UnauthenticatedError,
        Status.UNAUTHENTICATED,
        undefined,
        "UNAUTHENTICATED",
      );
      await assert.rejects(client.publish({ topic: "secure.x" }), unauthenticated);
      await assert.rejects(client.subscribe("secure.>"), unauthenticated);
      await assert.rejects(client.admin.listGroups(), unauthenticated);
    }
  });
});

/// A known token that may not do something is a PermissionDeniedError naming the field.
test("a forbidden call is PermissionDeniedError", { timeout: 30_000 }, async () => {
  await withBroker([...tlsFlags, ...authFlags], trusted, async (broker) => {
    const reader = await broker.connect({ token: "reader-secret" });
    await (await reader.subscribe("secure.>")).close();
    await assert.rejects(reader.publish({ topic: "secure.x" }), (error: unknown) => {
      refused(
        PermissionDeniedError,
        Status.PERMISSION_DENIED,
        undefined,
        "PERMISSION_DENIED",
      )(error);
      assert.equal((error as SwitchyardError).field, "messages[0].topic");
      assert.equal((error as SwitchyardError).metadata["token"], "reader");
      return true;
    });
    await assert.rejects(
      reader.admin.listGroups(),
      refused(PermissionDeniedError, Status.PERMISSION_DENIED, undefined, "NOT_ADMIN"),
    );
  });
});

/// `serverName` is what the certificate is checked against: "localhost" is in it, another name not.
test("tls.serverName overrides the name checked", { timeout: 30_000 }, async () => {
  await withBroker([...tlsFlags, ...authFlags], trusted, async (broker) => {
    const named = await broker.connect({ tls: { ca: pki.caPem, serverName: "localhost" } });
    await named.publish({ topic: "secure.named" });
    await withClient(
      broker.address,
      { ...trusted, tls: { ca: pki.caPem, serverName: "elsewhere.example" } },
      async (client) => {
        await assert.rejects(
          client.publish({ topic: "secure.named" }),
          refused(SwitchyardError, Status.UNAVAILABLE, /elsewhere\.example/),
        );
      },
    );
  });
});

/// Without `ca` the system's roots are used, and they do not trust a test CA.
test("tls without ca uses the system's roots", { timeout: 30_000 }, async () => {
  await withBroker(tlsFlags, { tls: { ca: pki.caPem } }, async (broker) => {
    await withClient(broker.address, { tls: {} }, async (client) => {
      await assert.rejects(
        client.publish({ topic: "secure.x" }),
        refused(SwitchyardError, Status.UNAVAILABLE, /self.signed|issuer|unable to (get|verify)/i),
      );
    });
  });
});

/// A broker with --tls-client-ca serves a client with a certificate its CA signed, and refuses one
/// without.
test("mutual TLS needs the client's certificate", { timeout: 30_000 }, async () => {
  const mutual: ClientOptions = {
    tls: { ca: pki.caPem, cert: pki.clientCertPem, key: pki.clientKeyPem },
    token: "ops-secret",
  };
  const args = [...tlsFlags, "--tls-client-ca", pki.caFile, ...authFlags];
  await withBroker(args, mutual, async (broker) => {
    await roundtrip(broker.client);
    // Only the code is checked: in TLS 1.3 the client's side of the handshake is done before the
    // broker refuses it, so the client may read the broker's alert ("certificate required") or just
    // find the socket closed, as the timing falls.
    await withClient(broker.address, trusted, async (client) => {
      await assert.rejects(
        client.publish({ topic: "secure.x" }),
        refused(SwitchyardError, Status.UNAVAILABLE),
      );
    });
  });
});

/// A token over plaintext works: the broker allows it (on loopback it is the usual setup).
test("a token over plaintext works", { timeout: 30_000 }, async () => {
  await withBroker(["--auth-token", "plain-secret"], { token: "plain-secret" }, async (broker) => {
    await roundtrip(broker.client);
    const anonymous = await broker.connect({ token: undefined });
    await assert.rejects(
      anonymous.publish({ topic: "secure.x" }),
      refused(UnauthenticatedError, Status.UNAUTHENTICATED),
    );
  });
});

/// Options that cannot be used throw when the client is made; nothing is dialled.
test("unusable security options throw", () => {
  assert.throws(() => new Client("127.0.0.1:1", { token: "two\nlines" }), RangeError);
  assert.throws(() => new Client("127.0.0.1:1", { token: "" }), RangeError);
  assert.throws(
    () => new Client("127.0.0.1:1", { tls: { ca: pki.caPem, cert: pki.clientCertPem } }),
    TypeError,
  );
});
