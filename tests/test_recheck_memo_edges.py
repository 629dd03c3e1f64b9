"""Edges of `RecheckMemo` (src/politely/recheck.py) that tests/test_recheck_memo.py
does not reach: each is a situation where reusing a recheck could differ from
recomputing it, built by hand, checked both on the memo itself and on a whole
engine against one that keeps nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import test_recheck_memo as memo_tests
from conftest import examples
from politely import Engine, Event, check_sources, compile_rules
from politely.caps import sitewide_release
from politely.durations import DAY
from politely.recheck import FEW_SCHEDULES, LOOK_AHEAD, RecheckMemo, first_ticks
from politely.ruleset import RuleSet
from politely.state import (
    AgentStatus,
    InvitationLog,
    InvitationRecord,
    SitewideUsage,
    Snapshot,
    VisitorState,
)
from politely.stores import MemoryStore

OPENS = 1_767_607_200.0  # Monday 2026-01-05 10:00:00 UTC: the schedule below opens

# `short_window` can fire only in the half second between the schedule opening
# and 20 s of dwell; `agent_free` only if an agent frees up.
OPENING = """
rule short_window {
    when page.dwell < 20s
    say "Just opened: ask us anything."
    during mon-sun 10:00-11:00
}
rule agent_free {
    when page.dwell >= 2s and agents.available > 0
    say "An agent is free."
}
"""
OPENING_RULES = compile_rules(check_sources({"site.rules": OPENING}))


class Forgetful(Engine):
    """An engine that keeps no decoded state and no memo: every event from scratch."""

    def _remember(self, visitor: str, recent: Any) -> None:
        return None


def _on_page(page_start: float) -> VisitorState:
    s = VisitorState()
    s.session, s.visits, s.pageviews = "~1", 1, 1
    s.session_start = s.page_start = s.last_activity = page_start
    s.page_path = s.page_url = "/"
    s.log = InvitationLog()
    return s


def test_a_schedule_opening_after_the_only_free_tick_still_counts_when_no_rule_can_fire() -> None:
    """No rule can fire at 09:59:44.7 (`short_window`'s half second falls between
    two ticks), only agents hold `agent_free` back: the first ticks are (None, 1).
    0.4 s later a tick lands inside that half second, past the schedule's
    opening 15 s on: the schedule's edge is a threshold although it lies past
    the free tick, because with no first tick every later tick decides."""
    s = _on_page(OPENS - 19.5)
    at = OPENS - 15.3
    snapshot = Snapshot(s, None, AgentStatus(1, 0, 0, 0.0, at), ())
    first = first_ticks(OPENING_RULES, s, snapshot, None, at, 30)
    assert first == (None, 1)
    memo = RecheckMemo.of(OPENING_RULES, s, snapshot, None, at, 30, *first)
    later = at + 0.4
    again = first_ticks(OPENING_RULES, s, snapshot, None, later, 30)
    assert again == (15, None)  # 10:00:00.1, 19.6 s into the page
    assert memo.shifted(OPENING_RULES, s, snapshot, None, later, 30) in (None, again)


def test_a_site_ticking_when_told_is_invited_in_a_schedules_first_half_second() -> None:
    """The same on whole engines: the one that reuses its recheck must tell the
    site the same second as the one that recomputes, and the site that ticks
    then is invited."""
    answers = []
    for kind in (Engine, Forgetful):
        engine = kind(OPENING_RULES)
        engine.set_agents(online=1, available=0, at=OPENS - 30)
        got = []
        for event, before in (("page_view", 19.5), ("tick", 15.3), ("tick", 14.9)):
            at = OPENS - before
            decision = engine.evaluate(Event(visitor="v", event=event, url="/", at=at))
            got.append(decision.recheck_in)
        told = engine.evaluate(Event(visitor="v", event="tick", at=OPENS - 14.9 + got[-1]))
        answers.append((got, told.invitation.rule if told.invitation else None))
    assert answers[0] == answers[1] == ([30, 30, 15], "short_window")


def _utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def _rechecks(source: str, events: list[tuple[str, str]]) -> list[list[int | None]]:
    """What a reusing and a recomputing engine answer to the same page view and ticks."""
    answers = []
    for kind in (Engine, Forgetful):
        engine = kind.from_source(source)
        got = []
        for event, when in events:
            decision = engine.evaluate(Event(visitor="v", event=event, url="/", at=_utc(when)))
            got.append(decision.recheck_in)
        answers.append(got)
    return answers


# Mondays 09:00-10:00 UTC within the policy's 11:00-12:00 Berlin time: only in
# summer time (from Sunday 29 March 2026), when Berlin is UTC+2.
TWO_ZONES = """
policy { during mon 11:00-12:00 in "Europe/Berlin" }
rule summer_mondays {
    when page.dwell >= 1s
    say "Good morning!"
    during mon 09:00-10:00
}
"""


def test_a_recheck_past_the_look_ahead_of_two_schedules_is_asked_again_in_sight() -> None:
    """Schedules are looked ahead 8 days: on Friday 20 March the first Monday
    both open (30 March) is past that, so the answer is "ask again in 8 days"
    (never late; null would say never); on Monday 23 March, the same state, it
    is in sight. An answer found with the look-ahead cut short is not the same
    answer later: the memo must not reuse it."""
    events = [
        ("page_view", "2026-03-20T12:00:00"),
        ("tick", "2026-03-20T12:00:05"),
        ("tick", "2026-03-23T10:00:00"),
    ]
    reusing, recomputing = _rechecks(TWO_ZONES, events)
    assert recomputing == [LOOK_AHEAD, LOOK_AHEAD, 6 * DAY + 23 * 3600]  # Mon 30 Mar, 09:00 UTC
    assert LOOK_AHEAD < 9 * DAY + 21 * 3600  # from Friday noon: early, not late
    assert reusing == recomputing


# Sunday 02:00-02:30 in Berlin does not exist on 29 March 2026 (clocks go from
# 02:00 to 03:00): from the 22nd the next opening is two weeks away.
NIGHT = """
rule night_owls {
    when page.dwell >= 1s
    say "Up late?"
    during sun 02:00-02:30 in "Europe/Berlin"
}
"""


def test_a_recheck_across_a_skipped_hour_is_asked_again_once_the_opening_is_in_sight() -> None:
    """From the 22nd the next opening is 14 days off, past the look-ahead: "ask
    again in 8 days" until the 29th, when it is in sight."""
    events = [
        ("page_view", "2026-03-22T03:00:00"),
        ("tick", "2026-03-22T03:00:05"),
        ("tick", "2026-03-29T12:00:00"),
    ]
    reusing, recomputing = _rechecks(NIGHT, events)
    assert recomputing == [LOOK_AHEAD, LOOK_AHEAD, 6 * DAY + 12 * 3600]  # Sun 5 Apr, 00:00 UTC
    assert reusing == recomputing


DWELL = compile_rules(check_sources({"site.rules": 'rule r { when page.dwell >= 20s say "Hi" }'}))


def test_recheck_is_not_late_in_the_last_second_before_a_power_of_two() -> None:
    """In the second before 2**31 (2038-01-19 03:14:08 UTC), `now + 1` rounds to
    the coarser floats above, so a gate opening "at now + 1" measured from `now`
    is a hair over one second: one tick later. A page 19.5 s old can invite at
    the next tick (20.5 s): whatever the microseconds, the answer is 1. The memo
    shifts the right answer there, so this is also where reusing and recomputing
    would part."""
    base = datetime.fromtimestamp(2**31 - 1, UTC)
    for micros in range(0, 1_000_000, 9_973):
        now = (base + timedelta(microseconds=micros)).timestamp()
        s = _on_page(now - 19.5)
        assert first_ticks(DWELL, s, Snapshot(s, None, None, ()), None, now) == (1, None), now


CAPPED = compile_rules(
    check_sources(
        {
            "site.rules": "policy { at most 1 invitation per 1m sitewide }\n"
            'rule r { when page.dwell >= 5s say "Hi" }'
        }
    )
)


def test_a_sitewide_release_a_hair_past_the_first_tick_is_a_threshold_of_the_memo() -> None:
    """Just below 2**31, the sitewide cap lets go at `at + 1` as floats add it,
    which is 2**-22 s after one second from `at`: the first tick is 2. Half a
    second later the release is half a second away, one tick: the release is
    a threshold the memo must see (it is past the first tick's start)."""
    at = 2.0**31 - 0.75 + 3 * 2**-22
    release = at + 1
    assert release - at > 1
    s = _on_page(at - 10.25)
    snapshot = Snapshot(s, None, None, (SitewideUsage(1, release, release),))
    first = first_ticks(CAPPED, s, snapshot, release, at)
    assert first == (2, None)
    memo = RecheckMemo.of(CAPPED, s, snapshot, release, at, 30, *first)
    later = at + 0.5
    again = first_ticks(CAPPED, s, snapshot, release, later)
    assert again == (1, None)
    assert memo.shifted(CAPPED, s, snapshot, release, later, 30) in (None, again)


# A window a second or less wide at a schedule's opening (OPENING) or closing,
# and a rule only the agents hold back: first ticks that hang on where one tick falls.
CLOSING = compile_rules(
    check_sources(
        {
            "site.rules": """
rule last_moment {
    when page.dwell >= 30s and page.dwell < 40s
    say "Closing soon."
    during mon-sun 10:00-11:00
}
rule agent_free {
    when page.dwell >= 2s and agents.available > 0
    say "An agent is free."
}
"""
        }
    )
)
CLOSES = OPENS + 3600
# Where the window's dwell is reached: within a second of the edge, either side
# (the window is then a second or less wide, or empty); and when the memo is
# made: seconds around the edge, often before it, where the next ticks miss
# the window. In ms.
reached = st.integers(-1_000, 1_000).map(lambda n: n / 1000)
made = st.one_of(st.integers(-20_000, -2_000), st.integers(-45_000, 5_000)).map(lambda n: n / 1000)


@settings(max_examples=examples(200), deadline=None)
@given(
    st.sampled_from([(OPENING_RULES, OPENS, 20), (CLOSING, CLOSES, 30)]),
    reached,
    made,
    st.sampled_from([None, 0, 1]),
    st.sampled_from([1, 30]),
    st.integers(0, 25),
)
def test_around_a_schedule_edge_a_memo_gives_what_recomputing_gives_or_declines(
    site: tuple[RuleSet, float, int],
    page: float,
    anchor: float,
    available: int | None,
    agent_recheck: int,
    whole: int,
) -> None:
    """A page whose window's dwell is reached within a second of a schedule's
    opening or closing, a memo made seconds around it, agents free, busy or
    unknown, asked later: with fractions just around the phases of the
    page's start and of the edge, a few whole seconds on. The memo declines or
    gives exactly the first ticks recomputing gives (`free` where it is looked for)."""
    rules, edge, dwell = site
    start = edge + page - dwell
    at = max(start, edge + anchor)
    s = _on_page(start)
    agents = None if available is None else AgentStatus(1, available, 0, 0.0, at)
    snapshot = Snapshot(s, None, agents, ())
    first = first_ticks(rules, s, snapshot, None, at, agent_recheck)
    memo = RecheckMemo.of(rules, s, snapshot, None, at, agent_recheck, *first)
    phases = [(t - at) % 1.0 for t in (start, edge)]
    fractions = {0.0} | {min(max(p + d, 0.0), 0.9999) for p in phases for d in (-0.0005, 0.0005)}
    for later in (at + w + f for w in (0, 1, whole) for f in fractions):
        found = memo.shifted(rules, s, snapshot, None, later, agent_recheck)
        if found is not None:
            expected = first_ticks(rules, s, snapshot, None, later, agent_recheck)
            assert found[0] == expected[0], (at, later, found, expected)
            if expected[0] is None or expected[0] > agent_recheck:
                assert found[1] == expected[1], (at, later, found, expected)


# --- instances sharing a store, retries, time going back ------------------------------------

ids = st.one_of(st.none(), st.none(), st.sampled_from(["e1", "e2", "e3"]))
# Mostly ticks, a few seconds apart: invitations made by one instance between two
# ticks of another, which must not decide on the state it kept from before.
KINDS = ["tick"] * 10 + ["page_view"] * 2 + ["invitation_dismissed", "chat_started", "chat_ended"]
moves = st.sampled_from([*KINDS, "agents", "block", "unblock"]).flatmap(
    lambda kind: st.tuples(st.just(kind), memo_tests.ARGUMENTS.get(kind, st.none()))
)
routed = st.lists(
    st.tuples(
        st.one_of(st.integers(0, 15), st.integers(-3, 0), st.integers(0, 400)),
        st.integers(0, 999),
        st.sampled_from(["v1", "v2"]),
        moves,
        st.integers(0, 2),  # which instance
        ids,
    ),
    max_size=40,
)


@settings(max_examples=examples(100), deadline=None)
@given(routed, st.integers(0, 4).map(lambda day: day * 86400 + 7 * 3600), st.booleans())
def test_instances_sharing_a_store_decide_as_one_that_recomputes(
    steps: list[Any], offset: int, fractional: bool
) -> None:
    """Three remembering engines over one store, each event to any of them (so
    each one's kept states go stale as the others write), with retried event
    ids and times that sometimes go back a few seconds: the decisions are those
    of one engine that keeps nothing over its own store."""
    shared = MemoryStore()
    instances = [Engine(memo_tests.RULES, store=shared) for _ in range(3)]
    forgetful = Forgetful(memo_tests.RULES)
    now = memo_tests.T0 + offset  # a weekday, 08:00 in Berlin: open
    for one in (instances[0], forgetful):
        one.set_agents(online=2, available=1, queue_wait=10.0, at=now)
    for visitor in ("v1", "v2"):
        landing = Event(visitor=visitor, event="page_view", url="/docs/a", at=now)
        assert instances[0].evaluate(landing) == forgetful.evaluate(landing)
    for gap, millis, visitor, (kind, arg), which, event_id in steps:
        now += gap + (millis / 1000 if fractional else 0)
        engine = instances[which]
        if kind == "agents":
            online, available, wait = arg
            for one in (engine, forgetful):
                one.set_agents(online=online, available=available, queue_wait=wait, at=now)
        elif kind == "block":
            for one in (engine, forgetful):
                one.block(visitor, "test", until=now + arg, at=now)
        elif kind == "unblock":
            for one in (engine, forgetful):
                one.unblock(visitor)
        else:
            event = Event(visitor=visitor, event=kind, url=arg, at=now, id=event_id)
            assert engine.evaluate(event) == forgetful.evaluate(event), (now, visitor, kind)
    assert instances[0].stats() == forgetful.stats()


def test_an_invitation_another_instance_made_is_seen_by_one_that_kept_the_state() -> None:
    """Instance `a` keeps the visitor's state from a tick; instance `b` invites
    (the history changes, the profile does not); `a`'s next tick must decide on
    the new history: no second invitation inside the policy's 3 minutes, and the
    recheck a recomputing engine gives."""
    shared = MemoryStore()
    a, b = Engine(memo_tests.RULES, store=shared), Engine(memo_tests.RULES, store=shared)
    forgetful = Forgetful(memo_tests.RULES)
    now = memo_tests.T0 + 9 * 3600  # Monday 10:00 in Berlin
    got = []
    for one in (a, forgetful):
        one.set_agents(online=2, available=1, queue_wait=10.0, at=now)
    for engine, kind, later in (
        (a, "page_view", 0),
        (a, "tick", 10),
        (b, "tick", 25),
        (a, "tick", 30),
    ):
        event = Event(visitor="v", event=kind, url="/docs/a", at=now + later)
        got.append(engine.evaluate(event))
        assert got[-1] == forgetful.evaluate(event)
    assert [d.invitation.rule if d.invitation else None for d in got] == [
        None,
        None,
        "reading",
        None,
    ]


# The synthetic site with nine more schedules, none of which changes for days.
MANY = compile_rules(
    check_sources(
        {
            "site.rules": memo_tests.SITE
            + "".join(
                f'rule elsewhere_{i} {{ when page.path matches "/elsewhere{i}*" '
                f'say "x" during sun 0{i}:00-0{i}:30 in "Asia/Tokyo" }}\n'
                for i in range(9)
            )
        }
    )
)


def test_with_many_schedules_whole_seconds_of_the_clock_stay_a_threshold() -> None:
    """Past FEW_SCHEDULES the memo no longer asks each schedule when it next
    changes, so whole seconds of the clock must count as a threshold outright:
    0.1005 s later (past the clock's phase of 0.1), the policy's opening at
    08:00 moves a tick, and the memo must decline or agree; 0.05 s later it
    still answers."""
    assert len(MANY.schedules) > FEW_SCHEDULES
    rules = MANY
    _, snapshot, now0, _ = memo_tests._alone("clock")
    s = snapshot.state
    assert s is not None
    opens = sitewide_release(snapshot.sitewide)
    first = first_ticks(rules, s, snapshot, opens, now0, 1)
    assert first == (None, 40)
    memo = RecheckMemo.of(rules, s, snapshot, opens, now0, 1, *first)
    now1 = now0 + 0.1005
    again = first_ticks(rules, s, snapshot, opens, now1, 1)
    assert again == (None, 39)
    assert memo.shifted(rules, s, snapshot, opens, now1, 1) in (None, again)
    assert memo.shifted(rules, s, snapshot, opens, now0 + 0.05, 1) == first


# TWO_ZONES, and a rule the policy's schedule alone governs, on a 10-day cooldown.
TWO_ZONES_COOLING = compile_rules(
    check_sources(
        {
            "site.rules": TWO_ZONES
            + 'rule again { when page.dwell >= 1s say "Back again?" cooldown 10d }\n'
        }
    )
)


def test_a_first_tick_past_the_look_ahead_is_not_reused_when_another_search_stopped_short() -> None:
    """On Friday 20 March `again` can fire on the first Monday opening after its
    cooldown (6 April, 11:00 Berlin), and `summer_mondays` finds nothing within 8 days.
    On Monday 23 March `summer_mondays` finds 30 March, sooner than `again`: a
    first tick more than 8 days off, on a site with schedules, is not reused."""
    s = _on_page(_utc("2026-03-20T11:59:00"))
    assert s.log is not None
    s.log.record(InvitationRecord("i", _utc("2026-03-20T11:59:30"), "again", 0, "~1"), 30 * DAY)
    at, later = _utc("2026-03-20T12:00:00"), _utc("2026-03-23T10:00:00")
    snapshot = Snapshot(s, None, None, ())
    first = first_ticks(TWO_ZONES_COOLING, s, snapshot, None, at, 30)
    assert first == (17 * DAY - 3 * 3600, None)  # Monday 6 April, 09:00 UTC
    memo = RecheckMemo.of(TWO_ZONES_COOLING, s, snapshot, None, at, 30, *first)
    again = first_ticks(TWO_ZONES_COOLING, s, snapshot, None, later, 30)
    assert again == (6 * DAY + 23 * 3600, None)  # Monday 30 March, 09:00 UTC
    assert memo.shifted(TWO_ZONES_COOLING, s, snapshot, None, later, 30) in (None, again)
