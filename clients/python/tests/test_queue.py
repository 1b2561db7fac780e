"""Work queues: competing consumers, redelivery, nack delays, ack deadlines and dead letters."""

from __future__ import annotations

import asyncio
import time

from conftest import WAIT, within

from switchyard import Client, Consumer, Delivery, GroupInfo, Message


async def take(consumer: Consumer, count: int) -> list[Delivery]:
    """The next `count` deliveries of `consumer`, each within the test's bound."""
    return [await within(anext(consumer)) for _ in range(count)]


async def group_info(client: Client, pattern: str, group: str) -> GroupInfo:
    (info,) = [g for g in await client.admin.list_groups() if (g.topic, g.group) == (pattern, group)]
    return info


async def test_competing_consumers_get_disjoint_shares(client: Client, ns: str) -> None:
    """Three consumers of one group with prefetch 5 share 15 messages: 5 each, no message twice."""
    topic = f"{ns}.jobs"
    async with (
        client.consume(topic, "workers", prefetch=5) as a,
        client.consume(topic, "workers", prefetch=5) as b,
        client.consume(topic, "workers", prefetch=5) as c,
    ):
        published = await client.publish_batch(
            [Message(topic=topic, payload=str(i).encode()) for i in range(15)]
        )
        assert {p.groups for p in published} == {1}

        shares = [await take(consumer, 5) for consumer in (a, b, c)]
        ids = [{d.message.id for d in share} for share in shares]
        assert set().union(*ids) == {p.id for p in published}
        assert sum(len(s) for s in ids) == 15
        assert all(d.attempt == 1 for share in shares for d in share)

        unknown = await client.settle(ack=[d.id for share in shares for d in share])
        assert unknown == []
        info = await group_info(client, topic, "workers")
        assert (info.acked, info.in_flight, info.ready, info.consumers) == (15, 0, 0, 3)


async def test_a_cancelled_consumer_s_deliveries_go_to_another(client: Client, ns: str) -> None:
    """What a consumer held unacked when its stream ended is redelivered, in order, to the next one,
    with attempt 2 and new delivery ids; the old ids no longer settle anything."""
    topic = f"{ns}.jobs"
    first = await client.consume(topic, "workers", prefetch=10)
    await client.publish_batch([Message(topic=topic, payload=str(i).encode()) for i in range(3)])
    held = await take(first, 3)
    await first.close()

    async with client.consume(topic, "workers") as second:
        again = await take(second, 3)
        assert [d.message.id for d in again] == [d.message.id for d in held]
        assert [d.attempt for d in again] == [2, 2, 2]
        assert not {d.id for d in again} & {d.id for d in held}
        assert await held[0].ack() is False
        assert all([await d.ack() for d in again])


# Wide enough that a loaded machine cannot blur "before" and "after" it: the tests check the order of
# events around a delay or deadline, never how quickly the broker acts.
NACK_DELAY = 2.0
ACK_DEADLINE = 2.0
EXTEND_EVERY = 0.5


async def test_nack_with_delay_holds_back_only_that_message(client: Client, ns: str) -> None:
    """A nacked message comes back after its delay with attempt 2; the message behind it does not wait."""
    topic = f"{ns}.jobs"
    async with client.consume(topic, "workers", prefetch=1) as consumer:
        await client.publish_batch(
            [Message(topic=topic, payload=b"slow"), Message(topic=topic, payload=b"next")]
        )
        (slow,) = await take(consumer, 1)
        assert slow.message.payload == b"slow"
        nacked_at = time.monotonic()
        assert await slow.nack(delay=NACK_DELAY)

        (following,) = await take(consumer, 1)
        assert following.message.payload == b"next"
        assert time.monotonic() - nacked_at < NACK_DELAY, "the next message waited for the delay"
        assert await following.ack()

        redelivered = await within(anext(consumer), NACK_DELAY + WAIT)
        assert time.monotonic() - nacked_at >= NACK_DELAY, "redelivered before the delay"
        assert (redelivered.message.id, redelivered.attempt) == (slow.message.id, 2)
        assert await redelivered.ack()


async def test_an_unsettled_delivery_returns_after_its_ack_deadline_unless_extended(
    client: Client, ns: str
) -> None:
    """A delivery left alone past the consumer's ack deadline is redelivered, not before a deadline
    after its last extension; extending it keeps it."""
    topic = f"{ns}.jobs"
    async with client.consume(topic, "workers", ack_deadline=ACK_DEADLINE) as consumer:
        await client.publish(topic, "work")
        (first,) = await take(consumer, 1)
        # Past the deadline in all, kept alive by extending well within it each time.
        for _ in range(int(ACK_DEADLINE / EXTEND_EVERY) + 1):
            await asyncio.sleep(EXTEND_EVERY)
            last_extended = time.monotonic()
            assert await first.extend()
        assert (await group_info(client, topic, "workers")).redelivered == 0

        second = await within(anext(consumer), ACK_DEADLINE + WAIT)  # now left alone
        assert time.monotonic() - last_extended >= ACK_DEADLINE, "redelivered before the deadline"
        assert (second.message.id, second.attempt) == (first.message.id, 2)
        assert await first.ack() is False
        assert await second.ack()


async def test_dead_letters_after_max_deliveries_and_on_reject(client: Client, ns: str) -> None:
    """With max_deliveries 2, the third failure publishes the message to the dead-letter topic with
    its id, payload and the x-dead-letter-* headers; a reject dead-letters at once."""
    topic, dead = f"{ns}.jobs", f"{ns}.dead"
    await client.admin.declare_group(topic, "workers", max_deliveries=2, dead_letter_topic=dead)
    async with client.subscribe(dead) as dead_letters, client.consume(topic, "workers") as consumer:
        failing = await client.publish(topic, "fails")
        for attempt in (1, 2):
            (delivery,) = await take(consumer, 1)
            assert (delivery.message.id, delivery.attempt) == (failing.id, attempt)
            assert await delivery.nack()

        letter = await within(anext(dead_letters))
        assert isinstance(letter, Message)
        assert (letter.id, letter.topic, letter.payload) == (failing.id, dead, b"fails")
        assert letter.headers == {
            "x-dead-letter-reason": "max-deliveries",
            "x-original-topic": topic,
            "x-dead-letter-group": "workers",
            "x-delivery-attempts": "2",
        }

        poison = await client.publish(topic, "poison")
        (delivery,) = await take(consumer, 1)
        assert await delivery.reject()
        letter = await within(anext(dead_letters))
        assert isinstance(letter, Message)
        assert (letter.id, letter.headers["x-dead-letter-reason"]) == (poison.id, "rejected")

        info = await group_info(client, topic, "workers")
        assert (info.dead_lettered, info.ready, info.in_flight) == (2, 0, 0)
    await client.admin.delete_group(topic, "workers")


async def test_settle_reports_unknown_ids(client: Client) -> None:
    """Ids that are not outstanding come back from settle and do not fail the call."""
    assert sorted(await client.settle(ack=["nope"], nack=["9.9"], reject=["x"], extend=["y"])) == [
        "9.9",
        "nope",
        "x",
        "y",
    ]
