// The client's errors: one class per case a caller acts on, chosen by the broker's stable reason.

import { status as Status, type ServiceError } from "@grpc/grpc-js";
import { type StreamError } from "./gen/switchyard/v1/broker.js";
import { type StatusDetails, statusDetails } from "./status-details.js";

export { Status, type StatusDetails };

/** What a `SwitchyardError` is built from besides its code and message. */
export interface RefusalOptions extends Partial<StatusDetails> {
  cause?: unknown;
}

/** The broker (or the gRPC layer) refused a call. `code` is the gRPC status code. */
export class SwitchyardError extends Error {
  /** The gRPC status code, e.g. `Status.INVALID_ARGUMENT`. */
  readonly code: Status;
  /** The broker's message without the code, for people: match on `reason`, not on this. */
  readonly details: string;
  /**
   * The broker's `ErrorInfo.reason` (`GROUP_FULL`, `NO_RESPONDERS`: docs/semantics.md, Reasons);
   * undefined for errors raised in the client or by the gRPC layer.
   */
  readonly reason: string | undefined;
  /** The `ErrorInfo.metadata`: what the refusal is about (`group`, `topic`, `max_length`, …). */
  readonly metadata: Record<string, string>;
  /**
   * From the `BadRequest` detail: the path of the offending input as the broker names it
   * (`messages[1].payload`, `group`, `timeout_ms`, `topic`); otherwise undefined.
   */
  readonly field: string | undefined;
  /** From the `RetryInfo` detail: how long to wait before trying again, where waiting helps. */
  readonly retryAfterMs: number | undefined;

  constructor(code: Status, details: string, options: RefusalOptions = {}) {
    super(`${Status[code] ?? code}: ${details}`, { cause: options.cause });
    // The subclass's own name, so a logged error says which case it is.
    this.name = new.target.name;
    this.code = code;
    this.details = details;
    this.reason = options.reason;
    this.metadata = options.metadata ?? {};
    this.field = options.field;
    this.retryAfterMs = options.retryAfterMs;
  }
}

// The subclasses take the code they were sent rather than fixing one: the class says what happened
// (the reason), and `code` stays what the wire said.

/** Malformed input (`INVALID_ARGUMENT`); `field` names it. */
export class InvalidArgumentError extends SwitchyardError {}

/**
 * A group is at its `max_length` or `max_bytes`, or the broker's memory budget is spent
 * (`RESOURCE_EXHAUSTED`): nothing of the batch was routed. `retryAfterMs` is set unless the batch can
 * never fit.
 */
export class FullError extends SwitchyardError {}

/** An exclusive group already has its active consumer (`FAILED_PRECONDITION`). */
export class ExclusiveTakenError extends SwitchyardError {}

/**
 * The group exists in the other mode, or with another setting (`FAILED_PRECONDITION`); `metadata`
 * has `setting`, `existing` and `requested`.
 */
export class ConflictError extends SwitchyardError {}

/** No such group, or the consumer's group was deleted (`NOT_FOUND`). */
export class NotFoundError extends SwitchyardError {}

/**
 * The broker has authentication on and the call carried no token, or one it does not know
 * (`UNAUTHENTICATED`; see `ClientOptions.token`).
 */
export class UnauthenticatedError extends SwitchyardError {}

/**
 * The token is known but may not do this: publish to that topic, subscribe to that pattern, an admin
 * call without `"admin": true` (`PERMISSION_DENIED`). `field` names the input refused.
 */
export class PermissionDeniedError extends SwitchyardError {}

/** A request found no subscriber and no group on its topic (the broker's `UNAVAILABLE`). */
export class NoRespondersError extends SwitchyardError {
  /** The request's topic, from the reason's metadata. */
  get topic(): string {
    return this.metadata["topic"] ?? "";
  }
}

/** A request got no reply within its timeout (`DEADLINE_EXCEEDED`, from the broker or locally). */
export class TimedOutError extends SwitchyardError {
  /** The request's timeout: the caller's, or the broker's `timeout_ms` metadata. */
  readonly timeoutMs: number;

  constructor(
    code: Status,
    details: string,
    options: RefusalOptions & { timeoutMs?: number } = {},
  ) {
    super(code, details, options);
    this.timeoutMs = options.timeoutMs ?? Number(this.metadata["timeout_ms"] ?? 0);
  }
}

type Refusal = new (code: Status, details: string, options: RefusalOptions) => SwitchyardError;

/**
 * The class of each reason (docs/semantics.md, Reasons). A reason not here (`TOO_MANY_STREAMS`,
 * `SHUTTING_DOWN`, …, or one a newer broker adds) is a plain `SwitchyardError` with its `reason`.
 * A Map, not an object literal: a reason is the broker's string, and must not find `toString`.
 */
const BY_REASON: ReadonlyMap<string, Refusal> = new Map<string, Refusal>([
  ["INVALID_ARGUMENT", InvalidArgumentError],
  ["GROUP_FULL", FullError],
  ["GROUP_BYTES_FULL", FullError],
  ["MEMORY_FULL", FullError],
  ["GROUP_EXCLUSIVE_TAKEN", ExclusiveTakenError],
  ["MODE_MISMATCH", ConflictError],
  ["GROUP_CONFLICT", ConflictError],
  ["UNKNOWN_GROUP", NotFoundError],
  ["GROUP_DELETED", NotFoundError],
  ["NO_RESPONDERS", NoRespondersError],
  ["REQUEST_TIMED_OUT", TimedOutError],
  ["UNAUTHENTICATED", UnauthenticatedError],
  ["PERMISSION_DENIED", PermissionDeniedError],
  ["NOT_ADMIN", PermissionDeniedError],
]);

/**
 * Without details (a proxy, an older broker, the gRPC layer itself), only codes that mean one thing
 * get a class: `UNAVAILABLE` and `FAILED_PRECONDITION` each cover several cases, so they stay plain.
 */
const BY_CODE: Readonly<Partial<Record<Status, Refusal>>> = {
  [Status.INVALID_ARGUMENT]: InvalidArgumentError,
  [Status.RESOURCE_EXHAUSTED]: FullError,
  [Status.NOT_FOUND]: NotFoundError,
  [Status.UNAUTHENTICATED]: UnauthenticatedError,
  [Status.PERMISSION_DENIED]: PermissionDeniedError,
};

/** The error of a refusal: by its reason when it has one, else by its code. */
function refusal(code: Status, details: string, options: RefusalOptions): SwitchyardError {
  const Class =
    (options.reason === undefined ? undefined : BY_REASON.get(options.reason)) ??
    BY_CODE[code] ??
    SwitchyardError;
  return new Class(code, details, options);
}

/** Turns what grpc-js rejected with into a `SwitchyardError`; other errors pass through. */
export function fromGrpcError(error: unknown): Error {
  if (error instanceof SwitchyardError) {
    return error;
  }
  if (isServiceError(error)) {
    return refusal(error.code, error.details, { ...statusDetails(error.metadata), cause: error });
  }
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * The error of one refused PublishStream or RequestStream frame, for callers of those RPCs through
 * `pb`: the frame carries the reason and its metadata (`ErrorInfo`'s), but no `BadRequest` or
 * `RetryInfo`, so `field` and `retryAfterMs` stay undefined.
 */
export function fromStreamError(error: StreamError): SwitchyardError {
  return refusal(error.code, error.message, {
    ...(error.reason ? { reason: error.reason } : {}),
    // A copy: the error's metadata is its own, not the decoded frame's.
    metadata: { ...error.metadata },
  });
}

export function isServiceError(error: unknown): error is ServiceError {
  return (
    error instanceof Error &&
    typeof (error as Partial<ServiceError>).code === "number" &&
    typeof (error as Partial<ServiceError>).details === "string"
  );
}
