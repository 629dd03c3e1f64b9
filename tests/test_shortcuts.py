"""The evaluation path's shortcuts give exactly what the long way gives.

Each shortcut on the path of every event is checked against the computation
it replaces, spelled out here:

- a sitewide cap with room for two more reads both its releases as `now`
  (`caps.sitewide_usage`): against counting the window's invitations by brute
  force;
- a recheck memo works the phases of its thresholds out once and keeps the
  nearest (`RecheckMemo.nearest_phase`): against walking every threshold on
  every fractional move, as `shifted` did before;
- an engine that keeps decoded states and memos leaves the store holding
  exactly what an engine that keeps nothing leaves, visitor by visitor.

Each was seen failing against a broken variant when written: the sitewide
shortcut taken with room for only one more (`count < limit`), the nearest
phase kept without the margin below a whole second (the hand-made case below
catches it), and an engine that kept the state from before an event it wrote.
"""

from __future__ import annotations

import math
import sqlite3
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import test_recheck_memo as memo_tests
from conftest import examples
from politely import Engine, Event
from politely.caps import Cap, sitewide_release, sitewide_usage
from politely.recheck import PHASE_MARGIN, RecheckMemo, _thresholds, first_ticks
from politely.ruleset import RuleSet
from politely.state import Snapshot, VisitorState
from politely.stores import sqlite as sqlite_store


def _release(inside: list[float], limit: int, window: int, now: float) -> float:
    """The first moment from `now` on at which fewer than `limit` of `inside` are
    still in their window: tried at `now` and at each time one of them leaves."""
    for moment in sorted({now, *(t + window for t in inside)}):
        if moment >= now and sum(t + window > moment for t in inside) < limit:
            return moment
    raise AssertionError("some moment always frees the cap")


# A site's invitation times (seconds), a cap's limit and window, and `now` (its whole
# seconds and its milliseconds: whole seconds put times on the window's edge).
_CAP_CASES = (
    st.lists(st.integers(0, 600), max_size=24),
    st.integers(1, 6),
    st.integers(1, 200),
    st.integers(0, 700),
    st.one_of(st.just(0), st.integers(0, 999)),
)


@settings(max_examples=examples(400), deadline=None)
@given(*_CAP_CASES)
def test_sitewide_usage_is_what_counting_the_window_gives(
    seconds: list[int], limit: int, window: int, now_s: int, ms: int
) -> None:
    """Times may lie after `now` (another instance's clock): they count for nothing."""
    times = sorted(float(t) for t in seconds)
    now = now_s + ms / 1000
    inside = [t for t in times if now - window < t <= now]
    usage = sitewide_usage(Cap(limit, window), times, now)
    assert usage.used == min(len(inside), limit)
    assert usage.release == _release(inside, limit, window, now)
    assert usage.release_after_one == _release([*inside, now], limit, window, now)


def _walks_to_a_decline(memo: RecheckMemo, fraction: float) -> bool:
    """Whether a move by `fraction` crosses a threshold, the way `shifted` used
    to find out: every threshold's phase, on every move."""
    at, best = memo.at, memo.best
    horizon = at + best + 1 if best is not None else math.inf
    for t in _thresholds(memo.rules, memo.state, memo.block, memo.sitewide, at, horizon):
        phase = (t - at) % 1.0
        if phase <= fraction + PHASE_MARGIN or phase >= 1.0 - PHASE_MARGIN:
            return True
    return False


@settings(max_examples=examples(300), deadline=None)
@given(
    st.sampled_from([memo_tests.RULES, memo_tests.UNSCHEDULED]),
    memo_tests.situations(),
    st.lists(st.integers(1, 999), min_size=1, max_size=8),
)
def test_the_nearest_phase_kept_declines_exactly_where_walking_the_thresholds_does(
    rules: RuleSet, situation: tuple[VisitorState, Snapshot, float], millis: list[int]
) -> None:
    """Asked at several fractions in turn, so all but the first read the kept phase."""
    s, snapshot, now = situation
    opens = sitewide_release(snapshot.sitewide)
    first = first_ticks(rules, s, snapshot, opens, now, memo_tests.AGENT_RECHECK)
    memo = RecheckMemo.of(rules, s, snapshot, opens, now, memo_tests.AGENT_RECHECK, *first)
    edges = [
        p
        for t in _thresholds(rules, s, snapshot.block, memo.sitewide, now)
        for p in ((t - now) % 1.0 - PHASE_MARGIN, (t - now) % 1.0)
    ]
    fractions = [ms / 1000 for ms in millis] + [f for f in edges if 0.0 < f < 1.0][:8]
    for fraction in fractions:
        declines = memo.nearest_phase() <= fraction + PHASE_MARGIN
        assert declines == _walks_to_a_decline(memo, fraction), fraction


def test_a_threshold_a_hair_below_a_whole_second_leaves_no_fraction_safe() -> None:
    """A page started 30 s and 50 µs before: its phase is within the margin
    below a whole second, so no fractional move is safe, however small."""
    rules = memo_tests.UNSCHEDULED
    now = memo_tests.T0 + 1030.00005
    s = VisitorState()
    s.session, s.visits, s.pageviews, s.page_path = "~1", 1, 1, "/home"
    s.session_start = s.page_start = s.last_activity = memo_tests.T0 + 1000
    assert (s.page_start - now) % 1.0 >= 1.0 - PHASE_MARGIN
    snapshot = Snapshot(s, None, None)
    first = first_ticks(rules, s, snapshot, None, now, memo_tests.AGENT_RECHECK)
    memo = RecheckMemo.of(rules, s, snapshot, None, now, memo_tests.AGENT_RECHECK, *first)
    assert memo.nearest_phase() == 0.0
    assert _walks_to_a_decline(memo, 0.001)
    assert memo.shifted(rules, s, snapshot, None, now + 0.001, memo_tests.AGENT_RECHECK) is None


class Forgetful(Engine):
    """An engine that keeps no decoded state and no memo: every event from scratch."""

    def _remember(self, visitor: str, recent: Any) -> None:
        return None


def _stored(engine: Engine, visitors: list[str], now: float) -> list[tuple[Any, ...]]:
    """What the store holds for each visitor: profile and history bytes, block, usage."""
    sitewide = engine.rules.policy.sitewide
    out = []
    for visitor in visitors:
        loaded = engine.store.load(engine.site, visitor, now, sitewide=sitewide)
        out.append((loaded.profile, loaded.history, loaded.block, loaded.sitewide))
    return out


@settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(memo_tests.traffic)
def test_an_engine_that_keeps_states_leaves_the_store_as_one_that_keeps_nothing(
    case: tuple[list[Any], int],
) -> None:
    steps, offset = case
    start = memo_tests.T0 + offset
    keeping, forgetful = Engine(memo_tests.RULES), Forgetful(memo_tests.RULES)
    assert memo_tests.replay(keeping, steps, start) == memo_tests.replay(forgetful, steps, start)
    end = start + sum(gap for gap, _, _ in steps)
    visitors = ["v1", "v2"]
    assert _stored(keeping, visitors, end) == _stored(forgetful, visitors, end)
    assert keeping.stats() == forgetful.stats()
    tick = Event(visitor="v1", event="tick", at=end)
    assert keeping.evaluate(tick) == forgetful.evaluate(tick)


@settings(max_examples=examples(300), deadline=None)
@given(*_CAP_CASES)
@example([0], 2, 100, 100, 0)  # a time on the window's edge is out of it
@example([0, 50, 60], 2, 100, 100, 0)  # out, with the cap full without it
@example([0, 50], 3, 100, 100, 0)  # out, with room for one more without it
@example([50, 60, 60, 70], 3, 100, 100, 0)  # full, the same time at both positions read
@example([50], 2, 100, 100, 0)  # room for one more only: one time read
@example([50, 100], 2, 100, 100, 0)  # full, with a time at `now` itself
@example([90, 90], 1, 100, 100, 0)  # a cap of one, full twice over
def test_sqlites_sitewide_usage_is_what_it_is_in_memory(
    seconds: list[int], limit: int, window: int, now_s: int, ms: int
) -> None:
    """The SQLite store reads a cap's use in SQL (a bounded count, and times by their
    position from the newest): the same numbers as `caps.sitewide_usage` of the times,
    another site's invitations left out."""
    times = sorted(float(t) for t in seconds)
    now = now_s + ms / 1000
    conn = sqlite3.connect(":memory:")
    for statement in sqlite_store.SCHEMA:
        conn.execute(statement)
    conn.executemany("INSERT INTO sitewide (site, at) VALUES ('s', ?)", [(t,) for t in times])
    conn.executemany("INSERT INTO sitewide (site, at) VALUES ('other', ?)", [(now,)] * 7)
    cap = Cap(limit, window)
    assert sqlite_store._sitewide_usage(conn, "s", cap, now) == sitewide_usage(cap, times, now)
