"""`politely serve` as real processes, several at once or killed mid-load.

- Two instances on one Redis, 200 concurrent events for one visitor split between
  them, grant exactly the visitor's cap (in the answers and in `GET stats`); the
  same harness against two instances each on its own memory store over-grants.
- An instance on SQLite killed with SIGKILL during a load loses no invitation a
  client received: after a restart on the same file the caps hold for those
  visitors and the statistics count them.
- `--workers 2` on SQLite runs two uvicorn workers, and `/metrics` (prometheus
  multiprocess mode) sums the requests both answered.
"""

from __future__ import annotations

import asyncio
import re
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from redis_servers import flush, server_url
from serve_processes import all_serving, serving, start
from servicekit import ADMIN, site_folder

CAP = 3
CAPPED = (
    f"policy {{ at most {CAP} invitations per session }}\n"
    f'rule r {{ on page_view when session.pageviews >= 1 say "Hi" at most {CAP} per session }}\n'
)
ONCE = 'rule r { on page_view when session.pageviews >= 1 say "Hi" }\n'  # 1 per 10m
UNLIMITED = '[rate_limits]\nper_address = "1000000/minute"\nper_visitor = "1000000/minute"\n'
EVENTS = "/v1/sites/default/events"


async def crowd(bases: list[str], n: int, visitor: str) -> list[dict[str, Any]]:
    """n events of one visitor at once, dealt in turn to each server; the decisions."""
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        event = {"visitor": visitor, "event": "page_view", "url": "/"}
        answers = await asyncio.gather(
            *(http.post(bases[i % len(bases)] + EVENTS, json=event) for i in range(n))
        )
    assert [a.status_code for a in answers] == [200] * n
    return [a.json() for a in answers]


def shown(base: str) -> int:
    stats = httpx.get(f"{base}/v1/sites/default/stats", headers=ADMIN, timeout=30).json()
    return sum(rule["shown"] for rule in stats["rules"])


def granted(folders: list[tuple[Path, list[str]]], visitor: str) -> tuple[int, list[int], int]:
    """(invitations in the answers, `shown` by each instance, degraded answers)."""
    with all_serving(folders) as servers:
        decisions = asyncio.run(crowd([s.base for s in servers], 200, visitor))
        invited = sum(d["invitation"] is not None for d in decisions)
        degraded = sum(bool(d.get("degraded")) for d in decisions)
        return invited, [shown(s.base) for s in servers], degraded


def test_two_instances_on_one_redis_grant_exactly_the_cap(tmp_path: Path) -> None:
    pytest.importorskip("redis")
    url = server_url("redis")
    flush("redis")
    folder = site_folder(tmp_path / "site", UNLIMITED, rules=CAPPED)
    # A budget long enough that no answer degrades for waiting: an invitation granted
    # to an answer that already went out degraded would be counted but not received.
    args = ["--store", url, "--store-budget", "10"]
    invited, counted, degraded = granted([(folder, args)] * 2, "v1")
    assert counted == [CAP, CAP]  # one count, seen from either instance
    assert invited == CAP, f"{degraded} degraded answers"


def test_two_instances_on_their_own_memory_stores_over_grant(tmp_path: Path) -> None:
    """The harness above can fail: instances that do not share a store."""
    folder = site_folder(tmp_path / "site", UNLIMITED, rules=CAPPED)
    invited, counted, _ = granted([(folder, ["--store", "memory://"])] * 2, "v1")
    assert counted == [CAP, CAP]  # each instance grants the cap on its own
    assert invited == 2 * CAP


# --- SIGKILL on SQLite ---------------------------------------------------------------


def load_until_killed(base: str, prefix: str, kill_after: int, kill: Any) -> list[str]:
    """Threads send first page views of new visitors; once `kill_after` invitations
    came back, the server is killed while they keep sending. The invited visitors."""
    invited: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def send(thread: int) -> None:
        with httpx.Client(base_url=base, timeout=10) as http:
            for i in range(10**6):
                if stop.is_set():
                    return
                visitor = f"{prefix}-{thread}-{i}"
                event = {"visitor": visitor, "event": "page_view", "url": "/"}
                try:
                    answer = http.post(EVENTS, json=event)
                except httpx.TransportError:
                    return  # the server is gone
                if answer.status_code == 200 and answer.json()["invitation"] is not None:
                    with lock:
                        invited.append(visitor)
                        if len(invited) == kill_after:
                            kill()
                            stop.set()

    threads = [threading.Thread(target=send, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return invited


def test_a_sqlite_server_killed_mid_load_keeps_every_invitation_received(tmp_path: Path) -> None:
    folder = site_folder(tmp_path / "site", UNLIMITED, rules=ONCE)
    store = ["--store", f"sqlite:///{tmp_path}/state.db"]
    received: list[str] = []
    for trial in range(3):
        server = start(folder, *store)
        try:
            invited = load_until_killed(server.base, f"k{trial}", 30 + 11 * trial, server.kill)
        finally:
            server.stop()
            server.log.unlink(missing_ok=True)
        assert server.process.returncode == -9
        assert len(invited) >= 30
        received += invited
        with serving(folder, *store) as again, httpx.Client(base_url=again.base) as http:
            for visitor in received:  # inside the rule's 10-minute cooldown
                event = {"visitor": visitor, "event": "page_view", "url": "/"}
                decision = http.post(EVENTS, json=event).json()
                assert "degraded" not in decision
                assert decision["invitation"] is None, f"{visitor} invited again after the kill"
            assert shown(again.base) >= len(received)


# --- workers and metrics -------------------------------------------------------------


def requests_counted(text: str, route: str) -> float:
    pattern = rf'^politely_requests_total\{{[^}}]*route="{re.escape(route)}"[^}}]*\}} (\S+)$'
    return sum(float(m.group(1)) for m in re.finditer(pattern, text, re.MULTILINE))


def test_two_workers_on_sqlite_sum_their_metrics(tmp_path: Path) -> None:
    folder = site_folder(tmp_path / "site", UNLIMITED, rules=ONCE)
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    args = ["--store", f"sqlite:///{tmp_path}/state.db", "--workers", "2"]
    env = {"PROMETHEUS_MULTIPROC_DIR": str(metrics)}
    n = 120
    with serving(folder, *args, env=env) as server:

        async def load() -> None:
            # a new connection per request, so the kernel deals them to both workers
            limits = httpx.Limits(max_keepalive_connections=0)
            async with httpx.AsyncClient(base_url=server.base, limits=limits) as http:
                for start_at in range(0, n, 20):
                    batch = [
                        http.post(EVENTS, json={"visitor": f"w{i}", "event": "page_view"})
                        for i in range(start_at, start_at + 20)
                    ]
                    answers = await asyncio.gather(*batch)
                    assert {a.status_code for a in answers} == {200}

        asyncio.run(load())
        pids = {int(p.stem.rsplit("_", 1)[1]) for p in metrics.glob("counter_*.db")}
        assert len(pids) == 2, f"one worker answered everything: {pids}"
        for _ in range(4):  # whichever worker answers, it reports both
            text = httpx.get(f"{server.base}/metrics", timeout=10).text
            assert requests_counted(text, "/v1/sites/{site}/events") == n
        assert '"status": 200' in server.output()
