"""The service's operations side: CORS, failing quiet, readiness, metrics, logs, rate limits."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest

from servicekit import ADMIN, PRICING, TOKEN, FlakyStore, make_app, running, site_folder

pytestmark = pytest.mark.anyio
SHOP = "https://shop.example"
TOML = f'origins = ["{SHOP}"]\n'
EVENTS = "/v1/sites/default/events"


async def test_cors_allows_the_sites_origins_only(tmp_path: Path) -> None:
    async with running(make_app(site_folder(tmp_path, TOML))) as http:
        event = {"event": "page_view", "visitor": "v1"}
        allowed = await http.post(EVENTS, json=event, headers={"Origin": SHOP})
        assert allowed.headers["access-control-allow-origin"] == SHOP
        assert "access-control-allow-credentials" not in allowed.headers
        other = await http.post(EVENTS, json=event, headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        private = await http.get("/v1/sites/default/rules", headers={**ADMIN, "Origin": SHOP})
        assert "access-control-allow-origin" not in private.headers


async def test_cors_preflight(tmp_path: Path) -> None:
    async with running(make_app(site_folder(tmp_path, TOML))) as http:
        asked = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x"}
        ok = await http.options(EVENTS, headers={"Origin": SHOP, **asked})
        assert ok.status_code == 204
        assert ok.headers["access-control-allow-origin"] == SHOP
        assert ok.headers["access-control-allow-methods"] == "POST"
        refused = await http.options(EVENTS, headers={"Origin": "https://evil.example", **asked})
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers


async def test_a_store_that_raises_fails_quiet(tmp_path: Path) -> None:
    store = FlakyStore()
    async with running(make_app(site_folder(tmp_path), store=store)) as http:
        assert (await http.get("/readyz")).status_code == 200
        store.failing = True
        answer = await http.post(EVENTS, json={"event": "page_view", "visitor": "v1"})
        assert answer.status_code == 200
        assert answer.json()["degraded"] is True
        assert answer.json()["invitation"] is None
        assert (await http.get("/readyz")).status_code == 503
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/v1/sites/default/stats", headers=ADMIN)).status_code == 200
        metrics = (await http.get("/metrics")).text
        assert 'politely_degraded_decisions_total{site="default"} 1.0' in metrics
        assert 'politely_store_errors_total{site="default"} 1.0' in metrics
        store.failing = False
        assert (await http.get("/readyz")).status_code == 200
        back = (await http.post(EVENTS, json={"event": "page_view", "visitor": "v1"})).json()
        assert "degraded" not in back


async def test_a_store_that_hangs_fails_quiet(tmp_path: Path) -> None:
    store = FlakyStore()
    app = make_app(site_folder(tmp_path), store=store, store_budget=0.05, ready_budget=0.05)
    try:
        async with running(app) as http:
            store.release.clear()
            answer = await http.post(EVENTS, json={"event": "page_view"})
            assert answer.status_code == 200
            assert answer.json()["degraded"] is True
            assert len(answer.json()["visitor"]) == 32
            assert (await http.get("/readyz")).status_code == 503
            store.release.set()
            assert (await http.get("/readyz")).status_code == 200
    finally:
        store.release.set()


async def test_metrics_count_requests_decisions_and_invitations(tmp_path: Path) -> None:
    async with running(make_app(site_folder(tmp_path, rules=PRICING))) as http:
        agents = {"online": 1, "available": 1}
        await http.put("/v1/sites/default/agents", json=agents, headers=ADMIN)
        event = {"event": "page_view", "visitor": "v1", "url": "/pricing"}
        assert (await http.post(EVENTS, json=event)).json()["invitation"]
        await http.post(EVENTS, json={"event": "page_view", "visitor": "v1", "url": "/x"})
        await http.post(EVENTS, json={"visitor": "bad id"})
        answer = await http.get("/metrics")
        assert answer.headers["content-type"].startswith("text/plain")
        text = answer.text
        route = 'route="/v1/sites/{site}/events"'
        assert f'politely_requests_total{{method="POST",{route},status="200"}} 2.0' in text
        assert f'politely_requests_total{{method="POST",{route},status="422"}} 1.0' in text
        assert f"politely_request_duration_seconds_count{{{route},status=" in text
        assert 'politely_decisions_total{outcome="invitation",site="default"} 1.0' in text
        assert 'politely_decisions_total{outcome="none",site="default"} 1.0' in text
        assert 'politely_invitations_total{rule="pricing",site="default"} 1.0' in text


async def test_one_json_log_line_per_request_and_per_swap(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="politely.service")
    async with running(make_app(site_folder(tmp_path))) as http:
        caplog.clear()
        event = {"event": "page_view", "visitor": "v7", "url": "/secret?email=a@b.c"}
        await http.post(EVENTS, json=event, headers={"User-Agent": "probe"})
        lines = [json.loads(r.getMessage()) for r in caplog.records]
        assert lines == [
            {
                "event": "request",
                "method": "POST",
                "route": "/v1/sites/{site}/events",
                "status": 200,
                "duration_ms": lines[0]["duration_ms"],
                "visitor": "v7",
                "site": "default",
            }
        ]
        caplog.clear()
        await http.post("/v1/sites/default/reload", headers=ADMIN)
        kinds = [json.loads(r.getMessage())["event"] for r in caplog.records]
        assert kinds == ["rules", "request"]
        assert TOKEN not in caplog.text


async def test_a_flood_from_one_address_is_limited_while_another_is_served(
    tmp_path: Path,
) -> None:
    toml = '[rate_limits]\nper_address = "5/minute"\nper_visitor = "100/minute"\n'
    app = make_app(site_folder(tmp_path, toml))
    async with running(app, client=("203.0.113.7", 1000)) as flood:
        codes = [(await flood.post(EVENTS, json={"event": "tick"})).status_code for _ in range(8)]
        assert codes == [200] * 5 + [429] * 3
        limited = await flood.post(EVENTS, json={"event": "tick"})
        assert int(limited.headers["retry-after"]) >= 1
        transport = httpx.ASGITransport(app=app, client=("198.51.100.9", 1000))
        async with httpx.AsyncClient(transport=transport, base_url="http://politely") as calm:
            assert (await calm.post(EVENTS, json={"event": "tick"})).status_code == 200
        text = (await flood.get("/metrics")).text
        assert 'politely_rate_limited_total{limit="address",site="default"} 4.0' in text


async def test_a_flood_for_one_visitor_is_limited(tmp_path: Path) -> None:
    toml = '[rate_limits]\nper_visitor = "3/minute"\n'
    async with running(make_app(site_folder(tmp_path, toml))) as http:
        one = {"event": "tick", "visitor": "v1"}
        codes = [(await http.post(EVENTS, json=one)).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        other = {"event": "tick", "visitor": "v2"}
        assert (await http.post(EVENTS, json=other)).status_code == 200


async def test_forwarded_for_is_trusted_only_from_configured_proxies(tmp_path: Path) -> None:
    toml = 'trusted_proxies = ["10.0.0.0/8"]\n[rate_limits]\nper_address = "2/minute"\n'
    app = make_app(site_folder(tmp_path, toml))
    async with running(app, client=("10.1.2.3", 1000)) as proxy:
        for client in ("192.0.2.1", "192.0.2.2"):
            headers = {"X-Forwarded-For": f"{client}, 10.9.9.9"}
            codes = [
                (await proxy.post(EVENTS, json={"event": "tick"}, headers=headers)).status_code
                for _ in range(3)
            ]
            assert codes == [200, 200, 429]
    async with running(app, client=("192.0.2.50", 1000)) as direct:
        # a client that is not a proxy cannot choose its address
        for spoof in ("1.1.1.1", "2.2.2.2", "3.3.3.3"):
            answer = await direct.post(
                EVENTS, json={"event": "tick"}, headers={"X-Forwarded-For": spoof}
            )
        assert answer.status_code == 429
