"""Reads the `google.rpc` details the broker puts in a failed call's `grpc-status-details-bin` trailer.

Decoded here with `googleapis-common-protos` rather than `grpcio-status`: its `rpc_status.from_call`
wants a call whose accessors are plain methods, while a refused grpc.aio stream (trailers only) has
awaitable ones, and it raises when the trailer's code or message differ from the call's. One decoder
over the trailers serves both kinds of failure.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2

DOMAIN = "switchyard.dev"
"""The `ErrorInfo.domain` of the broker's reasons; an `ErrorInfo` from elsewhere (a proxy) is ignored."""

_TRAILER = "grpc-status-details-bin"

_Detail = TypeVar("_Detail", bound=Message)


@dataclass(frozen=True)
class Details:
    """What the broker said about a refusal beyond its status code; empty for a status without details
    (an older broker, or one made by the gRPC layer itself)."""

    reason: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    field: str | None = None
    retry_after: float | None = None


def details_from_trailers(trailers: Iterable[tuple[str, Any]] | None) -> Details:
    """The details in `trailers` (a call's trailing metadata), or empty ones if there are none."""
    for key, value in trailers or ():
        if key == _TRAILER and isinstance(value, bytes):
            return _decode(value)
    return Details()


def _decode(trailer: bytes) -> Details:
    try:
        status = status_pb2.Status.FromString(trailer)
    except DecodeError:
        return Details()  # garbled: the status code still says what kind of refusal it was
    info = next((i for i in _unpacked(status, error_details_pb2.ErrorInfo) if i.domain == DOMAIN), None)
    bad_request = next(_unpacked(status, error_details_pb2.BadRequest), None)
    retry = next(_unpacked(status, error_details_pb2.RetryInfo), None)
    violations = bad_request.field_violations if bad_request is not None else []
    return Details(
        reason=(info.reason or None) if info is not None else None,
        metadata=dict(info.metadata) if info is not None else {},
        field=(violations[0].field or None) if violations else None,
        retry_after=retry.retry_delay.ToTimedelta().total_seconds() if retry is not None else None,
    )


def _unpacked(status: status_pb2.Status, kind: type[_Detail]) -> Iterator[_Detail]:
    """Each detail of `status` that is a `kind`, in order."""
    for detail in status.details:
        if detail.TypeName() == kind.DESCRIPTOR.full_name:
            message = kind()
            detail.Unpack(message)
            yield message
