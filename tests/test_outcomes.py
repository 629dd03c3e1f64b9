"""Outcome events, open chats and blocked visitors (docs/contract.md, sections 1 and 3).

Outcome events are recorded and never answered with an invitation; an
acceptance is the start of a chat; a visitor in an open chat or blocked is
never invited, whatever the policy, and `recheck_in` is null when only an
event (not time) can change that.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import politely
from conftest import FakeClock
from events import DAY, HOUR, MINUTE, MakeEngine, send, tick, view
from politely import Engine

OUTCOMES = ("invitation_dismissed", "invitation_accepted", "chat_started", "chat_ended")
LOOSE = "policy {\n    at most 1000 invitations per visitor\n    quiet 1s after chat\n}\n"
ALWAYS = 'rule r { when session.pageviews >= 1 say "Hi" or "Hello" or "Hey" }\n'


def chats(engine: Engine, visitor: str = "v1") -> int:
    """`visitor.chats`, read through a probe rule's message on an `ask` event."""
    decision = send(engine, visitor, "ask")
    assert decision.invitation is not None, decision
    return int(decision.invitation.message)


CHATS = LOOSE + 'rule probe { on ask when visitor.visits >= 1 say "{visitor.chats}" }\n'


@pytest.fixture
def engine(make_engine: MakeEngine) -> Engine:
    return make_engine(LOOSE + ALWAYS)


# --- outcome events -------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_an_outcome_event_never_invites(engine: Engine, outcome: str) -> None:
    view(engine)
    decision = send(engine, "v1", outcome)
    assert decision.invitation is None


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_an_outcome_event_as_a_visitors_first_event_never_invites(
    engine: Engine, outcome: str
) -> None:
    assert send(engine, "v1", outcome).invitation is None


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_a_rule_cannot_listen_to_an_outcome_event(make_engine: MakeEngine, outcome: str) -> None:
    with pytest.raises(politely.RulesError) as raised:
        make_engine(f'rule r {{ on {outcome} when visitor.visits >= 1 say "Hi" }}')
    assert any(d.is_error for d in raised.value.diagnostics)


def test_a_dismissal_is_recorded_against_the_invitation_it_names(
    make_engine: MakeEngine,
) -> None:
    engine = make_engine(
        LOOSE
        + 'rule a { priority 2 on page_view when session.pageviews >= 1 say "A" '
        + "at most 1 per session }\n"
        + 'rule b { on page_view when session.pageviews >= 1 say "B" }\n'
    )
    first = view(engine).invitation
    second = view(engine).invitation
    assert first is not None
    assert second is not None
    assert (first.rule, second.rule) == ("a", "b")
    send(engine, "v1", "invitation_dismissed", invitation=first.id)
    stats = {r.rule: (r.shown, r.dismissed, r.accepted) for r in engine.stats().rules}
    assert stats == {"a": (1, 1, 0), "b": (1, 0, 0)}
    variant = engine.stats().rules[0].variants[first.variant]
    assert variant.dismissed == 1


def test_an_outcome_without_an_invitation_id_refers_to_the_last_invitation(
    engine: Engine,
) -> None:
    invitation = view(engine).invitation
    assert invitation is not None
    send(engine, "v1", "invitation_accepted")
    rule = engine.stats().rules[0]
    assert (rule.shown, rule.accepted, rule.dismissed) == (1, 1, 0)
    assert rule.variants[invitation.variant].accepted == 1
    assert rule.acceptance_rate == 1.0


def test_a_chat_started_event_counts_a_chat(make_engine: MakeEngine, clock: FakeClock) -> None:
    engine = make_engine(CHATS)
    view(engine)
    assert chats(engine) == 0
    send(engine, "v1", "chat_started")
    send(engine, "v1", "chat_ended")
    clock.advance(1)
    assert chats(engine) == 1


def test_invitation_accepted_then_chat_started_is_one_chat(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(CHATS + ALWAYS)
    view(engine)
    send(engine, "v1", "invitation_accepted")
    send(engine, "v1", "chat_started")
    send(engine, "v1", "chat_ended")
    clock.advance(1)
    assert chats(engine) == 1


def test_invitation_accepted_alone_starts_a_chat(make_engine: MakeEngine) -> None:
    engine = make_engine(CHATS + ALWAYS)
    view(engine)
    assert send(engine, "v1", "invitation_accepted").chat == "in_chat"
    decision = view(engine)
    assert decision.chat == "in_chat"
    assert decision.invitation is None


def test_a_second_chat_after_the_first_ended_counts_again(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(CHATS)
    view(engine)
    for _ in range(2):
        send(engine, "v1", "invitation_accepted")
        send(engine, "v1", "chat_started")
        send(engine, "v1", "chat_ended")
    clock.advance(1)
    assert chats(engine) == 2


def test_visitor_chats_is_a_condition(make_engine: MakeEngine, clock: FakeClock) -> None:
    engine = make_engine(
        LOOSE + 'rule first_timer { on page_view when visitor.chats == 0 say "Hi" }'
    )
    assert view(engine).invitation is not None
    send(engine, "v1", "chat_started")
    send(engine, "v1", "chat_ended")
    clock.advance(1)
    assert view(engine).invitation is None


# --- open chats -------------------------------------------------------------------------------


def test_a_visitor_in_an_open_chat_is_never_invited(engine: Engine, clock: FakeClock) -> None:
    view(engine)
    assert send(engine, "v1", "chat_started").chat == "in_chat"
    for _ in range(3):
        clock.advance(5 * MINUTE)
        for decision in (view(engine), tick(engine), send(engine, "v1", "exit_intent")):
            assert decision.invitation is None
            assert decision.chat == "in_chat"
            assert decision.recheck_in is None


def test_an_open_chat_is_counted_once_per_evaluation(engine: Engine) -> None:
    view(engine)
    send(engine, "v1", "chat_started")
    view(engine)
    tick(engine)
    stats = engine.stats()
    assert stats.suppressed == {"in_chat": 2}
    assert stats.rules[0].suppressed == {}


def test_chat_ended_closes_the_chat(engine: Engine, clock: FakeClock) -> None:
    view(engine)
    send(engine, "v1", "chat_started")
    decision = send(engine, "v1", "chat_ended")
    assert decision.chat == "available"
    clock.advance(1)  # the policy's quiet 1s after chat
    decision = view(engine)
    assert decision.chat == "available"
    assert decision.invitation is not None


def test_an_open_chat_ends_with_its_session(engine: Engine, clock: FakeClock) -> None:
    view(engine)
    send(engine, "v1", "chat_started")
    clock.advance(30 * MINUTE + 1)
    decision = view(engine)
    assert decision.chat == "available"


def test_an_open_chat_ends_when_a_new_explicit_session_starts(engine: Engine) -> None:
    view(engine, session="s1")
    send(engine, "v1", "chat_started", session="s1")
    assert view(engine, session="s1").chat == "in_chat"
    assert view(engine, session="s2").chat == "available"


def test_an_open_chat_survives_activity_within_the_session(
    engine: Engine, clock: FakeClock
) -> None:
    view(engine)
    send(engine, "v1", "chat_started")
    for _ in range(4):
        clock.advance(20 * MINUTE)
        assert view(engine).chat == "in_chat"


def test_an_open_chat_is_per_visitor(engine: Engine) -> None:
    view(engine, "v1")
    send(engine, "v1", "chat_started")
    decision = view(engine, "v2")
    assert decision.chat == "available"
    assert decision.invitation is not None


# --- blocked visitors ---------------------------------------------------------------------------


def test_a_blocked_visitor_is_never_invited(engine: Engine, clock: FakeClock) -> None:
    engine.block("v1", "abusive")
    for decision in (view(engine), tick(engine), send(engine, "v1", "exit_intent")):
        assert decision.invitation is None
        assert decision.chat == "blocked"
        assert decision.recheck_in is None
    assert view(engine, "v2").invitation is not None
    assert engine.stats().suppressed == {"blocked": 3}


def test_a_blocked_visitors_outcome_events_say_blocked(engine: Engine) -> None:
    view(engine)
    engine.block("v1", "abusive")
    decision = send(engine, "v1", "invitation_dismissed")
    assert decision.chat == "blocked"
    assert decision.invitation is None


def test_no_policy_can_invite_a_blocked_visitor_or_one_in_chat(make_engine: MakeEngine) -> None:
    engine = make_engine(
        "policy {\n    at most 1000 invitations per session\n    quiet 1s after dismiss\n"
        "    quiet 1s after chat\n    only when visitor.visits >= 1\n}\n" + ALWAYS
    )
    engine.block("v1", "spam")
    assert view(engine, "v1").chat == "blocked"
    view(engine, "v2")
    send(engine, "v2", "chat_started")
    assert view(engine, "v2").invitation is None


def test_a_block_expires_exactly_at_until(engine: Engine, clock: FakeClock) -> None:
    until = clock.now + HOUR
    engine.block("v1", "cooling off", until=until)
    decision = view(engine)
    assert decision.chat == "blocked"
    assert decision.invitation is None
    assert decision.recheck_in == HOUR
    assert "v1" in engine.blocks()
    clock.now = until - 1
    assert tick(engine).chat == "blocked"
    clock.now = until
    decision = tick(engine)
    assert decision.chat == "available"
    assert decision.invitation is not None
    assert "v1" not in engine.blocks()


def test_a_block_until_a_datetime(engine: Engine, clock: FakeClock) -> None:
    until = datetime.fromtimestamp(clock.now + 2 * HOUR, UTC)
    engine.block("v1", "cooling off", until=until)
    assert view(engine).recheck_in == 2 * HOUR
    clock.advance(2 * HOUR)
    assert view(engine).chat == "available"


def test_unblock_lets_the_visitor_be_invited_again(engine: Engine) -> None:
    engine.block("v1", "mistake")
    assert view(engine).chat == "blocked"
    assert engine.unblock("v1") is True
    assert engine.unblock("v1") is False
    decision = view(engine)
    assert decision.chat == "available"
    assert decision.invitation is not None


def test_unblocking_an_unknown_visitor_says_so(engine: Engine) -> None:
    assert engine.unblock("nobody") is False


def test_events_are_recorded_while_blocked(make_engine: MakeEngine) -> None:
    engine = make_engine(LOOSE + 'rule third { when session.pageviews >= 3 say "Hi" }')
    engine.block("v1", "temporary")
    for _ in range(3):
        view(engine)
    engine.unblock("v1")
    assert tick(engine).invitation is not None


def test_blocks_lists_active_blocks_with_their_reason(engine: Engine, clock: FakeClock) -> None:
    engine.block("v1", "abusive")
    engine.block("v2", "cooling off", until=clock.now + 10)
    blocks = engine.blocks()
    assert {v: b.reason for v, b in blocks.items()} == {"v1": "abusive", "v2": "cooling off"}
    clock.advance(10)
    assert set(engine.blocks()) == {"v1"}


# --- recheck_in -------------------------------------------------------------------------------


def test_recheck_in_is_null_while_blocked_without_expiry(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(LOOSE + 'rule r { when page.dwell >= 30s say "Hi" }')
    view(engine)
    engine.block("v1", "abusive")
    clock.advance(40)
    assert tick(engine).recheck_in is None


def test_recheck_in_while_blocked_with_expiry_waits_for_the_later_of_both(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(LOOSE + 'rule r { when page.dwell >= 30m say "Hi" }')
    engine.block("v1", "short", until=clock.now + 60)
    assert view(engine).recheck_in == 30 * MINUTE
    engine.block("v2", "long", until=clock.now + 2 * HOUR)
    assert view(engine, "v2").recheck_in == 2 * HOUR


def test_recheck_in_is_null_in_an_open_chat(make_engine: MakeEngine) -> None:
    engine = make_engine(LOOSE + 'rule r { when page.dwell >= 30s say "Hi" }')
    view(engine)
    assert send(engine, "v1", "chat_started").recheck_in is None
    assert tick(engine).recheck_in is None


def test_recheck_in_after_chat_ended_waits_for_the_quiet_period(
    make_engine: MakeEngine,
) -> None:
    engine = make_engine('rule r { when page.dwell >= 30s say "Hi" }')
    view(engine)
    send(engine, "v1", "chat_started")
    assert send(engine, "v1", "chat_ended").recheck_in == DAY
