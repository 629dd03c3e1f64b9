"""The website side of `politely serve`: the snippet's size and caching, the demo shop's
pages, the wheel shipping both, and the example rules inviting a demo visitor soon.

(The snippet's behaviour in a browser is tests/test_browser.py.)
"""

from __future__ import annotations

import gzip
import re
import zipfile
from pathlib import Path

import pytest

from conftest import FakeClock
from politely import Engine
from politely.service.web import DEMO_PAGES
from servicekit import make_app, running, site_folder

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parent.parent
STATIC = REPO / "src" / "politely" / "service" / "static"
SNIPPET = STATIC / "politely.js"
PLAIN = {"Accept-Encoding": "identity"}


def test_the_snippet_is_small_and_readable() -> None:
    source = SNIPPET.read_bytes()
    assert len(source) < 10 * 1024, f"{len(source)} bytes"
    assert len(gzip.compress(source, 9)) < 4 * 1024, f"{len(gzip.compress(source, 9))} gzipped"
    text = source.decode("utf-8")
    assert max(len(line) for line in text.splitlines()) <= 120  # readable, not minified
    for never in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                  "new Function", "console.", "setInterval", "XMLHttpRequest"):  # fmt: skip
        assert never not in text, never


async def test_the_snippet_is_served_with_an_etag_and_304(tmp_path: Path) -> None:
    async with running(make_app(site_folder(tmp_path))) as http:
        first = await http.get("/v1/politely.js", headers=PLAIN)
        assert first.status_code == 200
        assert first.content == SNIPPET.read_bytes()
        assert first.headers["content-type"] == "text/javascript; charset=utf-8"
        assert "max-age=" in first.headers["cache-control"]
        assert first.headers["x-content-type-options"] == "nosniff"
        assert "content-encoding" not in first.headers
        etag = first.headers["etag"]
        assert re.fullmatch(r'"[0-9a-f]{20}"', etag)
        for given in (etag, f"W/{etag}", f'"other", {etag}', "*"):
            again = await http.get("/v1/politely.js", headers={**PLAIN, "If-None-Match": given})
            assert again.status_code == 304, given
            assert again.content == b""
            assert again.headers["etag"] == etag
        stale = await http.get("/v1/politely.js", headers={**PLAIN, "If-None-Match": '"old"'})
        assert stale.status_code == 200


async def test_the_snippet_is_gzipped_when_the_browser_accepts_it(tmp_path: Path) -> None:
    async with running(make_app(site_folder(tmp_path))) as http:
        zipped = await http.get("/v1/politely.js", headers={"Accept-Encoding": "gzip, br"})
        assert zipped.headers["content-encoding"] == "gzip"
        assert zipped.headers["vary"] == "Accept-Encoding"
        assert int(zipped.headers["content-length"]) < 4096
        assert zipped.content == SNIPPET.read_bytes()  # httpx decodes it
        etag = zipped.headers["etag"]
        assert etag.endswith('-gz"')
        same = await http.get(
            "/v1/politely.js", headers={"Accept-Encoding": "gzip", "If-None-Match": etag}
        )
        assert same.status_code == 304
        refused = await http.get("/v1/politely.js", headers={"Accept-Encoding": "gzip;q=0"})
        assert "content-encoding" not in refused.headers


async def test_a_429_exposes_retry_after_to_the_sites_pages(tmp_path: Path) -> None:
    toml = 'origins = ["https://shop.example"]\n[rate_limits]\nper_visitor = "1/minute"\n'
    async with running(make_app(site_folder(tmp_path, toml=toml))) as http:
        headers = {"Origin": "https://shop.example"}
        event = {"visitor": "v1", "event": "page_view", "url": "/"}
        assert (await http.post("/v1/sites/default/events", json=event, headers=headers)).is_success
        limited = await http.post("/v1/sites/default/events", json=event, headers=headers)
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.headers["access-control-allow-origin"] == "https://shop.example"
        assert limited.headers["access-control-expose-headers"] == "Retry-After"


async def test_the_demo_shop_is_served_for_the_default_site(tmp_path: Path) -> None:
    async with running(make_app(site_folder(tmp_path))) as http:
        assert (await http.get("/demo")).headers["location"] == "/demo/"
        for path, name in DEMO_PAGES.items():
            page = await http.get(f"/demo/{path}")
            assert page.status_code == 200, path
            assert page.content == (STATIC / "demo" / name).read_bytes()
            if name.endswith(".html"):
                assert page.headers["content-type"] == "text/html; charset=utf-8"
                # the one script tag, exactly as a site embeds it; no token in the page
                assert (
                    '<script async src="/v1/politely.js" data-site="default" '
                    'data-base-path="/demo"></script>' in page.text
                )
                assert "Bearer" not in page.text
        assert (await http.get("/demo/pricing/")).status_code == 200
        for missing in ("/demo/nothing", "/demo/../app.py", "/demo/demo.css/x"):
            assert (await http.get(missing)).status_code == 404, missing


async def test_no_demo_without_a_default_site(tmp_path: Path) -> None:
    site_folder(tmp_path / "shop")
    async with running(make_app(tmp_path)) as http:
        assert (await http.get("/demo/")).status_code == 404
        assert (await http.get("/demo")).status_code == 404
        assert (await http.get("/v1/politely.js")).status_code == 200


def test_the_demo_pages_use_no_inline_markup_from_data() -> None:
    demo_js = (STATIC / "demo" / "demo.js").read_text(encoding="utf-8")
    assert "innerHTML" not in demo_js
    assert "Bearer " in demo_js  # the token is typed in, sent in a header


def test_the_example_rules_invite_on_pricing_within_a_minute_with_an_agent() -> None:
    """What the demo shop shows a new user: home, the lamp, pricing, and an invitation
    on pricing within a minute, arriving through the ticks the decisions ask for."""
    # Tuesday 2026-01-06 10:00 Berlin (09:00 UTC): inside the policy's opening hours.
    clock = FakeClock(1767690000.0)
    engine = Engine.from_path(REPO / "rules", clock=clock, trust_event_time=False)
    engine.set_agents(online=1, available=1, queue_length=0, queue_wait=20)
    for url in ("/", "/products/lamp"):
        assert (
            engine.evaluate({"visitor": "new", "event": "page_view", "url": url}).invitation is None
        )
        clock.advance(10)
    decision = engine.evaluate(
        {"visitor": "new", "event": "page_view", "url": "/pricing", "scroll": 100}
    )
    waited = 0
    while decision.invitation is None:
        assert decision.recheck_in is not None
        clock.advance(decision.recheck_in)
        waited += decision.recheck_in
        assert waited <= 60
        decision = engine.evaluate({"visitor": "new", "event": "tick"})
    assert decision.invitation.rule == "pricing_help"


def test_the_example_rules_never_invite_without_an_agent() -> None:
    clock = FakeClock(1767690000.0)
    engine = Engine.from_path(REPO / "rules", clock=clock, trust_event_time=False)
    engine.set_agents(online=1, available=0, queue_length=0, queue_wait=0)
    for url in ("/", "/products/lamp", "/pricing"):
        engine.evaluate({"visitor": "lonely", "event": "page_view", "url": url, "scroll": 100})
        clock.advance(10)
    for _ in range(20):  # ten minutes of ticks, the agent status renewed as the demo does
        clock.advance(30)
        engine.set_agents(online=1, available=0, queue_length=0, queue_wait=0)
        decision = engine.evaluate({"visitor": "lonely", "event": "tick"})
        assert decision.invitation is None
        assert decision.recheck_in is not None  # it asks again...
        assert decision.recheck_in <= 30  # ...within agent_recheck


def test_the_wheel_ships_the_snippet_and_the_demo(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert archive.read("politely/service/static/politely.js") == SNIPPET.read_bytes()
        for name in set(DEMO_PAGES.values()):
            assert f"politely/service/static/demo/{name}" in names


def test_the_ci_script_installs_debians_chromium_when_missing() -> None:
    script = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "apt-get install -y -qq chromium" in script
    assert "playwright install" not in script
    assert script.index("chromium") < script.index("python -m pytest")
