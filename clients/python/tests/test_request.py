"""Request/reply: the responder helper, correlation, no responders, timeouts and failing handlers."""

from __future__ import annotations

import asyncio
import time

import pytest
from conftest import within

from switchyard import Client, Message, NoResponders, NotFound, TimedOut


async def upper(request: Message) -> str:
    return request.text.upper()


async def test_request_gets_the_responder_s_reply(client: Client, ns: str) -> None:
    """A request reaches the responder with a reply inbox and comes back with its reply, under the
    correlation id the requester chose or one the broker made."""
    async with client.serve(f"{ns}.svc.upper", "upper", upper):
        reply = await client.request(f"{ns}.svc.upper", "ping", timeout=2)
        assert reply.payload == b"PING"
        assert reply.correlation_id

        reply = await client.request(f"{ns}.svc.upper", b"pong", correlation_id="mine", timeout=2)
        assert (reply.payload, reply.correlation_id) == (b"PONG", "mine")


async def test_concurrent_requests_each_get_their_own_reply(client: Client, ns: str) -> None:
    """Twenty requests in flight at once, over two responders of one group, each get their answer."""
    async with (
        client.serve(f"{ns}.svc", "svc", upper, concurrency=4),
        client.serve(f"{ns}.svc", "svc", upper),
    ):
        words = [f"word{i}" for i in range(20)]
        replies = await within(asyncio.gather(*(client.request(f"{ns}.svc", w, timeout=3) for w in words)))
        assert [r.text for r in replies] == [w.upper() for w in words]


async def test_a_request_nobody_listens_for_fails_at_once(client: Client, ns: str) -> None:
    started = time.monotonic()
    with pytest.raises(NoResponders) as refused:
        await client.request(f"{ns}.svc.nobody", "anyone?", timeout=5)
    assert time.monotonic() - started < 1
    assert refused.value.reason == "NO_RESPONDERS"
    assert refused.value.metadata == {"topic": f"{ns}.svc.nobody"}


async def test_a_request_without_a_reply_times_out(client: Client, ns: str) -> None:
    """A subscriber that never answers: the request ends with TimedOut after its timeout."""
    async with client.subscribe(f"{ns}.svc.silent") as silent:
        started = time.monotonic()
        with pytest.raises(TimedOut) as late:
            await client.request(f"{ns}.svc.silent", "hello?", timeout=0.3)
        assert 0.25 <= time.monotonic() - started < 2
        assert late.value.reason == "REQUEST_TIMED_OUT" and late.value.metadata == {"timeout_ms": "300"}
        assert isinstance(late.value, TimeoutError)
        request = await within(anext(silent))
        assert isinstance(request, Message)
        assert request.reply_to.startswith("_INBOX.") and request.correlation_id


async def test_a_failing_handler_rejects_the_request(client: Client, ns: str) -> None:
    """A handler that raises sends no reply (the requester times out) and dead-letters the request."""

    async def broken(request: Message) -> bytes:
        raise ValueError("cannot")

    topic, dead = f"{ns}.svc.broken", f"{ns}.dead"
    await client.admin.declare_group(topic, "broken", dead_letter_topic=dead)
    async with client.subscribe(dead) as dead_letters, client.serve(topic, "broken", broken):
        with pytest.raises(TimedOut):
            await client.request(topic, "x", timeout=0.5)
        letter = await within(anext(dead_letters))
        assert isinstance(letter, Message) and letter.headers["x-dead-letter-reason"] == "rejected"
    await client.admin.delete_group(topic, "broken")


async def test_a_responder_ends_with_its_group(client: Client, ns: str) -> None:
    """Deleting the responder's group ends it: `wait` raises NotFound."""
    async with client.serve(f"{ns}.svc", "doomed", upper) as responder:
        await client.admin.delete_group(f"{ns}.svc", "doomed")
        with pytest.raises(NotFound):
            await within(responder.wait())


async def test_closing_a_responder_finishes_the_requests_in_hand(client: Client, ns: str) -> None:
    """`close` takes no more requests, lets the one being handled finish, reply and ack, and only
    then returns: the requester gets its answer and the group holds nothing for redelivery."""
    topic = f"{ns}.svc.slow"
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(request: Message) -> str:
        started.set()
        await release.wait()
        return request.text.upper()

    responder = await client.serve(topic, "slow", slow)
    asked = asyncio.ensure_future(client.request(topic, "busy", timeout=5))
    await within(started.wait())
    closing = asyncio.ensure_future(responder.close())
    await asyncio.sleep(0.2)
    assert not closing.done(), "close waits for the request in hand"
    release.set()
    assert (await within(asked)).text == "BUSY"
    await within(closing)
    (info,) = [g for g in await client.admin.list_groups() if (g.topic, g.group) == (topic, "slow")]
    assert (info.acked, info.in_flight, info.ready) == (1, 0, 0)
    with pytest.raises(TimedOut):
        await client.request(topic, "after", timeout=0.3)
