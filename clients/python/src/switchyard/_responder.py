"""The responder side of request/reply: consume requests, run a handler, publish replies, ack.

A handler that raises rejects the request (to the group's dead-letter topic, if it has one) and sends
no reply, so the requester times out; a reply that cannot be published nacks the request for another
try. Requests in a queue group go to one responder each, so responders scale by adding more.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Self

from switchyard._consumer import Consumer, Delivery
from switchyard._errors import SwitchyardError
from switchyard._stream import Opens
from switchyard._types import Message

if TYPE_CHECKING:
    from switchyard._client import Client

Handler = Callable[[Message], Awaitable[bytes | str]]
"""Answers one request message with the reply's payload (text is sent as UTF-8)."""

log = logging.getLogger("switchyard")


class Responder(Opens):
    """Answers requests in the background from the moment it is open until it is closed."""

    def __init__(self, client: Client, consumer: Consumer, handler: Handler) -> None:
        self._client = client
        self._consumer = consumer
        self._handler = handler
        self._loop: asyncio.Task[None] | None = None
        # The handlers running now. Their number needs no bound here: the consumer's prefetch
        # (the `concurrency` of `Client.serve`) keeps the broker from sending more.
        self._running: set[asyncio.Task[None]] = set()

    async def _open(self) -> Self:
        if self._loop is None:
            await self._consumer
            self._loop = asyncio.create_task(self._run(), name=f"switchyard responder {self._consumer.group}")
        return self

    async def wait(self) -> None:
        """Runs until the responder is closed, or raises the error that ended its consumer (for
        instance `NotFound` when its group is deleted)."""
        if self._loop is None:
            raise RuntimeError("the responder is not open: `await` it or use `async with` first")
        try:
            await asyncio.shield(self._loop)
        except asyncio.CancelledError:
            if not self._loop.cancelled():
                raise  # the caller was cancelled, not the responder

    async def close(self, grace: float = 5.0) -> None:
        """Stops taking requests, gives those being handled `grace` seconds to finish (reply and
        ack), then cancels the rest; their requests go back to the group."""
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
        if self._running:
            await asyncio.wait(self._running, timeout=grace)
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        await self._consumer.close()

    async def _run(self) -> None:
        async for delivery in self._consumer:
            task = asyncio.create_task(self._respond(delivery))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _respond(self, delivery: Delivery) -> None:
        request = delivery.message
        try:
            try:
                reply = await self._handler(request)
            except Exception:
                log.exception("handler failed on request %s to %s; rejected", request.id, request.topic)
                await delivery.reject()
                return
            if not request.reply_to:
                await delivery.ack()  # a plain message, not a request: nobody waits for an answer
                return
            try:
                await self._client.publish(request.reply_to, reply, correlation_id=request.correlation_id)
            except SwitchyardError as error:
                log.warning("reply to request %s not published (%s); nacked", request.id, error)
                await delivery.nack()
                return
            await delivery.ack()
        except SwitchyardError as error:
            # Settling failed (the broker went away): the delivery returns to the group by itself.
            log.warning("request %s not settled: %s", request.id, error)
