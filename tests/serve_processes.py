"""`politely serve` as real processes for the tests: start on a free loopback port, wait
until ready, stop (or SIGKILL); the output goes to a file, so a busy server never
blocks on a full pipe."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from servicekit import TOKEN

POLITELY = str(Path(sys.executable).with_name("politely"))
READY_WITHIN = 60.0  # a generous start-up bound on a loaded machine, not a timing assertion


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Served:
    base: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """SIGKILL, at once: no shutdown, no flush."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


def launch(folder: Path, *args: str, env: dict[str, str] | None = None) -> Served:
    """Start `politely serve` on a free port, without waiting for it."""
    port = free_port()
    handle, name = tempfile.mkstemp(prefix="politely-serve-", suffix=".log")
    process = subprocess.Popen(
        [POLITELY, "serve", str(folder), "--port", str(port), *args],
        env={**os.environ, "POLITELY_ADMIN_TOKEN": TOKEN, **(env or {})},
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    os.close(handle)
    return Served(f"http://127.0.0.1:{port}", process, Path(name))


def wait_ready(served: Served) -> Served:
    """Until the server answers /readyz; fail the test if it exits or never does."""
    deadline = time.monotonic() + READY_WITHIN
    while True:
        if served.process.poll() is not None:
            pytest.fail(f"politely serve exited ({served.process.returncode}): {served.output()}")
        try:
            # Ready, and bound by this very process: a port taken meanwhile (another
            # test worker's server) answers /readyz too, but never logs our bind.
            if (
                httpx.get(f"{served.base}/readyz", timeout=2).status_code == 200
                and f"Uvicorn running on {served.base} " in served.output()
            ):
                return served
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            served.stop()
            pytest.fail(f"politely serve did not become ready: {served.output()}")
        time.sleep(0.1)


def start(folder: Path, *args: str, env: dict[str, str] | None = None) -> Served:
    return wait_ready(launch(folder, *args, env=env))


@contextmanager
def serving(folder: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Served]:
    served = start(folder, *args, env=env)
    try:
        yield served
    finally:
        served.stop()
        served.log.unlink(missing_ok=True)


@contextmanager
def all_serving(runs: Sequence[tuple[Path, Sequence[str]]]) -> Iterator[list[Served]]:
    """Several servers, started side by side (each start-up is mostly imports)."""
    started: list[Served] = []
    try:
        started.extend(launch(folder, *args) for folder, args in runs)
        for served in started:
            wait_ready(served)
        yield started
    finally:
        for served in started:
            served.stop()
            served.log.unlink(missing_ok=True)
