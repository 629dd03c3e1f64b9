"""politely.js in a real browser (Debian's headless Chromium through Playwright) against a
real `politely serve`, on a stranger's page that embeds it with one script tag.

Without Playwright or /usr/bin/chromium these tests skip, saying what to install;
under CI=true they fail instead. Waits are bounds (how long to wait for something
to happen), never timing assertions.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from browserkit import (
    SHOP,
    Server,
    Visit,
    new_visit,
    start_browser,
    start_server,
)
from servicekit import TOKEN

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


# Module scope, which is once per session (every browser test is here): the sync
# Playwright API runs an event loop in this thread while it is started, and the
# anyio tests of other modules need the thread's loop free again afterwards.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from start_browser()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[Server]:
    yield from start_server(tmp_path_factory.mktemp("browser-sites"))


@pytest.fixture
def visit(browser: Any, server: Server) -> Iterator[Visit]:
    v = new_visit(browser, server)
    yield v
    v.context.close()
    assert v.problems == []


def test_no_invitation_before_the_dwell_then_one_through_the_recheck_tick(visit: Visit) -> None:
    visit.open("/wait")
    visit.wait_for_events(1)
    first = visit.decisions()[0]
    assert first["invitation"] is None
    assert first["recheck_in"] == 2
    assert visit.bubble().count() == 0
    visit.bubble().wait_for(timeout=15_000)
    # the text follows the dialog by 50 ms, so that screen readers announce it
    visit.bubble().get_by_text("Still there? Ask me anything.").wait_for(timeout=5_000)
    # exactly one page view, then the one tick the decision asked for: no polling
    assert visit.events() == ["page_view", "tick"]
    assert visit.decisions()[1]["invitation"]["rule"] == "wait"
    page_view = visit.sent[0]
    assert page_view["url"] == "/wait"
    assert page_view["title"] == "A shop"
    assert set(page_view) <= {"visitor", "event", "url", "title", "referrer", "scroll", "id"}
    assert "at" not in page_view
    assert len(page_view["visitor"]) == 32
    # the invitation stays quiet: it does not take the focus from what the visitor does
    assert visit.page.evaluate("document.activeElement === document.body")


def test_the_bubble_is_keyboard_reachable_and_never_steals_focus(visit: Visit) -> None:
    visit.open("/now")
    visit.page.locator("#search").click()
    visit.page.keyboard.type("lam")
    visit.bubble().wait_for()
    visit.page.keyboard.type("p")  # still typing in the site's own field
    assert visit.page.locator("#search").input_value() == "lamp"
    visit.page.keyboard.press("Escape")  # Esc belongs to the field the visitor is in
    assert visit.bubble().is_visible()
    visit.page.keyboard.press("Tab")
    accept = visit.bubble().get_by_role("button", name="Chat now")
    dismiss = visit.bubble().get_by_role("button", name="No thanks")
    assert dismiss.evaluate("b => b.matches(':focus')")  # the next stop after the field
    visit.page.keyboard.press("Tab")
    assert accept.evaluate("b => b.matches(':focus')")
    visit.page.keyboard.press("Escape")
    assert visit.bubble().count() == 0
    visit.wait_for_events(2)
    assert visit.sent[-1]["event"] == "invitation_dismissed"


def test_dismiss_hides_it_and_the_next_page_view_does_not_reinvite(visit: Visit) -> None:
    visit.open("/now")
    visit.bubble().wait_for()
    invitation = visit.decisions()[0]["invitation"]
    visit.bubble().get_by_role("button", name="No thanks").click()
    assert visit.bubble().count() == 0
    visit.wait_for_events(2)
    assert visit.sent[1]["event"] == "invitation_dismissed"
    assert visit.sent[1]["invitation"] == invitation["id"]
    visit.open("/now?again=1")
    visit.wait_for_events(3)
    again = visit.decisions()[2]
    assert again["invitation"] is None
    assert again["recheck_in"] is None or again["recheck_in"] > 3600  # quiet 1d after dismiss
    assert visit.bubble().count() == 0
    assert visit.sent[2]["visitor"] == visit.sent[0]["visitor"]  # the same visitor


def test_accept_reports_and_hands_over_to_the_sites_chat(visit: Visit) -> None:
    config = """
    window.politelyConfig = {onAccept: function (inv) { window.fromConfig = inv; }};
    document.addEventListener("politely:accept", function (e) { window.fromEvent = e.detail; });
    document.addEventListener("politely:ready", function () {
      politely.onAccept(function (inv) { window.fromCall = inv.id; });
    });
    """
    visit.open("/now", config=config)
    visit.bubble().wait_for()
    invitation = visit.decisions()[0]["invitation"]
    visit.bubble().get_by_role("button", name="Chat now").click()
    assert visit.bubble().count() == 0
    assert visit.page.evaluate("window.fromConfig") == invitation
    assert visit.page.evaluate("window.fromEvent") == invitation
    assert visit.page.evaluate("window.fromCall") == invitation["id"]
    visit.wait_for_events(2)
    assert visit.sent[1]["event"] == "invitation_accepted"
    assert visit.sent[1]["invitation"] == invitation["id"]


def test_a_blocked_visitor_never_sees_one(visit: Visit, server: Server) -> None:
    visit.open("/nothing-here")
    visit.wait_for_events(1)
    visitor = visit.page.evaluate("politely.visitor()")
    assert visitor == visit.sent[0]["visitor"]
    blocked = server.admin("PUT", f"/blocks/{visitor}", {"reason": "browser test"})
    assert blocked.status_code == 200
    visit.open("/now")
    visit.wait_for_events(2)
    assert visit.decisions()[1]["chat"] == "blocked"
    assert visit.decisions()[1]["invitation"] is None
    visit.page.evaluate("history.pushState({}, '', '/wait')")
    visit.wait_for_events(3)
    assert visit.bubble().count() == 0
    assert server.admin("DELETE", f"/blocks/{visitor}").status_code == 200


def test_attribute_html_is_shown_as_text_and_runs_nothing(visit: Visit) -> None:
    name = "<img src=x onerror=alert(1)><script>window.ran = 1</script>"
    quoted = json.dumps(name).replace("</", "<\\/")  # a JS string inside the page's <script>
    config = f"window.politelyConfig = {{attributes: {{name: {quoted}}}}};"
    visit.open("/now", config=config)
    visit.bubble().wait_for()
    visit.wait_for_events(1)
    assert visit.sent[0]["attributes"] == {"name": name}
    message = visit.decisions()[0]["invitation"]["message"]
    assert "onerror=alert(1)" in message  # the engine takes the tags out; the rest is text
    visit.bubble().get_by_text(message).wait_for()
    assert visit.bubble().locator("img, script").count() == 0
    assert visit.page.evaluate("window.ran") is None
    # dialogs (alert) and errors are problems, checked by the fixture


def test_a_message_is_inserted_as_text_whatever_the_server_says(visit: Visit) -> None:
    message = "<img src=x onerror=alert(1)> <b>bold</b> &amp;"
    decision = {
        "invitation": {"id": "0123456789abcdef", "rule": "r", "message": message, "variant": 0},
        "recheck_in": None,
        "chat": "available",
        "ruleset": "x",
    }
    visit.page.route(
        "**/v1/sites/default/events",
        lambda route: route.fulfill(json=decision, headers={"Access-Control-Allow-Origin": SHOP}),
    )
    visit.open("/anywhere")
    visit.bubble().get_by_text(message, exact=True).wait_for()
    assert visit.bubble().locator("img, b").count() == 0


FAILING_ANSWERS: dict[str, dict[str, Any] | str] = {
    "500": {"status": 500, "body": '{"detail": "boom"}', "content_type": "application/json"},
    "503-html": {"status": 503, "body": "<html>down</html>", "content_type": "text/html"},
    "garbage": {"status": 200, "body": "{not json", "content_type": "application/json"},
    "wrong-shape": {
        "status": 200,
        "body": '{"invitation": "<b>x</b>"}',
        "content_type": "application/json",
    },
    "429": {"status": 429, "body": "{}", "headers": {"Retry-After": "30"}},
    "network-error": "abort",
}
WATCHED_FOR_MS = 2500


@dataclass
class Watched:
    """What a page on a failing server had done WATCHED_FOR_MS after it loaded."""

    sent: list[dict[str, Any]]
    answered: int  # requests the failing route had answered
    bubbles: int
    track: str  # typeof politely.track
    problems: list[str]


def failing(answer: dict[str, Any] | str, answered: list[int]) -> Any:
    def fail(route: Any) -> None:
        answered.append(1)
        if answer == "abort":
            route.abort()
        else:  # readable by the page, as the server's own answers are (CORS)
            assert isinstance(answer, dict)
            headers = {
                "Access-Control-Allow-Origin": SHOP,
                "Access-Control-Expose-Headers": "Retry-After",
                **answer.get("headers", {}),
            }
            route.fulfill(**{**answer, "headers": headers})

    return fail


@pytest.fixture(scope="module")
def watched_failures(browser: Any, server: Server) -> Iterator[dict[str, Watched]]:
    """Every failing answer on a page of its own, all at once, each page watched for
    WATCHED_FOR_MS from its own load: one wait of 2.5 s, not six in a row."""
    visits: dict[str, tuple[Visit, float, list[int]]] = {}
    watched: dict[str, Watched] = {}
    try:
        for name, answer in FAILING_ANSWERS.items():
            visit, answered = new_visit(browser, server), []
            visit.page.route("**/v1/sites/default/events", failing(answer, answered))
            visit.open("/now")
            visits[name] = (visit, time.monotonic(), answered)
        for name, (visit, loaded, answered) in visits.items():
            left_ms = WATCHED_FOR_MS - 1000 * (time.monotonic() - loaded)
            visit.page.wait_for_timeout(max(left_ms, 0))  # the other pages run meanwhile
            sent, handled = list(visit.sent), len(answered)
            watched[name] = Watched(
                sent,
                handled,
                visit.bubble().count(),
                visit.page.evaluate("typeof politely.track"),
                list(visit.problems),
            )
        yield watched
    finally:
        for visit, _, _ in visits.values():
            visit.context.close()


@pytest.mark.parametrize("answer", list(FAILING_ANSWERS))
def test_the_snippet_survives_a_failing_server_quietly(
    watched_failures: dict[str, Watched], answer: str
) -> None:
    seen = watched_failures[answer]
    assert seen.answered >= 1  # the page did hear the failure
    assert seen.bubbles == 0
    # back-off, not a storm: the first try, and at most two more in 2.5 s
    events = [event["event"] for event in seen.sent]
    assert 1 <= len(seen.sent) <= 3, events
    if answer == "429":
        assert len(seen.sent) == 1  # Retry-After: 30 is honoured
    assert set(events) <= {"page_view", "tick"}
    assert seen.track == "function"
    assert seen.problems == []


def test_after_failures_it_recovers_with_the_same_event(visit: Visit) -> None:
    failures = []

    def flaky(route: Any) -> None:
        if len(failures) < 2:
            failures.append(route.request.post_data)
            route.fulfill(
                status=502, body="bad gateway", headers={"Access-Control-Allow-Origin": SHOP}
            )
        else:
            route.continue_()

    visit.page.route("**/v1/sites/default/events", flaky)
    visit.open("/now")
    visit.bubble().wait_for(timeout=20_000)
    assert visit.events() == ["page_view"] * 3
    assert len({event["id"] for event in visit.sent}) == 1  # one event, sent again safely


def test_spa_navigation_counts_as_a_page_view(visit: Visit) -> None:
    visit.open("/start")
    visit.wait_for_events(1)
    visit.page.evaluate("history.replaceState({x: 1}, '')")  # same URL: not a page view
    visit.page.evaluate("document.title = 'Now'; history.pushState({}, '', '/now?tab=2')")
    visit.bubble().wait_for()
    assert visit.events() == ["page_view", "page_view"]
    assert visit.sent[1]["url"] == "/now?tab=2"
    assert visit.sent[1]["referrer"] == f"{SHOP}/start"
    visit.page.go_back()  # popstate
    visit.wait_for_events(3)
    assert visit.sent[2]["event"] == "page_view"
    assert visit.sent[2]["url"] == "/start"
    visit.page.evaluate("history.replaceState({}, '', '/now?tab=3')")
    visit.wait_for_events(4)
    assert visit.sent[3]["url"] == "/now?tab=3"


def test_with_storage_and_cookies_blocked_it_works_for_the_pages_life(
    browser: Any, server: Server
) -> None:
    visit = new_visit(browser, server)
    visit.context.add_init_script(
        """
        const refuse = () => { throw new DOMException("blocked", "SecurityError"); };
        Object.defineProperty(window, "localStorage", {get: refuse});
        Object.defineProperty(document, "cookie", {get: refuse, set: refuse});
        """
    )
    try:
        visit.open("/start")
        visit.wait_for_events(1)
        visit.page.evaluate("history.pushState({}, '', '/wait')")
        visit.bubble().wait_for(timeout=15_000)
        assert visit.events() == ["page_view", "page_view", "tick"]
        assert len({event["visitor"] for event in visit.sent}) == 1
        assert visit.problems == []
    finally:
        visit.context.close()


def test_a_hidden_tab_pauses_the_tick_and_one_tick_resumes_it(visit: Visit) -> None:
    visit.open("/wait")
    visit.wait_for_events(1)
    visibility = """hidden => {
        Object.defineProperty(document, "hidden", {configurable: true, get: () => hidden});
        Object.defineProperty(document, "visibilityState", {configurable: true,
            get: () => hidden ? "hidden" : "visible"});
        document.dispatchEvent(new Event("visibilitychange"));
    }"""
    visit.page.evaluate(visibility, True)
    visit.page.wait_for_timeout(3500)  # past the recheck: no tick while hidden
    assert visit.events() == ["page_view"]
    assert visit.bubble().count() == 0
    visit.page.evaluate(visibility, False)
    visit.bubble().wait_for()
    assert visit.events() == ["page_view", "tick"]


def test_scroll_depth_goes_with_the_next_event_and_when_the_tab_hides(visit: Visit) -> None:
    visit.open("/nothing", body='<div style="height: 7000px"></div>')
    visit.wait_for_events(1)
    assert 9 <= visit.sent[0]["scroll"] <= 10  # 700 px of a little over 7,000 seen
    visit.page.mouse.wheel(0, 1400)
    visit.page.wait_for_function("window.scrollY >= 1400")  # wheel scrolling is asynchronous
    visit.page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    visit.page.evaluate("politely.track('looked', {at: 'top'})")
    visit.wait_for_events(2)
    assert visit.sent[1]["event"] == "looked"
    assert visit.sent[1]["props"] == {"at": "top"}
    assert visit.sent[1]["scroll"] >= 25
    visit.page.evaluate("window.scrollTo(0, 0)")
    visit.page.evaluate(
        """() => {
        Object.defineProperty(document, "hidden", {configurable: true, get: () => true});
        window.scrollTo(0, 2800);
        document.dispatchEvent(new Event("visibilitychange"));
    }"""
    )
    visit.wait_for_events(3)
    assert visit.sent[2]["event"] == "scroll"
    assert 48 <= visit.sent[2]["scroll"] <= 50  # the deepest seen: (2,800 + 700) / 7,000


def test_exit_intent_once_per_page_on_the_desktop(visit: Visit) -> None:
    visit.open("/leave")
    visit.wait_for_events(1)
    leave = "document.dispatchEvent(new MouseEvent('mouseout', {clientY: -2, bubbles: true}))"
    visit.page.evaluate(leave)
    visit.bubble().wait_for()
    visit.page.evaluate(leave)
    visit.page.evaluate("politely.identify({plan: 'pro'})")
    visit.wait_for_events(3)
    assert visit.events() == ["page_view", "exit_intent", "identify"]
    assert visit.sent[2]["attributes"] == {"plan": "pro"}


def test_loaded_twice_it_adds_one_global_and_sends_once(visit: Visit) -> None:
    tag = f'<script async src="{visit.server.base}/v1/politely.js" data-site="default"></script>'
    before = visit.page.evaluate("Object.keys(window).length")
    visit.open("/nothing", tag=tag + tag)
    visit.wait_for_events(1)
    visit.page.wait_for_timeout(300)
    assert visit.events() == ["page_view"]
    extra = visit.page.evaluate(
        """() => {
        const frame = document.createElement("iframe");
        document.body.appendChild(frame);
        const clean = new Set(Object.keys(frame.contentWindow));
        return Object.keys(window).filter(k => !clean.has(k) && !/^[0-9]+$/.test(k));
    }"""
    )
    assert extra == ["politely"], (before, extra)


def test_the_demo_shop_embeds_the_snippet_and_reports_its_chat(
    browser: Any, server: Server
) -> None:
    visit = new_visit(browser, server)
    try:
        visit.page.goto(f"{server.base}/demo/")
        visit.wait_for_events(1)
        assert visit.sent[0]["url"] == "/"  # the /demo prefix is the shop's base path
        visit.page.get_by_role("link", name="Pricing").first.click()
        visit.wait_for_events(2)
        assert visit.sent[1]["url"] == "/pricing"
        visit.bubble().wait_for(timeout=15_000)  # the test site's rule: 2 s on /pricing
        visit.bubble().get_by_role("button", name="Chat now").click()
        chat = visit.page.get_by_role("complementary", name="Chat")
        assert chat.get_by_text("Comparing plans?").is_visible()
        chat.get_by_role("button", name="Close").click()
        visit.wait_for_events(6)
        names = visit.events()
        assert names.index("invitation_accepted") < names.index("chat_started")
        assert names.index("chat_started") < names.index("chat_ended")
        assert visit.problems == []
    finally:
        visit.context.close()


def test_the_demo_agent_switch_uses_the_typed_token(browser: Any, server: Server) -> None:
    visit = new_visit(browser, server)
    try:
        calls: list[Any] = []
        visit.page.on("request", lambda r: calls.append(r) if r.url.endswith("/agents") else None)
        visit.page.goto(f"{server.base}/demo/pricing")
        html = visit.page.content()
        assert TOKEN not in html  # never embedded
        office = visit.page.get_by_role("complementary", name="Back office")
        office.get_by_label("Admin token").fill("wrong")
        office.get_by_label("Admin token").press("Tab")
        office.get_by_text("wrong token").wait_for()
        office.get_by_label("Admin token").fill(TOKEN)
        office.get_by_label("An agent is available").check()
        office.get_by_text("Sam is available").wait_for()
        assert calls[-1].method == "PUT"
        assert json.loads(calls[-1].post_data)["available"] == 1
        assert calls[-1].headers["authorization"] == f"Bearer {TOKEN}"
        office.get_by_label("An agent is available").uncheck()
        office.get_by_text("No agent available").wait_for()
        office.get_by_role("button", name="Why no invitation?").click()
        office.locator("pre").get_by_text("pricing:").wait_for()
        assert visit.problems == []
    finally:
        visit.context.close()
