"""What every long-lived handle shares: it opens when awaited or entered, and closes on exit.

A `Client` opens by connecting. A `Subscription`, a `Consumer` and a `Responder` are made by a plain
method call, then opened with `await` (``sub = await client.subscribe(...)``) or `async with`
(``async with client.subscribe(...) as sub:``). Opening a stream waits for the broker's response
headers: from then on the subscription or consumer is active, so a publish that follows cannot race
it, and a refusal (a bad pattern, a taken exclusive group) is raised right there rather than on the
first read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import grpc

from switchyard._errors import error_from_rpc, error_from_status

_Response = TypeVar("_Response")


class Opens:
    """Awaitable and async context manager over `_open` and `close`."""

    async def _open(self) -> Self:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    def __await__(self) -> Generator[Any, None, Self]:
        return self._open().__await__()

    async def __aenter__(self) -> Self:
        return await self._open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


class ServerStream(Opens, Generic[_Response]):
    """One server-streaming call: opened once, read until it ends, cancelled by `close`.

    A read that the caller abandons (a timeout around ``anext``, a cancelled task) does not end the
    stream: grpc.aio cancels the whole call when a pending read is cancelled, so each read runs as a
    task of its own behind `asyncio.shield`, and the next read picks up its result.
    """

    def __init__(self, start: Callable[[], Any]) -> None:
        self._start = start
        self._call: Any = None  # grpc.aio.UnaryStreamCall, once opened
        self._next: asyncio.Future[Any] | None = None  # the read in progress
        self._reading = asyncio.Lock()  # one reader at a time, or two would get the same response
        self._closed = False

    async def _open(self) -> Self:
        if self._call is None:
            call = self._call = self._start()
            try:
                await call.initial_metadata()
            except grpc.aio.AioRpcError as error:
                raise error_from_rpc(error) from error
            # A refused call is answered with trailers only: done before any message.
            if call.done():
                code = await call.code()
                if code != grpc.StatusCode.OK:
                    raise error_from_status(code, await call.details(), await call.trailing_metadata())
        return self

    async def close(self) -> None:
        """Ends the stream; the broker unsubscribes it (or requeues what a consumer held)."""
        self._closed = True
        if self._call is not None:
            self._call.cancel()

    async def _read(self) -> _Response | None:
        """The next response, or None once the stream has ended or been closed."""
        if self._call is None:
            raise RuntimeError("the stream is not open: `await` it or use `async with` first")
        async with self._reading:
            if self._closed:
                return None
            if self._next is None:
                self._next = asyncio.ensure_future(self._call.read())
                # Retrieve its outcome even if no one reads again, so asyncio does not log it.
                self._next.add_done_callback(lambda done: done.cancelled() or done.exception())
            try:
                response = await asyncio.shield(self._next)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # this task is being cancelled; the read goes on for the next caller
                # The call was cancelled under the read, by `close` or by closing the client's
                # channel, which grpc.aio reports as CancelledError: the stream has ended.
                self._closed = True
                return None
            except grpc.aio.AioRpcError as error:
                if self._closed and error.code() == grpc.StatusCode.CANCELLED:
                    return None
                raise error_from_rpc(error) from error
            self._next = None
        if response is grpc.aio.EOF:
            return None
        return response  # type: ignore[no-any-return]
