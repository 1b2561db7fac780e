"""A broker that shuts down ends every open stream with UNAVAILABLE, which the client raises."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from conftest import run_broker, within

from switchyard import Client, Unavailable


async def test_streams_end_with_unavailable_when_the_broker_stops(tmp_path: Path) -> None:
    """On SIGTERM the broker ends open subscriptions and consumers; their iterations raise
    Unavailable with the reason SHUTTING_DOWN and a wait to retry after, and calls made once it is
    gone raise Unavailable without a reason (the gRPC layer's own status)."""
    with run_broker(tmp_path) as broker:
        async with Client(broker.address, timeout=2) as client:
            subscription = await client.subscribe("news.>")
            consumer = await client.consume("jobs", "workers")
            reads = [asyncio.ensure_future(anext(subscription)), asyncio.ensure_future(anext(consumer))]
            await asyncio.sleep(0.1)  # both reads are waiting on the broker
            broker.process.terminate()
            for read in reads:
                with pytest.raises(Unavailable) as ended:
                    await within(read)
                assert ended.value.reason == "SHUTTING_DOWN" and ended.value.retry_after is not None
            await asyncio.to_thread(broker.process.wait, 10)
            with pytest.raises(Unavailable) as unreachable:
                await client.publish("news.today", "anyone?")
            assert unreachable.value.reason is None
