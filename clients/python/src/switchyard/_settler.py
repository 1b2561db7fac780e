"""Settlements batched into few Ack calls, as the Rust and TypeScript clients batch them: the first
one is sent at once (on the event loop's next turn), and what queues while a call is in flight goes
together in the next, up to `MAX_IDS` ids a call. Each settlement still learns whether the broker
had its delivery outstanding."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

#: Most delivery ids in one Ack call.
MAX_IDS = 256

#: How a delivery is settled: the `settle` keyword its id goes under.
Kind = str

SendAck = Callable[..., Awaitable[list[str]]]


@dataclass
class _Pending:
    kind: Kind
    delivery_id: str
    delay: float
    outcome: asyncio.Future[bool] = field(repr=False)


class Settler:
    """One client's queue of settlements, and the task that sends them."""

    def __init__(self, send: SendAck) -> None:
        self._send = send
        self._queue: list[_Pending] = []
        self._sending: asyncio.Task[None] | None = None

    async def settle(self, kind: Kind, delivery_id: str, delay: float = 0.0) -> bool:
        """Settles one delivery; True if the broker still had it outstanding."""
        return await self._queued(kind, delivery_id, delay)

    def nack_soon(self, delivery_id: str) -> None:
        """Nacks a delivery that nobody will settle, without waiting: from a finalizer, which must
        not block. Does nothing once the event loop is gone."""
        try:
            outcome = self._queued("nack", delivery_id, 0.0)
        except RuntimeError:
            return
        # Nobody awaits it: a failure (the broker is gone) is the deadline's to mend.
        outcome.add_done_callback(lambda done: done.cancelled() or done.exception())

    def _queued(self, kind: Kind, delivery_id: str, delay: float) -> asyncio.Future[bool]:
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[bool] = loop.create_future()
        self._queue.append(_Pending(kind, delivery_id, delay, outcome))
        if self._sending is None or self._sending.done():
            self._sending = loop.create_task(self._run())
        return outcome

    async def _run(self) -> None:
        while self._queue:
            batch = self._next_batch()
            ids: dict[Kind, list[str]] = {"ack": [], "nack": [], "reject": [], "extend": []}
            for pending in batch:
                ids[pending.kind].append(pending.delivery_id)
            delay = next((p.delay for p in batch if p.kind == "nack"), 0.0)
            try:
                unknown = set(await self._send(**ids, nack_delay=delay))
            # Whatever ended the call (a status, a closed channel) is what each settlement raises.
            except Exception as error:  # noqa: BLE001
                for pending in batch:
                    if not pending.outcome.done():
                        pending.outcome.set_exception(error)
                continue
            for pending in batch:
                if not pending.outcome.done():
                    pending.outcome.set_result(pending.delivery_id not in unknown)

    def _next_batch(self) -> list[_Pending]:
        """The settlements of the next call: up to `MAX_IDS`, in order, whose nacks share a delay
        (an Ack call has one)."""
        batch: list[_Pending] = []
        delay: float | None = None
        while self._queue and len(batch) < MAX_IDS:
            pending = self._queue[0]
            if pending.kind == "nack":
                if delay is not None and pending.delay != delay:
                    break
                delay = pending.delay
            batch.append(self._queue.pop(0))
        return batch
