"""Publish/subscribe: a subscription is an async iterator of the messages (and gaps) it matched."""

from __future__ import annotations

from typing import Any

from switchyard._stream import Dropped, ServerStream
from switchyard._types import Disconnected, Gap, Message, message_from_pb
from switchyard.v1 import broker_pb2


class Subscription(ServerStream[broker_pb2.SubscribeResponse]):
    """Every message published to a topic matching `pattern` after the subscription opened.

    Iterate it with ``async for``: each item is a `Message`, or a `Gap` where messages were lost:
    the broker dropped them because this subscriber fell behind (its buffer was full), or, as a
    `Disconnected` (a `Gap` too), the connection dropped there. The subscription then subscribes
    again by itself, with backoff; what is published until it is back is not seen. Iteration ends
    when the subscription is closed, and raises a `SwitchyardError` if the broker refuses it for
    good. Closing it (or leaving its ``async with``) unsubscribes.
    """

    def __init__(self, broker: Any, pattern: str) -> None:
        self.pattern = pattern
        request = broker_pb2.SubscribeRequest(topic=pattern)
        super().__init__(lambda: broker.Subscribe(request))

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Message | Gap:
        while True:
            response = await self._read()
            if response is None:
                raise StopAsyncIteration
            if isinstance(response, Dropped):
                return Disconnected(missed=0, error=response.error)
            kind = response.WhichOneof("event")
            if kind == "message":
                return message_from_pb(response.message)
            if kind == "gap":
                return Gap(missed=response.gap.missed)
            # An event kind newer than this client: skip it.
