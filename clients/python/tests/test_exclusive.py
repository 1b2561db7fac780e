"""Exclusive groups: one active consumer in publish order, refusals, and standbys taking over."""

from __future__ import annotations

import asyncio

import pytest
from conftest import within

from switchyard import Client, ExclusiveTaken, GroupConflict, Message


async def test_a_standby_takes_over_what_the_active_consumer_left_in_order(client: Client, ns: str) -> None:
    """The active consumer gets messages in order; a second consumer is refused, a standby waits and,
    when the active one goes, gets its unacked messages first and then the rest, all in order."""
    topic = f"{ns}.bids"
    active = await client.consume(topic, "auction", exclusive=True)
    with pytest.raises(ExclusiveTaken):
        await client.consume(topic, "auction", exclusive=True)
    async with client.consume(topic, "auction", exclusive=True, standby=True) as standby:
        await client.publish_batch([Message(topic=topic, payload=str(i).encode()) for i in range(5)])
        got = [await within(anext(active)) for _ in range(5)]
        assert [d.message.payload for d in got] == [b"0", b"1", b"2", b"3", b"4"]
        for delivery in got[:2]:
            assert await delivery.ack()

        # The standby gets nothing while the active consumer is there.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(standby), 0.3)

        await active.close()
        await client.publish(topic, "5")
        taken_over = [await within(anext(standby)) for _ in range(4)]
        assert [(d.message.payload, d.attempt) for d in taken_over] == [
            (b"2", 2),
            (b"3", 2),
            (b"4", 2),
            (b"5", 1),
        ]
        assert await client.settle(ack=[d.id for d in taken_over]) == []


async def test_a_group_s_mode_is_fixed(client: Client, ns: str) -> None:
    """A shared consumer on an exclusive group, or the other way round, is refused."""
    async with client.consume(f"{ns}.a", "g", exclusive=True):
        with pytest.raises(GroupConflict, check=lambda e: e.reason == "MODE_MISMATCH"):
            await client.consume(f"{ns}.a", "g")
    async with client.consume(f"{ns}.b", "g"):
        with pytest.raises(GroupConflict, check=lambda e: e.reason == "MODE_MISMATCH"):
            await client.consume(f"{ns}.b", "g", exclusive=True)
