"""Sessions, pages and visitor attributes as the evaluator records them (docs/semantics.md 3).

A probe rule listening only to `tick` renders the fields under test into its
message, so a tick reads the visitor's state without starting or extending a
session; time-dependent fields are read through conditions and `recheck_in`.
"""

from __future__ import annotations

import pytest

from conftest import FakeClock
from events import MakeEngine, send, view
from politely import Engine

PROBED = (
    "session.pageviews",
    "session.landing",
    "session.referrer",
    "session.utm_source",
    "session.utm_medium",
    "session.utm_campaign",
    "visitor.visits",
    "visitor.returning",
    "page.url",
    "page.path",
    "page.title",
    "page.referrer",
    "page.scroll",
    "visitor.country",
    "visitor.language",
    "visitor.device",
    "visitor.plan",
    "visitor.name",
)
MISSING = "-"
PROBE = (
    "policy { at most 1000 invitations per visitor }\n"
    "rule probe {\n"
    "    on tick\n"
    "    when visitor.visits >= 0\n"
    '    say "' + "|".join(f"{name}={{{name} or {MISSING}}}" for name in PROBED) + '"\n'
    "}\n"
)


def probe(engine: Engine, visitor: str) -> dict[str, str] | None:
    """The probed fields after a tick, or None when the tick invites nobody (no session)."""
    invitation = send(engine, visitor, "tick").invitation
    if invitation is None:
        return None
    return dict(part.split("=", 1) for part in invitation.message.split("|"))


def visits(engine: Engine, visitor: str) -> int:
    found = probe(engine, visitor)
    assert found is not None, "the visitor has no session"
    return int(found["visitor.visits"])


@pytest.fixture
def engine(make_engine: MakeEngine) -> Engine:
    return make_engine(PROBE)


# --- starting sessions ------------------------------------------------------------------


def test_first_activity_event_starts_the_first_visit(engine: Engine) -> None:
    view(engine, "v1", "/home")
    found = probe(engine, "v1")
    assert found is not None
    assert found["visitor.visits"] == "1"
    assert found["visitor.returning"] == "no"
    assert found["session.pageviews"] == "1"


def test_any_activity_event_starts_a_session_not_only_page_views(engine: Engine) -> None:
    send(engine, "v1", "login")
    found = probe(engine, "v1")
    assert found is not None
    assert found["visitor.visits"] == "1"
    assert found["session.pageviews"] == "0"
    assert found["session.landing"] == MISSING


def test_a_tick_never_starts_a_session(engine: Engine, clock: FakeClock) -> None:
    for _ in range(3):
        decision = send(engine, "v1", "tick")
        assert decision.invitation is None
        assert decision.recheck_in is None
        clock.advance(10)
    assert probe(engine, "v1") is None
    view(engine, "v1")
    assert visits(engine, "v1") == 1


def test_activity_exactly_at_the_timeout_stays_in_the_same_session(
    engine: Engine, clock: FakeClock
) -> None:
    view(engine, "v1", "/a")
    clock.advance(30 * 60)
    view(engine, "v1", "/b")
    found = probe(engine, "v1")
    assert found is not None
    assert found["visitor.visits"] == "1"
    assert found["session.pageviews"] == "2"
    assert found["session.landing"] == "/a"


def test_activity_one_second_past_the_timeout_starts_a_new_session(
    engine: Engine, clock: FakeClock
) -> None:
    view(engine, "v1", "/a")
    clock.advance(30 * 60 + 1)
    view(engine, "v1", "/b")
    found = probe(engine, "v1")
    assert found is not None
    assert found["visitor.visits"] == "2"
    assert found["visitor.returning"] == "yes"
    assert found["session.pageviews"] == "1"
    assert found["session.landing"] == "/b"


def test_timeout_counts_from_the_previous_activity_event(engine: Engine, clock: FakeClock) -> None:
    for _ in range(5):
        view(engine, "v1")
        clock.advance(25 * 60)
    assert visits(engine, "v1") == 1


def test_ticks_do_not_keep_a_session_alive(engine: Engine, clock: FakeClock) -> None:
    view(engine, "v1")
    for _ in range(4):
        clock.advance(10 * 60)
        send(engine, "v1", "tick")
    view(engine, "v1")  # 40 minutes after the last activity
    assert visits(engine, "v1") == 2


def test_a_tick_after_the_timeout_stays_in_the_old_session(
    engine: Engine, clock: FakeClock
) -> None:
    view(engine, "v1")
    clock.advance(2 * 3600)
    assert visits(engine, "v1") == 1


def test_custom_activity_events_keep_a_session_alive(engine: Engine, clock: FakeClock) -> None:
    view(engine, "v1")
    clock.advance(20 * 60)
    send(engine, "v1", "scrolled")
    clock.advance(25 * 60)
    view(engine, "v1")
    assert visits(engine, "v1") == 1


@pytest.mark.parametrize(("gap", "expected_visits"), [(600, 1), (601, 2)])
def test_session_timeout_in_the_policy_is_used_at_its_exact_boundary(
    make_engine: MakeEngine, clock: FakeClock, gap: int, expected_visits: int
) -> None:
    source = PROBE.replace(
        "policy { at most 1000 invitations per visitor }",
        "policy {\n    at most 1000 invitations per visitor\n    session timeout 10m\n}",
    )
    engine = make_engine(source)
    view(engine, "v1")
    clock.advance(gap)
    view(engine, "v1")
    assert visits(engine, "v1") == expected_visits


def test_explicit_session_ids_ignore_inactivity(engine: Engine, clock: FakeClock) -> None:
    view(engine, "v1", "/a", session="s1")
    clock.advance(5 * 3600)
    view(engine, "v1", "/b", session="s1")
    found = probe(engine, "v1")
    assert found is not None
    assert found["visitor.visits"] == "1"
    assert found["session.pageviews"] == "2"


def test_a_new_explicit_session_id_starts_a_new_session_at_once(
    engine: Engine, clock: FakeClock
) -> None:
    view(engine, "v1", "/a?utm_source=ads", session="s1", referrer="https://search.example/")
    clock.advance(1)
    view(engine, "v1", "/b", session="s2")
    found = probe(engine, "v1")
    assert found is not None
    assert found["visitor.visits"] == "2"
    assert found["session.pageviews"] == "1"
    assert found["session.landing"] == "/b"
    assert found["session.utm_source"] == MISSING
    assert found["session.referrer"] == MISSING


def test_a_tick_with_a_new_session_id_does_not_start_that_session(
    engine: Engine, clock: FakeClock
) -> None:
    view(engine, "v1", session="s1")
    clock.advance(1)
    send(engine, "v1", "tick", session="s2")
    assert visits(engine, "v1") == 1


def test_visitor_returning_is_a_condition_from_the_second_visit(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(
        'rule welcome_back { on page_view when visitor.returning say "Welcome back" }'
    )
    assert view(engine, "v1").invitation is None
    clock.advance(31 * 60)
    invitation = view(engine, "v1").invitation
    assert invitation is not None
    assert invitation.rule == "welcome_back"


def test_a_visitor_back_after_days_is_returning(engine: Engine, clock: FakeClock) -> None:
    view(engine, "v1", attributes={"plan": "pro"})
    clock.advance(3 * 86400)
    view(engine, "v1")
    found = probe(engine, "v1")
    assert found is not None
    assert (found["visitor.visits"], found["visitor.returning"]) == ("2", "yes")
    assert found["visitor.plan"] == "pro"


# --- pages --------------------------------------------------------------------------------


def test_pageviews_count_every_page_view_the_current_one_included(engine: Engine) -> None:
    for expected in range(1, 5):
        view(engine, "v1", f"/p{expected}")
        found = probe(engine, "v1")
        assert found is not None
        assert found["session.pageviews"] == str(expected)


def test_pageviews_condition_holds_on_the_page_view_that_reaches_it(
    make_engine: MakeEngine,
) -> None:
    engine = make_engine('rule third { on page_view when session.pageviews >= 3 say "Hi" }')
    assert view(engine, "v1").invitation is None
    assert view(engine, "v1").invitation is None
    assert view(engine, "v1").invitation is not None


def test_landing_referrer_and_utm_come_from_the_first_page_view(
    engine: Engine, clock: FakeClock
) -> None:
    view(
        engine,
        "v1",
        "/landing?utm_source=news&utm_medium=email&utm_campaign=spring",
        referrer="https://mail.example/",
    )
    clock.advance(5)
    view(
        engine,
        "v1",
        "/second?utm_source=other&utm_medium=cpc&utm_campaign=fall",
        referrer="https://elsewhere.example/",
    )
    found = probe(engine, "v1")
    assert found is not None
    assert found["session.landing"] == "/landing"
    assert found["session.referrer"] == "https://mail.example/"
    assert found["session.utm_source"] == "news"
    assert found["session.utm_medium"] == "email"
    assert found["session.utm_campaign"] == "spring"
    assert found["page.referrer"] == "https://elsewhere.example/"
    assert found["page.path"] == "/second"


def test_page_fields_come_from_the_latest_page_view(engine: Engine) -> None:
    view(engine, "v1", "/a", title="A page")
    view(engine, "v1", "/b?q=1", title="B page")
    found = probe(engine, "v1")
    assert found is not None
    assert found["page.url"] == "/b?q=1"
    assert found["page.path"] == "/b"
    assert found["page.title"] == "B page"


@pytest.mark.parametrize(
    ("sent", "url", "path"),
    [
        ("/pricing", "/pricing", "/pricing"),
        ("/pricing?plan=pro&x=1", "/pricing?plan=pro&x=1", "/pricing"),
        ("https://shop.example/pricing?plan=pro", "/pricing?plan=pro", "/pricing"),
        ("https://shop.example/docs/a/b", "/docs/a/b", "/docs/a/b"),
        ("https://shop.example", "/", "/"),
        ("https://shop.example/faq#shipping", "/faq", "/faq"),
    ],
)
def test_page_url_and_path_from_absolute_urls_and_paths(
    engine: Engine, sent: str, url: str, path: str
) -> None:
    view(engine, "v1", sent)
    found = probe(engine, "v1")
    assert found is not None
    assert (found["page.url"], found["page.path"]) == (url, path)


def test_page_path_from_an_absolute_url_matches_path_globs(make_engine: MakeEngine) -> None:
    engine = make_engine(
        'rule pricing { on page_view when page.path matches "/pricing*" '
        'and page.url contains "plan=pro" say "Hi" }'
    )
    assert view(engine, "v1", "https://shop.example/pricing/teams?plan=pro").invitation
    assert view(engine, "v2", "https://shop.example/about?plan=pro").invitation is None


def test_page_fields_are_missing_before_any_page_view(engine: Engine) -> None:
    send(engine, "v1", "login")
    found = probe(engine, "v1")
    assert found is not None
    assert found["page.path"] == MISSING
    assert found["page.url"] == MISSING
    assert found["page.scroll"] == MISSING


# --- dwell, duration, scroll ----------------------------------------------------------------

DWELL = 'rule read { on tick, page_view when page.dwell >= 60s say "Still reading?" }'


def test_dwell_grows_with_the_engine_clock(make_engine: MakeEngine, clock: FakeClock) -> None:
    engine = make_engine(DWELL)
    assert view(engine, "v1").recheck_in == 60
    clock.advance(20)
    assert send(engine, "v1", "tick").recheck_in == 40
    clock.advance(39)
    assert send(engine, "v1", "tick").invitation is None
    clock.advance(1)
    assert send(engine, "v1", "tick").invitation is not None


def test_a_page_view_resets_dwell_to_zero(make_engine: MakeEngine, clock: FakeClock) -> None:
    engine = make_engine(DWELL)
    view(engine, "v1", "/a")
    clock.advance(50)
    assert view(engine, "v1", "/b").recheck_in == 60
    clock.advance(50)
    assert send(engine, "v1", "tick").invitation is None  # 100s in the session, 50s on /b
    clock.advance(10)
    assert send(engine, "v1", "tick").invitation is not None


def test_other_events_do_not_reset_dwell(make_engine: MakeEngine, clock: FakeClock) -> None:
    engine = make_engine(DWELL)
    view(engine, "v1")
    clock.advance(30)
    send(engine, "v1", "scrolled", scroll=40)
    clock.advance(30)
    assert send(engine, "v1", "tick").invitation is not None


def test_session_duration_counts_from_the_sessions_first_event(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine('rule long { on tick when session.duration >= 5m say "Hi" }')
    view(engine, "v1", "/a")
    clock.advance(200)
    view(engine, "v1", "/b")
    assert send(engine, "v1", "tick").recheck_in == 100
    clock.advance(100)
    assert send(engine, "v1", "tick").invitation is not None


def test_session_duration_restarts_with_a_new_session(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine('rule long { on tick when session.duration >= 5m say "Hi" }')
    view(engine, "v1")
    clock.advance(31 * 60)
    view(engine, "v1")
    clock.advance(60)
    assert send(engine, "v1", "tick").invitation is None


def test_scroll_keeps_the_deepest_value_on_a_page(engine: Engine) -> None:
    view(engine, "v1", "/a", scroll=10)
    send(engine, "v1", "scrolled", scroll=70)
    send(engine, "v1", "scrolled", scroll=30)
    found = probe(engine, "v1")
    assert found is not None
    assert found["page.scroll"] == "70"


def test_a_page_view_resets_scroll(engine: Engine) -> None:
    view(engine, "v1", "/a")
    send(engine, "v1", "scrolled", scroll=90)
    view(engine, "v1", "/b")
    found = probe(engine, "v1")
    assert found is not None
    assert found["page.scroll"] == "0"


def test_scroll_condition_uses_the_deepest_scroll(make_engine: MakeEngine) -> None:
    engine = make_engine('rule deep { on scrolled when page.scroll >= 50% say "Hi" }')
    view(engine, "v1")
    assert send(engine, "v1", "scrolled", scroll=60).invitation is not None
    view(engine, "v2")
    send(engine, "v2", "custom", scroll=55)
    assert send(engine, "v2", "scrolled", scroll=5).invitation is not None


# --- attributes ---------------------------------------------------------------------------


def test_attributes_are_merged_and_kept(engine: Engine) -> None:
    view(engine, "v1", attributes={"plan": "pro"})
    view(engine, "v1", attributes={"name": "Ada"})
    found = probe(engine, "v1")
    assert found is not None
    assert (found["visitor.plan"], found["visitor.name"]) == ("pro", "Ada")


def test_a_later_attribute_value_replaces_the_earlier_one(engine: Engine) -> None:
    view(engine, "v1", attributes={"plan": "free"})
    send(engine, "v1", "upgraded", attributes={"plan": "pro"})
    found = probe(engine, "v1")
    assert found is not None
    assert found["visitor.plan"] == "pro"


def test_an_attribute_sent_as_null_is_removed(engine: Engine) -> None:
    view(engine, "v1", attributes={"plan": "pro", "name": "Ada"})
    view(engine, "v1", attributes={"plan": None})
    found = probe(engine, "v1")
    assert found is not None
    assert (found["visitor.plan"], found["visitor.name"]) == (MISSING, "Ada")


def test_attributes_on_ticks_are_merged_too(engine: Engine) -> None:
    view(engine, "v1")
    send(engine, "v1", "tick", attributes={"plan": "team"})
    found = probe(engine, "v1")
    assert found is not None
    assert found["visitor.plan"] == "team"


def test_country_language_and_device_are_kept_across_events(engine: Engine) -> None:
    view(engine, "v1", country="DE", language="de", device="mobile")
    view(engine, "v1", "/b")
    send(engine, "v1", "scrolled", country="AT")
    found = probe(engine, "v1")
    assert found is not None
    assert (found["visitor.country"], found["visitor.language"], found["visitor.device"]) == (
        "AT",
        "de",
        "mobile",
    )


def test_attributes_survive_a_new_session(engine: Engine, clock: FakeClock) -> None:
    view(engine, "v1", country="FR", attributes={"plan": "pro"})
    clock.advance(2 * 3600)
    view(engine, "v1")
    found = probe(engine, "v1")
    assert found is not None
    assert found["visitor.visits"] == "2"
    assert (found["visitor.country"], found["visitor.plan"]) == ("FR", "pro")


def test_country_conditions_read_the_kept_value(make_engine: MakeEngine) -> None:
    engine = make_engine(
        'rule dach { on page_view when visitor.country in ["DE", "AT"] say "Hallo" }'
    )
    assert view(engine, "v1", country="US").invitation is None
    assert view(engine, "v2", country="AT").invitation is not None


def test_a_wrongly_typed_known_attribute_makes_conditions_false_not_errors(
    make_engine: MakeEngine,
) -> None:
    engine = make_engine(
        'rule de { on page_view when visitor.country matches "D*" say "Hallo" }\n'
        'rule lang { on page_view when visitor.language contains "de" say "Hallo" }'
    )
    decision = view(engine, "v1", attributes={"country": 49, "language": ["de"]})
    assert decision.invitation is None
