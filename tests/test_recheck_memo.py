"""A tick that changes nothing reuses the previous recheck, and the answer is
exactly what recomputing gives (src/politely/recheck.py, `RecheckMemo`).

Two proofs over generated traffic on a site with every source of time (dwell,
session duration, invitations, rolling and session caps, cooldowns, quiet
periods, a sitewide cap, agent conditions, schedules, block expiry), with
event times on whole seconds and with milliseconds:

- pure: the memo a verdict carries, asked at a later moment (whole or
  fractional seconds later) with the inputs as they are then, either declines
  or gives exactly `recheck_in` recomputed at that moment;
- whole engine: an engine that keeps decoded states and memos and one that
  keeps nothing give the same decisions and the same statistics, event by
  event; also on a second site whose rules read the agents in every way
  (under `not`, beside `or`, on ticks only, on page views only), with agent
  figures drawn freely and reports up to five minutes old (stale).

Both fail against a memo that forgets a threshold or reuses an answer past
its first tick (checked by hand when this was written: dropping `page_start`
from `_thresholds` or the `whole >= best` test makes both fail).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import examples
from politely import Engine, Event, check_sources, compile_rules
from politely.caps import sitewide_release
from politely.engine import snapshot_of
from politely.evaluator import evaluate
from politely.recheck import RecheckMemo, combine, first_ticks
from politely.ruleset import AGENT_TESTS_READ, RuleSet
from politely.state import (
    AgentStatus,
    Block,
    InvitationLog,
    InvitationRecord,
    SitewideUsage,
    Snapshot,
    VisitorState,
)

SITE = """
define agent_free = agents.available > 0 and queue.wait < 2m

policy {
    at most 1 invitation per 3m
    at most 3 invitations per session
    at most 2 invitations per 1m sitewide
    quiet 10m after dismiss
    quiet 20m after chat
    only when agent_free or page.path matches "/help*"
    during weekdays 08:00-20:00, sat 10:00-16:00 in "Europe/Berlin"
}

rule reading {
    priority 5
    when page.path matches "/docs*" and page.dwell >= 25s and page.dwell < 200s
    say "Reading a lot? Ask us."
    cooldown 4m
    at most 2 per 30m
}

rule long_visit {
    when session.duration >= 2m and session.pageviews >= 2 and invitations.last >= 5m
    say "Still looking?"
    at most 1 per session
}

rule anywhere {
    when page.dwell >= 50s
    say "Hello!"
    at most 2 per session
}

rule shy {
    priority 9
    when page.path matches "/pricing*" and page.dwell > 40s and invitations.today < 2
    say "Questions about prices?"
    during weekdays 09:00-17:00 in "America/New_York"
}
"""
RULES = compile_rules(check_sources({"site.rules": SITE}))
# Without schedules, whole seconds of the clock are no threshold: fewer phases.
UNSCHEDULED = compile_rules(
    check_sources({"site.rules": "\n".join(x for x in SITE.splitlines() if "during" not in x)})
)
T0 = 1_766_966_400.0  # Monday 29 December 2025, 00:00 UTC
AGENT_RECHECK = 30
PATHS = ("/docs/a", "/docs/b", "/pricing", "/help/x", "/home")

KINDS = (
    ["page_view"] * 3
    + ["tick"] * 8
    + ["invitation_dismissed", "chat_started", "chat_ended", "chat_ended", "chat_ended"]
    + ["agents"] * 2
    + ["block", "unblock"]
)
STATUSES = [None, (2, 1, 10.0), (2, 0, 10.0), (3, 2, 200.0)]  # online, available, queue wait
ARGUMENTS: dict[str, st.SearchStrategy[Any]] = {
    "page_view": st.sampled_from(PATHS),
    "agents": st.sampled_from(STATUSES[1:]),
    "block": st.integers(5, 600),
}


def moves_of(
    kinds: list[str], arguments: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[tuple[str, Any]]:
    """One step: a kind drawn from `kinds`, with its argument (None if it takes none)."""
    return st.sampled_from(kinds).flatmap(
        lambda kind: st.tuples(st.just(kind), arguments.get(kind, st.none()))
    )


moves = moves_of(KINDS, ARGUMENTS)


def gaps(fractional: bool, spans: tuple[int, ...] = (12, 400)) -> st.SearchStrategy[float]:
    """Seconds between two steps: up to one of `spans`, with milliseconds if `fractional`."""
    whole = st.one_of(st.integers(0, span) for span in spans).map(float)
    if not fractional:
        return whole
    return st.tuples(whole, st.integers(0, 999)).map(lambda p: p[0] + p[1] / 1000)


def visits(
    fractional: bool,
    moves: st.SearchStrategy[Any] = moves,
    spans: tuple[int, ...] = (12, 400),
    least: int = 0,
) -> st.SearchStrategy[list[Any]]:
    """Both visitors land on a page, then anything happens (`least` steps or more)."""
    landing = st.tuples(gaps(fractional, spans), st.just("page_view"), st.sampled_from(PATHS))
    step = st.tuples(gaps(fractional, spans), st.sampled_from(["v1", "v2"]), moves)
    return st.tuples(landing, landing, st.lists(step, min_size=least, max_size=40 + least)).map(
        lambda p: [
            (p[0][0], "v1", (p[0][1], p[0][2])),
            (p[1][0], "v2", (p[1][1], p[1][2])),
            *p[2],
        ]
    )


def traffic_of(
    moves: st.SearchStrategy[Any], spans: tuple[int, ...] = (12, 400), least: int = 0
) -> st.SearchStrategy[tuple[list[Any], int]]:
    return st.booleans().flatmap(
        lambda fractional: st.tuples(
            visits(fractional, moves, spans, least),
            st.one_of(  # where in the week the traffic starts: mostly in opening hours
                st.tuples(st.integers(0, 4), st.integers(7 * 3600, 18 * 3600)).map(
                    lambda p: p[0] * 86400 + p[1]
                ),
                st.integers(0, 7 * 86400),
            ),
        )
    )


traffic = traffic_of(moves)


def replay(
    engine: Engine, steps: list[Any], start: float, *, decide: bool = False
) -> list[tuple[float, str, Any]]:
    """Feed the traffic; returns what each event got (None for site actions). With
    `decide`, every event but ticks goes through `Engine.decide`, as a simulation's
    do: its memos leave what quiet ticks read to be worked out when one asks."""
    now = start
    out: list[tuple[float, str, Any]] = []
    for gap, visitor, (kind, arg) in steps:
        now += gap
        if kind == "agents":  # (online, available, queue wait[, queue length, seconds old])
            online, available, wait, *more = arg
            length, old = more or (0, 0)
            engine.set_agents(
                online=online,
                available=available,
                queue_length=length,
                queue_wait=wait,
                at=now - old,
            )
        elif kind == "block":
            engine.block(visitor, "test", until=now + arg, at=now)
        elif kind == "unblock":
            engine.unblock(visitor)
        else:
            event = Event(visitor=visitor, event=kind, url=arg, at=now)
            if decide and kind != "tick":
                assert event.at is not None  # (the engine's time: the event's own)
                decision = engine.decide(event, event.at.timestamp())[1].decision
            else:
                decision = engine.evaluate(event)
            out.append((now, visitor, decision.model_dump()))
    return out


class Forgetful(Engine):
    """An engine that keeps no decoded state and no memo: every event from scratch."""

    def _remember(self, visitor: str, recent: Any) -> None:
        return None


def decides_as_recomputing(
    rules: RuleSet, steps: list[Any], start: float, agent_recheck: int = AGENT_RECHECK
) -> None:
    """An engine that keeps memos, through `evaluate` and through `decide`, gives
    every event the decision, and the site the statistics, of one that keeps none."""
    forgetful = Forgetful(rules, agent_recheck=agent_recheck)
    expected = replay(forgetful, steps, start)
    remembering, deciding = (Engine(rules, agent_recheck=agent_recheck) for _ in range(2))
    assert replay(remembering, steps, start) == expected
    assert remembering.stats() == forgetful.stats()
    assert replay(deciding, steps, start, decide=True) == expected
    assert deciding.stats() == forgetful.stats()


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traffic)
def test_an_engine_that_reuses_decides_as_one_that_recomputes(case: tuple[list[Any], int]) -> None:
    steps, offset = case
    decides_as_recomputing(RULES, steps, T0 + offset)


# Rules that read the agents each their own way, beside a policy gate that does too:
# a memo kept across an agent report must see what each rule's test reads of it.
AGENT_SITE = """
policy {
    at most 1 invitation per 2m
    at most 3 invitations per session
    at most 2 invitations per 1m sitewide
    quiet 5m after dismiss
    quiet 10m after chat
    only when agents.available > 0 or page.path matches "/help*"
    never when queue.length >= 5 and page.dwell < 100s
}

rule docs_with_agents {
    priority 3
    when page.path matches "/docs*" and page.dwell >= 20s and agents.online >= 2
    say "Docs?"
    cooldown 3m
}

rule short_queue {
    when page.dwell >= 40s and not (queue.wait >= 1m)
    say "We answer fast."
    at most 1 per session
}

rule ticks_only {
    on tick
    when (agents.available >= 2 or page.dwell >= 90s) and session.duration >= 30s
    say "Still there?"
}

rule page_views_only {
    on page_view
    when agents.available > 2 and session.pageviews >= 2
    say "Another page?"
}

rule help_when_busy {
    priority 1
    when page.dwell >= 30s and not (agents.available > 0) and page.path matches "/help*"
    say "Leave a message?"
    at most 2 per 30m
}

rule no_agents_read {
    when page.dwell >= 60s and invitations.last >= 3m
    say "Hello!"
}
"""
AGENT_RULES = compile_rules(check_sources({"site.rules": AGENT_SITE}))
any_status = st.tuples(  # online, available, queue wait, queue length, seconds old
    st.integers(0, 4),
    st.integers(0, 4),
    st.sampled_from([0.0, 10.0, 59.0, 60.0, 61.0, 200.0]),
    st.integers(0, 6),
    st.sampled_from([0, 0, 0, 1, 30, 119, 121, 300]),
)
agent_moves = moves_of(
    [*KINDS, *["tick"] * 6, *["agents"] * 3], {**ARGUMENTS, "agents": any_status}
)
# More ticks and agent reports, mostly seconds apart, so a memo meets reports that
# read differently to a rule while the policy gate reads them the same: 150
# examples caught a memo that kept itself across any report (a bug planted to
# see), where the traffic above needed thousands.
agent_traffic = traffic_of(agent_moves, spans=(3, 12, 60, 400), least=20)
# A report that changes what `docs_with_agents` reads (online 1 -> 3) and nothing of
# the policy gate (available stays 1): recomputing finds its dwell threshold.
MORE_ONLINE = [
    (0.0, "v1", ("agents", (1, 1, 0.0, 0, 0))),
    (0.0, "v1", ("page_view", "/docs/a")),
    (0.0, "v2", ("page_view", "/home")),
    (1.0, "v1", ("tick", None)),
    (1.0, "v1", ("agents", (3, 1, 0.0, 0, 0))),
    (1.0, "v1", ("tick", None)),
]


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(agent_traffic, st.sampled_from([1, 5, AGENT_RECHECK]))
@example((MORE_ONLINE, 10 * 3600), AGENT_RECHECK)
def test_with_rules_that_read_agents_reusing_decides_as_recomputing(
    case: tuple[list[Any], int], agent_recheck: int
) -> None:
    steps, offset = case
    decides_as_recomputing(AGENT_RULES, steps, T0 + offset, agent_recheck)


# Up to a minute, a quarter of an hour or an hour, in ms.
millis = st.one_of(st.integers(0, n) for n in (60_000, 900_000, 3_600_000))
FIELDS = ("session", "page", "dismiss", "chat", "log", "block", "release")


@st.composite
def situations(draw: st.DrawFn) -> tuple[VisitorState, Snapshot, float]:
    """A visitor on a page at `now`, with everything that measures time drawn
    freely: page and session starts, invitations, a dismissal, a chat, a block
    and a sitewide release, each a few ms to an hour away; and agents' report.

    Half the time one of them alone (`odd`) has a fraction of a second of its
    own, the others all one same fraction, so that a moment between the two
    phases crosses the odd one's alone: a memo that forgot it is caught there."""
    odd = draw(st.sampled_from([None, None, None, *FIELDS]))
    common = draw(st.integers(1, 999)) / 1000

    def ago(name: str) -> float:
        ms = draw(millis)
        return ms / 1000 if odd is None or odd == name else ms // 1000 + common

    now = T0 + draw(st.integers(0, 7 * 86400)) + draw(st.integers(0, 999)) / 1000
    s = VisitorState()
    s.session, s.visits = "~1", 1
    s.session_start = now - ago("session")
    s.page_start = max(s.session_start, now - ago("page"))
    s.last_activity = s.page_start
    s.page_path = s.page_url = draw(st.sampled_from(PATHS))
    s.pageviews = draw(st.integers(1, 4))
    if draw(st.integers(0, 2)) == 0 or odd == "dismiss":
        s.last_dismiss = now - ago("dismiss")
    if draw(st.integers(0, 2)) == 0 or odd == "chat":
        s.last_chat_end = now - ago("chat")
    s.log = InvitationLog()
    count = draw(st.integers(1 if odd == "log" else 0, 3))
    for at in sorted(now - ago("log") for _ in range(count)):
        session = draw(st.sampled_from(["~1", "~0"]))
        s.log.record(InvitationRecord(f"i{at}", at, "reading", 0, session), 7 * 86400)
    block = None
    if draw(st.integers(0, 3)) == 0 or odd == "block":
        block = Block("test", now + ago("block"), now)
    agents = None
    status = draw(st.sampled_from(STATUSES))
    if status is not None:
        online, available, wait = status
        agents = AgentStatus(online, available, 0, wait, now - draw(st.integers(0, 150)))
    release = now + ago("release") if draw(st.booleans()) or odd == "release" else now
    usage = (SitewideUsage(2 if release > now else 0, release, max(release, now + 60)),)
    return s, Snapshot(s, block, agents, usage), now


@settings(max_examples=examples(500), deadline=None)
@given(
    st.sampled_from([RULES, UNSCHEDULED]),
    situations(),
    st.sampled_from([1, AGENT_RECHECK]),
    st.sampled_from([None, None, None, "block", "unblock", "agents", "release"]),
    st.randoms(),
)
def test_a_memo_gives_what_recomputing_gives_or_declines(
    rules: RuleSet,
    situation: tuple[VisitorState, Snapshot, float],
    agent_recheck: int,
    news: str | None,
    rng: Any,
) -> None:
    """Asked at moments chosen to hurt: just before and after each time the
    situation holds, less whole seconds, up to and past the first ticks; and
    after news (a block, an unblock, an agent report, a sitewide cap filling).
    Both first ticks are compared, not only the answer they combine into (with
    an `agent_recheck` of 1, the free first tick is looked for whenever the
    other is later than 1 s)."""
    s, snapshot, now0 = situation
    opens = sitewide_release(snapshot.sitewide)
    best, free = first_ticks(rules, s, snapshot, opens, now0, agent_recheck)
    memo = RecheckMemo.of(rules, s, snapshot, opens, now0, agent_recheck, best, free)
    later = _after(news, snapshot, now0, rng)
    later_opens = sitewide_release(later.sitewide)
    for now1 in _moments(memo, snapshot, now0, rng):
        found = memo.shifted(rules, s, later, later_opens, now1, agent_recheck)
        if found is not None:
            expected = first_ticks(rules, s, later, later_opens, now1, agent_recheck)
            assert found[0] == expected[0], (now1 - now0, found, expected)
            if expected[0] is None or expected[0] > agent_recheck:  # else free is not looked for
                assert found[1] == expected[1], (now1 - now0, found, expected)


def _after(news: str | None, snapshot: Snapshot, now0: float, rng: Any) -> Snapshot:
    """The snapshot once `news` happened, just after `now0`."""
    if news == "block":
        return snapshot._replace(block=Block("news", now0 + rng.randrange(2, 900) + 0.5, now0))
    if news == "unblock":
        return snapshot._replace(block=None)
    if news == "agents":
        free = rng.random() < 0.5
        status = AgentStatus(2, 1 if free else 0, 0, 10.0, now0 + 0.5)
        return snapshot._replace(agents=status)
    if news == "release":
        release = now0 + rng.randrange(2, 900) + 0.5
        return snapshot._replace(sitewide=(SitewideUsage(2, release, release + 60),))
    return snapshot


def _moments(memo: RecheckMemo, snapshot: Snapshot, now0: float, rng: Any) -> list[float]:
    """Later moments to ask at: whole seconds up to past the first ticks, each
    with no fraction, a random one, and fractions just around every time the
    situation holds (listed here, not taken from the code under test)."""
    s = snapshot.state
    assert s is not None
    assert s.log is not None
    times = [s.session_start, s.last_activity, s.page_start, s.last_dismiss, s.last_chat_end]
    times += [r.at for r in s.log.recent] + [u.release for u in snapshot.sitewide]
    times += [snapshot.block.until if snapshot.block else None, float(math.floor(now0))]
    times += [snapshot.agents.at if snapshot.agents else None]
    phases = [(t - now0) % 1.0 for t in times if t is not None]
    fractions = {0.0, rng.random()} | {
        min(max(p + d, 0.0), 0.9999) for p in phases for d in (-0.0005, 0.0005)
    }
    firsts = [k for k in (memo.best, memo.free) if k is not None] or [rng.randrange(1, 500)]
    wholes = {0, 1, rng.randrange(0, 60)} | {k + d for k in firsts for d in (-2, -1, 0, 1)}
    return [now0 + w + f for w in wholes if w >= 0 for f in fractions]


def _alone(field: str) -> tuple[RuleSet, Snapshot, float, float]:
    """A situation whose first tick is set by `field` alone, its phase 0.2 where
    every other time's is 0.7: the rules, snapshot, now, and the time `field` holds."""
    now = T0 + 34 * 3600 + 0.25  # Tuesday 11:00:00.25 in Berlin
    if field == "clock":  # Tuesday 07:59:20.9 in Berlin: the schedule opens at 08:00
        now = T0 + 31 * 3600 - 40 + 0.9
    rules = RULES if field == "clock" else UNSCHEDULED
    s = VisitorState()
    s.session, s.visits, s.pageviews = "~1", 1, 1
    s.session_start = now - 600.3
    s.page_start = s.last_activity = now - 60.3
    s.page_path = s.page_url = "/home"
    s.log = InvitationLog()
    block, release = None, now
    odd = now + 40.2  # the time `field` holds: 40.2 s from now, so phase 0.2
    if field == "page":
        s.page_start = odd - 50  # `anywhere` holds at a dwell of 50 s
    elif field == "session":  # `anywhere` used up; `long_visit` needs 2 minutes
        for at in (now - 900.3, now - 800.3):
            s.log.record(InvitationRecord(f"i{at}", at, "anywhere", 0, "~1"), 7 * 86400)
        s.session_start, s.pageviews = odd - 120, 2
    elif field == "dismiss":
        s.last_dismiss = odd - 600  # quiet 10m
    elif field == "chat":
        s.last_chat_end = odd - 1200  # quiet 20m
    elif field == "log":
        at = odd - 180  # at most 1 invitation per 3m
        s.log.record(InvitationRecord("i", at, "x", 0, "~1"), 7 * 86400)
    elif field == "block":
        block = Block("test", odd, now)
    elif field == "release":
        release = odd
    usage = (SitewideUsage(2 if release > now else 0, release, max(release, now + 60)),)
    return rules, Snapshot(s, block, None, usage), now, odd


@pytest.mark.parametrize("field", ["clock", *FIELDS])
def test_every_time_that_sets_a_first_tick_is_a_threshold_of_the_memo(field: str) -> None:
    """Just past the phase of the one time that sets the first tick, the ticks
    move past it: the memo must decline (or agree), where shifting would be wrong."""
    rules, snapshot, now0, odd = _alone(field)
    s = snapshot.state
    assert s is not None
    opens = sitewide_release(snapshot.sitewide)
    first = first_ticks(rules, s, snapshot, opens, now0, 1)
    assert first == (None, math.ceil(odd - now0) if field != "clock" else 40)
    memo = RecheckMemo.of(rules, s, snapshot, opens, now0, 1, *first)
    now1 = now0 + 0.2005 if field != "clock" else now0 + 0.1005
    again = first_ticks(rules, s, snapshot, opens, now1, 1)
    assert again[1] == first[1] - 1  # the ticks crossed the threshold: shifting is wrong
    assert memo.shifted(rules, s, snapshot, opens, now1, 1) in (None, again)
    # and a fraction that crosses no phase is answered by the memo
    assert memo.shifted(rules, s, snapshot, opens, now0 + 0.05, 1) == first


def test_a_memo_is_reused_for_whole_and_fractional_seconds_later() -> None:
    """Not a vacuous proof: on a plain page, later ticks are answered by the memo."""
    engine = Engine(RULES)
    at = T0 + 34 * 3600 + 0.25  # Tuesday 11:00 in Berlin and a quarter second
    engine.set_agents(online=2, available=1, at=at)
    engine.evaluate(Event(visitor="v", event="page_view", url="/docs/a", at=at))
    anchor = at + 3.4  # the page started 0.6 s past a tick (schedules change hours away)
    memo, state = _memo_at(engine, "v", anchor)
    assert memo is not None
    assert memo.best == 22  # dwell 25 s: 3.4 s in, the first whole tick past 21.6 s
    for later, expected in ((4.0, 18), (4.2, 18), (4.5, 18), (10.3, 12)):
        snapshot = _snapshot(engine, "v", anchor + later, state)
        found = memo.shifted(RULES, state, snapshot, None, anchor + later, AGENT_RECHECK)
        assert found is not None
        assert combine(*found, AGENT_RECHECK) == expected
    # past the first tick, and with a fraction that crosses the page's start: declined
    for later in (22.0, 4.7):
        snapshot = _snapshot(engine, "v", anchor + later, state)
        assert memo.shifted(RULES, state, snapshot, None, anchor + later, AGENT_RECHECK) is None


def test_a_memo_holds_across_an_agent_report_that_the_rules_read_the_same() -> None:
    """The rules test `agents.available > 0 and queue.wait < 2m`: a report of two
    free agents instead of one changes no tick set, so the memo still answers;
    a report of none, or a status gone stale, changes them, and it declines."""
    engine = Engine(RULES)
    at = T0 + 34 * 3600 + 0.25  # Tuesday 11:00 in Berlin
    engine.set_agents(online=2, available=1, queue_wait=10, at=at)
    engine.evaluate(Event(visitor="v", event="page_view", url="/docs/a", at=at))
    memo, state = _memo_at(engine, "v", at + 3.0)
    assert memo is not None
    later = at + 5.0
    engine.set_agents(online=3, available=2, queue_wait=30, at=later - 0.5)
    snapshot = _snapshot(engine, "v", later, state)
    assert snapshot.agents is not None
    assert snapshot.agents.available == 2
    found = memo.shifted(RULES, state, snapshot, None, later, AGENT_RECHECK)
    assert found is not None
    assert found == first_ticks(RULES, state, snapshot, None, later, AGENT_RECHECK)
    for available, wait in ((0, 10), (2, 200)):  # no agent free; the queue too long
        engine.set_agents(online=3, available=available, queue_wait=wait, at=later - 0.5)
        snapshot = _snapshot(engine, "v", later, state)
        assert memo.shifted(RULES, state, snapshot, None, later, AGENT_RECHECK) is None
    engine.set_agents(online=3, available=2, queue_wait=30, at=at - 1000)  # stale by `later`
    snapshot = _snapshot(engine, "v", later, state)
    assert memo.shifted(RULES, state, snapshot, None, later, AGENT_RECHECK) is None


def test_the_agent_reading_is_each_agent_test_of_the_rules_once() -> None:
    """What a memo compares of an agent status: the value of every agent test the
    policy and the rules listening to ticks make, a test written twice once, or
    past `AGENT_TESTS_READ` of them the status's own figures."""
    site = """
    policy { only when agents.available > 0 }
    rule a { when queue.wait < 2m and agents.available > 0 say "a" }
    rule b { on page_view when agents.online >= 5 say "b" }
    """
    reading = compile_rules(check_sources({"site.rules": site})).agent_reading
    status = AgentStatus(online=3, available=1, queue_length=0, queue_wait=200.0, at=T0)
    assert reading(status) == (True, False)  # available > 0, queue.wait < 2m (b: no ticks)
    assert reading(None) == (False, False)  # unknown or stale: no agent test holds
    many = "\n".join(
        f'rule r{i} {{ when agents.available > {i} say "r" }}' for i in range(AGENT_TESTS_READ + 1)
    )
    figures = compile_rules(check_sources({"many.rules": many})).agent_reading
    assert figures(status) == (3, 1, 0, 200.0)
    assert figures(None) is None


def _memo_at(
    engine: Engine, visitor: str, now: float, agent_recheck: int = AGENT_RECHECK
) -> tuple[RecheckMemo | None, Any]:
    """The memo a plain tick at `now` leaves, and the state it is for."""
    loaded = engine.store.load(engine.site, visitor, now, sitewide=RULES.policy.sitewide)
    snapshot = snapshot_of(loaded)
    if snapshot.state is None:
        return None, None
    tick = Event(visitor=visitor, event="tick", at=now)
    verdict = evaluate(RULES, snapshot, tick, now, agent_recheck=agent_recheck)
    if verdict.invitation is not None:
        return None, None
    return verdict.recheck, snapshot.state


def _snapshot(engine: Engine, visitor: str, now: float, state: Any) -> Snapshot:
    """The snapshot a tick at `now` would see, around the same state object."""
    loaded = engine.store.load(engine.site, visitor, now, sitewide=RULES.policy.sitewide)
    return Snapshot(state, loaded.block, loaded.agents, loaded.sitewide)
