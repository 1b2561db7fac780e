// All conversion between the generated protobuf types (`pb`) and this client's types, in one place,
// so a schema change touches this file and nothing else.

import * as pb from "./gen/switchyard/v1/broker.js";
import * as adminPb from "./gen/switchyard/v1/admin.js";

/** A message as the broker delivered it. */
export interface Message {
  /** The broker's id (a UUID v7), kept across redeliveries and dead-lettering. */
  readonly id: string;
  readonly topic: string;
  /** The bytes as published; `payload.toString()` decodes UTF-8. */
  readonly payload: Buffer;
  readonly headers: Readonly<Record<string, string>>;
  /** Empty when the publisher set none. */
  readonly key: string;
  /** Where a request wants its reply; empty on a plain publish. */
  readonly replyTo: string;
  readonly correlationId: string;
  /** When the broker accepted it. */
  readonly publishedAt: Date | undefined;
}

/** A payload: bytes as they are, or a string sent as UTF-8. */
export type Payload = Uint8Array | string;

/** A message to publish. Only `topic` is required; the broker sets `id` and `publishedAt`. */
export interface OutgoingMessage {
  /** A concrete topic (no wildcards), e.g. `orders.eu.created`. */
  topic: string;
  payload?: Payload;
  headers?: Record<string, string>;
  key?: string;
  replyTo?: string;
  correlationId?: string;
}

/** What the broker did with one published message. */
export interface Published {
  readonly id: string;
  /** Subscriptions (and waiting requests) the message was offered to. */
  readonly subscribers: number;
  /** Queue groups that stored a copy. */
  readonly groups: number;
}

/** How a queue group hands out messages. */
export type ConsumeMode = "shared" | "exclusive";

/** A queue group's settings and counters, as `Admin.listGroups` reports them. */
export interface GroupInfo {
  readonly topic: string;
  readonly group: string;
  readonly mode: ConsumeMode;
  /** Waiting, including delayed redeliveries. */
  readonly ready: number;
  /** Delivered, not yet settled. */
  readonly inFlight: number;
  /** Attached consumers, standbys included. */
  readonly consumers: number;
  /** Deliveries made, redeliveries included. */
  readonly delivered: number;
  readonly acked: number;
  readonly redelivered: number;
  readonly deadLettered: number;
  /** What the held messages are charged, as the broker's memory budget counts them. */
  readonly bytes: number;
}

export function toPbMessage(message: OutgoingMessage): pb.Message {
  return pb.Message.fromPartial({
    topic: message.topic,
    payload: toBuffer(message.payload),
    headers: message.headers ?? {},
    key: message.key ?? "",
    replyTo: message.replyTo ?? "",
    correlationId: message.correlationId ?? "",
  });
}

export function fromPbMessage(message: pb.Message): Message {
  return {
    id: message.id,
    topic: message.topic,
    payload: message.payload,
    headers: message.headers,
    key: message.key,
    replyTo: message.replyTo,
    correlationId: message.correlationId,
    publishedAt: message.publishedAt,
  };
}

export function fromPbPublished(published: pb.Published): Published {
  return { id: published.id, subscribers: published.subscribers, groups: published.groups };
}

export function toPbMode(mode: ConsumeMode | undefined): pb.ConsumeMode {
  switch (mode) {
    case undefined:
    case "shared":
      return pb.ConsumeMode.CONSUME_MODE_SHARED;
    case "exclusive":
      return pb.ConsumeMode.CONSUME_MODE_EXCLUSIVE;
  }
}

export function fromPbMode(mode: pb.ConsumeMode): ConsumeMode {
  return mode === pb.ConsumeMode.CONSUME_MODE_EXCLUSIVE ? "exclusive" : "shared";
}

export function fromPbGroupInfo(info: adminPb.GroupInfo): GroupInfo {
  return {
    topic: info.topic,
    group: info.group,
    mode: fromPbMode(info.mode),
    ready: info.ready,
    inFlight: info.inFlight,
    consumers: info.consumers,
    delivered: info.delivered,
    acked: info.acked,
    redelivered: info.redelivered,
    deadLettered: info.deadLettered,
    bytes: info.bytes,
  };
}

function toBuffer(payload: Payload | undefined): Buffer {
  if (payload === undefined) {
    return Buffer.alloc(0);
  }
  if (typeof payload === "string") {
    return Buffer.from(payload, "utf8");
  }
  // A view, not a copy: grpc-js encodes the request before `publish` returns its promise, so the
  // caller's bytes are read then and not kept.
  return Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
}

/** The largest value of a `uint32` field. */
const UINT32_MAX = 0xffff_ffff;

/**
 * A duration in ms for a `uint32` field: rounded up to whole ms (so 0.5 is 1, not "use the default"),
 * capped at the field's range. Negative or non-finite values are a `RangeError`, thrown here rather
 * than sent as a wrapped-around number.
 */
export function toUint32Millis(value: number, name: string): number {
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(`${name} must be a finite number of milliseconds >= 0, not ${value}`);
  }
  return Math.min(Math.ceil(value), UINT32_MAX);
}

/** A count for a `uint32` field, e.g. a prefetch: a whole number in range, else a `RangeError`. */
/** A uint64 field from a JavaScript number: whole, not negative, and exactly representable. */
export function toUint64(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(
      `${name} must be a whole number from 0 to ${Number.MAX_SAFE_INTEGER}, not ${value}`,
    );
  }
  return value;
}

export function toUint32(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 0 || value > UINT32_MAX) {
    throw new RangeError(`${name} must be a whole number from 0 to ${UINT32_MAX}, not ${value}`);
  }
  return value;
}
