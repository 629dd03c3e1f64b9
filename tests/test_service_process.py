"""`politely serve` as a real process: uvicorn on a free loopback port, events over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from servicekit import ADMIN, PRICING, TOKEN, site_folder

POLITELY = str(Path(sys.executable).with_name("politely"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    folder = site_folder(tmp_path / "shop", rules=PRICING)
    port = free_port()
    env = {**os.environ, "POLITELY_ADMIN_TOKEN": TOKEN}
    process = subprocess.Popen(
        [POLITELY, "serve", str(folder), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60  # a generous start-up bound, not a timing assertion
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"politely serve exited: {process.stdout.read() if process.stdout else ''}"
                )
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("politely serve did not become ready")
            time.sleep(0.1)
        yield base, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_a_real_server_answers_events(server: tuple[str, subprocess.Popen[str]]) -> None:
    base, process = server
    with httpx.Client(base_url=base, timeout=10) as http:
        agents = {"online": 1, "available": 1}
        assert http.put("/v1/sites/default/agents", json=agents).status_code == 401
        assert http.put("/v1/sites/default/agents", json=agents, headers=ADMIN).status_code == 200
        first = http.post(
            "/v1/sites/default/events", json={"event": "page_view", "url": "/pricing"}
        )
        assert first.status_code == 200
        assert first.json()["invitation"]["rule"] == "pricing"
        visitor = first.json()["visitor"]
        again = {"event": "page_view", "url": "/pricing", "visitor": visitor}
        assert http.post("/v1/sites/default/events", json=again).json()["invitation"] is None
        assert http.post("/v1/sites/default/events", content=b"x" * 70_000).status_code == 413
        assert "politely_decisions_total" in http.get("/metrics").text
    process.terminate()
    output, _ = process.communicate(timeout=20)
    assert "politely: store " in output  # which store is used is said at start
    assert '"route": "/v1/sites/{site}/events"' in output
    assert TOKEN not in output
