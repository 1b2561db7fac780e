"""The fast paths: a `Publisher` batching messages onto one PublishStream, and a `Requester`
pipelining requests on one RequestStream. Both are bidirectional streams of numbered frames, each
answered in place by its number; what they share is `_Frames`.

A stream that breaks fails the frames it carried (they may or may not have been handled; they are
never sent again) and the next frame opens a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Mapping
from typing import Any, Generic, Self, TypeVar

import grpc

from switchyard._errors import (
    SwitchyardError,
    TimedOut,
    Unavailable,
    error_from_rpc,
    error_from_stream,
)
from switchyard._stream import Opens
from switchyard._types import (
    Message,
    Published,
    as_bytes,
    message_from_pb,
    message_to_pb,
    outgoing,
    published_from_pb,
    seconds_to_ms,
)
from switchyard.v1 import broker_pb2

_Answer = TypeVar("_Answer")

# How much longer than the broker's own request timeout a request waits for its answer here, so
# that the broker's answer (its TimedOut) normally ends a request that got no reply, and a broker
# that answers nothing at all cannot hold it for good.
_REQUEST_GRACE = 1.0


class Closed(SwitchyardError):
    """The publisher or requester was closed; what it still held fails with this."""

    def __init__(self, what: str) -> None:
        super().__init__(grpc.StatusCode.CANCELLED, f"the {what} is closed")


class _Frames(Generic[_Answer]):
    """One bidirectional stream of numbered frames: `send` writes a frame and returns the future of
    its answer; a task reads the answers and settles the futures by number."""

    def __init__(self, start: Callable[[], Any], convert: Callable[[Any], _Answer]) -> None:
        self._call = start()
        self._convert = convert  # an answer frame into the outcome (or raises the refusal)
        self._next = 0
        self._waiting: dict[int, asyncio.Future[_Answer]] = {}
        self.failed: BaseException | None = None
        # grpc.aio takes one write at a time: several at once fail inside its core.
        self._writing = asyncio.Lock()
        self._reader = asyncio.create_task(self._read())

    async def send(self, frame: Any) -> asyncio.Future[_Answer]:
        answer: asyncio.Future[_Answer] = asyncio.get_running_loop().create_future()
        if self.failed is not None:
            answer.set_exception(self.failed)
            return answer
        self._next += 1
        frame.sequence = self._next
        self._waiting[frame.sequence] = answer
        try:
            async with self._writing:
                await self._call.write(frame)
        except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError):
            pass  # the stream broke: the reader has its status and fails what waits, this one too
        return answer

    def forget(self, answer: asyncio.Future[_Answer]) -> None:
        for sequence, waiting in list(self._waiting.items()):
            if waiting is answer:
                del self._waiting[sequence]

    async def _read(self) -> None:
        try:
            while True:
                response = await self._call.read()
                if response is grpc.aio.EOF:
                    raise Unavailable(grpc.StatusCode.UNAVAILABLE, "the broker ended the stream")
                answer = self._waiting.pop(response.sequence, None)
                if answer is None or answer.done():
                    continue
                try:
                    answer.set_result(self._convert(response))
                except SwitchyardError as refused:
                    answer.set_exception(refused)
        except grpc.aio.AioRpcError as error:
            self.end(error_from_rpc(error))
        except asyncio.CancelledError:
            self.end(Unavailable(grpc.StatusCode.UNAVAILABLE, "the stream was closed"))
        except SwitchyardError as error:
            self.end(error)

    def end(self, error: BaseException) -> None:
        """Fails what still waits with `error`, and cancels the call."""
        if self.failed is None:
            self.failed = error
        waiting, self._waiting = self._waiting, {}
        for answer in waiting.values():
            if not answer.done():
                answer.set_exception(error)
        self._call.cancel()

    async def close(self, error: BaseException) -> None:
        self.end(error)
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


def _published(response: broker_pb2.PublishStreamResponse) -> list[Published]:
    if response.WhichOneof("result") == "error":
        raise error_from_stream(response.error)
    return [published_from_pb(p) for p in response.published.published]


class Publisher(Opens):
    """Publishes through one PublishStream, in the order `publish` is called: what queued up while
    earlier frames were on their way goes as one frame (up to `max_batch` messages, all or nothing
    like `publish_batch`), with at most `max_in_flight` frames awaiting their answer. `publish`
    waits while `queue_size` messages wait to be sent: the backpressure of a broker slower than its
    publishers. `wait_for_room` asks the broker to hold a frame for a full group (up to its
    `--max-publish-wait`) instead of refusing it with `GroupFull`.

    Open it with ``await`` or ``async with``; `close` sends what is queued, waits for the answers,
    and closes the stream.
    """

    def __init__(
        self,
        broker: Any,
        *,
        max_batch: int = 500,
        max_in_flight: int = 16,
        queue_size: int = 4096,
        wait_for_room: bool = False,
    ) -> None:
        self._broker = broker
        self._max_batch = max(1, max_batch)
        self._slots = asyncio.Semaphore(max(1, max_in_flight))
        self._queue: asyncio.Queue[tuple[broker_pb2.Message, asyncio.Future[Published]]] = asyncio.Queue(
            max(1, queue_size)
        )
        self._wait_for_room = wait_for_room
        self._frames: _Frames[list[Published]] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._outstanding: set[asyncio.Future[Published]] = set()
        self._closed = False

    async def _open(self) -> Self:
        if self._sender is None:
            self._sender = asyncio.create_task(self._send())
        return self

    async def publish(
        self,
        topic: str,
        payload: bytes | str = b"",
        *,
        headers: Mapping[str, str] | None = None,
        key: str = "",
        reply_to: str = "",
        correlation_id: str = "",
    ) -> asyncio.Future[Published]:
        """Queues one message, waiting while the queue is full, and returns the future of its
        `Published` (or of its frame's refusal: `InvalidArgument`, `GroupFull`, ...; `Unavailable` if
        the stream broke before the answer, when it may or may not have been routed)."""
        message = outgoing(topic, payload, headers, key, reply_to, correlation_id)
        return await self.publish_message(message)

    async def publish_message(self, message: Message) -> asyncio.Future[Published]:
        """`publish` of a `Message`."""
        if self._sender is None:
            raise RuntimeError("the publisher is not open: `await` it or use `async with` first")
        if self._closed:
            raise Closed("publisher")
        outcome: asyncio.Future[Published] = asyncio.get_running_loop().create_future()
        self._outstanding.add(outcome)
        outcome.add_done_callback(self._outstanding.discard)
        try:
            await self._queue.put((message_to_pb(message), outcome))
        except BaseException:
            outcome.cancel()
            raise
        return outcome

    async def flush(self) -> None:
        """Waits until every message published so far has its outcome."""
        pending = list(self._outstanding)
        if pending:
            await asyncio.wait(pending)

    async def close(self) -> None:
        """Stops taking messages, sends those queued, waits for their outcomes, closes the stream."""
        self._closed = True
        await self.flush()
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        if self._frames is not None:
            await self._frames.close(Closed("publisher"))
            self._frames = None

    async def _send(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._slots.acquire()
            try:
                answer = await self._frame(batch)
            except SwitchyardError as error:
                answer = asyncio.get_running_loop().create_future()
                answer.set_exception(error)
            answer.add_done_callback(functools.partial(self._settle, batch))

    async def _frame(
        self, batch: list[tuple[broker_pb2.Message, asyncio.Future[Published]]]
    ) -> asyncio.Future[list[Published]]:
        if self._frames is None or self._frames.failed is not None:
            self._frames = _Frames(self._broker.PublishStream, _published)
        frame = broker_pb2.PublishStreamRequest(
            messages=[message for message, _ in batch], wait_for_room=self._wait_for_room
        )
        return await self._frames.send(frame)

    def _settle(
        self,
        batch: list[tuple[broker_pb2.Message, asyncio.Future[Published]]],
        answer: asyncio.Future[list[Published]],
    ) -> None:
        self._slots.release()
        error = answer.exception()
        published = [] if error is not None else answer.result()
        if error is None and len(published) != len(batch):
            error = SwitchyardError(
                grpc.StatusCode.INTERNAL,
                f"the broker answered for {len(published)} of {len(batch)} messages",
            )
        for index, (_, outcome) in enumerate(batch):
            if outcome.done():
                continue
            if error is not None:
                outcome.set_exception(error)
            else:
                outcome.set_result(published[index])


def _reply(response: broker_pb2.RequestStreamResponse) -> Message:
    if response.WhichOneof("result") == "error":
        raise error_from_stream(response.error)
    return message_from_pb(response.reply)


class Requester(Opens):
    """Sends requests on one RequestStream, as many at once as its callers make: the cheaper way to
    make many requests. `request` is `Client.request` on it, with the same timeouts and errors
    (`NoResponders` at once, `TimedOut`). Open it with ``await`` or ``async with``; `close` fails
    the requests still waiting and closes the stream."""

    def __init__(self, broker: Any) -> None:
        self._broker = broker
        self._frames: _Frames[Message] | None = None
        self._opened = False
        self._closed = False

    async def _open(self) -> Self:
        self._opened = True
        return self

    async def request(
        self,
        topic: str,
        payload: bytes | str = b"",
        *,
        timeout: float = 5.0,
        headers: Mapping[str, str] | None = None,
        key: str = "",
        correlation_id: str = "",
    ) -> Message:
        """Sends a request and returns the first reply to it, as `Client.request` does."""
        if not self._opened:
            raise RuntimeError("the requester is not open: `await` it or use `async with` first")
        if self._closed:
            raise Closed("requester")
        if self._frames is None or self._frames.failed is not None:
            self._frames = _Frames(self._broker.RequestStream, _reply)
        frames = self._frames
        message = broker_pb2.Message(
            topic=topic,
            payload=as_bytes(payload),
            headers=dict(headers or {}),
            key=key,
            correlation_id=correlation_id,
        )
        frame = broker_pb2.RequestStreamRequest(message=message, timeout_ms=seconds_to_ms(timeout))
        answer = await frames.send(frame)
        wait = (timeout if timeout > 0 else 5.0) + _REQUEST_GRACE
        try:
            return await asyncio.wait_for(asyncio.shield(answer), wait)
        except TimeoutError:
            raise TimedOut(grpc.StatusCode.DEADLINE_EXCEEDED, f"no answer within {wait} s") from None
        finally:
            frames.forget(answer)

    async def close(self) -> None:
        self._closed = True
        if self._frames is not None:
            await self._frames.close(Closed("requester"))
            self._frames = None
