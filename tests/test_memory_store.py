"""The memory store's atomic commit, eviction on the injected clock, and snapshots.

Concurrent requests are simulated two ways: by evaluating twice on one
snapshot and committing both (the second must be refused as a `cap_race`),
and by many threads calling `engine.evaluate`, with a barrier inside `load`
so that every thread reads its snapshot before any commits: the worst case.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from conftest import FakeClock
from events import DAY, HOUR, MakeEngine
from politely import Decision, Engine, Event, MemoryStore
from politely.evaluator import evaluate
from politely.ruleset import RuleSet
from politely.state import Block, Snapshot

ALWAYS = 'rule r { on page_view when session.pageviews >= 1 say "Hi" or "Hello" }\n'
PAGE = Event(visitor="v1", event="page_view", url="/")


class BarrierStore(MemoryStore):
    """A memory store whose `load` waits until `parties` callers have loaded."""

    def __init__(self, parties: int, **options: Any) -> None:
        super().__init__(**options)
        self.barrier = threading.Barrier(parties, timeout=10)

    def load(self, visitor: str, now: float) -> Snapshot:
        snapshot = super().load(visitor, now)
        self.barrier.wait()
        return snapshot


def engine_on(rules: RuleSet, store: MemoryStore, clock: FakeClock) -> Engine:
    return Engine(rules, store=store, clock=clock, trust_event_time=False)


def run_concurrently(engine: Engine, events: list[dict[str, Any]], workers: int) -> list[Decision]:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(engine.evaluate, events))


def invited(decisions: list[Decision]) -> int:
    return sum(d.invitation is not None for d in decisions)


def suppressed(engine: Engine) -> dict[str, int]:
    return engine.stats().rules[0].suppressed


# --- two verdicts from one snapshot -----------------------------------------------------------


def test_the_second_of_two_verdicts_from_one_snapshot_is_refused(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(ALWAYS)  # the default policy: 1 invitation per 10m
    snapshot = engine.store.load("v1", clock.now)
    first = evaluate(engine.rules, snapshot, PAGE, clock.now)
    second = evaluate(engine.rules, snapshot, PAGE, clock.now)
    assert first.invitation is not None
    assert second.invitation is not None  # each alone would invite
    applied_first = engine.apply("v1", first, clock.now)
    applied_second = engine.apply("v1", second, clock.now)
    assert applied_first.decision.invitation is not None
    assert applied_second.decision.invitation is None
    assert applied_second.decision.recheck_in == 1
    rule = engine.stats().rules[0]
    assert rule.shown == 1
    assert rule.suppressed == {"cap_race": 1}


def test_store_commit_refuses_directly_and_says_why(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(ALWAYS)
    store = engine.store
    snapshot = store.load("v1", clock.now)
    verdicts = [evaluate(engine.rules, snapshot, PAGE, clock.now) for _ in range(3)]
    applied = [store.commit("v1", v, clock.now) for v in verdicts]
    assert [a.decision.invitation is not None for a in applied] == [True, False, False]
    for refused in applied[1:]:
        assert refused.invitation is None
        assert ("r", None, "cap_race") in refused.counts
        assert not any(what == "shown" for _, _, what in refused.counts)
    log = store.load("v1", clock.now).state.log  # type: ignore[union-attr]
    assert log is not None
    assert log.ever == 1


def test_a_rule_cap_is_rechecked_at_commit(make_engine: MakeEngine, clock: FakeClock) -> None:
    engine = make_engine(
        "policy { at most 1000 invitations per visitor }\n"
        'rule r { on page_view when session.pageviews >= 1 say "Hi" at most 2 per session }\n'
    )
    snapshot = engine.store.load("v1", clock.now)
    verdicts = [evaluate(engine.rules, snapshot, PAGE, clock.now) for _ in range(4)]
    applied = [engine.apply("v1", v, clock.now) for v in verdicts]
    assert [a.decision.invitation is not None for a in applied] == [True, True, False, False]
    assert suppressed(engine) == {"cap_race": 2}


def test_a_sitewide_cap_is_rechecked_at_commit_across_visitors(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(
        "policy { at most 1 invitation per 1m sitewide }\n" + ALWAYS,
    )
    verdicts = []
    for visitor in ("v1", "v2", "v3"):
        snapshot = engine.store.load(visitor, clock.now)
        event = Event(visitor=visitor, event="page_view", url="/")
        verdicts.append((visitor, evaluate(engine.rules, snapshot, event, clock.now)))
    applied = [engine.apply(visitor, v, clock.now) for visitor, v in verdicts]
    assert [a.decision.invitation is not None for a in applied] == [True, False, False]
    assert suppressed(engine) == {"cap_race": 2}


def test_a_refused_decision_is_what_a_retry_returns(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(ALWAYS)
    snapshot = engine.store.load("v1", clock.now)
    first = evaluate(engine.rules, snapshot, PAGE, clock.now)
    retried = PAGE.model_copy(update={"id": "e2"})
    second = evaluate(engine.rules, snapshot, retried, clock.now)
    engine.apply("v1", first, clock.now)
    refused = engine.apply("v1", second, clock.now).decision
    assert refused.invitation is None
    again = engine.evaluate(retried)
    assert again == refused


# --- threads --------------------------------------------------------------------------------


def test_threads_racing_for_one_visitor_never_exceed_the_default_cap(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    rules = make_engine(ALWAYS).rules
    workers = 8
    engine = engine_on(rules, BarrierStore(workers), clock)
    events = [{"visitor": "v1", "event": "page_view", "url": "/"}] * workers
    decisions = run_concurrently(engine, events, workers)
    assert invited(decisions) == 1
    assert all(d.recheck_in == 1 for d in decisions if d.invitation is None)
    assert suppressed(engine) == {"cap_race": workers - 1}


def test_threads_racing_for_one_visitor_never_exceed_a_session_cap(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    rules = make_engine("policy { at most 3 invitations per session }\n" + ALWAYS).rules
    workers = 12
    engine = engine_on(rules, BarrierStore(workers), clock)
    events = [{"visitor": "v1", "session": "s1", "event": "page_view", "url": "/"}] * workers
    assert invited(run_concurrently(engine, events, workers)) == 3


def test_many_unsynchronised_requests_for_one_visitor_respect_the_cap(
    make_engine: MakeEngine,
) -> None:
    engine = make_engine("policy { at most 3 invitations per session }\n" + ALWAYS)
    events = [{"visitor": "v1", "session": "s1", "event": "page_view", "url": "/"}] * 300
    decisions = run_concurrently(engine, events, 16)
    assert invited(decisions) == 3
    rule = engine.stats().rules[0]
    assert rule.shown == 3
    assert rule.shown + sum(rule.suppressed.values()) == len(events)


def test_threads_racing_across_visitors_never_exceed_a_sitewide_cap(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    rules = make_engine("policy { at most 5 invitations per 1m sitewide }\n" + ALWAYS).rules
    workers = 20
    engine = engine_on(rules, BarrierStore(workers), clock)
    events = [{"visitor": f"v{i}", "event": "page_view", "url": "/"} for i in range(workers)]
    assert invited(run_concurrently(engine, events, workers)) == 5
    assert suppressed(engine) == {"cap_race": workers - 5}


def test_many_unsynchronised_visitors_respect_a_sitewide_cap(make_engine: MakeEngine) -> None:
    engine = make_engine("policy { at most 7 invitations per 1h sitewide }\n" + ALWAYS)
    events = [{"visitor": f"v{i % 50}", "event": "page_view", "url": "/"} for i in range(400)]
    assert invited(run_concurrently(engine, events, 16)) == 7


# --- eviction -------------------------------------------------------------------------------


def test_an_idle_visitor_is_evicted_after_the_ttl_on_the_engines_clock(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    rules = make_engine(ALWAYS).rules
    store = MemoryStore(ttl=2 * DAY)
    engine = engine_on(rules, store, clock)
    engine.evaluate(PAGE)
    assert len(store) == 1
    clock.advance(2 * DAY - 1)
    assert store.load("v1", clock.now).state is not None
    clock.advance(2)
    assert store.load("v1", clock.now).state is None
    assert len(store) == 0


def test_activity_renews_the_ttl(make_engine: MakeEngine, clock: FakeClock) -> None:
    rules = make_engine(ALWAYS).rules
    store = MemoryStore(ttl=2 * DAY)
    engine = engine_on(rules, store, clock)
    for _ in range(5):
        engine.evaluate(PAGE)
        clock.advance(DAY + HOUR)
    assert store.load("v1", clock.now).state is not None


def test_an_engine_extends_a_store_ttl_its_rules_need(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    """The default policy's quiet periods last a day: a 100 s TTL would break them."""
    rules = make_engine(ALWAYS).rules
    store = MemoryStore(ttl=100)
    engine_on(rules, store, clock)
    assert store.ttl == rules.retention == DAY


def test_a_lifetime_cap_keeps_visitors_forever(make_engine: MakeEngine, clock: FakeClock) -> None:
    rules = make_engine("policy { at most 1 invitation per visitor }\n" + ALWAYS).rules
    store = MemoryStore()
    engine = engine_on(rules, store, clock)
    assert engine.evaluate(PAGE).invitation is not None
    clock.advance(400 * DAY)
    assert engine.evaluate(PAGE).invitation is None


def test_a_visitor_expired_before_a_commit_comes_back_new_without_its_history(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    """Expired means gone everywhere: the commit does not resurrect the old history."""
    rules = make_engine(ALWAYS).rules
    store = MemoryStore(ttl=DAY)
    engine = engine_on(rules, store, clock)
    engine.evaluate(PAGE)
    clock.advance(DAY + 1)
    engine.evaluate(PAGE)
    state = store.load("v1", clock.now).state
    assert state is not None
    assert state.visits == 1
    assert state.log is not None
    assert state.log.ever == 1


def test_the_engines_memory_store_keeps_visitors_through_every_window(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine("policy { at most 1 invitation per 3d quiet 5d after chat }\n" + ALWAYS)
    assert engine.evaluate(PAGE).invitation is not None
    clock.advance(3 * 86400 - 1)
    assert engine.evaluate(PAGE).invitation is None  # still remembered, still capped
    engine.evaluate({"visitor": "v2", "event": "chat_started"})
    engine.evaluate({"visitor": "v2", "event": "chat_ended"})
    clock.advance(5 * 86400 - 1)
    assert engine.evaluate({"visitor": "v2", "event": "page_view", "url": "/"}).invitation is None


def test_blocks_are_never_evicted(make_engine: MakeEngine, clock: FakeClock) -> None:
    rules = make_engine(ALWAYS).rules
    store = MemoryStore(ttl=DAY)
    engine = engine_on(rules, store, clock)
    engine.block("v1", "abusive")
    engine.evaluate(PAGE)
    clock.advance(10 * 365 * 86400)
    assert "v1" in engine.blocks()
    decision = engine.evaluate(PAGE)
    assert decision.chat == "blocked"
    assert decision.invitation is None


def test_an_expired_block_is_dropped_on_the_injected_clock(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    store = MemoryStore()
    store.block("v1", Block("short", until=clock.now + 50, at=clock.now))
    assert store.load("v1", clock.now + 49).block is not None
    assert store.load("v1", clock.now + 50).block is None
    assert store.blocks(clock.now + 50) == {}


# --- snapshots ------------------------------------------------------------------------------


def test_a_held_snapshot_is_not_changed_by_a_later_commit(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(
        "policy { at most 1000 invitations per visitor at most 100 invitations per 1h sitewide }\n"
        + ALWAYS
    )
    engine.evaluate(PAGE)
    held = engine.store.load("v1", clock.now)
    assert held.state is not None
    assert held.state.log is not None
    pageviews, ever, sitewide = held.state.pageviews, held.state.log.ever, list(held.sitewide)
    recent = list(held.state.log.recent)
    clock.advance(1)
    for _ in range(3):
        assert engine.evaluate(PAGE).invitation is not None
    assert held.state.pageviews == pageviews
    assert held.state.log.ever == ever
    assert held.state.log.recent == recent
    assert held.sitewide == sitewide
    fresh = engine.store.load("v1", clock.now)
    assert fresh.state is not None
    assert fresh.state.log is not None
    assert (fresh.state.pageviews, fresh.state.log.ever) == (pageviews + 3, ever + 3)


def test_a_verdict_does_not_change_the_snapshot_it_came_from(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(ALWAYS)
    engine.evaluate({"visitor": "v1", "event": "page_view", "url": "/a", "attributes": {"x": 1}})
    held = engine.store.load("v1", clock.now)
    assert held.state is not None
    attributes = dict(held.state.attributes or {})
    verdict = evaluate(
        engine.rules,
        held,
        Event(visitor="v1", event="page_view", url="/b", attributes={"x": None, "y": 2}),
        clock.now + 1,
    )
    engine.apply("v1", verdict, clock.now + 1)
    assert held.state.page_path == "/a"
    assert held.state.pageviews == 1
    assert held.state.attributes == attributes


@pytest.mark.parametrize("url", ["memory://", "memory://anything"])
def test_open_store_gives_a_memory_store(url: str) -> None:
    from politely import open_store

    store = open_store(url)
    assert isinstance(store, MemoryStore)
    assert store.ttl == 30 * DAY


def test_open_store_refuses_an_unknown_url_with_a_store_error() -> None:
    from politely import StoreError, open_store

    with pytest.raises(StoreError, match="unknown store URL"):
        open_store("mysql://db")
