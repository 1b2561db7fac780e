"""The fast paths: the Publisher (order, an outcome each, a refused frame, backpressure, waiting for
room) and the Requester (a burst at once, no responders, a timeout, a broker restart)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from conftest import SUBSCRIBER_BUFFER, run_broker, within

from switchyard import (
    Client,
    Closed,
    GroupFull,
    InvalidArgument,
    Message,
    NoResponders,
    TimedOut,
    Unavailable,
)


async def echo(request: Message) -> bytes:
    return request.payload


async def test_a_publisher_routes_in_order_with_an_outcome_each(client: Client, ns: str) -> None:
    # Fewer than the session broker's small subscriber buffer, so the subscriber sees no gap.
    total = SUBSCRIBER_BUFFER // 2
    async with client.subscribe(f"{ns}.order") as subscription, client.publisher() as publisher:
        outcomes = [await publisher.publish(f"{ns}.order", str(i)) for i in range(total)]
        await within(publisher.flush())
        assert all(outcome.done() for outcome in outcomes)
        ids = [outcome.result().id for outcome in outcomes]
        assert all(outcome.result().subscribers == 1 for outcome in outcomes)
        for i in range(total):
            message = await within(anext(subscription))
            assert isinstance(message, Message)
            assert (message.text, message.id) == (str(i), ids[i])
    with pytest.raises(Closed):
        await publisher.publish(f"{ns}.order", "after close")


async def test_a_refused_frame_fails_its_messages_only(client: Client, ns: str) -> None:
    async with client.publisher(max_batch=1) as publisher:
        good = await publisher.publish(f"{ns}.ok", "a")
        bad = await publisher.publish("bad..topic", "b")
        after = await publisher.publish(f"{ns}.ok", "c")
        assert (await within(good)).id
        with pytest.raises(InvalidArgument):
            await within(bad)
        assert (await within(after)).id


async def test_a_publisher_waits_for_room_when_asked(client: Client, ns: str) -> None:
    await client.admin.declare_group(f"{ns}.room", "capped", max_length=1)
    await client.publish(f"{ns}.room", "fills it")
    async with client.publisher() as impatient:
        with pytest.raises(GroupFull) as refused:
            await within(await impatient.publish(f"{ns}.room", "refused"))
        # The frame's refusal names what a unary call's would: the group, the message, the limit.
        assert refused.value.metadata == {"group": "capped", "index": "0", "max_length": "1"}
    async with client.publisher(wait_for_room=True) as patient:
        waiting = await patient.publish(f"{ns}.room", "waits")
        await asyncio.sleep(0.3)
        assert not waiting.done(), "answered while the group was full"
        async with client.consume(f"{ns}.room", "capped") as consumer:
            delivery = await within(anext(consumer))
            assert await delivery.ack()
            assert (await within(waiting)).groups == 1


async def stopped(pid: int) -> None:
    """Waits until every thread of process `pid` is stopped: a signal only asks, and a broker still
    running for a moment would answer what the test expects to stay unanswered."""
    while not all(state == "T" for state in thread_states(pid)):
        await asyncio.sleep(0.01)


def thread_states(pid: int) -> list[str]:
    """The state letter of each thread of process `pid` (`T`: stopped), from /proc."""
    return [
        (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
        for task in Path(f"/proc/{pid}/task").iterdir()
    ]


async def test_a_publisher_holds_back_when_the_broker_stops_answering(tmp_path: Path) -> None:
    """One frame in flight and one message of queue: with the broker stopped (SIGSTOP), a few
    messages are taken (in flight, with the sender, queued), the next publish waits, and all of them
    go through once the broker runs again."""
    with run_broker(tmp_path) as broker:
        async with (
            Client(broker.address, timeout=5) as client,
            client.publisher(max_batch=1, max_in_flight=1, queue_size=1) as publisher,
        ):
            await client.publish("pub.warm", "x")
            await within(await publisher.publish("pub.warm", "stream open"))
            os.kill(broker.process.pid, signal.SIGSTOP)
            await within(stopped(broker.process.pid))
            try:
                taken = [await within(publisher.publish("pub.held", str(i))) for i in range(3)]
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(publisher.publish("pub.held", "3"), 0.3)
                assert not any(outcome.done() for outcome in taken)
            finally:
                os.kill(broker.process.pid, signal.SIGCONT)
            for outcome in taken:
                assert (await within(outcome)).id
            await within(await publisher.publish("pub.held", "3"))


async def test_a_requester_pipelines_a_burst(client: Client, ns: str) -> None:
    async with (
        client.serve(f"{ns}.rpc", "echo", echo, concurrency=64),
        client.requester() as requester,
    ):
        replies = await within(asyncio.gather(*(requester.request(f"{ns}.rpc", f"r{i}") for i in range(300))))
        assert [reply.text for reply in replies] == [f"r{i}" for i in range(300)]


async def test_a_requester_refuses_by_reason(client: Client, ns: str) -> None:
    async with client.requester() as requester:
        with pytest.raises(NoResponders):
            await within(requester.request(f"{ns}.nobody", "x"))
        async with client.subscribe(f"{ns}.silent"):
            with pytest.raises(TimedOut):
                await within(requester.request(f"{ns}.silent", "x", timeout=0.3))
        async with client.serve(f"{ns}.after", "echo", echo):
            assert (await within(requester.request(f"{ns}.after", "y"))).text == "y"


async def test_a_requester_opens_again_after_a_broker_restart(tmp_path: Path) -> None:
    """A request in flight when the broker dies fails with Unavailable; once a broker is back on the
    address, the next request opens a new stream and is answered."""
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    with run_broker(tmp_path / "first") as first:
        address = first.address
        client = Client(address, timeout=2)
        await client
        requester = await client.requester()
        subscription = await client.subscribe("rpc.restart")
        in_flight = asyncio.ensure_future(requester.request("rpc.restart", "x", timeout=10))
        await within(anext(subscription))  # the request is at the broker
        first.process.kill()
        with pytest.raises(Unavailable):
            await within(in_flight)
    try:
        with run_broker(tmp_path / "second", listen=address):

            async def answered() -> None:
                while True:
                    try:
                        await requester.request("rpc.none", "x", timeout=1)
                    except NoResponders:
                        return  # answered by the new broker
                    except Unavailable:
                        await asyncio.sleep(0.05)

            await within(answered())
    finally:
        await requester.close()
        await subscription.close()
        await client.close()
