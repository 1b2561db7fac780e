"""How a status becomes an exception when the broker's details are missing, foreign or newer than
this client: the gRPC code decides, and no message text is read. No broker needed."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from switchyard import GroupFull, NoResponders, ResourceExhausted, SwitchyardError, TimedOut, Unavailable
from switchyard._errors import error_from_status

TRAILER = "grpc-status-details-bin"


def trailers(*details: Message) -> list[tuple[str, bytes]]:
    """Trailing metadata carrying a status with `details`, as the broker sends it."""
    packed = []
    for detail in details:
        entry = any_pb2.Any()
        entry.Pack(detail)
        packed.append(entry)
    status = status_pb2.Status(code=grpc.StatusCode.RESOURCE_EXHAUSTED.value[0], message="m", details=packed)
    return [(TRAILER, status.SerializeToString())]


def test_no_details_falls_back_to_the_code_whatever_the_text() -> None:
    """An older broker's "no responders" is a plain Unavailable: only a reason makes NoResponders."""
    error = error_from_status(grpc.StatusCode.UNAVAILABLE, "no responders for a.b", [])
    assert type(error) is Unavailable
    assert (error.reason, error.metadata, error.field, error.retry_after) == (None, {}, None, None)


def test_a_reason_picks_the_class_and_the_details_fill_the_attributes() -> None:
    info = error_details_pb2.ErrorInfo(reason="GROUP_FULL", domain="switchyard.dev", metadata={"group": "g"})
    retry = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(nanos=100_000_000))
    error = error_from_status(grpc.StatusCode.RESOURCE_EXHAUSTED, "m", trailers(info, retry))
    assert type(error) is GroupFull
    assert error.reason == "GROUP_FULL" and error.metadata == {"group": "g"}
    assert error.retry_after == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        (error_details_pb2.ErrorInfo(reason="SOMETHING_NEW", domain="switchyard.dev"), "SOMETHING_NEW"),
        (error_details_pb2.ErrorInfo(reason="GROUP_FULL", domain="proxy.example"), None),
    ],
    ids=["newer-reason", "foreign-domain"],
)
def test_an_unknown_or_foreign_reason_takes_the_code_s_class(
    info: error_details_pb2.ErrorInfo, expected: str | None
) -> None:
    error = error_from_status(grpc.StatusCode.RESOURCE_EXHAUSTED, "m", trailers(info))
    assert type(error) is ResourceExhausted and error.reason == expected


def test_garbled_details_are_ignored() -> None:
    error = error_from_status(grpc.StatusCode.DEADLINE_EXCEEDED, "late", [(TRAILER, b"\xff\xff")])
    assert type(error) is TimedOut and error.reason is None


def test_an_unmapped_code_is_the_base_class() -> None:
    assert type(error_from_status(grpc.StatusCode.INTERNAL, None)) is SwitchyardError
    assert not isinstance(error_from_status(grpc.StatusCode.UNAVAILABLE, None), NoResponders)
