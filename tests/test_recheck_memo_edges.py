"""Edges of `RecheckMemo` (src/politely/recheck.py) that tests/test_recheck_memo.py
does not reach: each is a situation where reusing a recheck could differ from
recomputing it, built by hand, checked both on the memo itself and on a whole
engine against one that keeps nothing.
"""

from __future__ import annotations

from typing import Any

from politely import Engine, Event, check_sources, compile_rules
from politely.recheck import RecheckMemo, first_ticks
from politely.state import AgentStatus, InvitationLog, Snapshot, VisitorState

O = 1_767_607_200.0  # Monday 2026-01-05 10:00:00 UTC: the schedule below opens

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
    s = _on_page(O - 19.5)
    at = O - 15.3
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
        engine.set_agents(online=1, available=0, at=O - 30)
        got = []
        for event, t in (("page_view", O - 19.5), ("tick", O - 15.3), ("tick", O - 14.9)):
            decision = engine.evaluate(Event(visitor="v", event=event, url="/", at=t))
            got.append(decision.recheck_in)
        told = engine.evaluate(Event(visitor="v", event="tick", at=O - 14.9 + got[-1]))
        answers.append((got, told.invitation.rule if told.invitation else None))
    assert answers[0] == answers[1] == ([30, 30, 15], "short_window")
