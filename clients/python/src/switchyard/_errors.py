"""The client's exceptions: a class per kind of refusal, picked by the broker's stable reason (see
docs/semantics.md, "Reasons") and, for a status without one, by its gRPC code, in two tables."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import grpc

from switchyard._details import Details, details_from_trailers


class SwitchyardError(Exception):
    """The broker (or the gRPC layer) refused a call.

    `code` and `details` are the gRPC status; `details` is text for people and may change. What to
    match on is the class or `reason`, the broker's `ErrorInfo` reason (e.g. ``GROUP_FULL``), with
    `metadata` naming what it is about (``group``, ``topic``, ``limit``...). `field` is the path of
    the offending field (from a `BadRequest`) and `retry_after` the seconds the broker suggests
    waiting before trying again (from a `RetryInfo`). All four are empty when the status carried no
    details: an older broker, or a status made by the gRPC layer itself.
    """

    def __init__(self, code: grpc.StatusCode, details: str, about: Details | None = None) -> None:
        super().__init__(f"{code.name}: {details}")
        about = about or Details()
        self.code = code
        self.details = details
        self.reason: str | None = about.reason
        self.metadata: dict[str, str] = about.metadata
        self.field: str | None = about.field
        self.retry_after: float | None = about.retry_after


class InvalidArgument(SwitchyardError):
    """Malformed input; `field` is its path in the wire request's terms, e.g. `messages[1].topic`."""


class ResourceExhausted(SwitchyardError):
    """The broker has no room for this: too many streams open, a full disk, or one of `GroupFull`'s."""


class GroupFull(ResourceExhausted):
    """A group the batch would go to is at its `max_length` or `max_bytes`, or the broker's memory
    budget is spent. Nothing of the batch was published; `retry_after` is set unless the batch can
    never fit."""


class FailedPrecondition(SwitchyardError):
    """The group's state forbids the call."""


class ExclusiveTaken(FailedPrecondition):
    """The exclusive group already has its active consumer."""


class GroupConflict(FailedPrecondition):
    """The group exists with another mode or setting; `metadata` has `setting`, `existing` and
    `requested`."""


class NotFound(SwitchyardError):
    """An unknown group was deleted, or a consumer's group was deleted under it."""


class Unavailable(SwitchyardError):
    """The broker cannot be reached, is shutting down, or its storage failed."""


class NoResponders(Unavailable):
    """A request found no subscriber and no group on its topic (`metadata["topic"]`)."""


class Unauthenticated(SwitchyardError):
    """The broker has authentication on and the call carried no token, or one it does not know."""


class PermissionDenied(SwitchyardError):
    """The token may not do this: publish or subscribe to that topic, consume that group, or admin."""


class TimedOut(SwitchyardError, TimeoutError):
    """No reply (or no answer at all) within the timeout. Also a `TimeoutError`, so code that waits
    with asyncio's timeouts catches both alike."""


# Reasons that share a code but call for different handling each get a class; the rest of a code's
# reasons take the code's class through _BY_CODE, as does a reason newer than this client.
_BY_REASON: dict[str, type[SwitchyardError]] = {
    "GROUP_FULL": GroupFull,
    "GROUP_BYTES_FULL": GroupFull,
    "MEMORY_FULL": GroupFull,
    "GROUP_EXCLUSIVE_TAKEN": ExclusiveTaken,
    "MODE_MISMATCH": GroupConflict,
    "GROUP_CONFLICT": GroupConflict,
    "NO_RESPONDERS": NoResponders,
}

_BY_CODE: dict[grpc.StatusCode, type[SwitchyardError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: TimedOut,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
}


def error_from_status(
    code: grpc.StatusCode, details: str | None, trailers: Iterable[tuple[str, Any]] | None = None
) -> SwitchyardError:
    """The exception for a failed call's status and trailing metadata."""
    about = details_from_trailers(trailers)
    kind = _BY_REASON.get(about.reason or "") or _BY_CODE.get(code, SwitchyardError)
    return kind(code, details or "", about)


def error_from_stream(error: Any) -> SwitchyardError:
    """The exception for a refused frame of a stream that goes on (a `StreamError`: the code, message,
    reason and reason's metadata a unary call's status would carry)."""
    code = next((c for c in grpc.StatusCode if c.value[0] == error.code), grpc.StatusCode.UNKNOWN)
    reason = error.reason or None
    kind = _BY_REASON.get(reason or "") or _BY_CODE.get(code, SwitchyardError)
    return kind(code, error.message, Details(reason=reason, metadata=dict(error.metadata)))


def error_from_rpc(error: grpc.aio.AioRpcError) -> SwitchyardError:
    """The exception for a failed gRPC call."""
    return error_from_status(error.code(), error.details(), error.trailing_metadata())


async def unary(method: Any, request: Any, timeout: float | None) -> Any:
    """Runs one unary call of a generated stub, raising the client's exceptions instead of gRPC's."""
    try:
        return await method(request, timeout=timeout)
    except grpc.aio.AioRpcError as error:
        raise error_from_rpc(error) from error
