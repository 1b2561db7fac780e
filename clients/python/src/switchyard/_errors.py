"""The client's exceptions: one class per broker status code, mapped from gRPC in one table."""

from __future__ import annotations

from typing import Any

import grpc


class SwitchyardError(Exception):
    """The broker (or the gRPC layer) refused a call. `code` and `details` are the gRPC status."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


class InvalidArgument(SwitchyardError):
    """Malformed input. The broker's details start with the offending field's path."""

    @property
    def field(self) -> str:
        """The path of the field the broker named, e.g. `messages[1].topic` (empty if none)."""
        head, sep, _ = self.details.partition(": ")
        return head if sep and " " not in head else ""


class ResourceExhausted(SwitchyardError):
    """A group the publish would go to is full; nothing of the batch was published."""


class FailedPrecondition(SwitchyardError):
    """An exclusive group already has its consumer, or a group exists with other settings."""


class NotFound(SwitchyardError):
    """An unknown group was deleted, or a consumer's group was deleted under it."""


class Unavailable(SwitchyardError):
    """The broker cannot be reached or is shutting down."""


class NoResponders(Unavailable):
    """A request found no subscriber and no group on its topic."""


class Unauthenticated(SwitchyardError):
    """The broker has authentication on and the call carried no token, or one it does not know."""


class PermissionDenied(SwitchyardError):
    """The token may not do this: publish or subscribe to that topic, consume that group, or admin."""


class TimedOut(SwitchyardError):
    """No reply (or no answer at all) within the timeout."""


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


def error_from_status(code: grpc.StatusCode, details: str | None) -> SwitchyardError:
    """The exception for a failed call's status."""
    details = details or ""
    # UNAVAILABLE means both "server gone" and "no responders"; only the broker's text tells them apart.
    if code == grpc.StatusCode.UNAVAILABLE and details.startswith("no responders"):
        return NoResponders(code, details)
    return _BY_CODE.get(code, SwitchyardError)(code, details)


def error_from_rpc(error: grpc.aio.AioRpcError) -> SwitchyardError:
    """The exception for a failed gRPC call."""
    return error_from_status(error.code(), error.details())


async def unary(method: Any, request: Any, timeout: float | None) -> Any:
    """Runs one unary call of a generated stub, raising the client's exceptions instead of gRPC's."""
    try:
        return await method(request, timeout=timeout)
    except grpc.aio.AioRpcError as error:
        raise error_from_rpc(error) from error
