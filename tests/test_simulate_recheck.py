"""The summary's replay asks the engine for no `recheck_in` (`recheck=False`).

It never shows recheck_in, and finding it is a large share of the engine's work
on a replay. Without it, every decision invites the same visitor with the same
rule, variant and message, holds back for the same reasons, leaves the same
state in the store, and the summary is the same text.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from politely.checker import check_path
from politely.codec import encode_history, encode_profile
from politely.compiler import compile_rules
from politely.ruleset import RuleSet
from politely.simulate import Simulation, Step, TrafficFile, render_summary

EXAMPLE = Path(__file__).resolve().parent.parent / "rules"
START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC).timestamp()  # a Monday: the shop is open
PAGES = ["/", "/pricing", "/pricing/teams", "/cart", "/checkout/failed", "/products/lamp-3"]
OTHER_EVENTS = ["scroll", "exit_intent", "checkout_error", "invitation_dismissed"]


def traffic(seed: int, events: int = 3000, visitors: int = 40) -> list[dict[str, Any]]:
    """Lines in time order: page views, ticks, other events, agent status that
    changes, a block now and then, and visitors who come back in new sessions."""
    rng = random.Random(seed)
    t = START
    lines: list[dict[str, Any]] = []
    for n in range(events):
        t += rng.choice((1, 2, 5, 15, 40, 900 if n % 500 == 0 else 3))
        at = datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")
        if n % 40 == 0:
            status = {"online": 2, "available": rng.choice((0, 1, 2)), "queue_wait": 20}
            lines.append({"at": at, "agents": status})
        visitor = f"v{rng.randrange(visitors)}"
        if n % 700 == 350:
            lines.append({"at": at, "block": {"visitor": visitor, "reason": "abuse"}})
        kind = rng.random()
        if kind < 0.25:
            line = {"visitor": visitor, "event": "page_view", "url": rng.choice(PAGES)}
            if rng.random() < 0.2:
                line["attributes"] = {"cart_value": rng.randrange(20, 400)}
        elif kind < 0.9:
            line = {"visitor": visitor, "event": "tick"}
        else:
            line = {"visitor": visitor, "event": rng.choice(OTHER_EVENTS)}
        lines.append({"at": at, **line})
    return lines


def replay(rules: RuleSet, path: Path, *, recheck: bool) -> tuple[Simulation, list[Step]]:
    simulation = Simulation(rules, recheck=recheck)
    return simulation, list(simulation.run(TrafficFile(path)))


def seen(step: Step) -> tuple[Any, ...]:
    """What a step decided, but recheck_in: the invitation, the chat status, the
    counts (shown, and each reason a rule or visitor was held back) and the state."""
    decision, verdict = step.decision, step.verdict
    invitation = decision.invitation
    state = verdict.state
    return (
        step.line,
        step.event.visitor,
        step.at,
        None if invitation is None else invitation.model_dump(),
        decision.chat,
        verdict.counts,
        verdict.changed,
        None if state is None else encode_profile(state),
        None if state is None or state.log is None else encode_history(state.log),
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_summary_and_every_decision_but_recheck_in_are_the_same_without_it(
    tmp_path: Path, seed: int
) -> None:
    rules = compile_rules(check_path(EXAMPLE))
    path = tmp_path / "traffic.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in traffic(seed)), encoding="utf-8")
    with_it, steps = replay(rules, path, recheck=True)
    without, quick_steps = replay(rules, path, recheck=False)

    assert [seen(s) for s in quick_steps] == [seen(s) for s in steps]
    assert all(s.decision.recheck_in is None for s in quick_steps)
    assert any(s.decision.recheck_in is not None for s in steps)  # there was one to skip
    assert sum(s.decision.invitation is not None for s in steps) >= 10  # traffic that invites
    assert render_summary(without.summary, without.stats()) == render_summary(
        with_it.summary, with_it.stats()
    )
    site = with_it.engine.site
    for visitor in {s.event.visitor for s in steps}:
        kept = with_it.engine.store.load(site, visitor, steps[-1].at)
        quick_kept = without.engine.store.load(site, visitor, steps[-1].at)
        assert (quick_kept.profile, quick_kept.history) == (kept.profile, kept.history)


def test_following_ticks_keeps_recheck_in_whatever_is_asked() -> None:
    """The ticks a decision asks for are sent only if its recheck_in is known."""
    simulation = Simulation(compile_rules(check_path(EXAMPLE)), follow_ticks=True, recheck=False)
    assert simulation.recheck


def test_an_event_with_an_id_leaves_the_decision_a_retry_gets_as_with_recheck_in(
    tmp_path: Path,
) -> None:
    """The store remembers the decision of an event with an id, for a retry of it
    (recheck_in counting from the retry): the same decision either way."""
    rules = compile_rules(check_path(EXAMPLE))
    lines = traffic(4, events=400, visitors=5)
    for number, line in enumerate(lines):
        if "event" in line:
            line["id"] = f"e{number}"
    path = tmp_path / "traffic.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    with_it, steps = replay(rules, path, recheck=True)
    without, quick_steps = replay(rules, path, recheck=False)
    assert [s.decision for s in quick_steps] == [s.decision for s in steps]
    assert any(s.decision.recheck_in is not None for s in steps)
    site, last = with_it.engine.site, steps[-1].at
    remembered = 0
    for step in steps[-40:]:
        visitor, event_id = step.event.visitor, step.event.id
        kept = with_it.engine.store.load(site, visitor, last, event_id=event_id)
        quick_kept = without.engine.store.load(site, visitor, last, event_id=event_id)
        assert quick_kept.replay == kept.replay
        remembered += kept.replay is not None
    assert remembered  # there were decisions to remember
