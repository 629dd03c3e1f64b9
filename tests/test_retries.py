"""Retried events: an event `id` seen before for a visitor returns the first decision
and changes nothing (docs/contract.md, section 1): no page view, invitation, outcome or
statistic is counted twice. Ids are per visitor.
"""

from __future__ import annotations

from typing import Any

from conftest import FakeClock, MakeStore
from events import MakeEngine, send
from politely import Decision, Engine

PAGEVIEWS = (
    "policy { at most 1000 invitations per visitor quiet 1s after chat }\n"
    'rule probe { on ask when visitor.visits >= 1 say "{session.pageviews}/{visitor.chats}" }\n'
)
PROBE = PAGEVIEWS.split("\n", 1)[1]
TWO_PER_SESSION = (
    "policy { at most 2 invitations per session }\n"
    'rule r { on page_view when session.pageviews >= 1 say "A" or "B" or "C" }\n'
)


def view(engine: Engine, event_id: str | None, visitor: str = "v1", **fields: Any) -> Decision:
    fields.setdefault("url", "/")
    if event_id is not None:
        fields["id"] = event_id
    return send(engine, visitor, "page_view", **fields)


def counters(engine: Engine, visitor: str = "v1") -> tuple[int, int]:
    """(session.pageviews, visitor.chats), read by a probe rule without an event id."""
    invitation = send(engine, visitor, "ask").invitation
    assert invitation is not None
    pageviews, chats = invitation.message.split("/")
    return int(pageviews), int(chats)


def test_a_retried_event_returns_the_first_decision(make_engine: MakeEngine) -> None:
    engine = make_engine(TWO_PER_SESSION)
    first = view(engine, "e1")
    assert first.invitation is not None
    for _ in range(3):
        assert view(engine, "e1") == first


def test_a_retried_page_view_is_not_counted_again(make_engine: MakeEngine) -> None:
    engine = make_engine(PAGEVIEWS)
    for _ in range(3):
        view(engine, "e1")
    assert counters(engine) == (1, 0)
    view(engine, "e2")
    assert counters(engine) == (2, 0)


def test_a_retried_invitation_is_not_recorded_again(make_engine: MakeEngine) -> None:
    engine = make_engine(TWO_PER_SESSION)
    first = view(engine, "e1").invitation
    assert first is not None
    for _ in range(3):
        retried = view(engine, "e1").invitation
        assert retried is not None
        assert retried.id == first.id
    second = view(engine, "e2").invitation
    assert second is not None  # the session cap of 2 saw one invitation, not four
    assert second.id != first.id
    assert view(engine, "e3").invitation is None


def test_a_retry_does_not_advance_the_variant(make_engine: MakeEngine) -> None:
    engine = make_engine(TWO_PER_SESSION)
    first = view(engine, "e1").invitation
    view(engine, "e1")
    second = view(engine, "e2").invitation
    assert first is not None
    assert second is not None
    assert second.variant == (first.variant + 1) % 3


def test_a_retry_changes_no_statistics(make_engine: MakeEngine) -> None:
    engine = make_engine(TWO_PER_SESSION)
    view(engine, "e1")
    view(engine, "e2")
    view(engine, "e3")  # capped: counts a visitor_cap suppression
    before = engine.stats()
    for event_id in ("e1", "e2", "e3"):
        view(engine, event_id)
    assert engine.stats() == before
    rule = before.rules[0]
    assert (rule.shown, rule.suppressed) == (2, {"visitor_cap": 1})


def test_a_retried_dismissal_is_counted_once(make_engine: MakeEngine) -> None:
    engine = make_engine(TWO_PER_SESSION)
    view(engine, "e1")
    for _ in range(3):
        send(engine, "v1", "invitation_dismissed", id="d1")
    assert engine.stats().rules[0].dismissed == 1


def test_a_retried_chat_start_does_not_open_a_second_chat(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(PAGEVIEWS)
    view(engine, "e1")
    assert send(engine, "v1", "chat_started", id="c1").chat == "in_chat"
    assert send(engine, "v1", "chat_ended", id="c2").chat == "available"
    retried = send(engine, "v1", "chat_started", id="c1")
    assert retried.chat == "in_chat"  # the first decision, as it was
    assert view(engine, "e2").chat == "available"  # but no chat was opened again
    clock.advance(1)  # past the policy's quiet 1s after chat
    assert counters(engine) == (2, 1)


def test_a_retry_later_returns_the_first_decision_with_recheck_in_counted_from_now(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    """Same invitation and chat; recheck_in still points at the same moment, so a
    site that retried late is never late (docs/contract.md, section 4)."""
    engine = make_engine(
        "policy { at most 1000 invitations per visitor }\n"
        'rule r { when page.dwell >= 60s say "Hi" }\n'
    )
    first = view(engine, "e1")
    assert first.recheck_in == 60
    clock.advance(45)
    again = view(engine, "e1")
    assert again.model_copy(update={"recheck_in": 60}) == first
    assert again.recheck_in == 15
    assert send(engine, "v1", "tick").recheck_in == 15  # dwell was not reset by the retry
    clock.advance(30)
    assert view(engine, "e1").recheck_in == 1  # past the moment: ask at once


def test_a_retry_with_a_different_body_still_returns_the_first_decision(
    make_engine: MakeEngine,
) -> None:
    engine = make_engine(PAGEVIEWS)
    first = view(engine, "e1", url="/a")
    again = view(engine, "e1", url="/b", attributes={"plan": "pro"})
    assert again == first
    assert counters(engine) == (1, 0)


def test_a_retry_after_other_events_is_still_recognised(make_engine: MakeEngine) -> None:
    engine = make_engine(PAGEVIEWS)
    view(engine, "e1")
    for i in range(2, 6):
        view(engine, f"e{i}")
    view(engine, "e1")
    assert counters(engine) == (5, 0)


def test_a_retried_tick_returns_the_first_decision(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(
        "policy { at most 1000 invitations per visitor }\n"
        'rule r { when page.dwell >= 10s say "Hi" }\n'
    )
    view(engine, None)
    clock.advance(10)
    first = send(engine, "v1", "tick", id="t1")
    assert first.invitation is not None
    assert send(engine, "v1", "tick", id="t1") == first
    assert engine.stats().rules[0].shown == 1


def test_different_visitors_may_reuse_an_id(make_engine: MakeEngine) -> None:
    engine = make_engine(TWO_PER_SESSION + PROBE)
    first = view(engine, "same", "v1").invitation
    second = view(engine, "same", "v2").invitation
    assert first is not None
    assert second is not None
    assert first.id != second.id
    assert counters(engine, "v2") == (1, 0)
    assert engine.stats().rules[0].shown == 2


def test_events_without_an_id_are_never_deduplicated(make_engine: MakeEngine) -> None:
    engine = make_engine(PAGEVIEWS)
    for _ in range(3):
        view(engine, None)
    assert counters(engine) == (3, 0)


def test_a_retry_after_many_ticks_is_still_recognised(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(PAGEVIEWS)
    view(engine, "e1")
    for i in range(40):  # a site ticking every 5 s, each tick with its own id
        clock.advance(5)
        send(engine, "v1", "tick", id=f"t{i}")
    view(engine, "e1")  # a page view retried after 200 s of network trouble
    assert counters(engine) == (1, 0)


def test_a_retry_racing_its_original_gets_the_first_decision_and_records_nothing(
    make_engine: MakeEngine, make_store: MakeStore
) -> None:
    """Both requests load before either commits: the loser's commit conflicts, and its
    reload finds the id, so it answers with the original's decision."""
    from racing import Racing, run_concurrently

    engine = make_engine(
        "policy { at most 1000 invitations per visitor }\n"
        'rule r { on page_view when session.pageviews >= 1 say "Hi" }\n',
        store=Racing(make_store(), 2),
    )
    event = {"visitor": "v1", "event": "page_view", "url": "/", "id": "e1"}
    first, second = run_concurrently(engine, [event, event], 2)
    assert first.invitation is not None
    assert second == first
    state = engine.visitor_state("v1")
    assert state is not None
    assert state.log is not None
    assert state.log.ever == 1
    assert state.pageviews == 1
    assert sum(r.shown for r in engine.stats().rules) == 1


def test_a_retry_a_fraction_of_a_second_late_is_never_told_a_later_moment(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(
        "policy { at most 1000 invitations per visitor }\n"
        'rule r { when page.dwell >= 10s say "Hi" }\n'
    )
    assert view(engine, "e1").recheck_in == 10  # due at now + 10
    clock.advance(2.5)
    assert view(engine, "e1").recheck_in == 7  # at now + 7 = 9.5 s after the first: early, not late
