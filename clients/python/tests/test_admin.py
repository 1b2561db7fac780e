"""Group administration: declared groups are listed with their settings' mode and counters."""

from __future__ import annotations

from conftest import within

from switchyard import Client


async def test_declare_list_and_delete(client: Client, ns: str) -> None:
    """A declared group holds what is published before any consumer, shows it in its counters, and is
    gone after DeleteGroup."""
    await client.admin.declare_group(
        f"{ns}.jobs", "early", exclusive=True, ack_deadline=2.5, max_deliveries=3, max_bytes=100_000
    )
    published = await client.publish(f"{ns}.jobs", "kept")
    assert published.groups == 1

    (info,) = [g for g in await client.admin.list_groups() if g.topic == f"{ns}.jobs"]
    assert (info.group, info.exclusive, info.ready, info.in_flight, info.consumers) == (
        "early",
        True,
        1,
        0,
        0,
    )
    assert 0 < info.bytes <= 100_000

    async with client.consume(f"{ns}.jobs", "early", exclusive=True) as consumer:
        delivery = await within(anext(consumer))
        assert delivery.message.id == published.id
        assert await delivery.ack()
    (info,) = [g for g in await client.admin.list_groups() if g.topic == f"{ns}.jobs"]
    assert (info.delivered, info.acked, info.ready) == (1, 1, 0)

    await client.admin.delete_group(f"{ns}.jobs", "early")
    assert not [g for g in await client.admin.list_groups() if g.topic == f"{ns}.jobs"]
