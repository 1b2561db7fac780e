/**
 * The TypeScript client of Switchyard, a message broker that speaks gRPC.
 *
 * One `Client` (one HTTP/2 channel) serves the four patterns:
 * - publish/subscribe: `publish`, `publishBatch`, and `subscribe`, an async iterable of messages and gaps;
 * - work queues and exclusive consumers: `consume`, an async iterable of `Delivery`s settled with
 *   `ack`, `nack(delayMs)`, `reject` or `extend` (through the Ack RPC, batched per event-loop turn);
 * - request/reply: `request` (with `NoRespondersError` and `TimedOutError`) and the responder `serve`;
 * - group administration: `client.admin`.
 *
 * Errors are `SwitchyardError`s, of a subclass per broker reason (`FullError`, `ConflictError`, …)
 * with the reason, its metadata, the offending `field` and `retryAfterMs` (README "Errors").
 *
 * TLS, mutual TLS and the bearer token are `ClientOptions.tls` and `ClientOptions.token`.
 *
 * @packageDocumentation
 */

export { Admin, type GroupSettings } from "./admin.js";
export { Client, type ClientOptions, type RequestOptions } from "./client.js";
export { type ConsumeOptions, Consumer, Delivery } from "./consumer.js";
export {
  ConflictError,
  ExclusiveTakenError,
  FullError,
  InvalidArgumentError,
  NoRespondersError,
  NotFoundError,
  PermissionDeniedError,
  type RefusalOptions,
  Status,
  type StatusDetails,
  SwitchyardError,
  TimedOutError,
  UnauthenticatedError,
  fromStreamError,
} from "./errors.js";
export {
  ClosedError,
  type PendingPublish,
  Publisher,
  type PublisherOptions,
  Requester,
} from "./pipeline.js";
export { type Reply, type RequestHandler, Responder, type ServeOptions } from "./responder.js";
export { type Pem, type TlsOptions } from "./security.js";
export { ServerStream } from "./stream.js";
export { Subscription, type SubscriptionEvent } from "./subscription.js";
export type {
  ConsumeMode,
  GroupInfo,
  Message,
  OutgoingMessage,
  Payload,
  Published,
} from "./wire.js";

/** The code generated from the broker's schema, for what this package does not wrap. */
export * as pb from "./gen/switchyard/v1/broker.js";
/** The generated code of the Admin service. */
export * as adminPb from "./gen/switchyard/v1/admin.js";
