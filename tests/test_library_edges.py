"""The library at its edges: time taken one way everywhere, bad values refused at the
call that was given them, bounded visitor attributes, URLs and times that used to
escape as ValueError or OverflowError, and statistics that say "no answer yet".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import politely
from conftest import T0, FakeClock
from events import MakeEngine, send, tick, view
from politely import Engine, EventError
from politely.models import AttributeLimits, to_timestamp

LOOSE = "policy { at most 1000 invitations per visitor }\n"
HELLO = LOOSE + 'rule hello { on page_view when agents.available > 0 say "Hello!" }\n'
ISO = "2026-01-05T10:00:00Z"  # T0

# --- one way to give a time ------------------------------------------------------------------

SAME_TIME = [T0, int(T0), datetime(2026, 1, 5, 10, 0, tzinfo=UTC), datetime(2026, 1, 5, 10, 0), ISO]


@pytest.mark.parametrize("value", SAME_TIME)
def test_to_timestamp_reads_what_an_events_at_reads(value: Any) -> None:
    assert to_timestamp(value) == T0
    event = politely.Event.model_validate({"visitor": "v", "event": "tick", "at": value})
    assert event.timestamp == T0


@pytest.mark.parametrize("value", SAME_TIME)
def test_set_agents_at_accepts_what_an_events_at_accepts(value: Any) -> None:
    engine = Engine.from_source(HELLO, clock=FakeClock(0.0))
    engine.set_agents(online=1, available=1, at=value)
    assert engine.store.load(engine.site, "v", T0).agents.at == T0  # type: ignore[union-attr]
    decision = engine.evaluate({"visitor": "v", "event": "page_view", "url": "/", "at": ISO})
    assert decision.invitation is not None  # the status is fresh at the event's time


@pytest.mark.parametrize("value", SAME_TIME)
def test_block_until_and_at_accept_what_an_events_at_accepts(value: Any) -> None:
    engine = Engine.from_source(HELLO, clock=FakeClock(0.0))
    engine.block("v", "rude", until=value, at=value)
    block = engine.store.blocks(engine.site, T0 - 1)["v"]
    assert (block.until, block.at) == (T0, T0)


BAD_TIMES = [
    ("tomorrow", "not a time"),
    (float("inf"), "not a time"),
    (float("nan"), "not a time"),
    (True, "expected a time"),
    ([T0], "expected a time"),
    ("0001-01-01T00:00:00Z", "between 1970-01-01 and 2999-12-31"),
    ("9999-12-31T23:00:00Z", "between 1970-01-01 and 2999-12-31"),
    (10**5000, "too large"),
]


BAD_TIME_IDS = ["word", "inf", "nan", "bool", "list", "year-1", "year-9999", "5000-digits"]


@pytest.mark.parametrize(("value", "words"), BAD_TIMES, ids=BAD_TIME_IDS)
def test_a_bad_time_is_refused_at_the_call_naming_the_argument(
    make_engine: MakeEngine, value: Any, words: str
) -> None:
    engine = make_engine(HELLO)
    for call, name in [
        (lambda: engine.set_agents(online=1, available=1, at=value), "at"),
        (lambda: engine.block("v1", "rude", until=value), "until"),
        (lambda: engine.block("v1", "rude", at=value), "at"),
        (lambda: engine.blocks(at=value), "at"),
        (lambda: engine.visitor_state("v1", at=value), "at"),
    ]:
        with pytest.raises(EventError) as raised:
            call()
        assert str(raised.value).startswith(f"{name}: ")
        assert words in str(raised.value)
    # Nothing was stored: later calls work.
    assert engine.blocks() == {}
    assert view(engine).chat == "available"


@pytest.mark.parametrize(
    ("value", "words"), BAD_TIMES[:3] + BAD_TIMES[5:7], ids=BAD_TIME_IDS[:3] + BAD_TIME_IDS[5:7]
)
def test_a_bad_event_at_is_an_event_error_naming_at(
    make_engine: MakeEngine, value: Any, words: str
) -> None:
    engine = make_engine(HELLO)
    with pytest.raises(EventError, match=f"^at: .*{words}"):
        view(engine, at=value)


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"online": "x", "available": 1}, "online"),
        ({"online": 1, "available": -1}, "available"),
        ({"online": 1, "available": 1.5}, "available"),
        ({"online": 1, "available": 1, "queue_length": 10**30}, "queue_length"),
        ({"online": 1, "available": 1, "queue_wait": float("inf")}, "queue_wait"),
        ({"online": 1, "available": 1, "queue_wait": float("nan")}, "queue_wait"),
        ({"online": 1, "available": 1, "queue_wait": "soon"}, "queue_wait"),
    ],
)
def test_a_bad_agent_status_is_refused_at_set_agents(
    make_engine: MakeEngine, fields: dict[str, Any], name: str
) -> None:
    engine = make_engine(HELLO)
    with pytest.raises(EventError, match=f"^{name}: "):
        engine.set_agents(**fields)
    assert view(engine).recheck_in is None  # no status was stored: agents unknown


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda e: e.block("", "rude"), "visitor"),
        (lambda e: e.block(None, "rude"), "visitor"),
        (lambda e: e.block("v1", 3), "reason"),
        (lambda e: e.block("v1", "rude", by=1), "by"),
    ],
)
def test_a_bad_block_is_refused_at_the_call(make_engine: MakeEngine, call: Any, name: str) -> None:
    engine = make_engine(HELLO)
    with pytest.raises(EventError, match=f"^{name}: "):
        call(engine)
    assert engine.blocks() == {}


def test_blocks_and_evaluate_agree_at_every_time_around_the_expiry() -> None:
    clock = FakeClock(0.0)  # far from the events' time: only `at` matters
    engine = Engine.from_source(HELLO, clock=clock)
    engine.set_agents(online=1, available=1, at=T0 + 10)
    engine.block("v1", "short", until=T0 + 10, at=T0)
    for offset in (0, 9, 9.999, 10, 10.001, 11):
        at = T0 + offset
        active = "v1" in engine.blocks(at=at)
        decision = view(engine, "v1", at=at)
        assert active == (decision.chat == "blocked"), offset
        assert active == (offset < 10)


def test_blocks_without_at_uses_the_engines_clock_like_an_event_without_at(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(HELLO)
    engine.block("v1", "short", until=clock.now + 5)
    assert "v1" in engine.blocks()
    assert view(engine).chat == "blocked"
    clock.advance(5)
    assert engine.blocks() == {}
    assert view(engine).chat == "available"


def test_a_block_made_with_a_datetime_without_zone_is_utc(make_engine: MakeEngine) -> None:
    engine = make_engine(HELLO)
    engine.block("v1", "short", until=datetime(2026, 1, 5, 10, 1))
    assert engine.blocks(at=T0 + 59)["v1"].until == T0 + 60


# --- events that used to escape as ValueError or OverflowError --------------------------------


@pytest.mark.parametrize(
    "url",
    ["http://[::1", "https://[not-an-ip]/x", "https://ex\uff0fample.com/x", "//[::1/x"],
)
def test_a_url_that_does_not_parse_is_an_event_error_naming_url(
    make_engine: MakeEngine, url: str
) -> None:
    engine = make_engine(HELLO)
    for call in (engine.evaluate, engine.explain):
        with pytest.raises(EventError, match=r"^url: not a URL"):
            call({"visitor": "v1", "event": "page_view", "url": url})


def test_urls_that_parse_still_work(make_engine: MakeEngine) -> None:
    engine = make_engine('rule r { when page.path == "/x" say "Hi" }')
    for url in ["https://[::1]/x", "https://shop.example/x?a=1#top", "/x", "x"]:
        view(engine, "v1", url=url)
        assert engine.visitor_state("v1").page_path in ("/x", "x")  # type: ignore[union-attr]


@pytest.mark.parametrize("at", ["1970-01-01T00:00:00Z", "2999-12-31T23:59:59Z"])
def test_times_at_both_ends_of_the_range_work_with_schedules(at: str) -> None:
    engine = Engine.from_source(
        LOOSE
        + 'rule r { when page.dwell >= 10s and agents.available > 0 say "Hi" '
        + 'during mon-fri 09:00-17:00 in "Europe/Berlin" }\n'
        + 'rule s { on page_view when agents.available > 0 say "Yo" during sun 22:00-02:00 }\n'
    )
    engine.set_agents(online=1, available=1, at=at)
    decision = engine.evaluate({"visitor": "v", "event": "page_view", "url": "/", "at": at})
    assert decision.chat == "available"
    engine.explain({"visitor": "v", "event": "tick", "at": at})


# --- bounded attributes and props -------------------------------------------------------------


def deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"x": 1}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("attributes", "words"),
    [
        ({f"k{i}": i for i in range(51)}, "attributes: more than 50 entries"),
        ({"k" * 101: 1}, "a key of more than 100 characters"),
        ({"name": "x" * 1001}, "attributes.name: text longer than 1,000 characters"),
        (deep(4), "attributes.a.a.a: nested more than 3 levels deep"),
        ({"list": list(range(60))}, "more than 50 entries"),
        ({f"k{i}": "x" * 900 for i in range(12)}, "more than 10,000 characters"),
        ({"big": 2**64}, "attributes.big: a whole number larger than 2^63 - 1"),
        ({"nan": float("nan")}, "attributes.nan: a number must be finite"),
        ({"raw": b"bytes"}, "attributes.raw: bytes is not a JSON value"),
        ({"tags": {"a", "b"}}, "attributes.tags: set is not a JSON value"),
        ({"obj": {1: 2}}, "attributes.obj: keys must be text"),
    ],
)
def test_attributes_over_a_bound_are_an_event_error_naming_the_field(
    make_engine: MakeEngine, attributes: dict[str, Any], words: str
) -> None:
    engine = make_engine(HELLO)
    view(engine)
    before = engine.visitor_state("v1")
    with pytest.raises(EventError) as raised:
        tick(engine, attributes=attributes)
    assert words in str(raised.value)
    assert engine.visitor_state("v1").attributes == before.attributes  # type: ignore[union-attr]
    with pytest.raises(EventError):
        engine.explain({"visitor": "v1", "event": "tick", "attributes": attributes})


def test_props_are_bounded_the_same_way(make_engine: MakeEngine) -> None:
    engine = make_engine(HELLO)
    with pytest.raises(EventError, match=r"^props.q: text longer than 1,000"):
        send(engine, "v1", "search", props={"q": "x" * 1001})
    with pytest.raises(EventError, match=r"^props\.a\.a\.a: nested"):
        send(engine, "v1", "search", props=deep(4))


def test_attributes_at_the_bounds_are_accepted(make_engine: MakeEngine) -> None:
    engine = make_engine(HELLO)
    view(engine, attributes={f"k{i}": i for i in range(50)})
    view(engine, "v2", attributes=deep(3) | {"name": "x" * 1000, "k" * 100: [1, 2]})
    assert len(engine.visitor_state("v1").attributes or {}) == 50  # type: ignore[union-attr]


def test_the_merged_attributes_of_a_visitor_are_bounded_too(make_engine: MakeEngine) -> None:
    engine = make_engine(HELLO)
    for batch in range(5):  # 50 keys in five events of ten
        view(engine, attributes={f"k{batch}-{i}": i for i in range(10)})
    with pytest.raises(EventError) as raised:
        view(engine, attributes={"one_more": 1})
    assert str(raised.value).startswith("attributes: the visitor's attributes would grow")
    assert "null" in str(raised.value)
    state = engine.visitor_state("v1")
    assert state is not None
    assert "one_more" not in (state.attributes or {})
    # Removing one makes room; replacing one never grows the count.
    view(engine, attributes={"k0-0": None, "one_more": 1, "k1-1": "new"})
    assert len(engine.visitor_state("v1").attributes or {}) == 50  # type: ignore[union-attr]


def test_a_visitor_can_no_longer_grow_without_bound(make_engine: MakeEngine) -> None:
    engine = make_engine(HELLO)
    accepted = 0
    for i in range(50):
        try:
            view(engine, attributes={f"blob{i}": "x" * 1000})
            accepted += 1
        except EventError:
            pass
    attributes = engine.visitor_state("v1").attributes or {}  # type: ignore[union-attr]
    assert accepted == len(attributes) < 11
    assert sum(len(k) + len(v) for k, v in attributes.items()) <= 10_000


def test_attribute_limits_are_engine_options(make_engine: MakeEngine) -> None:
    engine = make_engine(HELLO, attribute_limits=AttributeLimits(entries=2, text_length=5))
    view(engine, attributes={"a": "12345", "b": 1})
    with pytest.raises(EventError, match="more than 2 entries"):
        view(engine, "v2", attributes={"a": 1, "b": 2, "c": 3})
    with pytest.raises(EventError, match="longer than 5 characters"):
        view(engine, "v2", attributes={"a": "123456"})
    roomy = make_engine(HELLO, attribute_limits=AttributeLimits(entries=500, characters=10**6))
    view(roomy, attributes={f"k{i}": "x" * 900 for i in range(100)})


def test_top_level_country_language_and_device_count_as_attributes(
    make_engine: MakeEngine,
) -> None:
    engine = make_engine(HELLO, attribute_limits=AttributeLimits(entries=2))
    view(engine, country="DE", language="de")
    with pytest.raises(EventError, match="would grow"):
        view(engine, device="mobile")
    view(engine, country=None, device="mobile")


# --- statistics and repr ----------------------------------------------------------------------


def test_acceptance_rate_is_none_until_an_outcome_is_recorded(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(LOOSE + 'rule hi { on page_view when session.pageviews >= 1 say "Hi" }\n')
    view(engine)
    rule = engine.stats().rules[0]
    assert (rule.shown, rule.acceptance_rate, rule.variants[0].acceptance_rate) == (1, None, None)
    send(engine, "v1", "invitation_dismissed")
    rule = engine.stats().rules[0]
    assert (rule.acceptance_rate, rule.variants[0].acceptance_rate) == (0.0, 0.0)


def test_the_engines_repr_names_site_rules_store_and_time() -> None:
    engine = Engine.from_source(HELLO, site="shop")
    text = repr(engine)
    assert text.startswith("Engine(site='shop', rules=1, ruleset=")
    assert engine.rules.hash in text
    assert "MemoryStore(" in text
    assert "time=event at, else system clock" in text
    untrusted = Engine.from_source(HELLO, trust_event_time=False, clock=FakeClock())
    assert "time=custom clock" in repr(untrusted)


def test_an_event_model_refuses_a_bad_url_and_time_too() -> None:
    with pytest.raises(ValueError, match="url"):
        politely.Event(visitor="v", event="page_view", url="http://[::1")
    with pytest.raises(ValueError, match="at"):
        politely.Event(visitor="v", event="tick", at=datetime(1, 1, 1) + timedelta(days=1))
