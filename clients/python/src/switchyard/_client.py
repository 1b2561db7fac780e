"""The `Client`: one gRPC channel to the broker, and every call the four patterns need."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Self

import grpc

from switchyard._admin import Admin
from switchyard._connection import PemSource, open_channel, why_unreachable
from switchyard._consumer import Consumer
from switchyard._errors import SwitchyardError, Unavailable, unary
from switchyard._pipeline import Publisher, Requester
from switchyard._responder import Handler, Responder
from switchyard._settler import Settler
from switchyard._stream import Opens
from switchyard._subscription import Subscription
from switchyard._types import (
    Message,
    Published,
    as_bytes,
    message_from_pb,
    message_to_pb,
    mode_to_pb,
    outgoing,
    published_from_pb,
    seconds_to_ms,
)
from switchyard.v1 import admin_pb2_grpc, broker_pb2, broker_pb2_grpc

# How much longer than the broker's own request timeout the gRPC deadline of a Request is, so that
# the broker's DEADLINE_EXCEEDED (not a client-side cancel) normally ends a request that got no reply.
_REQUEST_GRACE = 1.0


class Client(Opens):
    """A connection to a Switchyard broker, made and used inside one asyncio event loop.

    Connecting is lazy; ``async with Client(target) as client:`` (or ``client = await
    Client(target)``) waits until the broker answers, and leaving the block (or ``await
    client.close()``) closes the channel with every stream on it.
    Unary calls (publish, settle, admin) time out after `timeout` seconds. `options` are grpc channel
    options. `channel` is the `grpc.aio.Channel`, for the generated stubs in `switchyard.v1`; calls
    made through it carry the token too.

    `target` is ``host:port``, optionally with ``http://`` or ``https://`` in front. An ``https://``
    target or any `tls_*` option turns TLS on: the broker's certificate is checked against `tls_ca`
    (PEM bytes, or the path of a PEM file), or the system's roots without it, for the target's host
    or `tls_server_name`. `tls_cert` and `tls_key` (PEM, likewise) are the client's identity, for a
    broker that asks for mutual TLS. `token` is sent as ``authorization: Bearer <token>`` with every
    call, streams included, for a broker with authentication on; a broker that refuses it answers
    `Unauthenticated`. Raises `ValueError` for contradicting options or a token that cannot be sent
    as metadata, and `OSError` for a PEM file that cannot be read.
    """

    def __init__(
        self,
        target: str = "127.0.0.1:50051",
        *,
        timeout: float = 10.0,
        options: Sequence[tuple[str, Any]] = (),
        token: str | None = None,
        tls_ca: PemSource | None = None,
        tls_cert: PemSource | None = None,
        tls_key: PemSource | None = None,
        tls_server_name: str | None = None,
    ) -> None:
        self.target = target
        self.timeout = timeout
        self.channel = open_channel(
            target,
            options=options,
            token=token,
            tls_ca=tls_ca,
            tls_cert=tls_cert,
            tls_key=tls_key,
            tls_server_name=tls_server_name,
        )
        # The generated service stubs are untyped; the methods below type what they return.
        self._broker: Any = broker_pb2_grpc.BrokerStub(self.channel)  # type: ignore[no-untyped-call]
        admin_stub = admin_pb2_grpc.AdminStub(self.channel)  # type: ignore[no-untyped-call]
        self.admin = Admin(admin_stub, timeout)
        """Group administration: declare, delete and list queue groups."""
        self._settler = Settler(self.settle)

    async def connect(self, timeout: float = 10.0) -> None:
        """Waits until the broker accepts the connection; raises `Unavailable` after `timeout` s, with
        grpc's reason when it has one (a refused connection, a TLS handshake that failed)."""
        try:
            await asyncio.wait_for(self.channel.channel_ready(), timeout)
        except TimeoutError:
            reason = await why_unreachable(self.channel)
            message = f"cannot connect to {self.target} within {timeout} s" + (
                f": {reason}" if reason else ""
            )
            raise Unavailable(grpc.StatusCode.UNAVAILABLE, message) from None

    async def close(self) -> None:
        """Closes the channel; open subscriptions and consumers end (consumers' deliveries requeue)."""
        await self.channel.close()

    async def _open(self) -> Self:
        await self.connect()
        return self

    async def publish(
        self,
        topic: str,
        payload: bytes | str = b"",
        *,
        headers: Mapping[str, str] | None = None,
        key: str = "",
        reply_to: str = "",
        correlation_id: str = "",
    ) -> Published:
        """Publishes one message (text payloads are sent as UTF-8) to every matching subscription
        and group. Publishing to a topic nobody listens on is not an error."""
        message = outgoing(topic, payload, headers, key, reply_to, correlation_id)
        (published,) = await self.publish_batch([message])
        return published

    async def publish_batch(self, messages: Iterable[Message]) -> list[Published]:
        """Publishes messages all or nothing: if one is invalid (`InvalidArgument`, naming
        `messages[i]`) or a group it would go to is full (`GroupFull`), none is routed.
        Returns what happened to each, in order."""
        request = broker_pb2.PublishRequest(messages=[message_to_pb(m) for m in messages])
        response = await unary(self._broker.Publish, request, self.timeout)
        return [published_from_pb(p) for p in response.published]

    def publisher(
        self,
        *,
        max_batch: int = 500,
        max_in_flight: int = 16,
        queue_size: int = 4096,
        wait_for_room: bool = False,
    ) -> Publisher:
        """A `Publisher` batching messages onto one PublishStream, with backpressure. Open it with
        ``await`` or ``async with``."""
        return Publisher(
            self._broker,
            max_batch=max_batch,
            max_in_flight=max_in_flight,
            queue_size=queue_size,
            wait_for_room=wait_for_room,
        )

    def requester(self) -> Requester:
        """A `Requester` pipelining requests on one RequestStream. Open it with ``await`` or
        ``async with``."""
        return Requester(self._broker)

    def subscribe(self, pattern: str) -> Subscription:
        """A subscription to every topic matching `pattern` (`*` one token, `>` the rest).

        Open it with ``await`` or ``async with``; it is active once open."""
        return Subscription(self._broker, pattern)

    def consume(
        self,
        pattern: str,
        group: str,
        *,
        prefetch: int = 0,
        ack_deadline: float | None = None,
        exclusive: bool = False,
        standby: bool = False,
        on_disconnect: Callable[[SwitchyardError], None] | None = None,
    ) -> Consumer:
        """A consumer in the queue group `(pattern, group)`, which the broker creates if needed.

        `prefetch` bounds this consumer's unsettled deliveries (0: the broker's default);
        `ack_deadline` (seconds; None: the group's) is how long a delivery may stay unsettled before it
        is redelivered. An `exclusive` group has one active consumer, which gets messages in order;
        another is refused with `FailedPrecondition` unless it asks for `standby`, in which case it
        waits and takes over when the active one ends. `on_disconnect` is called with the error each
        time the connection drops, before the consumer joins its group again by itself. Open it
        with ``await`` or ``async with``.
        """
        request = broker_pb2.ConsumeRequest(
            topic=pattern,
            group=group,
            mode=mode_to_pb(exclusive),
            prefetch=prefetch,
            ack_deadline_ms=seconds_to_ms(ack_deadline),
            standby=standby,
        )
        return Consumer(self, self._broker, request, on_disconnect)

    async def settle(
        self,
        *,
        ack: Iterable[str] = (),
        nack: Iterable[str] = (),
        nack_delay: float = 0.0,
        reject: Iterable[str] = (),
        extend: Iterable[str] = (),
    ) -> list[str]:
        """Settles deliveries by id in one Ack call: `ack` (done), `nack` (redeliver after
        `nack_delay` seconds), `reject` (dead-letter) and `extend` (restart the ack deadline).
        Returns the ids the broker did not have outstanding; they never fail the call."""
        request = broker_pb2.AckRequest(
            ack_ids=list(ack),
            nack_ids=list(nack),
            nack_delay_ms=seconds_to_ms(nack_delay),
            reject_ids=list(reject),
            extend_ids=list(extend),
        )
        response = await unary(self._broker.Ack, request, self.timeout)
        return list(response.unknown_ids)

    async def request(
        self,
        topic: str,
        payload: bytes | str = b"",
        *,
        timeout: float = 5.0,
        headers: Mapping[str, str] | None = None,
        key: str = "",
        correlation_id: str = "",
    ) -> Message:
        """Publishes a request and returns the first reply to it.

        Raises `NoResponders` at once if no subscriber or group matches `topic`, and `TimedOut` if no
        reply comes within `timeout` seconds (0: the broker's default, 5 s unless configured). The broker sets `reply_to`, and `correlation_id` unless
        given; a responder (see `serve`) answers to that inbox with that correlation id.
        """
        message = broker_pb2.Message(
            topic=topic,
            payload=as_bytes(payload),
            headers=dict(headers or {}),
            key=key,
            correlation_id=correlation_id,
        )
        request = broker_pb2.RequestRequest(message=message, timeout_ms=seconds_to_ms(timeout))
        deadline = timeout + _REQUEST_GRACE if timeout > 0 else None  # None: the broker's default
        response = await unary(self._broker.Request, request, deadline)
        return message_from_pb(response.reply)

    def serve(
        self,
        pattern: str,
        group: str,
        handler: Handler,
        *,
        concurrency: int = 16,
        ack_deadline: float | None = None,
    ) -> Responder:
        """A responder answering requests on `pattern` as a member of queue group `group`.

        For each request it awaits ``handler(message)``, publishes the returned payload to the
        request's `reply_to` with its `correlation_id`, then acks. A handler that raises rejects the
        request (no reply: the requester times out). At most `concurrency` requests run at once.
        Open it with ``await`` or ``async with``; it answers in the background until closed, and
        ``await responder.wait()`` runs it until the broker ends it. Closing it lets the requests
        being handled finish (see `Responder.close`).
        """
        consumer = self.consume(pattern, group, prefetch=max(1, concurrency), ack_deadline=ack_deadline)
        return Responder(self, consumer, handler)
