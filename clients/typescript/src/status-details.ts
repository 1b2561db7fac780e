// Reads the google.rpc details the broker puts on every error status (README "Errors").

import { type Metadata } from "@grpc/grpc-js";
import { type Any } from "./gen/google/protobuf/any.js";
import { BadRequest, ErrorInfo, RetryInfo } from "./gen/google/rpc/error_details.js";
import { Status as RpcStatus } from "./gen/google/rpc/status.js";

/** What a refusal says beyond its code and message. */
export interface StatusDetails {
  /** `ErrorInfo.reason`, the stable name of the refusal (`GROUP_FULL`); undefined without details. */
  reason?: string;
  /** `ErrorInfo.metadata`: what the refusal is about (`group`, `topic`, `limit`, …). */
  metadata: Record<string, string>;
  /** The first `BadRequest` violation's field path (`messages[0].topic`). */
  field?: string;
  /** `RetryInfo.retry_delay` in ms: present where waiting that long may let the call through. */
  retryAfterMs?: number;
}

/** The trailer grpc-js leaves in `ServiceError.metadata` (binary, hence `-bin`). */
const TRAILER = "grpc-status-details-bin";

/** The details of a failed call's trailers; none (empty metadata) when it carries no trailer. */
export function statusDetails(trailers: Metadata | undefined): StatusDetails {
  const raw = trailers?.get(TRAILER)[0];
  if (!(raw instanceof Uint8Array)) {
    return { metadata: {} };
  }
  try {
    return fromAnys(RpcStatus.decode(raw).details);
  } catch {
    // A trailer that does not decode (a proxy's, say) must not hide the status it came with: the
    // caller still gets the error, classed by its gRPC code.
    return { metadata: {} };
  }
}

function fromAnys(anys: readonly Any[]): StatusDetails {
  const found: StatusDetails = { metadata: {} };
  for (const any of anys) {
    switch (any.typeUrl.slice(any.typeUrl.lastIndexOf("/") + 1)) {
      case "google.rpc.ErrorInfo": {
        const info = ErrorInfo.decode(any.value);
        found.reason = info.reason;
        found.metadata = info.metadata;
        break;
      }
      case "google.rpc.BadRequest": {
        const field = BadRequest.decode(any.value).fieldViolations[0]?.field;
        if (field) {
          found.field = field;
        }
        break;
      }
      case "google.rpc.RetryInfo": {
        const delay = RetryInfo.decode(any.value).retryDelay;
        if (delay) {
          found.retryAfterMs = delay.seconds * 1000 + Math.round(delay.nanos / 1e6);
        }
        break;
      }
    }
  }
  return found;
}
