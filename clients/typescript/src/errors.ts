// The client's errors: one class per case a caller acts on, all carrying the gRPC status code.

import { status as Status, type ServiceError } from "@grpc/grpc-js";

export { Status };

/** The broker (or the gRPC layer) refused a call. `code` is the gRPC status code. */
export class SwitchyardError extends Error {
  /** The gRPC status code, e.g. `Status.INVALID_ARGUMENT`. */
  readonly code: Status;
  /** The broker's message without the code, e.g. `messages[0].topic: is empty`. */
  readonly details: string;
  /**
   * For `INVALID_ARGUMENT` and `PERMISSION_DENIED`: the path of the offending input as the broker
   * names it (`messages[1].payload`, `group`, `timeout_ms`, `topic`); otherwise undefined.
   */
  readonly field: string | undefined;

  constructor(code: Status, details: string, options?: { cause?: unknown }) {
    super(`${Status[code] ?? code}: ${details}`, options);
    this.name = "SwitchyardError";
    this.code = code;
    this.details = details;
    this.field =
      code === Status.INVALID_ARGUMENT || code === Status.PERMISSION_DENIED
        ? FIELD.exec(details)?.[1]
        : undefined;
  }
}

/** A request found no subscriber and no group on its topic (the broker's `UNAVAILABLE`). */
export class NoRespondersError extends SwitchyardError {
  constructor(
    readonly topic: string,
    details: string,
    options?: { cause?: unknown },
  ) {
    super(Status.UNAVAILABLE, details, options);
    this.name = "NoRespondersError";
  }
}

/** A request got no reply within its timeout (`DEADLINE_EXCEEDED`, from the broker or locally). */
export class TimedOutError extends SwitchyardError {
  constructor(
    readonly timeoutMs: number,
    details: string,
    options?: { cause?: unknown },
  ) {
    super(Status.DEADLINE_EXCEEDED, details, options);
    this.name = "TimedOutError";
  }
}

/**
 * The broker has authentication on and the call carried no token, or one it does not know
 * (`UNAUTHENTICATED`; see `ClientOptions.token`).
 */
export class UnauthenticatedError extends SwitchyardError {
  constructor(details: string, options?: { cause?: unknown }) {
    super(Status.UNAUTHENTICATED, details, options);
    this.name = "UnauthenticatedError";
  }
}

/**
 * The token is known but may not do this: publish to that topic, subscribe to that pattern, an admin
 * call without `"admin": true` (`PERMISSION_DENIED`). `field` names the input refused.
 */
export class PermissionDeniedError extends SwitchyardError {
  constructor(details: string, options?: { cause?: unknown }) {
    super(Status.PERMISSION_DENIED, details, options);
    this.name = "PermissionDeniedError";
  }
}

/** The leading `path: ` of an INVALID_ARGUMENT message (`messages[2].topic: …`). */
const FIELD = /^([A-Za-z_][\w.[\]]*): /;

/** Turns what grpc-js rejected with into a `SwitchyardError`; other errors pass through. */
export function fromGrpcError(error: unknown): Error {
  if (error instanceof SwitchyardError) {
    return error;
  }
  if (isServiceError(error)) {
    const options = { cause: error };
    switch (error.code) {
      case Status.UNAUTHENTICATED:
        return new UnauthenticatedError(error.details, options);
      case Status.PERMISSION_DENIED:
        return new PermissionDeniedError(error.details, options);
      default:
        return new SwitchyardError(error.code, error.details, options);
    }
  }
  return error instanceof Error ? error : new Error(String(error));
}

export function isServiceError(error: unknown): error is ServiceError {
  return (
    error instanceof Error &&
    typeof (error as Partial<ServiceError>).code === "number" &&
    typeof (error as Partial<ServiceError>).details === "string"
  );
}
