// The client handle: one gRPC channel to the broker, and a method per pattern.

import {
  type ChannelCredentials,
  type ChannelOptions,
  type ClientOptions as GrpcClientOptions,
} from "@grpc/grpc-js";
import { AdminClient } from "./gen/switchyard/v1/admin.js";
import {
  BrokerClient,
  ConsumeRequest,
  PublishRequest,
  RequestRequest,
  SubscribeRequest,
} from "./gen/switchyard/v1/broker.js";
import { Admin } from "./admin.js";
import { type ConsumeOptions, Consumer, Settler } from "./consumer.js";
import { Status, SwitchyardError, TimedOutError, fromGrpcError } from "./errors.js";
import { Publisher, type PublisherOptions, Requester } from "./pipeline.js";
import { type RequestHandler, Responder, type ServeOptions } from "./responder.js";
import { type TlsOptions, bearerToken, channelCredentials, tlsChannelOptions } from "./security.js";
import { Subscription } from "./subscription.js";
import { unary } from "./unary.js";
import {
  type Message,
  type OutgoingMessage,
  type Published,
  fromPbMessage,
  fromPbPublished,
  toPbMessage,
  toPbMode,
  toUint32,
  toUint32Millis,
} from "./wire.js";

/** Options of a `Client`. */
export interface ClientOptions {
  /**
   * Deadline of each unary call (publish, ack, admin) and of a stream's opening, in ms. Default
   * 10000. A request's own timeout is separate (`RequestOptions.timeoutMs`).
   */
  callTimeoutMs?: number;
  /**
   * Speak TLS to a broker started with `--tls-cert` and `--tls-key`: `{ ca }` to trust the CA that
   * signed its certificate (`{}` trusts the system's roots), with `cert` and `key` for mutual TLS
   * (`--tls-client-ca`), and `serverName` when the certificate names another host. Default:
   * plaintext.
   */
  tls?: TlsOptions;
  /**
   * Sent as `authorization: Bearer <token>` on every call, streams included, for a broker started
   * with `--auth-token` or `--auth-file`. Without `tls` it crosses the connection in clear text: the
   * broker allows that, which is fine on loopback, but anyone on the path between two hosts can
   * read it and use it.
   */
  token?: string;
  /**
   * grpc-js channel credentials of your own, instead of `tls` (giving both is a `TypeError`).
   * Default: plaintext.
   */
  credentials?: ChannelCredentials;
  /** Passed to grpc-js as they are, e.g. `{ "grpc.keepalive_time_ms": 20000 }`. */
  channelOptions?: ChannelOptions;
}

/** Options of `Client.request`. */
export interface RequestOptions {
  /** How long to wait for the reply, in ms. Default 5000 (the broker's default). */
  timeoutMs?: number;
}

const DEFAULT_CALL_TIMEOUT_MS = 10_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;
const DEFAULT_CONCURRENCY = 16;
/**
 * How much longer a Request call may take than its reply timeout, so that the broker's own
 * DEADLINE_EXCEEDED, not a local one, is what normally ends it.
 */
const REQUEST_CALL_GRACE_MS = 1_000;

/**
 * A connection to a Switchyard broker. One `Client` serves every pattern; it is cheap to share.
 * Calls made before the connection is up wait for it (up to their deadline).
 */
export class Client {
  /** Declare, list and delete queue groups. */
  readonly admin: Admin;
  private readonly broker: BrokerClient;
  private readonly callTimeoutMs: number;
  /**
   * Subscriptions and consumers still open. grpc-js lets a closed channel's streams run on, so
   * `close()` ends them itself.
   */
  private readonly streams = new Set<Subscription | Consumer>();
  /** Responders still running, closed before the streams so they finish what they hold. */
  private readonly responders = new Set<Responder>();

  /** `address` is `host:port`, e.g. `127.0.0.1:50051`. Connecting happens on first use. */
  constructor(address: string, options: ClientOptions = {}) {
    this.callTimeoutMs = toUint32Millis(
      options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS,
      "callTimeoutMs",
    );
    const credentials = channelCredentials(options);
    const grpcOptions: Partial<GrpcClientOptions> = {
      ...tlsChannelOptions(options.tls),
      ...options.channelOptions,
      ...(options.token === undefined ? {} : { interceptors: [bearerToken(options.token)] }),
    };
    this.broker = new BrokerClient(address, credentials, grpcOptions);
    // One channel for both services: the Admin stub rides on the Broker stub's connection, and has
    // the token's interceptor too (interceptors belong to a stub, not to its channel).
    const admin = new AdminClient(address, credentials, {
      ...grpcOptions,
      channelOverride: this.broker.getChannel(),
    });
    this.admin = new Admin(admin, this.callTimeoutMs);
  }

  /** Makes a client and waits until its connection is up, for at most `callTimeoutMs`. */
  static async connect(address: string, options: ClientOptions = {}): Promise<Client> {
    const client = new Client(address, options);
    await new Promise<void>((resolve, reject) => {
      client.broker.waitForReady(Date.now() + client.callTimeoutMs, (error) => {
        if (error) {
          void client.close();
          reject(
            new SwitchyardError(
              Status.UNAVAILABLE,
              `cannot connect to ${address}: ${error.message}`,
              {
                cause: error,
              },
            ),
          );
        } else {
          resolve();
        }
      });
    });
    return client;
  }

  /** Publishes one message. Publishing to a topic nobody listens on is no error. */
  async publish(message: OutgoingMessage): Promise<Published> {
    const [published] = await this.publishBatch([message]);
    if (!published) {
      throw new SwitchyardError(Status.INTERNAL, "the broker acknowledged no message");
    }
    return published;
  }

  /**
   * Publishes a batch, all or nothing: if any message is invalid, or any group it would go to is
   * full, nothing is routed and the error names the message (`messages[2].topic: …`). The result is
   * in the order of `messages`.
   */
  async publishBatch(messages: readonly OutgoingMessage[]): Promise<Published[]> {
    const request = PublishRequest.fromPartial({ messages: messages.map(toPbMessage) });
    const response = await unary(
      this.broker.publish.bind(this.broker),
      request,
      this.callTimeoutMs,
    );
    return response.published.map(fromPbPublished);
  }

  /**
   * A publisher that batches messages onto one PublishStream, in order, with backpressure (see
   * `Publisher`). Close it when done.
   */
  publisher(options: PublisherOptions = {}): Publisher {
    return new Publisher(this.broker, options);
  }

  /** A requester that pipelines requests on one RequestStream (see `Requester`). Close it when done. */
  requester(): Requester {
    return new Requester(this.broker);
  }

  /**
   * Subscribes to every message published to a topic matching `pattern` (`*` is one token, a
   * trailing `>` one or more). Resolves once the broker has the subscription, so a publish made
   * after it is seen.
   */
  async subscribe(pattern: string): Promise<Subscription> {
    const request = SubscribeRequest.fromPartial({ topic: pattern });
    const start = () => this.broker.subscribe(request);
    return this.track(await Subscription.open(start, this.callTimeoutMs));
  }

  /**
   * Joins a queue group (creating it with the broker's defaults if it is new). Resolves once the
   * broker has attached the consumer; refusals (`INVALID_ARGUMENT`, `FAILED_PRECONDITION` for a taken
   * exclusive group or another mode) reject here.
   */
  async consume(options: ConsumeOptions): Promise<Consumer> {
    const request = ConsumeRequest.fromPartial({
      topic: options.topic,
      group: options.group,
      mode: toPbMode(options.mode),
      prefetch: toUint32(options.prefetch ?? 0, "prefetch"),
      ackDeadlineMs: toUint32Millis(options.ackDeadlineMs ?? 0, "ackDeadlineMs"),
      standby: options.standby ?? false,
    });
    const start = () => this.broker.consume(request);
    const settler = new Settler(this.broker, this.callTimeoutMs);
    return this.track(
      await Consumer.open(start, settler, this.callTimeoutMs, options.onDisconnect),
    );
  }

  /**
   * Sends a request and waits for the first reply. The broker sets the message's `replyTo` (and its
   * `correlationId`, unless you set one). Rejects with `NoRespondersError` at once when nothing
   * subscribes to or consumes the topic, and with `TimedOutError` when no reply comes in time.
   */
  async request(message: OutgoingMessage, options: RequestOptions = {}): Promise<Message> {
    const timeoutMs = toUint32Millis(options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS, "timeoutMs");
    // 0 would mean "the broker's default" on the wire; a caller asking for 0 ms wants the shortest.
    const wireTimeoutMs = Math.max(timeoutMs, 1);
    const request = RequestRequest.fromPartial({
      message: toPbMessage(message),
      timeoutMs: wireTimeoutMs,
    });
    let response;
    try {
      response = await unary(
        this.broker.request.bind(this.broker),
        request,
        wireTimeoutMs + REQUEST_CALL_GRACE_MS,
      );
    } catch (error) {
      throw requestError(fromGrpcError(error), timeoutMs);
    }
    if (!response.reply) {
      throw new SwitchyardError(Status.INTERNAL, "the broker sent an empty reply");
    }
    return fromPbMessage(response.reply);
  }

  /**
   * Answers requests on `topic` as a member of queue group `group`: each request goes to one
   * responder of the group, `handler` answers it, the answer is published to the request's `replyTo`
   * with its `correlationId`, and the request is acked. A handler that throws rejects the request.
   * Resolves once the responder has joined the group.
   */
  async serve(
    topic: string,
    group: string,
    handler: RequestHandler,
    options: ServeOptions = {},
  ): Promise<Responder> {
    const concurrency = toUint32(options.concurrency ?? DEFAULT_CONCURRENCY, "concurrency");
    const consumer = await this.consume({
      topic,
      group,
      prefetch: Math.max(concurrency, 1),
      ...(options.ackDeadlineMs === undefined ? {} : { ackDeadlineMs: options.ackDeadlineMs }),
    });
    const onError =
      options.onError ??
      ((error: unknown, request: Message) =>
        process.emitWarning(
          `switchyard responder on ${topic}/${group}: request ${request.id} failed: ${String(error)}`,
        ));
    const responder = new Responder(consumer, handler, (reply) => this.publish(reply), onError);
    this.responders.add(responder);
    void responder.done.finally(() => this.responders.delete(responder)).catch(() => {});
    return responder;
  }

  /**
   * Closes this client's responders (each finishes the requests it holds), then its subscriptions
   * and consumers (their loops end without an error; consumers send their pending settlements
   * first), then the channel. Unary calls in flight still finish.
   */
  async close(): Promise<void> {
    await Promise.all([...this.responders].map((responder) => responder.close()));
    await Promise.all([...this.streams].map((stream) => stream.close()));
    this.broker.close();
  }

  private track<S extends Subscription | Consumer>(stream: S): S {
    this.streams.add(stream);
    void stream.ended.then(() => this.streams.delete(stream));
    return stream;
  }
}

/**
 * A failed Request call as the error a caller matches on. The broker's refusals are classed by their
 * reason already; what is left is the call's own deadline (no reason), which a request's caller
 * sees as its timeout too.
 */
function requestError(error: Error, timeoutMs: number): Error {
  if (
    error instanceof SwitchyardError &&
    !(error instanceof TimedOutError) &&
    error.reason === undefined &&
    error.code === Status.DEADLINE_EXCEEDED
  ) {
    return new TimedOutError(error.code, error.details, { cause: error, timeoutMs });
  }
  return error;
}
