"""Settlements: batched into few Ack calls, and a delivery dropped unsettled is nacked at once."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from conftest import within

from switchyard import Client, Message


async def test_settlements_made_together_go_in_few_ack_calls(client: Client, ns: str) -> None:
    """Forty acks made at once go out in far fewer Ack calls, and each learns its own outcome."""
    topic = f"{ns}.jobs"
    calls: list[int] = []
    send = client._settler._send

    async def counted(**ids: Any) -> list[str]:
        calls.append(sum(len(v) for k, v in ids.items() if k != "nack_delay"))
        return await send(**ids)

    client._settler._send = counted
    async with client.consume(topic, "workers", prefetch=40) as consumer:
        await client.publish_batch([Message(topic=topic, payload=b"x") for _ in range(40)])
        deliveries = [await within(anext(consumer)) for _ in range(40)]
        outcomes = await within(asyncio.gather(*(d.ack() for d in deliveries)))
        assert outcomes == [True] * 40
        assert sum(calls) == 40
        assert len(calls) < 40, calls
        # Settled already: the broker no longer has it.
        assert await deliveries[0].ack() is False


async def test_a_delivery_dropped_unsettled_is_redelivered_at_once(client: Client, ns: str) -> None:
    """With a 30 s ack deadline, a delivery dropped unsettled comes back as attempt 2 at once."""
    topic = f"{ns}.jobs"
    async with client.consume(topic, "workers", ack_deadline=30) as consumer:
        await client.publish(topic, "forgotten")
        delivery = await within(anext(consumer))
        assert delivery.attempt == 1
        del delivery
        gc.collect()
        again = await within(anext(consumer), 5)
        assert (again.attempt, again.message.payload) == (2, b"forgotten")
        assert await again.ack()


async def test_a_delivery_whose_id_was_taken_is_left_to_the_caller(client: Client, ns: str) -> None:
    """Reading `id` hands the delivery to the caller: dropping it then nacks nothing, and the id
    still settles it."""
    topic = f"{ns}.jobs"
    async with client.consume(topic, "workers", ack_deadline=30) as consumer:
        await client.publish(topic, "kept")
        delivery = await within(anext(consumer))
        delivery_id = delivery.id
        del delivery
        gc.collect()
        next_one = asyncio.ensure_future(anext(consumer))
        await asyncio.sleep(0.5)
        assert not next_one.done()
        next_one.cancel()
        assert await client.settle(ack=[delivery_id]) == []
