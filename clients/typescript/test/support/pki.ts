// A throwaway PKI for the TLS tests, made at test time: a CA, a server certificate for 127.0.0.1
// and localhost, and a client certificate, all signed by the CA. node:crypto makes the keys (fast,
// native); node-forge signs the certificates, which node:crypto cannot.

import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as forge from "node-forge";

/** The PEM text of each part, and the files the broker is started with. */
export interface TestPki {
  readonly caPem: string;
  readonly clientCertPem: string;
  readonly clientKeyPem: string;
  /** The directory of the files below, for the caller to remove. */
  readonly dir: string;
  readonly caFile: string;
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
}

const HOUR_MS = 3_600_000;

interface KeyPair {
  /** For the files and for grpc-js: PKCS #8. */
  pem: string;
  forge: forge.pki.rsa.PrivateKey;
}

function newKey(): KeyPair {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const pkcs1 = privateKey.export({ type: "pkcs1", format: "pem" }).toString();
  return {
    pem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    forge: forge.pki.privateKeyFromPem(pkcs1),
  };
}

/** A certificate of `subject`'s key, signed by `issuerKey` as `issuer`, with `extensions`. */
function certificate(
  serial: string,
  subject: string,
  key: KeyPair,
  issuer: string,
  issuerKey: KeyPair,
  extensions: object[],
): string {
  const cert = forge.pki.createCertificate();
  cert.serialNumber = serial;
  cert.publicKey = forge.pki.setRsaPublicKey(key.forge.n, key.forge.e);
  cert.validity.notBefore = new Date(Date.now() - HOUR_MS);
  cert.validity.notAfter = new Date(Date.now() + 24 * HOUR_MS);
  cert.setSubject([{ name: "commonName", value: subject }]);
  cert.setIssuer([{ name: "commonName", value: issuer }]);
  cert.setExtensions(extensions);
  cert.sign(issuerKey.forge, forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}

/** Makes the CA and both certificates, and writes the broker's files to a new directory. */
export function newTestPki(): TestPki {
  const ca = "switchyard test CA";
  const caKey = newKey();
  const caPem = certificate("01", ca, caKey, ca, caKey, [
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, digitalSignature: true, critical: true },
  ]);
  const leaf = (serial: string, name: string, usage: object, altNames: object[]) => {
    const key = newKey();
    const extensions = [
      { name: "basicConstraints", cA: false },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
      { name: "extKeyUsage", ...usage },
      ...(altNames.length === 0 ? [] : [{ name: "subjectAltName", altNames }]),
    ];
    return { cert: certificate(serial, name, key, ca, caKey, extensions), key: key.pem };
  };
  // subjectAltName types: 2 is a DNS name, 7 an IP address.
  const server = leaf("02", "switchyard test server", { serverAuth: true }, [
    { type: 2, value: "localhost" },
    { type: 7, ip: "127.0.0.1" },
  ]);
  const client = leaf("03", "switchyard test client", { clientAuth: true }, []);

  const dir = mkdtempSync(join(tmpdir(), "switchyard-pki-"));
  const write = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text, { mode: 0o600 });
    return path;
  };
  return {
    caPem,
    clientCertPem: client.cert,
    clientKeyPem: client.key,
    dir,
    caFile: write("ca.pem", caPem),
    serverCertFile: write("server.pem", server.cert),
    serverKeyFile: write("server.key", server.key),
  };
}
