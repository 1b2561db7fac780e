// How the client meets a broker's security settings: TLS credentials, and the bearer token on
// every call.

import {
  type ChannelCredentials,
  type ChannelOptions,
  InterceptingCall,
  type Interceptor,
  credentials as grpcCredentials,
} from "@grpc/grpc-js";

/** PEM text, as a string or the bytes of a file. */
export type Pem = string | Uint8Array;

/**
 * TLS to a broker started with `--tls-cert` and `--tls-key`. `{}` is valid: it trusts the system's
 * roots (Node's bundled CA list) and presents no certificate.
 */
export interface TlsOptions {
  /** The CA certificates that signed the broker's certificate. Default: the system's roots. */
  ca?: Pem;
  /**
   * The client's certificate chain and private key, for a broker started with `--tls-client-ca`
   * (mutual TLS). Give both or neither.
   */
  cert?: Pem;
  key?: Pem;
  /**
   * The name the broker's certificate is checked against (and sent as SNI) when it is not the host
   * of the address: dialling `10.0.0.5:50051` whose certificate names `broker.internal`, say.
   */
  serverName?: string;
}

/** What `ClientOptions` says about security, as `channelCredentials` reads it. */
export interface SecurityOptions {
  credentials?: ChannelCredentials;
  tls?: TlsOptions;
}

/** The channel's credentials: `tls`, or `credentials` as given, or plaintext. */
export function channelCredentials(options: SecurityOptions): ChannelCredentials {
  const { tls } = options;
  if (tls === undefined) {
    return options.credentials ?? grpcCredentials.createInsecure();
  }
  if (options.credentials !== undefined) {
    throw new TypeError("give tls or credentials, not both: tls makes the channel's credentials");
  }
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new TypeError("tls.cert and tls.key go together: give both for mutual TLS, or neither");
  }
  return grpcCredentials.createSsl(
    tls.ca === undefined ? null : Buffer.from(tls.ca),
    tls.key === undefined ? null : Buffer.from(tls.key),
    tls.cert === undefined ? null : Buffer.from(tls.cert),
  );
}

/** The channel options `tls` adds: the server name override, when there is one. */
export function tlsChannelOptions(tls: TlsOptions | undefined): ChannelOptions {
  return tls?.serverName === undefined ? {} : { "grpc.ssl_target_name_override": tls.serverName };
}

/**
 * Adds `authorization: Bearer <token>` to every call, unary and streaming. An interceptor, not
 * grpc-js call credentials, because grpc-js refuses call credentials on a plaintext channel, and
 * the broker accepts a token over plaintext (on loopback that is the usual setup).
 */
export function bearerToken(token: string): Interceptor {
  // Metadata values are visible ASCII and spaces; anything else would fail every call far from
  // its cause.
  if (!/^[\x20-\x7e]+$/.test(token)) {
    throw new RangeError("token must be non-empty and printable ASCII");
  }
  const header = `Bearer ${token}`;
  return (options, nextCall) =>
    new InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set("authorization", header);
        next(metadata, listener);
      },
    });
}
