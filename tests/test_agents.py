"""Agent status: fields from `set_agents`, unknown once older than two minutes.

A status exactly 120 s old is still fresh; at 121 s it is unknown, and then
`agents.*` and `queue.*` are missing: every comparison on them is false, `!=`
and `not in` included, so `not (agents.available > 0)` is true.
"""

from __future__ import annotations

import pytest

from conftest import FakeClock
from events import MakeEngine, tick, view
from politely import Engine

LOOSE = "policy { at most 1000 invitations per visitor }\n"


def engine_for(make_engine: MakeEngine, condition: str) -> Engine:
    return make_engine(LOOSE + f'rule r {{ on page_view when {condition} say "Hi" }}')


def test_agent_fields_come_from_set_agents(make_engine: MakeEngine) -> None:
    engine = make_engine(
        LOOSE + "rule r { on page_view when agents.online >= 0 "
        'say "{agents.online}/{agents.available}/{queue.length}" }'
    )
    engine.set_agents(online=5, available=2, queue_length=7, queue_wait=90)
    invitation = view(engine).invitation
    assert invitation is not None
    assert invitation.message == "5/2/7"


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("agents.online == 4", True),
        ("agents.available > 1", False),
        ("agents.available == 1", True),
        ("queue.length in [2, 3]", True),
        ("queue.length not in [2, 3]", False),
        ("queue.wait >= 45s", True),
        ("queue.wait > 45s", False),
    ],
)
def test_agent_fields_in_conditions(
    make_engine: MakeEngine, condition: str, expected: bool
) -> None:
    engine = engine_for(make_engine, condition)
    engine.set_agents(online=4, available=1, queue_length=3, queue_wait=45)
    assert (view(engine).invitation is not None) is expected


def test_a_status_exactly_two_minutes_old_is_still_fresh(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = engine_for(make_engine, "agents.available > 0")
    engine.set_agents(online=1, available=1)
    clock.advance(120)
    assert view(engine).invitation is not None


def test_a_status_older_than_two_minutes_is_unknown(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = engine_for(make_engine, "agents.available > 0")
    engine.set_agents(online=1, available=1)
    clock.advance(121)
    assert view(engine).invitation is None


def test_a_status_reported_with_its_own_time_ages_from_that_time(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = engine_for(make_engine, "agents.available > 0")
    engine.set_agents(online=1, available=1, at=clock.now - 120)
    assert view(engine, "v1").invitation is not None
    engine.set_agents(online=1, available=1, at=clock.now - 121)
    assert view(engine, "v2").invitation is None


def test_renewing_the_status_makes_it_fresh_again(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = engine_for(make_engine, "agents.available > 0")
    engine.set_agents(online=1, available=1)
    clock.advance(300)
    assert view(engine).invitation is None
    engine.set_agents(online=1, available=1)
    assert view(engine).invitation is not None


STALE_CONDITIONS = [
    "agents.online >= 0",
    "agents.available != 0",
    "agents.available != 5",
    "agents.online == 0",
    "queue.length != 3",
    "queue.length < 100",
    "queue.length in [0, 1, 2, 3]",
    "queue.length not in [99]",
    "queue.wait != 0s",
    "queue.wait < 1h",
    "queue.wait >= 0s",
]


@pytest.mark.parametrize("condition", STALE_CONDITIONS)
def test_every_comparison_on_a_stale_status_is_false(
    make_engine: MakeEngine, clock: FakeClock, condition: str
) -> None:
    engine = engine_for(make_engine, condition)
    engine.set_agents(online=2, available=1, queue_length=3, queue_wait=30)
    clock.advance(121)
    assert view(engine).invitation is None


@pytest.mark.parametrize("condition", STALE_CONDITIONS)
def test_every_comparison_without_any_status_is_false(
    make_engine: MakeEngine, condition: str
) -> None:
    engine = engine_for(make_engine, condition)
    assert view(engine).invitation is None


def test_not_of_a_comparison_on_a_stale_status_is_true(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = engine_for(make_engine, "not (agents.available > 0)")
    engine.set_agents(online=2, available=2)
    assert view(engine, "v1").invitation is None
    clock.advance(121)
    assert view(engine, "v2").invitation is not None


def test_not_of_a_comparison_without_any_status_is_true(make_engine: MakeEngine) -> None:
    engine = engine_for(make_engine, "not (agents.available > 0)")
    assert view(engine).invitation is not None


def test_agent_status_is_shared_by_every_visitor(make_engine: MakeEngine) -> None:
    engine = engine_for(make_engine, "agents.available > 0")
    engine.set_agents(online=1, available=1)
    assert all(view(engine, f"v{i}").invitation is not None for i in range(5))


def test_the_latest_status_replaces_the_previous(make_engine: MakeEngine) -> None:
    engine = engine_for(make_engine, "agents.available > 0")
    engine.set_agents(online=1, available=1)
    engine.set_agents(online=1, available=0)
    assert view(engine).invitation is None


# --- queue.wait is a duration -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("wait", "expected"), [(0, True), (119, True), (119.5, True), (120, False)]
)
def test_queue_wait_compares_as_a_duration(
    make_engine: MakeEngine, wait: float, expected: bool
) -> None:
    engine = engine_for(make_engine, "queue.wait < 2m")
    engine.set_agents(online=1, available=1, queue_wait=wait)
    assert (view(engine).invitation is not None) is expected


def test_policy_gate_on_agents_blocks_every_rule_when_stale(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(
        "policy {\n    at most 1000 invitations per visitor\n"
        "    only when agents.available > 0 and queue.wait < 2m\n}\n"
        'rule a { on page_view when session.pageviews >= 1 say "A" }\n'
    )
    engine.set_agents(online=3, available=1, queue_wait=30)
    assert view(engine, "v1").invitation is not None
    clock.advance(121)
    assert view(engine, "v2").invitation is None
    assert engine.stats().rules[0].suppressed == {"policy_only": 1}


# --- agents and recheck_in --------------------------------------------------------------------


def test_recheck_in_counts_on_a_fresh_status_only_while_it_lasts(
    make_engine: MakeEngine,
) -> None:
    engine = make_engine(
        LOOSE
        + 'rule soon { when agents.available > 0 and page.dwell >= 60s say "Hi" }\n'
        + 'rule late { when agents.available > 0 and page.dwell >= 200s say "Hi" }\n'
    )
    engine.set_agents(online=1, available=1)
    assert view(engine).recheck_in == 60


def test_recheck_in_assumes_the_status_is_renewed_before_a_rule_could_fire(
    make_engine: MakeEngine,
) -> None:
    """Agent status is news, not time: going stale in 2 minutes is no reason to
    answer null for a rule that needs 200 s."""
    engine = make_engine(
        LOOSE + 'rule r { when agents.available > 0 and page.dwell >= 200s say "Hi" }'
    )
    engine.set_agents(online=1, available=1)
    assert view(engine).recheck_in == 200


def test_a_status_going_stale_makes_a_negated_agent_condition_hold_at_evaluation(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(LOOSE + 'rule r { when not (agents.available > 0) say "Leave a message" }')
    engine.set_agents(online=2, available=2)
    decision = view(engine)
    assert decision.invitation is None
    assert decision.recheck_in == 30  # held back by agents only: ask again soon
    clock.advance(120)
    assert tick(engine).invitation is None
    clock.advance(1)
    assert tick(engine).invitation is not None  # stale: unknown, so the negation holds
