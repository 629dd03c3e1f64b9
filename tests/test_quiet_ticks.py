"""The quiet tick (`evaluator.quiet_tick`, the engine's path for three events
in four): a plain tick its visitor's recheck memo answers gets the decision
`evaluate` would give, from the memo, without testing conditions while the
memo shows none can hold, and without building a verdict or writing.

Each case runs the same events through a remembering engine and one that
keeps nothing (so never takes the path), asserts the decisions and
statistics are the same, and asserts the path was taken, so that a case the
path gets wrong cannot pass by not reaching it. The property tests in
test_recheck_memo.py compare the two engines over generated traffic.
"""

from __future__ import annotations

from typing import Any

import pytest

import politely.engine
from politely import Engine, Event, check_sources, compile_rules
from politely.errors import EventError, StoreError
from politely.evaluator import evaluate, quiet_tick
from politely.models import Decision
from politely.recording import QUIET_TICK_FIELDS
from politely.state import Snapshot
from politely.stores import MemoryStore

SITE = """
rule capped {
    when page.path matches "/capped*" and page.dwell >= 10s
    say "Hi"
    at most 1 per session
}

rule pro {
    on tick
    when event.plan == "pro" and page.path matches "/plans*"
    say "Pro plan questions?"
}

rule staffed {
    when page.path matches "/staffed*" and page.dwell >= 10s and agents.available > 0
    say "An agent is free"
    at most 1 per session
}

rule late {
    when page.path matches "/late*" and page.dwell >= 100s
    say "Still there?"
}
"""
RULES = compile_rules(check_sources({"site.rules": SITE}))
T0 = 1_766_966_400.0  # Monday 29 December 2025, 00:00 UTC


class Forgetful(Engine):
    """Keeps no decoded state and no memo: every event decided from scratch."""

    def _remember(self, visitor: str, recent: Any) -> None:
        return None


@pytest.fixture
def quiet_answers(monkeypatch: pytest.MonkeyPatch) -> list[Decision]:
    """The decisions the quiet path gave (it answers None when `evaluate` must)."""
    answers: list[Decision] = []
    original = politely.engine.quiet_tick

    def spy(*args: Any, **kwargs: Any) -> Decision | None:
        found = original(*args, **kwargs)
        if found is not None:
            answers.append(found)
        return found

    monkeypatch.setattr(politely.engine, "quiet_tick", spy)
    return answers


def run_both(events: list[dict[str, Any]], actions: dict[int, str] | None = None) -> list[Any]:
    """Feed both engines; `actions` blocks the visitor ("block") or reports an
    agent free ("agents") before event i."""
    engines = remembering, forgetful = Engine(RULES), Forgetful(RULES)
    decisions = []
    for i, event in enumerate(events):
        action = actions.get(i) if actions else None
        for engine in engines:
            if action == "block":
                engine.block(event["visitor"], "abuse", until=event["at"] + 600, at=event["at"])
            elif action == "agents":
                engine.set_agents(online=1, available=1, at=event["at"])
        pair = [engine.evaluate(Event.model_validate(event)) for engine in engines]
        assert pair[0] == pair[1], (i, event)
        decisions.append(pair[0])
    assert remembering.stats() == forgetful.stats()
    return decisions


def view(url: str, at: float) -> dict[str, Any]:
    return {"visitor": "v", "event": "page_view", "url": url, "at": at}


def tick(at: float, **fields: Any) -> dict[str, Any]:
    return {"visitor": "v", "event": "tick", "at": at, **fields}


def test_quiet_ticks_before_any_condition_holds_are_answered_from_the_memo(
    quiet_answers: list[Decision],
) -> None:
    decisions = run_both([view("/late/a", T0), tick(T0 + 20), tick(T0 + 40), tick(T0 + 60)])
    assert len(quiet_answers) == 3
    assert [d.recheck_in for d in decisions] == [100, 80, 60, 40]  # `late`: dwell 100s


def test_a_condition_that_holds_under_a_cap_is_counted_on_every_tick(
    quiet_answers: list[Decision],
) -> None:
    """`capped` invites once, then its condition holds on every tick and its cap
    refuses it: each such tick counts the refusal, so none may skip the test."""
    events = [view("/capped/a", T0), tick(T0 + 10), *(tick(T0 + 10 + 5 * k) for k in range(1, 6))]
    decisions = run_both(events)
    assert decisions[1].invitation is not None
    assert suppressed(events, "capped") == {"rule_cap": 5}
    assert len(quiet_answers) == 0  # a condition holds on each: the path declines them


def test_a_condition_on_agents_that_holds_under_a_cap_is_counted_on_every_tick(
    quiet_answers: list[Decision],
) -> None:
    """As above, with a condition on the agent status: the first tick at which
    conditions hold is worked out with the agents the memo read, not unknown."""
    events = [view("/staffed/a", T0), tick(T0 + 10), *(tick(T0 + 10 + 5 * k) for k in range(1, 6))]
    decisions = run_both(events, actions={0: "agents"})
    assert decisions[1].invitation is not None
    assert suppressed(events, "staffed", agents_at=T0) == {"rule_cap": 5}
    assert len(quiet_answers) == 0


def suppressed(
    events: list[dict[str, Any]], rule: str, agents_at: float | None = None
) -> dict[str, int]:
    engine = Engine(RULES)
    if agents_at is not None:
        engine.set_agents(online=1, available=1, at=agents_at)
    for event in events:
        engine.evaluate(event)
    return next(r.suppressed for r in engine.stats().rules if r.rule == rule)


def test_a_blocked_visitors_ticks_say_blocked_and_are_counted(
    quiet_answers: list[Decision],
) -> None:
    events = [view("/late/a", T0), tick(T0 + 5), tick(T0 + 20), tick(T0 + 30), tick(T0 + 40)]
    decisions = run_both(events, actions={2: "block"})
    assert [d.chat for d in decisions] == ["available", "available", *["blocked"] * 3]
    assert len(quiet_answers) == 1  # the tick before the block


def test_ticks_during_a_chat_say_in_chat_and_are_counted(quiet_answers: list[Decision]) -> None:
    events = [
        view("/late/a", T0),
        tick(T0 + 5),
        {"visitor": "v", "event": "chat_started", "at": T0 + 6},
        tick(T0 + 20),
        tick(T0 + 30),
    ]
    decisions = run_both(events)
    assert [d.chat for d in decisions[3:]] == ["in_chat", "in_chat"]
    assert len(quiet_answers) == 1


def test_a_tick_whose_props_meet_a_condition_is_tested(quiet_answers: list[Decision]) -> None:
    """Tick sets read no props: a tick with props never takes the path."""
    events = [view("/plans/x", T0), tick(T0 + 5), tick(T0 + 15, props={"plan": "pro"})]
    decisions = run_both(events)
    assert decisions[2].invitation is not None
    assert decisions[2].invitation.rule == "pro"
    assert len(quiet_answers) == 1


def test_a_tick_in_the_memos_own_second_tests_the_conditions(
    quiet_answers: list[Decision],
) -> None:
    """The memo's tick sets start one tick after it was made: a tick less than a
    second after the memo's is tested, and `capped`'s refusal counted again.
    (Every time the memo measures from is 0.7 s past its phase: the move by
    0.3 s crosses none, so the memo answers recheck_in.)"""
    events = [view("/capped/a", T0), tick(T0 + 10), tick(T0 + 15.3), tick(T0 + 15.6)]
    run_both(events)
    assert suppressed(events, "capped") == {"rule_cap": 2}
    assert len(quiet_answers) == 0


def test_the_pure_quiet_tick_declines_props_an_id_and_recorded_fields() -> None:
    """Conditions may read a tick's props and tick sets read none; an id may be
    a retry; scroll or attributes change the state: `evaluate` decides those."""
    page = Event(visitor="v", event="page_view", url="/plans/x", at=T0)
    first = evaluate(RULES, Snapshot(None, None, None), page, T0)
    assert first.state is not None
    assert first.recheck is not None
    site = Snapshot(first.state, None, None)
    plain = Event(visitor="v", event="tick", at=T0 + 5)
    assert quiet_tick(RULES, first.state, site, plain, T0 + 5, first.recheck) is not None
    for fields in ({"props": {"plan": "pro"}}, {"id": "e1"}, {"scroll": 40}, {"country": "DE"}):
        declined = Event.model_validate({**plain.model_dump(exclude_unset=True), **fields})
        assert quiet_tick(RULES, first.state, site, declined, T0 + 5, first.recheck) is None, fields


def test_a_tick_given_only_fields_that_record_nothing_is_answered_as_evaluate_answers() -> None:
    """Each field a quiet tick may be given (QUIET_TICK_FIELDS), and every other
    field of Event, one at a time: the first are answered as `evaluate` answers
    them, the others declined, so a field that ticks record is never skipped."""
    page = Event(visitor="v", event="page_view", url="/late/x", at=T0)
    first = evaluate(RULES, Snapshot(None, None, None), page, T0)
    assert first.state is not None
    assert first.recheck is not None
    site = Snapshot(first.state, None, None)
    given = {
        "session": "s1",
        "url": "/late/y",
        "title": "Late",
        "referrer": "https://example.com/",
        "invitation": "i1",
        "scroll": 40,
        "props": {"plan": "pro"},
        "attributes": {"plan": "pro"},
        "country": "DE",
        "language": "de",
        "device": "mobile",
        "id": "e1",
    }
    assert set(given) | {"visitor", "event", "at"} == set(Event.model_fields)
    for field, value in given.items():
        event = Event(visitor="v", event="tick", at=T0 + 5, **{field: value})
        answer = quiet_tick(RULES, first.state, site, event, T0 + 5, first.recheck)
        if field in QUIET_TICK_FIELDS:
            expected = evaluate(RULES, site, event, T0 + 5).decision
            assert answer == expected, field
        else:
            assert answer is None, field


SHARED = """
policy {
    at most 1 invitation per 3m
}

rule pro {
    on tick
    when event.plan == "pro"
    say "Pro plan questions?"
}

rule nudge {
    when page.dwell >= 30s
    say "Hello!"
}
"""


def test_a_tick_after_another_instance_invited_is_decided_on_the_stored_history(
    quiet_answers: list[Decision],
) -> None:
    """Two engines on one store: `b` invites the visitor on a tick with props,
    which changes its invitations (history) and not its profile. `a`'s kept
    state and memo predate that invitation, so its next tick must not be
    answered from them: the policy's cap now holds `nudge` back three minutes."""
    rules = compile_rules(check_sources({"site.rules": SHARED}))
    store = MemoryStore()
    a, b = Engine(rules, store=store), Engine(rules, store=store)
    assert a.evaluate(view("/home", T0)).recheck_in == 30
    invited = b.evaluate(tick(T0 + 5, props={"plan": "pro"}))
    assert invited.invitation is not None
    later = a.evaluate(tick(T0 + 10))
    assert later.invitation is None
    assert later.recheck_in == 180 - 5  # the cap frees up 3m after `b`'s invitation
    assert not quiet_answers


class Failing(MemoryStore):
    """A memory store whose loads fail once `down` is set."""

    down = False

    def load(self, *args: Any, **kwargs: Any) -> Any:
        if self.down:
            raise StoreError("down")
        return super().load(*args, **kwargs)


def test_a_tick_over_a_bound_is_refused_before_the_store_is_read() -> None:
    """A tick whose props are over a bound is an EventError (the service's 422)
    whatever the store does: the short path, which loads first, never takes it,
    even when its visitor's state and memo are kept."""
    store = Failing()
    engine = Engine(RULES, store=store)
    engine.evaluate(view("/late/a", T0))
    engine.evaluate(tick(T0 + 5))
    store.down = True
    with pytest.raises(EventError, match="props"):
        engine.evaluate(tick(T0 + 10, props={f"k{i}": i for i in range(60)}))
    assert engine.degraded == 0
