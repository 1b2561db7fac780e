"""What every long-lived handle shares: it opens when awaited or entered, and closes on exit.

A `Client` opens by connecting. A `Subscription`, a `Consumer` and a `Responder` are made by a plain
method call, then opened with `await` (``sub = await client.subscribe(...)``) or `async with`
(``async with client.subscribe(...) as sub:``). Opening a stream waits for the broker's response
headers: from then on the subscription or consumer is active, so a publish that follows cannot race
it, and a refusal (a bad pattern, a taken exclusive group) is raised right there rather than on the
first read.

A stream whose connection drops (a transient status: the broker went away or is shutting down)
does not end: its read returns a `Dropped` once, and the next read opens the call again, with
backoff and jitter, for as long as the failures stay transient.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Generator
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import grpc

from switchyard._errors import SwitchyardError, error_from_rpc, error_from_status

_Response = TypeVar("_Response")

# The waits between attempts to open a dropped stream again: from the first, doubling, never above
# the last, each with up to as much again of random jitter, so that the clients of a restarted
# broker do not all come back in step. One attempt may take at most _ATTEMPT_TIMEOUT, so a broker
# that accepts connections but never answers is retried like one that refuses them.
_FIRST_BACKOFF = 0.1
_MAX_BACKOFF = 5.0
_ATTEMPT_TIMEOUT = 10.0
# The statuses after which a stream is opened again: the connection or the broker went away.
_TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL})


class Dropped:
    """What a read returns where the connection dropped with `error`; the next read reopens."""

    __slots__ = ("error",)

    def __init__(self, error: SwitchyardError) -> None:
        self.error = error


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
        self._dropped = False  # the call failed transiently: the next read opens it again

    async def _open(self) -> Self:
        if self._call is None:
            self._call = self._start()
            await self._accepted(self._call)
        return self

    @staticmethod
    async def _accepted(call: Any) -> None:
        """Waits until the broker has accepted `call`, raising its refusal if it did not."""
        try:
            await call.initial_metadata()
        except grpc.aio.AioRpcError as error:
            raise error_from_rpc(error) from error
        # A refused call is answered with trailers only: done before any message.
        if call.done():
            code = await call.code()
            if code != grpc.StatusCode.OK:
                raise error_from_status(code, await call.details(), await call.trailing_metadata())

    async def _reopen(self) -> bool:
        """Opens the call again until the broker accepts it (True), the stream is closed (False), or
        the broker refuses it for good (raised)."""
        wait = _FIRST_BACKOFF
        while not self._closed:
            call = self._start()
            try:
                await asyncio.wait_for(self._accepted(call), _ATTEMPT_TIMEOUT)
            except SwitchyardError as error:
                call.cancel()
                if error.code not in _TRANSIENT:
                    raise
            except TimeoutError:
                call.cancel()
            else:
                if self._closed:
                    call.cancel()
                    return False
                self._call = call
                return True
            await asyncio.sleep(wait + random.uniform(0, wait))
            wait = min(2 * wait, _MAX_BACKOFF / 2)
        return False

    async def close(self) -> None:
        """Ends the stream; the broker unsubscribes it (or requeues what a consumer held)."""
        self._closed = True
        if self._call is not None:
            self._call.cancel()

    async def _read(self) -> _Response | Dropped | None:
        """The next response; a `Dropped` where the connection dropped; or None once the stream has
        ended or been closed."""
        if self._call is None:
            raise RuntimeError("the stream is not open: `await` it or use `async with` first")
        async with self._reading:
            if self._closed:
                return None
            if self._dropped:
                if not await self._reopen():
                    return None
                self._dropped = False
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
                self._next = None
                if self._closed and error.code() == grpc.StatusCode.CANCELLED:
                    return None
                refused = error_from_rpc(error)
                if refused.code in _TRANSIENT:
                    self._dropped = True
                    return Dropped(refused)
                raise refused from error
            self._next = None
        if response is grpc.aio.EOF:
            return None
        return response  # type: ignore[no-any-return]
