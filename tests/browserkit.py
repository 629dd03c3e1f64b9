"""Browser tests' helpers: a real `politely serve`, Debian's headless Chromium through
Playwright, and a stranger's shop page (`http://shop.test/...`, made up by route
interception) that embeds the snippet from the server with one script tag.

One server and one browser per session; each test gets a new browser context,
so a new visitor (fresh localStorage and cookies).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import IN_CI
from serve_processes import serving
from servicekit import ADMIN

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
INSTALL_HINT = (
    "browser tests need Playwright for Python (pip install -e '.[test]') and Debian's "
    "Chromium (apt-get install chromium, for /usr/bin/chromium); never `playwright install`"
)
SHOP = "https://shop.test"

# Short thresholds, so the tests wait seconds, not minutes.
RULES = """\
policy {
    at most 1 invitation per 15m
    quiet 1d after dismiss
}

rule wait {
    when page.path matches "/wait*" and page.dwell >= 2s
    say "Still there? Ask me anything."
}

rule now {
    when page.path matches "/now*"
    say "Hi {visitor.name or there}! Any questions?"
}

rule leave {
    on exit_intent
    when page.path matches "/leave*"
    say "Before you go: can I help?"
}

rule pricing {
    when page.path matches "/pricing*" and page.dwell >= 2s
    say "Comparing plans?"
}
"""


def unavailable(message: str) -> None:
    """Skip, saying what to install; under CI=true, fail instead."""
    if IN_CI:
        pytest.fail(f"{message}; under CI=true the browser tests must run. {INSTALL_HINT}")
    pytest.skip(f"{message}: {INSTALL_HINT}")


@dataclass
class Server:
    base: str

    def admin(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return httpx.request(
            method, f"{self.base}/v1/sites/default{path}", json=body, headers=ADMIN, timeout=10
        )


def start_server(root: Path) -> Iterator[Server]:
    site = root / "default"
    site.mkdir(parents=True)
    (site / "test.rules").write_text(RULES, encoding="utf-8")
    (site / "site.toml").write_text(f'origins = ["{SHOP}"]\n', encoding="utf-8")
    with serving(root, "--store", "memory://") as served:
        yield Server(served.base)


def start_browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        unavailable("Playwright for Python is not installed")
    if not Path(CHROMIUM).exists():
        unavailable(f"{CHROMIUM} is missing")
    manager = sync_playwright().start()
    try:
        try:
            browser = manager.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Error as error:
            unavailable(f"Chromium did not start ({str(error).splitlines()[0]})")
        yield browser
        browser.close()
    finally:
        manager.stop()


def shop_page(server: Server, body: str = "", config: str = "", tag: str = "") -> str:
    """A stranger's page: its own content, a text field, and the one script tag."""
    script = (
        tag or f'<script async src="{server.base}/v1/politely.js" data-site="default"></script>'
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A shop</title>
{f"<script>{config}</script>" if config else ""}
{script}
</head><body>
<h1>A shop</h1><label>Search <input id="search"></label>
{body}
</body></html>"""


@dataclass
class Visit:
    """A browser context and page on the shop, with what the page sent and heard."""

    server: Server
    context: Any
    page: Any
    sent: list[dict[str, Any]] = field(default_factory=list)  # events, in order
    answers: list[tuple[int, bytes]] = field(default_factory=list)  # (status, body) of each
    problems: list[str] = field(default_factory=list)  # page errors and console noise
    html: dict[str, str] = field(default_factory=dict)  # path -> page body

    def open(self, path: str, **page: str) -> None:
        self.html[path.split("?")[0]] = shop_page(self.server, **page)
        self.page.goto(SHOP + path)

    def events(self) -> list[str]:
        return [event["event"] for event in self.sent]

    def decisions(self) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 5  # let the answers of what was sent arrive
        while len(self.answers) < len(self.sent) and time.monotonic() < deadline:
            self.page.wait_for_timeout(20)
        decisions = []
        for status, body in self.answers:
            if status == 200:
                try:
                    decisions.append(json.loads(body))
                except ValueError:
                    decisions.append(None)
        return decisions

    def bubble(self) -> Any:
        return self.page.get_by_role("dialog", name="Chat invitation")

    def wait_for_events(self, count: int, timeout: float = 15) -> None:
        """Until `count` events were answered (a bound on waiting, not a timing check)."""
        deadline = time.monotonic() + timeout
        while len(self.answers) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} answered events, got {self.events()}")
            self.page.wait_for_timeout(50)


def new_visit(browser: Any, server: Server, **context: Any) -> Visit:
    # The shop is on the public web, politely on loopback here: Chromium asks the user
    # before a public page reaches a loopback address (Local Network Access), so the
    # context grants that, as a real deployment on a public address never needs.
    ctx = browser.new_context(
        viewport={"width": 1000, "height": 700}, permissions=["local-network-access"], **context
    )
    page = ctx.new_page()
    visit = Visit(server, ctx, page)
    events_url = "/v1/sites/default/events"

    def on_request(request: Any) -> None:
        if request.url.endswith(events_url) and request.method == "POST":
            visit.sent.append(json.loads(request.post_data))

    def on_response(response: Any) -> None:
        if response.url.endswith(events_url) and response.request.method == "POST":
            try:
                body = response.body() if response.ok else b""
            except Exception:  # gone with a navigation
                body = b""
            visit.answers.append((response.status, body))

    def on_console(message: Any) -> None:
        # The browser itself logs a failed request ("Failed to load resource: ..."); that
        # line is not the page's code speaking. Anything else at warning or error level is.
        if message.type in ("error", "warning") and not message.text.startswith(
            "Failed to load resource"
        ):
            visit.problems.append(f"console {message.type}: {message.text}")

    page.on("request", on_request)
    page.on("response", on_response)
    page.on("console", on_console)
    page.on("pageerror", lambda error: visit.problems.append(f"page error: {error}"))
    page.on(
        "dialog",
        lambda dialog: (visit.problems.append(f"dialog: {dialog.message}"), dialog.dismiss()),
    )

    def serve_shop(route: Any) -> None:
        path = route.request.url.removeprefix(SHOP).split("?")[0]
        if path in visit.html:
            route.fulfill(status=200, content_type="text/html", body=visit.html[path])
        else:
            # SPA routes: the same page answers every path it pushes to
            route.fulfill(
                status=200, content_type="text/html", body=next(iter(visit.html.values()))
            )

    ctx.route(f"{SHOP}/**", serve_shop)
    return visit
