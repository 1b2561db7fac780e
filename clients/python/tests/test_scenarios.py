"""The shared scenarios of clients/scenarios.txt, one test each, named ``test_scenario_<id>``: every
client implements the same list against the real broker, and CI checks that each passed them all.

Most run on the session's broker (topics and groups under a fresh `ns`); the TLS scenarios use the
module broker of test_security.py, and the restart scenario brokers of its own.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import test_security
from certs import Certificates
from conftest import WAIT, run_broker, within
from test_pipeline import echo
from test_pubsub import take as take_messages
from test_queue import group_info, take

from switchyard import (
    Client,
    Delivery,
    Disconnected,
    ExclusiveTaken,
    Gap,
    Message,
    NoResponders,
    Published,
    SwitchyardError,
    Unauthenticated,
    Unavailable,
)

# The module brokers of test_security.py (TLS with the test CA, and a token file), reused here.
certificates = test_security.certificates
tls_address = test_security.tls_address


async def test_scenario_fanout_wildcards_gap(server_address: str, client: Client, ns: str) -> None:
    """Subscribers of a wildcard and of an exact topic each get every message, in order; one that does
    not read, with the broker's small buffer, gets gaps that count exactly the messages it lost."""
    topic = f"{ns}.fan.a"
    total = 300
    padding = b"x" * (16 << 10)
    # The slow subscriber has its own connection with fixed, small HTTP/2 windows, so what it does not
    # read backs up into its buffer at the broker quickly.
    slow_options = [("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 64 << 10)]
    async with (
        Client(server_address, timeout=WAIT, options=slow_options) as slow_client,
        client.subscribe(f"{ns}.fan.*") as wildcard,
        client.subscribe(topic) as exact,
        slow_client.subscribe(f"{ns}.fan.>") as slow,
    ):
        for i in range(total):
            payload = f"{i:06d}".encode() + padding
            assert (await client.publish(topic, payload)).subscribers == 3
            # In step: these readers keep up, so their buffers never overflow.
            for sub in (wildcard, exact):
                (message,) = await take_messages(sub, 1)
                assert (message.topic, message.payload[:6]) == (topic, payload[:6])

        # Every message the slow one got is the next one not counted as lost, and the gaps add up
        # to what is missing between them.
        accounted, gaps, received = 0, 0, 0
        while accounted < total:
            event = await within(anext(slow))
            if isinstance(event, Gap):
                assert not isinstance(event, Disconnected), event
                assert event.missed > 0
                gaps += 1
                accounted += event.missed
                continue
            assert int(event.payload[:6]) == accounted, (event.payload[:6], accounted)
            accounted += 1
            received += 1
        assert gaps > 0 and accounted == total and received < total

        # Caught up, it gets messages again, and so do the others.
        await client.publish(topic, "after")
        for sub in (wildcard, exact, slow):
            (message,) = await take_messages(sub, 1)
            assert message.payload == b"after"


async def test_scenario_competing_consumers_disjoint(client: Client, ns: str) -> None:
    """Consumers of one shared group receive disjoint sets that together are every message: each holds
    at most its prefetch unacked, so each must take a share."""
    topic = f"{ns}.jobs"
    async with (
        client.consume(topic, "workers", prefetch=10) as a,
        client.consume(topic, "workers", prefetch=10) as b,
        client.consume(topic, "workers", prefetch=10) as c,
    ):
        published = await client.publish_batch(
            [Message(topic=topic, payload=str(i).encode()) for i in range(30)]
        )
        shares = [await take(consumer, 10) for consumer in (a, b, c)]
        ids = [{d.message.id for d in share} for share in shares]
        assert all(len(share) == 10 for share in ids)
        assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
        assert ids[0] | ids[1] | ids[2] == {p.id for p in published}
        assert await client.settle(ack=[d.id for share in shares for d in share]) == []
        info = await group_info(client, topic, "workers")
        assert (info.acked, info.redelivered, info.ready, info.in_flight) == (30, 0, 0, 0)


async def test_scenario_redelivery_after_deadline(client: Client, ns: str) -> None:
    """A delivery left unsettled past the group's ack deadline comes back as attempt 2, under a new id;
    the old one then settles nothing."""
    topic = f"{ns}.late"
    deadline = 0.5
    await client.admin.declare_group(topic, "workers", ack_deadline=deadline)
    async with client.consume(topic, "workers") as consumer:
        # The deadline starts when the broker sends the delivery, after the publish began.
        published_at = time.monotonic()
        original = await client.publish(topic, "slow work")
        (first,) = await take(consumer, 1)
        assert (first.message.id, first.attempt) == (original.id, 1)
        again: Delivery = await within(anext(consumer))
        assert time.monotonic() - published_at >= deadline, "redelivered before the deadline"
        assert (again.message.id, again.attempt, again.message.payload) == (original.id, 2, b"slow work")
        assert await first.ack() is False
        assert await again.ack()
        info = await group_info(client, topic, "workers")
        assert (info.redelivered, info.acked, info.in_flight) == (1, 1, 0)
    await client.admin.delete_group(topic, "workers")


async def test_scenario_nack_with_delay(client: Client, ns: str) -> None:
    """A delivery nacked with a delay comes back as attempt 2, not before the delay; the message behind
    it is delivered meanwhile."""
    topic = f"{ns}.retry"
    delay = 1.5
    async with client.consume(topic, "workers") as consumer:
        await client.publish(topic, "a")
        (a,) = await take(consumer, 1)
        nacked_at = time.monotonic()
        assert await a.nack(delay=delay)
        await client.publish(topic, "b")
        (b,) = await take(consumer, 1)
        assert (b.message.payload, b.attempt) == (b"b", 1)
        assert await b.ack()
        again = await within(anext(consumer), delay + WAIT)
        # The broker starts the delay when it gets the nack, which is after nacked_at.
        assert time.monotonic() - nacked_at >= delay, "redelivered before the delay"
        assert (again.message.id, again.message.payload, again.attempt) == (a.message.id, b"a", 2)
        assert await again.ack()


async def test_scenario_dead_letter(client: Client, ns: str) -> None:
    """A rejected delivery, and one that fails past the group's max deliveries, go to its dead-letter
    topic with their original id and payload and the x-dead-letter headers."""
    topic, dead = f"{ns}.work", f"{ns}.dead"
    await client.admin.declare_group(topic, "workers", max_deliveries=2, dead_letter_topic=dead)
    async with client.subscribe(dead) as dead_letters, client.consume(topic, "workers") as consumer:
        poison = await client.publish(topic, "poison")
        (delivery,) = await take(consumer, 1)
        assert delivery.message.id == poison.id
        assert await delivery.reject()
        (letter,) = await take_messages(dead_letters, 1)
        assert (letter.id, letter.topic, letter.payload) == (poison.id, dead, b"poison")
        assert letter.headers == {
            "x-dead-letter-reason": "rejected",
            "x-original-topic": topic,
            "x-dead-letter-group": "workers",
            "x-delivery-attempts": "1",
        }

        failing = await client.publish(topic, "fails")
        for attempt in (1, 2):
            (delivery,) = await take(consumer, 1)
            assert (delivery.message.id, delivery.attempt) == (failing.id, attempt)
            assert await delivery.nack()
        (letter,) = await take_messages(dead_letters, 1)
        assert (letter.id, letter.topic, letter.payload) == (failing.id, dead, b"fails")
        assert letter.headers == {
            "x-dead-letter-reason": "max-deliveries",
            "x-original-topic": topic,
            "x-dead-letter-group": "workers",
            "x-delivery-attempts": "2",
        }
        info = await group_info(client, topic, "workers")
        assert (info.dead_lettered, info.ready, info.in_flight) == (2, 0, 0)
    await client.admin.delete_group(topic, "workers")


async def test_scenario_exclusive_rejected(client: Client, ns: str) -> None:
    """A second consumer of a held exclusive group is refused with reason GROUP_EXCLUSIVE_TAKEN; the
    holder goes on."""
    topic = f"{ns}.bids"
    async with client.consume(topic, "auction", exclusive=True) as active:
        with pytest.raises(ExclusiveTaken) as refused:
            await within(client.consume(topic, "auction", exclusive=True).__aenter__())
        assert refused.value.reason == "GROUP_EXCLUSIVE_TAKEN"
        assert refused.value.metadata.get("group") == "auction"
        await client.publish(topic, "still mine")
        (delivery,) = await take(active, 1)
        assert delivery.message.payload == b"still mine"
        assert await delivery.ack()


async def test_scenario_exclusive_standby_takeover(client: Client, ns: str) -> None:
    """A standby of an exclusive group takes over when the active consumer leaves, with what it held
    unacked (in publish order, as attempt 2), then new messages."""
    topic = f"{ns}.ledger"
    active = await client.consume(topic, "book", exclusive=True)
    try:
        async with client.consume(topic, "book", exclusive=True, standby=True) as standby:
            assert (await group_info(client, topic, "book")).consumers == 2
            await client.publish_batch([Message(topic=topic, payload=str(i).encode()) for i in range(5)])
            held = await take(active, 5)
            assert [d.message.payload for d in held] == [b"0", b"1", b"2", b"3", b"4"]
            for delivery in held[:2]:
                assert await delivery.ack()
            await active.close()
            taken_over = await take(standby, 3)
            assert [(d.message.payload, d.attempt) for d in taken_over] == [(b"2", 2), (b"3", 2), (b"4", 2)]
            await client.publish(topic, "5")
            (fresh,) = await take(standby, 1)
            assert (fresh.message.payload, fresh.attempt) == (b"5", 1)
            assert await client.settle(ack=[d.id for d in [*taken_over, fresh]]) == []
    finally:
        await active.close()


async def test_scenario_request_reply(client: Client, ns: str) -> None:
    """A responder's reply reaches the requester, and the responder saw the request's payload."""
    seen: list[Message] = []

    async def greet(request: Message) -> str:
        seen.append(request)
        return f"hello, {request.text}"

    async with client.serve(f"{ns}.greet", "greeters", greet):
        reply = await within(client.request(f"{ns}.greet", "ada", timeout=WAIT))
    assert reply.payload == b"hello, ada"
    (request,) = seen
    assert request.payload == b"ada"
    assert request.reply_to and request.correlation_id == reply.correlation_id


async def test_scenario_no_responders_by_reason(client: Client, ns: str) -> None:
    """A request nobody can take fails at once with `NoResponders`, matched by reason, well within a
    timeout it does not wait for; the pipelined path says the same."""
    with pytest.raises(NoResponders) as refused:
        await within(client.request(f"{ns}.nobody", "?", timeout=30))
    assert refused.value.reason == "NO_RESPONDERS"
    assert refused.value.metadata == {"topic": f"{ns}.nobody"}
    async with client.requester() as requester:
        with pytest.raises(NoResponders) as refused:
            await within(requester.request(f"{ns}.nobody", "?", timeout=30))
        assert refused.value.reason == "NO_RESPONDERS"
        assert refused.value.metadata == {"topic": f"{ns}.nobody"}


async def test_scenario_tls_and_token(certificates: Certificates, tls_address: str, ns: str) -> None:
    """Over TLS with the test CA and a valid bearer token, publish and subscribe work."""
    async with Client(
        tls_address, timeout=WAIT, tls_ca=certificates.ca, token=test_security.PUBLISHER_TOKEN
    ) as secure:
        await test_security._roundtrip(secure, f"{ns}.secure")


async def test_scenario_wrong_token(certificates: Certificates, tls_address: str, ns: str) -> None:
    """An unknown token is refused with reason UNAUTHENTICATED, on a unary call and on a stream."""
    async with Client(tls_address, timeout=WAIT, tls_ca=certificates.ca, token="not-a-token") as wrong:
        with pytest.raises(Unauthenticated) as refused:
            await within(wrong.publish(f"{ns}.secure", "x"))
        assert refused.value.reason == "UNAUTHENTICATED"
        with pytest.raises(Unauthenticated) as refused:
            await within(wrong.subscribe(f"{ns}.secure").__aenter__())
        assert refused.value.reason == "UNAUTHENTICATED"


async def test_scenario_reconnect_after_restart(tmp_path: Path) -> None:
    """A subscription and a consumer go on after the broker is killed and started again on the same
    address: the subscription announces the drop with a `Disconnected` gap, the consumer through
    `on_disconnect`, and both get what is published once the broker is back."""
    drops: list[SwitchyardError] = []
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    with run_broker(tmp_path / "first") as first:
        address = first.address
        client = await Client(address, timeout=2)
        subscription = await client.subscribe("scn.news")
        consumer = await client.consume("scn.tasks", "workers", on_disconnect=drops.append)
        await client.publish("scn.news", "before")
        (message,) = await take_messages(subscription, 1)
        assert message.payload == b"before"
        await client.publish("scn.tasks", "before")
        (delivery,) = await take(consumer, 1)
        assert delivery.message.payload == b"before" and await delivery.ack()

        sub_read = asyncio.ensure_future(anext(subscription))
        consumer_read = asyncio.ensure_future(anext(consumer))
        await asyncio.sleep(0.1)  # both reads wait on the broker
        first.process.kill()
        gap = await within(sub_read)
        assert isinstance(gap, Disconnected) and isinstance(gap.error, Unavailable), gap

        async def heard() -> None:
            while not drops:
                await asyncio.sleep(0.02)

        await within(heard())
        assert [type(error) for error in drops] == [Unavailable]
        assert not consumer_read.done(), "the consumer reconnects rather than ending"
    try:
        with run_broker(tmp_path / "second", listen=address):
            # The new broker is empty: declaring the group keeps what is published before the
            # consumer has joined again (retried while the broker comes up).
            async def declared() -> None:
                while True:
                    try:
                        await client.admin.declare_group("scn.tasks", "workers")
                        return
                    except SwitchyardError:
                        await asyncio.sleep(0.05)

            await within(declared())
            await client.publish("scn.tasks", "after")
            delivery = await within(consumer_read, 2 * WAIT)
            assert (delivery.message.payload, delivery.attempt) == (b"after", 1)
            assert await delivery.ack()

            # Until the subscription is back, what is published is not seen: publish until one
            # arrives; then everything after it arrives, in order.
            sent = 0
            sub_read = asyncio.ensure_future(anext(subscription))
            deadline = time.monotonic() + 2 * WAIT
            while True:
                try:
                    await client.publish("scn.news", f"after{sent}")
                    sent += 1
                except SwitchyardError:
                    pass
                done, _ = await asyncio.wait({sub_read}, timeout=0.05)
                if done:
                    break
                assert time.monotonic() < deadline, "the subscription did not come back"
            first_seen = sub_read.result()
            assert isinstance(first_seen, Message), first_seen
            n = int(first_seen.text.removeprefix("after"))
            await client.publish("scn.news", "last")
            expected = [f"after{i}".encode() for i in range(n + 1, sent)] + [b"last"]
            assert [m.payload for m in await take_messages(subscription, len(expected))] == expected
            assert [type(error) for error in drops] == [Unavailable]
            await consumer.close()
            await subscription.close()
    finally:
        await client.close()


async def test_scenario_pipelined_request_burst(client: Client, ns: str) -> None:
    """200 concurrent requests on the pipelined requester each get their own reply."""
    async with (
        client.serve(f"{ns}.echo", "echo", echo, concurrency=64),
        client.requester() as requester,
    ):
        words = [f"request {i}" for i in range(200)]
        replies = await within(asyncio.gather(*(requester.request(f"{ns}.echo", w) for w in words)))
    assert [reply.text for reply in replies] == words


async def test_scenario_publish_backpressure(client: Client, ns: str) -> None:
    """A publisher with a small queue makes the caller wait for room: with a full group that the broker
    holds its frame for (`wait_for_room`), `publish` stops returning once the frame in flight and the
    queue are taken, and goes on as a consumer drains the group. Every message arrives once, in
    order."""
    topic = f"{ns}.flow"
    total = 20
    await client.admin.declare_group(topic, "capped", max_length=2)
    async with (
        client.subscribe(topic) as sub,
        client.publisher(max_batch=1, max_in_flight=1, queue_size=1, wait_for_room=True) as publisher,
    ):
        outcomes: list[asyncio.Future[Published]] = []

        async def publish_all() -> None:
            for i in range(total):
                outcomes.append(await publisher.publish(topic, str(i)))

        publishing = asyncio.create_task(publish_all())
        try:
            # The group takes two; the third waits at the broker, so the publisher's frame in
            # flight, its sender and its queue fill up, and `publish` stops returning.
            got = await take_messages(sub, 2)
            assert [m.payload for m in got] == [b"0", b"1"]

            async def held() -> None:
                while len(outcomes) < 3:
                    await asyncio.sleep(0.02)

            await within(held())
            await asyncio.sleep(0.5)
            assert not publishing.done(), "every publish returned while the group was full"
            assert len(outcomes) < total
            assert not outcomes[2].done(), "the frame for the full group was answered"

            async def drain() -> None:
                async with client.consume(topic, "capped", prefetch=1) as consumer:
                    async for delivery in consumer:
                        await delivery.ack()

            draining = asyncio.create_task(drain())
            try:
                await within(publishing)
                await within(publisher.flush())
                results = [outcome.result() for outcome in outcomes]
                got += await take_messages(sub, total - 2)
                assert [m.payload for m in got] == [str(i).encode() for i in range(total)]
                assert [m.id for m in got] == [r.id for r in results]
                # Nothing more than once: the next message is the fence.
                await within(await publisher.publish(topic, "fence"))
                (fence,) = await take_messages(sub, 1)
                assert fence.payload == b"fence"
            finally:
                draining.cancel()
                await asyncio.gather(draining, return_exceptions=True)
        finally:
            publishing.cancel()
            await asyncio.gather(publishing, return_exceptions=True)
    await client.admin.delete_group(topic, "capped")
