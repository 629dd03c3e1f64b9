"""`politely serve` as a real process: uvicorn on a free loopback port, events over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from serve_processes import Served, serving
from servicekit import ADMIN, PRICING, TOKEN, site_folder


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Served]:
    with serving(site_folder(tmp_path / "shop", rules=PRICING)) as served:
        yield served


def test_a_real_server_answers_events(server: Served) -> None:
    with httpx.Client(base_url=server.base, timeout=10) as http:
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
    server.stop()
    output = server.output()
    assert "politely: store " in output  # which store is used is said at start
    assert '"route": "/v1/sites/{site}/events"' in output
    assert TOKEN not in output
