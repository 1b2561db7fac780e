"""Work queues and exclusive consumers: a consumer is an async iterator of deliveries to settle."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from switchyard._errors import SwitchyardError
from switchyard._stream import Dropped, ServerStream
from switchyard._types import Message, message_from_pb
from switchyard.v1 import broker_pb2

if TYPE_CHECKING:
    from switchyard._client import Client


class Delivery:
    """One delivery of a message to this consumer, to be settled once with ack, nack or reject.

    `id` settles this delivery only (a redelivery of the message gets a new one); `attempt` is 1 on
    the message's first delivery, 2 on its first redelivery, and so on.

    Each settling method returns True if the broker still had the delivery outstanding, False if
    not (it was settled already, its ack deadline passed, or its consumer's stream ended; the
    message then goes, or went, to another delivery with a new id). The client batches them: what
    is settled while an Ack call is in flight goes together in the next one.

    An unsettled delivery is redelivered when its ack deadline passes or its consumer closes, and
    at once when the Delivery is dropped (garbage-collected) unsettled, so a forgotten ack costs
    one redelivery, not a stalled prefetch slot until the deadline. Reading `id` (to settle it by
    id with `Client.settle`) hands that over to the caller: such a delivery is not nacked when
    dropped.
    """

    __slots__ = ("_client", "_id", "_settled", "attempt", "message")

    def __init__(self, client: Client, message: Message, delivery_id: str, attempt: int) -> None:
        self.message = message
        self._id = delivery_id
        self.attempt = attempt
        self._client = client
        self._settled = False

    @property
    def id(self) -> str:
        """The delivery's id, for `Client.settle`: whoever reads it settles it (see the class)."""
        self._settled = True
        return self._id

    def __repr__(self) -> str:
        return f"Delivery(id={self._id!r}, attempt={self.attempt}, message={self.message!r})"

    def __del__(self) -> None:
        if not self._settled:
            self._client._settler.nack_soon(self._id)

    async def _settle(self, kind: str, delay: float = 0.0) -> bool:
        self._settled = True
        return await self._client._settler.settle(kind, self._id, delay)

    async def ack(self) -> bool:
        """Done: the group forgets the message."""
        return await self._settle("ack")

    async def nack(self, delay: float = 0.0) -> bool:
        """Failed: redeliver the message after `delay` seconds (0 = at once), with attempt + 1."""
        return await self._settle("nack", delay)

    async def reject(self) -> bool:
        """Poison: dead-letter the message now (or discard it if the group has no dead-letter topic)."""
        return await self._settle("reject")

    async def extend(self) -> bool:
        """Still working: restart the ack deadline. Does not settle."""
        return await self._client._settler.settle("extend", self._id)


class Consumer(ServerStream[broker_pb2.Delivery]):
    """A member of the queue group `(pattern, group)`; iterate it for `Delivery` items.

    The broker gives this consumer at most `prefetch` unsettled deliveries at once. Iteration ends
    when the consumer is closed and raises a `SwitchyardError` if the broker ends it for good
    (`NotFound` when the group is deleted). When the connection drops, iteration goes on: the
    consumer calls `on_disconnect` (if given) with the error, an `Unavailable` usually, and joins its
    group again by itself, with backoff; what it held is redelivered, and settling it returns False.
    Closing it (or leaving its ``async with``) returns everything it had not settled to the group,
    to be redelivered.
    """

    def __init__(
        self,
        client: Client,
        broker: Any,
        request: broker_pb2.ConsumeRequest,
        on_disconnect: Callable[[SwitchyardError], None] | None = None,
    ) -> None:
        self.pattern = request.topic
        self.group = request.group
        self._client = client  # settles the deliveries
        self._on_disconnect = on_disconnect
        super().__init__(lambda: broker.Consume(request))

    def __aiter__(self) -> Consumer:
        return self

    async def __anext__(self) -> Delivery:
        response = await self._read()
        while isinstance(response, Dropped):
            if self._on_disconnect is not None:
                self._on_disconnect(response.error)
            response = await self._read()
        if response is None:
            raise StopAsyncIteration
        return Delivery(
            self._client, message_from_pb(response.message), response.delivery_id, response.attempt
        )
