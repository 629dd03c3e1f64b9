"""The service on a real Redis (tests/redis_servers.py): instances share rate limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from redis_servers import flush, server_url
from servicekit import make_app, running, site_folder

pytestmark = pytest.mark.anyio
EVENTS = "/v1/sites/default/events"


def redis_url(kind: str) -> str:
    pytest.importorskip("redis")
    url = server_url(kind)
    flush(kind)
    return url + ("&" if "?" in url else "?") + "timeout=2"


async def test_two_instances_on_one_redis_share_a_visitors_limit(
    tmp_path: Path, redis_kind: str
) -> None:
    url = redis_url(redis_kind)
    toml = '[rate_limits]\nper_visitor = "4/minute"\n'
    folder = site_folder(tmp_path, toml)
    # A budget long enough that a loaded machine never falls back to memory counters
    # (a cluster client's first call discovers the slots): this test is about sharing.
    one, two = (make_app(folder, store_url=url, store_budget=10) for _ in range(2))
    assert one.state.service.limiter.where == redis_kind
    event = {"event": "tick", "visitor": "v1"}
    async with running(one) as first, running(two) as second:
        codes = []
        for http in (first, second, first, second, first, second):
            codes.append((await http.post(EVENTS, json=event)).status_code)
        assert codes == [200, 200, 200, 200, 429, 429]
        other = {"event": "tick", "visitor": "v2"}
        assert (await second.post(EVENTS, json=other)).status_code == 200
        limited = await first.post(EVENTS, json=event)
        assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert one.state.service.limiter.failures == 0


async def test_other_stores_count_in_memory_per_instance(tmp_path: Path) -> None:
    folder = site_folder(tmp_path, '[rate_limits]\nper_visitor = "2/minute"\n')
    url = f"sqlite:///{tmp_path}/state.db"
    one, two = make_app(folder, store_url=url), make_app(folder, store_url=url)
    assert one.state.service.limiter.where == "memory"
    event = {"event": "tick", "visitor": "v1"}
    async with running(one) as first, running(two) as second:
        codes = [(await http.post(EVENTS, json=event)).status_code for http in (first, first)]
        codes += [(await http.post(EVENTS, json=event)).status_code for http in (second, second)]
        assert codes == [200, 200, 200, 200]  # each instance counts alone
        assert (await first.post(EVENTS, json=event)).status_code == 429


async def test_a_dead_redis_falls_back_to_memory_counters(tmp_path: Path) -> None:
    """Nothing listens on the port: limits are counted in memory, never a 500."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = site_folder(tmp_path, '[rate_limits]\nper_visitor = "2/minute"\n')
    app = make_app(folder, store_url=f"redis://127.0.0.1:{port}/0?timeout=0.2")
    event = {"event": "tick", "visitor": "v1"}
    async with running(app) as http:
        answers = [await http.post(EVENTS, json=event) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert answers[0].json()["degraded"] is True
    assert app.state.service.limiter.failures >= 1
