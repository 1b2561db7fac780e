"""The client's value types, and every conversion between them and the generated protobuf classes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from switchyard.v1 import admin_pb2, broker_pb2


@dataclass(frozen=True)
class Message:
    """A message, as published or as received.

    To publish, set `topic` and `payload` (and whatever else you need). The broker sets `id` and
    `published_at`; on a received request it also sets `reply_to` and `correlation_id`.
    """

    topic: str
    payload: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    key: str = ""
    reply_to: str = ""
    correlation_id: str = ""
    id: str = ""
    published_at: datetime | None = None

    @property
    def text(self) -> str:
        """The payload decoded as UTF-8."""
        return self.payload.decode()


@dataclass(frozen=True)
class Published:
    """What the broker did with one published message."""

    id: str
    """The id the broker gave the message (a UUID v7)."""
    subscribers: int
    """Subscriptions (and waiting requests) it was offered to."""
    groups: int
    """Queue groups that stored a copy."""


@dataclass(frozen=True)
class Gap:
    """A subscriber fell behind: `missed` messages were dropped before the next event."""

    missed: int


@dataclass(frozen=True)
class Disconnected(Gap):
    """The connection dropped here, and the subscription is being renewed: a gap of unknown size
    (`missed` is 0, as nobody counts what is published until it is back). `error` is why, an
    `Unavailable` usually. A `Gap`, so that code written for gaps handles it."""

    error: BaseException | None = None


@dataclass(frozen=True)
class GroupInfo:
    """A queue group's mode and counters, as `Admin.list_groups` reports them."""

    topic: str
    group: str
    exclusive: bool
    ready: int
    """Waiting messages, delayed redeliveries included."""
    in_flight: int
    """Delivered, not yet settled."""
    consumers: int
    """Attached consumers, standbys included."""
    delivered: int
    acked: int
    redelivered: int
    dead_lettered: int
    bytes: int
    """What the held messages are charged, as the broker's memory budget counts them."""


def outgoing(
    topic: str,
    payload: bytes | str,
    headers: Mapping[str, str] | None,
    key: str,
    reply_to: str,
    correlation_id: str,
) -> Message:
    """The message that the keyword arguments of a publish describe."""
    return Message(
        topic=topic,
        payload=as_bytes(payload),
        headers=headers or {},
        key=key,
        reply_to=reply_to,
        correlation_id=correlation_id,
    )


def as_bytes(payload: bytes | str) -> bytes:
    """A payload as bytes: text is encoded as UTF-8."""
    return payload.encode() if isinstance(payload, str) else payload


def seconds_to_ms(seconds: float | None) -> int:
    """A duration in whole milliseconds for the wire, where 0 means "the default"; None is 0."""
    if seconds is None or seconds <= 0:
        return 0
    return max(1, round(seconds * 1000))


def mode_to_pb(exclusive: bool) -> broker_pb2.ConsumeMode:
    return broker_pb2.CONSUME_MODE_EXCLUSIVE if exclusive else broker_pb2.CONSUME_MODE_SHARED


def message_to_pb(message: Message) -> broker_pb2.Message:
    return broker_pb2.Message(
        topic=message.topic,
        payload=as_bytes(message.payload),
        headers=dict(message.headers),
        key=message.key,
        reply_to=message.reply_to,
        correlation_id=message.correlation_id,
    )


def message_from_pb(message: broker_pb2.Message) -> Message:
    published_at = None
    if message.HasField("published_at"):
        published_at = message.published_at.ToDatetime(tzinfo=UTC)
    return Message(
        topic=message.topic,
        payload=message.payload,
        headers=dict(message.headers),
        key=message.key,
        reply_to=message.reply_to,
        correlation_id=message.correlation_id,
        id=message.id,
        published_at=published_at,
    )


def published_from_pb(published: broker_pb2.Published) -> Published:
    return Published(id=published.id, subscribers=published.subscribers, groups=published.groups)


def group_info_from_pb(info: admin_pb2.GroupInfo) -> GroupInfo:
    return GroupInfo(
        topic=info.topic,
        group=info.group,
        exclusive=info.mode == broker_pb2.CONSUME_MODE_EXCLUSIVE,
        ready=info.ready,
        in_flight=info.in_flight,
        consumers=info.consumers,
        delivered=info.delivered,
        acked=info.acked,
        redelivered=info.redelivered,
        dead_lettered=info.dead_lettered,
        bytes=info.bytes,
    )
