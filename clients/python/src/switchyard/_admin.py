"""Queue group administration: declare groups ahead of traffic, list their state, delete them."""

from __future__ import annotations

from typing import Any

from switchyard._errors import unary
from switchyard._types import GroupInfo, group_info_from_pb, mode_to_pb, seconds_to_ms
from switchyard.v1 import admin_pb2


class Admin:
    """The broker's Admin service; reach it as `Client.admin`."""

    def __init__(self, stub: Any, timeout: float) -> None:
        self._stub = stub
        self._timeout = timeout

    async def declare_group(
        self,
        pattern: str,
        group: str,
        *,
        exclusive: bool = False,
        max_length: int = 0,
        max_bytes: int = 0,
        ack_deadline: float | None = None,
        max_deliveries: int = 0,
        dead_letter_topic: str = "",
    ) -> None:
        """Creates the group `(pattern, group)`, or accepts an identical existing one.

        `max_length` bounds the messages it holds (0: the broker's default) and `max_bytes` what they
        take, counted as the broker's memory budget counts them (0: no limit); `ack_deadline` is in
        seconds (None: the broker's default); after `max_deliveries` deliveries (0: unlimited) a
        message that fails again goes to `dead_letter_topic`, or is discarded if there is none.
        A declared group stays until deleted. An existing group with other settings raises
        `GroupConflict` whose `metadata` names the setting.
        """
        request = admin_pb2.DeclareGroupRequest(
            topic=pattern,
            group=group,
            mode=mode_to_pb(exclusive),
            max_length=max_length,
            max_bytes=max_bytes,
            ack_deadline_ms=seconds_to_ms(ack_deadline),
            max_deliveries=max_deliveries,
            dead_letter_topic=dead_letter_topic,
        )
        await unary(self._stub.DeclareGroup, request, self._timeout)

    async def delete_group(self, pattern: str, group: str) -> None:
        """Deletes a group with its messages; its consumers end with `NotFound`, and so does this
        call if there is no such group."""
        request = admin_pb2.DeleteGroupRequest(topic=pattern, group=group)
        await unary(self._stub.DeleteGroup, request, self._timeout)

    async def list_groups(self) -> list[GroupInfo]:
        """Every group with its counters."""
        response = await unary(self._stub.ListGroups, admin_pb2.ListGroupsRequest(), self._timeout)
        return [group_info_from_pb(info) for info in response.groups]
