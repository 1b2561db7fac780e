"""Publish/subscribe: fan-out in order, wildcard patterns, gaps, and what a publish reports."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from conftest import within

from switchyard import Client, Gap, Message, Subscription


async def take(sub: Subscription, count: int) -> list[Message]:
    """The next `count` messages of `sub` (no gaps expected)."""
    received = []
    for _ in range(count):
        event = await within(anext(sub))
        assert isinstance(event, Message), event
        received.append(event)
    return received


async def test_every_subscriber_gets_every_message_in_publish_order(client: Client, ns: str) -> None:
    """Fan-out: three subscribers each get all 30 messages, in the order they were published."""
    subs = [await client.subscribe(f"{ns}.orders.>") for _ in range(3)]
    try:
        first = await client.publish(f"{ns}.orders.created", b"0", headers={"source": "web"}, key="k0")
        assert (first.subscribers, first.groups) == (3, 0)
        batch = [Message(topic=f"{ns}.orders.created", payload=str(i).encode()) for i in range(1, 30)]
        published = await client.publish_batch(batch)
        assert [p.subscribers for p in published] == [3] * 29
        ids = [first.id] + [p.id for p in published]
        assert len(set(ids)) == 30

        for sub in subs:
            received = await take(sub, 30)
            assert [m.payload for m in received] == [str(i).encode() for i in range(30)]
            assert [m.id for m in received] == ids
            assert received[0].headers == {"source": "web"} and received[0].key == "k0"
            assert received[0].published_at is not None
    finally:
        for sub in subs:
            await sub.close()


async def test_wildcards_match_whole_tokens(client: Client, ns: str) -> None:
    """`*` matches exactly one token and `>` one or more trailing ones; an exact pattern only itself."""
    async with (
        client.subscribe(f"{ns}.*.created") as star,
        client.subscribe(f"{ns}.orders.>") as rest,
        client.subscribe(f"{ns}.orders") as exact,
    ):
        topics = [f"{ns}.orders", f"{ns}.orders.created", f"{ns}.orders.eu.created", f"{ns}.users.created"]
        counts = [(await client.publish(t, t)).subscribers for t in topics]
        assert counts == [1, 2, 1, 1]
        # One closing message per subscription, matched by it alone: anything it should not have
        # received would show up before its closing message.
        for topic in (f"{ns}.end.created", f"{ns}.orders.end", f"{ns}.orders"):
            await client.publish(topic, "end")

        assert [m.topic for m in await take(star, 3)] == [
            f"{ns}.orders.created",
            f"{ns}.users.created",
            f"{ns}.end.created",
        ]
        assert [m.topic for m in await take(rest, 3)] == [
            f"{ns}.orders.created",
            f"{ns}.orders.eu.created",
            f"{ns}.orders.end",
        ]
        assert [(m.topic, m.text) for m in await take(exact, 2)] == [
            (f"{ns}.orders", f"{ns}.orders"),
            (f"{ns}.orders", "end"),
        ]


async def test_publishing_to_a_topic_nobody_listens_on_is_fine(client: Client, ns: str) -> None:
    """A publish with no subscriber and no group succeeds and says so."""
    published = await client.publish(f"{ns}.nobody", "hello")
    assert (published.subscribers, published.groups) == (0, 0)
    assert published.id


async def test_a_subscriber_that_falls_behind_gets_a_gap(client: Client, ns: str) -> None:
    """One batch larger than the subscriber's buffer overflows it: the subscriber sees a Gap counting
    exactly what it missed, the messages it did get stay in order, and it goes on afterwards."""
    async with client.subscribe(f"{ns}.flood") as sub:
        await client.publish_batch(
            [Message(topic=f"{ns}.flood", payload=str(i).encode()) for i in range(1000)]
        )
        await client.publish(f"{ns}.flood", "after")
        received: list[int] = []
        missed = 0
        while True:
            event = await within(anext(sub))
            if isinstance(event, Gap):
                missed += event.missed
            elif event.text == "after":
                break
            else:
                received.append(int(event.text))
        assert missed > 0
        assert len(received) + missed == 1000
        assert received == sorted(received)


async def test_a_read_abandoned_by_a_timeout_does_not_end_the_subscription(client: Client, ns: str) -> None:
    """Timing out while waiting for the next event leaves the subscription open and loses nothing."""
    async with client.subscribe(f"{ns}.quiet") as sub:
        for _ in range(3):
            try:
                await asyncio.wait_for(anext(sub), 0.1)
                raise AssertionError("nothing was published yet")
            except TimeoutError:
                pass
        await client.publish(f"{ns}.quiet", "still here")
        event = await within(anext(sub))
        assert isinstance(event, Message) and event.text == "still here"


async def test_closing_a_subscription_ends_its_iteration_and_unsubscribes(client: Client, ns: str) -> None:
    """Closing from another task ends the `async for`; the broker then counts one subscriber fewer."""
    sub = await client.subscribe(f"{ns}.closing")
    seen: list[Message | Gap] = []

    async def drain() -> None:
        async for event in sub:
            seen.append(event)

    reader = asyncio.create_task(drain())
    await client.publish(f"{ns}.closing", "one")
    await within(_until(lambda: len(seen) == 1))
    await sub.close()
    await within(reader)
    assert await _eventually_no_subscribers(client, f"{ns}.closing")


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.01)


async def _eventually_no_subscribers(client: Client, topic: str) -> bool:
    """Whether a publish to `topic` reaches no subscriber within a few seconds (unsubscribing happens
    when the broker notices the cancelled stream)."""

    async def poll() -> bool:
        while (await client.publish(topic, "probe")).subscribers:
            await asyncio.sleep(0.05)
        return True

    return await within(poll())


async def test_closing_the_client_ends_open_iterations(server_address: str, ns: str) -> None:
    """A task iterating a subscription when its client closes sees the iteration end, not an error
    and not a CancelledError."""
    client = await Client(server_address)
    sub = await client.subscribe(f"{ns}.a")

    async def drain() -> int:
        return len([event async for event in sub])

    reader = asyncio.create_task(drain())
    await asyncio.sleep(0.05)
    await client.close()
    assert await within(reader) == 0
