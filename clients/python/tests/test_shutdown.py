"""A broker that goes away: open streams do not end. A subscription yields a `Disconnected` gap
and a consumer tells its `on_disconnect`, and both carry on against the broker that comes back on
the same address."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from conftest import run_broker, within

from switchyard import Client, Disconnected, Message, SwitchyardError, Unavailable


async def test_streams_say_where_the_broker_stopped_and_go_on(tmp_path: Path) -> None:
    """On SIGTERM the broker ends open subscriptions and consumers with Unavailable (reason
    SHUTTING_DOWN, a wait to retry after): the subscription's read returns a Disconnected carrying
    it, the consumer's on_disconnect gets it and its read keeps waiting (it is reconnecting), and
    closing the consumer ends that read. Calls made once the broker is gone raise Unavailable without
    a reason (the gRPC layer's own status)."""
    drops: list[SwitchyardError] = []
    with run_broker(tmp_path) as broker:
        async with Client(broker.address, timeout=2) as client:
            subscription = await client.subscribe("news.>")
            consumer = await client.consume("jobs", "workers", on_disconnect=drops.append)
            sub_read = asyncio.ensure_future(anext(subscription))
            consumer_read = asyncio.ensure_future(anext(consumer))
            await asyncio.sleep(0.1)  # both reads are waiting on the broker
            broker.process.terminate()
            gap = await within(sub_read)
            assert isinstance(gap, Disconnected) and gap.missed == 0
            assert isinstance(gap.error, Unavailable)
            assert gap.error.reason == "SHUTTING_DOWN" and gap.error.retry_after is not None
            await asyncio.to_thread(broker.process.wait, 10)

            async def heard() -> None:
                while not drops:
                    await asyncio.sleep(0.02)

            # The consumer's read hears of the end in its own turn of the loop.
            await within(heard())
            assert [type(error) for error in drops] == [Unavailable]
            assert drops[0].reason == "SHUTTING_DOWN"
            assert not consumer_read.done(), "the consumer reconnects rather than ending"
            await consumer.close()
            with pytest.raises(StopAsyncIteration):
                await within(consumer_read)
            await subscription.close()
            with pytest.raises(Unavailable) as unreachable:
                await client.publish("news.today", "anyone?")
            assert unreachable.value.reason is None


async def test_streams_carry_on_through_a_broker_restart(tmp_path: Path) -> None:
    """A broker killed and started again on the same address: the subscription yields one
    Disconnected, then receives what is published once it is back, in order, in the same loop; the
    consumer tells on_disconnect once, joins its group again and receives what is published after."""
    drops: list[SwitchyardError] = []
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    with run_broker(tmp_path / "first") as first:
        address = first.address
        client = Client(address, timeout=2)
        await client
        subscription = await client.subscribe("news.>")
        consumer = await client.consume("jobs", "workers", on_disconnect=drops.append)
        await client.publish("news.a", "before")
        item = await within(anext(subscription))
        assert isinstance(item, Message) and item.payload == b"before"
        sub_read = asyncio.ensure_future(anext(subscription))
        consumer_read = asyncio.ensure_future(anext(consumer))
        await asyncio.sleep(0.1)
        first.process.kill()
        assert isinstance(await within(sub_read), Disconnected)
    try:
        with run_broker(tmp_path / "second", listen=address):
            # What is published before the subscription is back is not seen: publish until one
            # arrives, then everything after it arrives in order.
            sent = 0
            sub_read = asyncio.ensure_future(anext(subscription))
            while True:
                try:
                    await client.publish("news.a", f"after{sent}")
                    sent += 1
                except SwitchyardError:
                    pass
                done, _ = await asyncio.wait({sub_read}, timeout=0.05)
                if done:
                    break
            first_seen = sub_read.result()
            assert isinstance(first_seen, Message), first_seen
            n = int(first_seen.payload.decode().removeprefix("after"))
            await client.publish("news.a", "last")
            expected = [f"after{i}".encode() for i in range(n + 1, sent)] + [b"last"]
            for want in expected:
                item = await within(anext(subscription))
                assert isinstance(item, Message) and item.payload == want, (item, want)

            # The restarted broker is empty: declare the group so it keeps what is published
            # before the consumer has joined again.
            async def declared() -> None:
                while True:
                    try:
                        await client.admin.declare_group("jobs", "workers")
                        return
                    except SwitchyardError:
                        await asyncio.sleep(0.05)

            await within(declared())
            await client.publish("jobs", "after")
            delivery = await within(consumer_read)
            assert delivery.message.payload == b"after" and delivery.attempt == 1
            assert await delivery.ack()
            assert [type(error) for error in drops] == [Unavailable]
            await consumer.close()
            await subscription.close()
    finally:
        await client.close()
