"""Runs the real `switchyard` binary once per test session, on a loopback port it picks itself.

The binary is $SWITCHYARD_BIN, else the repository's target/debug/switchyard. Tests share the server,
so each one names its topics and groups after a fresh `ns` prefix.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest

from switchyard import Client

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_BINARY = REPO_ROOT / "target" / "debug" / "switchyard"
STARTUP_TIMEOUT = 20.0
# Small, so that one Publish batch of 1000 overflows a subscriber and the gap test sees a Gap; the
# other tests publish at most a few dozen messages at once.
SUBSCRIBER_BUFFER = 64
# Every wait in a test is bounded by this, unless it says otherwise.
WAIT = 5.0

T = TypeVar("T")


def _clean_environment() -> dict[str, str]:
    """This process's environment without SWITCHYARD_* settings, so the broker runs as the test says
    wherever the suite runs."""
    return {name: value for name, value in os.environ.items() if not name.startswith("SWITCHYARD_")}


class Broker:
    """A running `switchyard` process and its address."""

    def __init__(self, process: subprocess.Popen[bytes], address: str) -> None:
        self.process = process
        self.address = address


@contextmanager
def run_broker(
    log_dir: Path, extra_args: Sequence[str] = (), listen: str = "127.0.0.1:0"
) -> Iterator[Broker]:
    """Starts the broker on `listen` (127.0.0.1:0, or the address of one stopped before, to restart
    it), with `extra_args` after the usual flags, waits (bounded) for its ready file, which names the
    port the kernel gave it, and stops it on exit: SIGTERM, then SIGKILL if it has not exited within
    10 s.

    The broker binds port 0 and keeps the port, so no other process can take it between finding and
    binding, as with a port found free and released. If the broker exits before it is ready, the test
    fails at once with its log.

    No `preexec_fn` (such as a parent-death signal): it makes subprocess fork rather than spawn, and
    grpc's fork handlers then break the child while this process has gRPC calls in flight."""
    binary = Path(os.environ.get("SWITCHYARD_BIN") or DEFAULT_BINARY).resolve()
    if not os.access(binary, os.X_OK):
        pytest.fail(f"no switchyard binary at {binary}: build it (cargo build) or set SWITCHYARD_BIN")
    ready_file = log_dir / "ready.json"
    log_path = log_dir / "switchyard.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                str(binary),
                "serve",
                "--listen",
                listen,
                "--ready-file",
                str(ready_file),
                "--subscriber-buffer",
                str(SUBSCRIBER_BUFFER),
                "--shutdown-grace",
                "1s",
                *extra_args,
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_clean_environment(),
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        # Written beside its path and renamed by the broker: once the file exists, it is whole.
        while not ready_file.exists():
            if process.poll() is not None:
                pytest.fail(
                    f"switchyard exited with {process.returncode} before it was ready:\n{_tail(log_path)}"
                )
            if time.monotonic() > deadline:
                pytest.fail(
                    f"switchyard wrote no {ready_file} within {STARTUP_TIMEOUT} s:\n{_tail(log_path)}"
                )
            time.sleep(0.02)
        ready = json.loads(ready_file.read_text())
        assert ready["pid"] == process.pid, f"the ready file names another process: {ready}"
        yield Broker(process, ready["listen"])
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _tail(log_path: Path) -> str:
    return log_path.read_text(errors="replace")[-4000:]


@pytest.fixture(scope="session")
def server_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address of the broker the whole session shares."""
    with run_broker(tmp_path_factory.mktemp("server")) as broker:
        yield broker.address


@pytest.fixture
async def client(server_address: str) -> AsyncIterator[Client]:
    """A connected client, closed after the test."""
    async with Client(server_address, timeout=WAIT) as client:
        yield client


@pytest.fixture
def ns() -> str:
    """A prefix no other test uses, for topics and group names."""
    return f"t{uuid.uuid4().hex[:12]}"


async def within(awaitable: Awaitable[T], seconds: float = WAIT) -> T:
    """`awaitable`'s result, failing the test if it takes longer than `seconds`."""
    return await asyncio.wait_for(awaitable, seconds)
