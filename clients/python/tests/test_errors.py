"""Bad input and refusals: each broker reason arrives as its exception, with the reason, its metadata,
the field and the wait the broker suggested."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import grpc
import pytest
from conftest import within

from switchyard import (
    Client,
    ExclusiveTaken,
    GroupConflict,
    GroupFull,
    InvalidArgument,
    Message,
    NotFound,
)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (
            lambda c, ns: c.publish_batch([Message(topic=f"{ns}.ok"), Message(topic=f"{ns}.*")]),
            "messages[1].topic",
        ),
        (lambda c, ns: c.publish("", "x"), "messages[0].topic"),
        (lambda c, ns: c.publish(f"{ns}.a", "x", key="k" * 300), "messages[0].key"),
        (lambda c, ns: c.publish(f"{ns}.a", "x", headers={"": "v"}), "messages[0].headers"),
        (lambda c, ns: c.publish_batch([]), "messages"),
        (lambda c, ns: c.request(f"{ns}.>", "x"), "message.topic"),
        (lambda c, ns: c.request(f"{ns}.a", "x", timeout=301), "timeout_ms"),
        (lambda c, ns: c.settle(nack=["0.0"], nack_delay=3601), "nack_delay_ms"),
        (lambda c, ns: c.subscribe(f"{ns}..a"), "topic"),
        (lambda c, ns: c.consume(f"{ns}.a", "no.dots"), "group"),
        (lambda c, ns: c.consume(f"{ns}.a", "g", prefetch=10_001), "prefetch"),
        (
            lambda c, ns: c.admin.declare_group(f"{ns}.>", "g", dead_letter_topic=f"{ns}.dead"),
            "dead_letter_topic",
        ),
    ],
    ids=[
        "publish-wildcard",
        "publish-empty-topic",
        "publish-long-key",
        "publish-empty-header",
        "publish-empty-batch",
        "request-wildcard",
        "request-timeout",
        "nack-delay",
        "subscribe-pattern",
        "consume-group",
        "consume-prefetch",
        "declare-dead-letter-loop",
    ],
)
async def test_invalid_argument_names_the_field(
    client: Client, ns: str, call: Callable[[Client, str], Awaitable[object]], field: str
) -> None:
    """INVALID_ARGUMENT comes as InvalidArgument whose `field` is the path the broker's BadRequest
    named; a stream (subscribe, consume) raises it when opened."""
    with pytest.raises(InvalidArgument) as refused:
        await within(call(client, ns))
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.reason == "INVALID_ARGUMENT"
    assert refused.value.field == field, refused.value.details
    assert refused.value.metadata["field"] == field
    assert refused.value.retry_after is None


async def test_a_full_group_refuses_the_whole_batch(client: Client, ns: str) -> None:
    """GROUP_FULL when a group is at its max_length, naming the group and the message, with a wait to
    retry after; nothing of the batch is routed anywhere."""
    await client.admin.declare_group(f"{ns}.jobs", "small", max_length=2)
    await client.publish_batch([Message(topic=f"{ns}.jobs"), Message(topic=f"{ns}.jobs")])
    async with client.subscribe(f"{ns}.>") as everything:
        with pytest.raises(GroupFull) as refused:
            await client.publish_batch(
                [Message(topic=f"{ns}.other", payload=b"lost"), Message(topic=f"{ns}.jobs")]
            )
        assert refused.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert refused.value.reason == "GROUP_FULL"
        assert refused.value.metadata == {"group": "small", "index": "1", "max_length": "2"}
        assert refused.value.retry_after is not None and refused.value.retry_after > 0
        await client.publish(f"{ns}.other", "after")
        event = await within(anext(everything))
        assert isinstance(event, Message) and event.text == "after"
    (info,) = [g for g in await client.admin.list_groups() if g.topic == f"{ns}.jobs"]
    assert info.ready == 2
    await client.admin.delete_group(f"{ns}.jobs", "small")


async def test_a_batch_that_can_never_fit_has_no_retry_after(client: Client, ns: str) -> None:
    """Two messages for a group of max_length 1: GROUP_FULL, but waiting would not help."""
    await client.admin.declare_group(f"{ns}.jobs", "tiny", max_length=1)
    with pytest.raises(GroupFull) as refused:
        await client.publish_batch([Message(topic=f"{ns}.jobs"), Message(topic=f"{ns}.jobs")])
    assert refused.value.reason == "GROUP_FULL" and refused.value.metadata["max_length"] == "1"
    assert refused.value.retry_after is None
    await client.admin.delete_group(f"{ns}.jobs", "tiny")


async def test_a_taken_exclusive_group_is_exclusive_taken(client: Client, ns: str) -> None:
    async with client.consume(f"{ns}.bids", "auction", exclusive=True):
        with pytest.raises(ExclusiveTaken) as refused:
            await client.consume(f"{ns}.bids", "auction", exclusive=True)
        assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION
        assert refused.value.reason == "GROUP_EXCLUSIVE_TAKEN"
        assert refused.value.metadata == {"group": "auction"}


async def test_redeclaring_with_other_settings_is_a_group_conflict(client: Client, ns: str) -> None:
    await client.admin.declare_group(f"{ns}.jobs", "g", max_length=5)
    await client.admin.declare_group(f"{ns}.jobs", "g", max_length=5)  # identical: accepted
    with pytest.raises(GroupConflict) as refused:
        await client.admin.declare_group(f"{ns}.jobs", "g", max_length=6)
    assert refused.value.reason == "GROUP_CONFLICT"
    assert refused.value.metadata == {
        "group": "g",
        "setting": "max_length",
        "existing": "5",
        "requested": "6",
    }
    await client.admin.delete_group(f"{ns}.jobs", "g")


async def test_redeclaring_in_the_other_mode_is_a_group_conflict(client: Client, ns: str) -> None:
    await client.admin.declare_group(f"{ns}.jobs", "g")
    with pytest.raises(GroupConflict) as refused:
        await client.admin.declare_group(f"{ns}.jobs", "g", exclusive=True)
    assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert refused.value.reason == "MODE_MISMATCH"
    assert refused.value.metadata["group"] == "g" and refused.value.metadata["setting"] == "mode"
    await client.admin.delete_group(f"{ns}.jobs", "g")


async def test_deleting_an_unknown_group_is_not_found(client: Client, ns: str) -> None:
    with pytest.raises(NotFound) as refused:
        await client.admin.delete_group(f"{ns}.nothing", "nobody")
    assert refused.value.code == grpc.StatusCode.NOT_FOUND
    assert refused.value.reason == "UNKNOWN_GROUP"
    assert refused.value.metadata == {"group": "nobody", "topic": f"{ns}.nothing"}


async def test_deleting_a_group_ends_its_consumers_with_not_found(client: Client, ns: str) -> None:
    async with client.consume(f"{ns}.jobs", "doomed") as consumer:
        reading = asyncio.ensure_future(anext(consumer))
        await client.admin.delete_group(f"{ns}.jobs", "doomed")
        with pytest.raises(NotFound) as refused:
            await within(reading)
        assert refused.value.reason == "GROUP_DELETED"
        assert refused.value.metadata == {"group": "doomed"}
