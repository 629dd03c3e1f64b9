"""`recheck_in` (docs/contract.md, section 4): when time alone could next make a rule fire.

The unit tests take each source of time in turn (dwell, session duration,
invitations, caps, cooldowns, quiet periods, sitewide caps, agent status going
stale, schedules with zones and daylight saving, block expiry) and check the
answer against a site that ticks every second: the first second at which such
a site is invited is exactly the second `recheck_in` named.

The property test at the end generates rule sets and traffic and replays them
on two sites: one ticks every second, the other only when told. They must see
the same invitations at the same seconds, and the told site must never be told
a second later than the first invitation the every-second site got. A new agent
status and a block or unblock are news, not the passage of time (docs/semantics.md
section 7): the told site asks again for the visitors they concern when it
reports them, as a website's backend would. The agent status is also renewed
every 30 s between changes, as a chat platform does; a renewal is not news, and
the told site does not ask again for it: the recheck assumes the status holds.
"""

from __future__ import annotations

import functools
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from conftest import T0, FakeClock, examples
from events import DAY, HOUR, MINUTE
from politely import Decision, Engine, Event, check_sources, compile_rules
from politely.recheck import LOOK_AHEAD
from politely.ruleset import RuleSet
from politely.schedule import CompiledSchedule, never_together

LOOSE = "policy { at most 100 invitations per session }\n"


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Visit:
    """An engine on a fake clock, driven in seconds after `start`."""

    def __init__(self, source: str, clock: FakeClock, start: float = T0) -> None:
        self.clock = clock
        self.start = start
        clock.now = start
        self.engine = Engine.from_source(source, clock=clock, trust_event_time=False)

    def at(self, second: float) -> Visit:
        self.clock.now = self.start + second
        return self

    def send(
        self, second: float, event: str = "tick", visitor: str = "v", **fields: Any
    ) -> Decision:
        self.at(second)
        return self.engine.evaluate({"visitor": visitor, "event": event, **fields})

    def view(self, second: float, url: str = "/", visitor: str = "v", **fields: Any) -> Decision:
        return self.send(second, "page_view", visitor, url=url, **fields)

    def first_invitation(self, after: int, until: int, visitor: str = "v") -> int | None:
        """Tick every second after `after` up to `until`; the first second invited."""
        for second in range(after + 1, until + 1):
            if self.send(second, visitor=visitor).invitation is not None:
                return second
        return None

    def invited_exactly_at(self, second: int, visitor: str = "v") -> bool:
        """Not invited by a tick one second before, invited by a tick at `second`."""
        before = self.send(second - 1, visitor=visitor)
        return (
            before.invitation is None and self.send(second, visitor=visitor).invitation is not None
        )


def rule(condition: str, clauses: str = "", name: str = "r", on: str = "") -> str:
    return f'rule {name} {{ {on} when {condition} say "Hi" {clauses} }}\n'


# --- page.dwell -------------------------------------------------------------------------


def test_dwell_at_least_is_rechecked_when_the_threshold_is_reached(clock: FakeClock) -> None:
    site = Visit(rule("page.dwell >= 30s"), clock)
    assert site.view(0).recheck_in == 30
    assert site.send(10).recheck_in == 20
    assert site.first_invitation(10, 60) == 30


def test_dwell_greater_than_is_rechecked_one_second_after_the_threshold(clock: FakeClock) -> None:
    site = Visit(rule("page.dwell > 30s"), clock)
    assert site.view(0).recheck_in == 31
    assert site.first_invitation(0, 60) == 31


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("page.dwell < 10s and session.duration >= 20s", 5),
        ("page.dwell < 5s and session.duration >= 20s", None),
        ("page.dwell <= 5s and session.duration >= 20s", 5),
    ],
)
def test_dwell_below_a_bound_is_rechecked_only_while_it_still_can_hold(
    clock: FakeClock, condition: str, expected: int | None
) -> None:
    # The session starts at 0 with a custom event; the page is viewed at 15.
    site = Visit(rule(condition), clock)
    site.send(0, "signup")
    assert site.view(15).recheck_in == expected
    found = site.first_invitation(15, 40)
    assert found == (15 + expected if expected is not None else None)


def test_dwell_equal_is_rechecked_at_that_exact_second_and_never_after(clock: FakeClock) -> None:
    site = Visit(rule("page.dwell == 45s"), clock)
    assert site.view(0).recheck_in == 45
    assert site.send(10).recheck_in == 35
    assert site.first_invitation(10, 60) == 45
    other = Visit(rule("page.dwell == 45s"), FakeClock())
    other.view(0)
    assert other.send(46).recheck_in is None


def test_dwell_not_equal_skips_exactly_the_excluded_second(clock: FakeClock) -> None:
    site = Visit(rule("session.duration >= 10s and page.dwell != 10s"), clock)
    assert site.view(0).recheck_in == 11
    assert site.first_invitation(0, 30) == 11


def test_not_of_a_dwell_bound_is_its_complement(clock: FakeClock) -> None:
    site = Visit(rule("not page.dwell < 30s"), clock)
    assert site.view(0).recheck_in == 30
    assert site.first_invitation(0, 40) == 30


# --- session.duration and invitations ---------------------------------------------------


def test_session_duration_counts_from_the_session_start_not_the_page(clock: FakeClock) -> None:
    site = Visit(rule("session.duration >= 2m"), clock)
    assert site.view(0).recheck_in == 120
    assert site.view(60, "/pricing").recheck_in == 60
    assert site.first_invitation(60, 200) == 120


@pytest.mark.parametrize(("op", "wait"), [(">=", 300), (">", 301)])
def test_invitations_last_is_rechecked_from_the_invitation_just_made(
    clock: FakeClock, op: str, wait: int
) -> None:
    source = (
        LOOSE
        + rule("invitations.session == 0 and page.dwell >= 10s", "priority 1", name="hello")
        + rule(f"invitations.session >= 1 and invitations.last {op} 5m", name="again")
    )
    site = Visit(source, clock)
    assert site.view(0).recheck_in == 10
    decision = site.send(10)
    assert decision.invitation is not None
    assert decision.invitation.rule == "hello"
    assert decision.recheck_in == wait
    assert site.first_invitation(10, 400) == 10 + wait


def test_invitations_last_before_any_invitation_is_infinite_so_a_bound_never_holds(
    clock: FakeClock,
) -> None:
    site = Visit(rule("invitations.last < 1m and page.dwell >= 5s"), clock)
    assert site.view(0).recheck_in is None


def test_invitations_today_is_rechecked_when_the_oldest_leaves_the_last_24h(
    clock: FakeClock,
) -> None:
    site = Visit(LOOSE + rule("invitations.today < 2 and page.dwell >= 1s", "cooldown 1h"), clock)
    assert site.view(0).recheck_in == 1
    assert site.send(1).invitation is not None
    second = site.send(1 + HOUR)
    assert second.invitation is not None
    assert second.recheck_in == DAY - HOUR
    assert site.invited_exactly_at(1 + DAY)


@pytest.mark.parametrize(
    ("condition", "wait"),
    [
        ("invitations.today < 2", DAY - HOUR),  # the first of two leaves the last 24h
        ("invitations.today == 1", DAY - HOUR),
        ("invitations.today == 0", DAY),  # ...and then the second
        ("not invitations.today >= 1", DAY),
        ("invitations.today in [0]", DAY),
        ("invitations.today not in [2]", DAY - HOUR),
    ],
)
def test_invitations_today_counts_down_as_each_invitation_ages_out(
    clock: FakeClock, condition: str, wait: int
) -> None:
    source = (
        LOOSE
        + rule("page.dwell >= 1s", "priority 9 cooldown 1h at most 2 per visitor", name="seed")
        + rule(f"invitations.session >= 2 and {condition}", name="probe")
    )
    site = Visit(source, clock)
    site.view(0)
    assert site.send(1).invitation is not None
    second = site.send(1 + HOUR)
    assert second.invitation is not None
    assert second.recheck_in == wait
    assert site.invited_exactly_at(1 + HOUR + wait)


# --- caps, cooldowns and quiet periods ---------------------------------------------------


def test_rule_rolling_cap_is_rechecked_when_its_oldest_invitation_ages_out(
    clock: FakeClock,
) -> None:
    site = Visit(LOOSE + rule("page.dwell >= 5s", "at most 2 per 1h"), clock)
    site.view(0)
    first = site.send(5)
    assert first.invitation is not None
    assert first.recheck_in == 1  # the cap still allows one more
    second = site.send(6)
    assert second.invitation is not None
    assert second.recheck_in == HOUR - 1
    assert site.invited_exactly_at(5 + HOUR)


def test_policy_default_cap_of_one_per_10m_is_rechecked_after_10m(clock: FakeClock) -> None:
    site = Visit(rule("page.dwell >= 5s"), clock)
    site.view(0)
    decision = site.send(5)
    assert decision.invitation is not None
    assert decision.recheck_in == 600
    assert site.invited_exactly_at(605)


def test_policy_rolling_cap_is_rechecked_when_the_oldest_invitation_ages_out(
    clock: FakeClock,
) -> None:
    source = "policy { at most 2 invitations per 30m }\n" + rule("page.dwell >= 5s")
    site = Visit(source, clock)
    site.view(0)
    assert site.send(5).recheck_in == 1
    decision = site.send(6)
    assert decision.invitation is not None
    assert decision.recheck_in == 30 * MINUTE - 1
    assert site.invited_exactly_at(5 + 30 * MINUTE)


def test_cooldown_is_rechecked_when_it_ends(clock: FakeClock) -> None:
    site = Visit(LOOSE + rule("page.dwell >= 5s", "cooldown 20m"), clock)
    site.view(0)
    assert site.send(5).recheck_in == 20 * MINUTE
    assert site.invited_exactly_at(5 + 20 * MINUTE)


def test_quiet_after_dismiss_is_rechecked_when_it_ends(clock: FakeClock) -> None:
    policy = "policy { at most 100 invitations per session\n quiet 2h after dismiss }\n"
    site = Visit(policy + rule("page.dwell >= 5s", "cooldown 1m"), clock)
    site.view(0)
    assert site.send(5).invitation is not None
    assert site.send(20, "invitation_dismissed").recheck_in == 2 * HOUR
    assert site.send(30).recheck_in == 2 * HOUR - 10
    assert site.invited_exactly_at(20 + 2 * HOUR)


def test_default_quiet_after_dismiss_is_a_day(clock: FakeClock) -> None:
    site = Visit(LOOSE + rule("page.dwell >= 5s"), clock)
    site.view(0)
    site.send(5)
    assert site.send(20, "invitation_dismissed").recheck_in == DAY


def test_quiet_after_chat_is_rechecked_from_the_end_of_the_chat(clock: FakeClock) -> None:
    policy = "policy { at most 100 invitations per session\n quiet 1h after chat }\n"
    site = Visit(policy + rule("page.dwell >= 5s", "cooldown 1m"), clock)
    site.view(0)
    assert site.send(5).invitation is not None
    started = site.send(10, "chat_started")
    assert (started.chat, started.recheck_in) == ("in_chat", None)
    assert site.send(30).recheck_in is None
    assert site.send(100, "chat_ended").recheck_in == HOUR
    assert site.invited_exactly_at(100 + HOUR)


def test_sitewide_cap_is_rechecked_when_the_site_may_invite_again(clock: FakeClock) -> None:
    source = "policy { at most 1 invitation per 1m sitewide }\n" + rule("page.dwell >= 5s")
    site = Visit(source, clock)
    site.view(0, visitor="a")
    assert site.send(5, visitor="a").invitation is not None
    assert site.view(10, visitor="b").recheck_in == 55
    assert site.invited_exactly_at(65, visitor="b")


# --- agents ---------------------------------------------------------------------------------
#
# Agent status is news, not time: the recheck assumes the last status holds
# (a site renews it), and while only an agent or queue condition holds a rule
# back, recheck_in is at most the engine's agent_recheck (30 s by default).


def renewing(site: Visit, until: int, every: int = 30, **status: Any) -> None:
    """Report the same agent status every `every` seconds, as a chat platform does."""
    for second in range(0, until + 1, every):
        site.at(second).engine.set_agents(**status)


def test_the_recheck_assumes_the_agent_status_is_renewed(clock: FakeClock) -> None:
    """Renewed every 30 s, a status never goes stale: the rule fires at 3 minutes."""
    source = "policy { only when agents.available > 0 }\n" + rule("page.dwell >= 3m")
    site = Visit(source, clock)
    site.engine.set_agents(online=1, available=1)
    assert site.view(0).recheck_in == 180
    renewing(site, 180, online=1, available=1)
    assert site.send(180).invitation is not None


@pytest.mark.parametrize(("dwell", "expected"), [("10s", 30), ("3m", 180)])
def test_a_rule_held_back_only_by_agents_is_rechecked_within_agent_recheck(
    clock: FakeClock, dwell: str, expected: int
) -> None:
    """No agent free: ask again after 30 s, or when the rule could first fire if later."""
    source = "policy { only when agents.available > 0 }\n" + rule(f"page.dwell >= {dwell}")
    site = Visit(source, clock)
    site.engine.set_agents(online=1, available=0)
    assert site.view(0).recheck_in == expected


def test_an_agent_freeing_up_is_seen_at_the_next_agent_recheck(clock: FakeClock) -> None:
    source = "policy { only when agents.available > 0 }\n" + rule("page.dwell >= 10s")
    site = Visit(source, clock)
    site.engine.set_agents(online=1, available=0)
    assert site.view(0).recheck_in == 30
    assert site.send(30).recheck_in == 30  # still nobody free
    site.at(45).engine.set_agents(online=1, available=1)
    assert site.send(60).invitation is not None


def test_agent_recheck_is_an_engine_option(clock: FakeClock) -> None:
    source = "policy { only when agents.available > 0 }\n" + rule("page.dwell >= 10s")
    engine = Engine.from_source(source, clock=clock, trust_event_time=False, agent_recheck=5)
    engine.set_agents(online=1, available=0)
    assert engine.evaluate({"visitor": "v", "event": "page_view", "url": "/"}).recheck_in == 10


@pytest.mark.parametrize(
    ("condition", "status"),
    [
        ("not agents.available > 0 and page.dwell >= 10s", {"online": 1, "available": 1}),
        ("agents.available > 0 and page.dwell >= 10s", {"online": 1, "available": 0}),
        ("queue.wait < 1m and page.dwell >= 10s", {"online": 1, "available": 1, "queue_wait": 90}),
    ],
)
def test_an_agent_or_queue_test_in_a_rule_gives_agent_recheck(
    clock: FakeClock, condition: str, status: dict[str, Any]
) -> None:
    site = Visit(rule(condition), clock)
    site.engine.set_agents(**status)
    assert site.view(0).recheck_in == 30


def test_policy_never_when_on_the_queue_gives_agent_recheck(clock: FakeClock) -> None:
    source = "policy { never when queue.wait >= 1m }\n" + rule("page.dwell >= 10s")
    site = Visit(source, clock)
    site.engine.set_agents(online=1, available=1, queue_length=3, queue_wait=90)
    assert site.view(0).recheck_in == 30


def test_a_stale_status_still_counts_at_evaluation(clock: FakeClock) -> None:
    """Not renewed, the status is unknown after 2 minutes: no invitation on it, and
    the site is asked to come back within agent_recheck."""
    site = Visit(rule("agents.available > 0 and page.dwell >= 3m"), clock)
    site.engine.set_agents(online=1, available=1)
    assert site.view(0).recheck_in == 180
    decision = site.send(180)
    assert decision.invitation is None
    assert decision.recheck_in == 30


def test_unknown_agents_never_make_a_condition_on_agents_hold(clock: FakeClock) -> None:
    site = Visit(rule("agents.available > 0 and page.dwell >= 5s"), clock)
    decision = site.view(0)
    assert decision.invitation is None
    assert decision.recheck_in == 30  # an agent may come online: ask again soon
    assert site.send(30).invitation is None


def test_no_agent_condition_means_no_agent_recheck(clock: FakeClock) -> None:
    site = Visit(rule("page.dwell >= 3m"), clock)
    assert site.view(0).recheck_in == 180


# --- schedules --------------------------------------------------------------------------------


def test_rule_schedule_is_rechecked_when_it_opens(clock: FakeClock) -> None:
    site = Visit(rule("page.dwell >= 10s", "during weekdays 11:00-12:00"), clock)
    assert site.view(0).recheck_in == HOUR  # T0 is Monday 10:00 UTC
    assert site.invited_exactly_at(HOUR)


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ('daily 12:00-13:00 in "Europe/Berlin"', HOUR),  # UTC+1 in January
        ('daily 16:00-17:00 in "Asia/Kolkata"', 30 * MINUTE),  # UTC+5:30
        ('weekdays 05:30-06:00 in "America/New_York"', 30 * MINUTE),  # UTC-5
        ("daily 22:00-02:00", 12 * HOUR),
    ],
)
def test_policy_schedule_in_a_zone_is_rechecked_when_it_opens(
    clock: FakeClock, schedule: str, expected: int
) -> None:
    site = Visit(f"policy {{ during {schedule} }}\n" + rule("page.dwell >= 10s"), clock)
    assert site.view(0).recheck_in == expected
    assert site.invited_exactly_at(expected)


def test_rule_and_policy_schedules_must_both_be_open(clock: FakeClock) -> None:
    source = "policy { during tue 10:00-11:00 }\n"
    source += rule("page.dwell >= 2s", "during mon,tue 10:30-12:00")
    site = Visit(source, clock)
    assert site.view(0).recheck_in == DAY + 30 * MINUTE  # Tuesday 10:30


def test_rule_and_policy_schedules_that_never_overlap_are_never_rechecked(
    clock: FakeClock,
) -> None:
    source = "policy { during sat 10:00-11:00 }\n"
    source += rule("page.dwell >= 2s", "during mon-fri 10:30-12:00")
    assert Visit(source, clock).view(0).recheck_in is None


def test_schedules_of_two_zones_that_never_overlap_are_asked_again_at_the_look_ahead(
    clock: FakeClock,
) -> None:
    """Of two zones, daylight saving could bring the windows together some week:
    not certain never, so the answer is the look-ahead's end (early, never late),
    not null."""
    source = 'policy { during sat 10:00-11:00 in "Europe/Berlin" }\n'
    source += rule("page.dwell >= 2s", 'during mon-fri 10:30-12:00 in "America/New_York"')
    assert Visit(source, clock).view(0).recheck_in == LOOK_AHEAD


def test_explain_gives_a_rule_past_the_look_ahead_the_look_ahead_as_recheck_in_does(
    clock: FakeClock,
) -> None:
    """`could_fire_in` is recheck_in for one rule: past the look-ahead it is the
    look-ahead (not null, which would say the rule can never fire)."""
    source = 'policy { during sat 10:00-11:00 in "Europe/Berlin" }\n'
    source += rule("page.dwell >= 2s", 'during mon-fri 10:30-12:00 in "America/New_York"')
    site = Visit(source, clock)
    site.view(0)
    (explained,) = site.engine.explain({"visitor": "v", "event": "tick"}).rules
    assert explained.could_fire_in == LOOK_AHEAD
    never = Visit(
        "policy { during sat 10:00-11:00 }\n" + rule("page.dwell >= 2s", "during mon 10:30-12:00"),
        clock,
    )
    never.view(0)
    (explained,) = never.engine.explain({"visitor": "v", "event": "tick"}).rules
    assert explained.could_fire_in is None  # one zone, no shared minute: truly never


_WINDOW = st.tuples(
    st.frozensets(st.integers(0, 6), min_size=1),
    st.integers(0, 24 * 60 - 1),
    st.integers(1, 24 * 60),
)


@settings(max_examples=examples(100), deadline=None)
@given(st.lists(_WINDOW, min_size=1, max_size=3), st.lists(_WINDOW, min_size=1, max_size=3))
@example([(frozenset({0}), 23 * 60, 60)], [(frozenset({1}), 0, 30)])  # Monday night, Tuesday
@example([(frozenset({6}), 22 * 60, 120)], [(frozenset({0}), 60, 90)])  # Sunday into Monday
def test_never_together_is_exactly_no_minute_of_the_week_open_in_both(
    first: list[tuple[frozenset[int], int, int]], second: list[tuple[frozenset[int], int, int]]
) -> None:
    """Against the definition: every minute of a week (UTC, no daylight saving),
    asked of both schedules' `is_open` (windows past midnight included)."""
    a, b = CompiledSchedule(tuple(first)), CompiledSchedule(tuple(second))
    monday = 1767571200  # 2026-01-05 00:00 UTC
    both = any(a.is_open(t) and b.is_open(t) for t in range(monday + 30, monday + 7 * DAY, MINUTE))
    assert never_together(a, b) == (not both)


@pytest.mark.parametrize(("viewed", "expected"), [(50, 10), (61, 2), (30, None), (119, None)])
def test_a_schedule_opening_must_fall_inside_the_dwell_window(
    clock: FakeClock, viewed: int, expected: int | None
) -> None:
    site = Visit(rule("page.dwell >= 2s and page.dwell < 20s", "during daily 10:01-10:02"), clock)
    assert site.view(viewed).recheck_in == expected


def test_schedule_over_a_weekend_is_rechecked_on_monday(clock: FakeClock) -> None:
    friday = epoch("2026-01-09T17:00:00Z")
    site = Visit(rule("page.dwell >= 10s", "during weekdays 09:00-10:00"), clock, friday)
    assert site.view(0).recheck_in == 2 * DAY + 16 * HOUR


def test_schedule_across_midnight_reopens_the_same_evening(clock: FakeClock) -> None:
    start = epoch("2026-01-06T01:59:50Z")
    site = Visit(rule("page.dwell >= 20s", "during daily 22:00-02:00"), clock, start)
    assert site.view(0).recheck_in == 20 * HOUR + 10


@pytest.mark.parametrize(
    ("start", "schedule", "expected"),
    [
        # Berlin springs forward on Sunday 2026-03-29: 09:00 is then 07:00 UTC, not 08:00.
        ("2026-03-28T17:00:00Z", 'daily 09:00-17:00 in "Europe/Berlin"', 14 * HOUR),
        # New York springs forward on Sunday 2026-03-08: 09:00 is then 13:00 UTC.
        ("2026-03-07T22:00:00Z", 'daily 09:00-17:00 in "America/New_York"', 15 * HOUR),
        # Berlin falls back on 2026-10-25: 02:00-03:00 happens twice, 00:00-02:00 UTC.
        ("2026-10-25T00:59:50Z", 'daily 02:00-03:00 in "Europe/Berlin"', 20),
        # ...and after the second pass, 02:00 next comes on Monday at 01:00 UTC.
        ("2026-10-25T01:59:50Z", 'daily 02:00-03:00 in "Europe/Berlin"', 23 * HOUR + 10),
        # Berlin's 02:30-03:30 on the spring-forward night opens at 03:00 CEST (01:00 UTC).
        ("2026-03-29T00:00:00Z", 'daily 02:30-03:30 in "Europe/Berlin"', HOUR),
    ],
)
def test_schedule_across_a_daylight_saving_change_follows_the_wall_clock(
    clock: FakeClock, start: str, schedule: str, expected: int
) -> None:
    site = Visit(rule("page.dwell >= 20s", f"during {schedule}"), clock, epoch(start))
    assert site.view(0).recheck_in == expected
    assert site.invited_exactly_at(expected)


# --- blocks ------------------------------------------------------------------------------


def test_block_with_an_expiry_is_rechecked_when_it_expires(clock: FakeClock) -> None:
    site = Visit(rule("page.dwell >= 10s"), clock)
    site.engine.block("v", "cooling off", until=T0 + 300)
    decision = site.view(0)
    assert (decision.chat, decision.recheck_in) == ("blocked", 300)
    assert site.send(299).chat == "blocked"
    after = site.send(300)
    assert after.chat == "available"
    assert after.invitation is not None


def test_block_expiry_before_the_condition_holds_leaves_the_condition_in_charge(
    clock: FakeClock,
) -> None:
    site = Visit(rule("page.dwell >= 10m"), clock)
    site.engine.block("v", "cooling off", until=T0 + 300)
    assert site.view(0).recheck_in == 600


# --- never by time alone -------------------------------------------------------------------


def test_a_condition_on_page_views_only_is_never_rechecked(clock: FakeClock) -> None:
    site = Visit(rule("session.pageviews >= 3"), clock)
    assert site.view(0).recheck_in is None
    assert site.view(10, "/a").recheck_in is None


def test_a_used_up_session_cap_is_never_rechecked(clock: FakeClock) -> None:
    site = Visit(LOOSE + rule("page.dwell >= 5s", "at most 1 per session"), clock)
    site.view(0)
    decision = site.send(5)
    assert decision.invitation is not None
    assert decision.recheck_in is None


def test_a_used_up_policy_session_cap_is_never_rechecked(clock: FakeClock) -> None:
    source = "policy { at most 1 invitation per session }\n" + rule("page.dwell >= 5s")
    site = Visit(source, clock)
    site.view(0)
    assert site.send(5).recheck_in is None


def test_a_blocked_visitor_without_expiry_is_never_rechecked(clock: FakeClock) -> None:
    site = Visit(rule("page.dwell >= 10s"), clock)
    site.engine.block("v", "abuse")
    decision = site.view(0)
    assert (decision.chat, decision.recheck_in) == ("blocked", None)


def test_a_visitor_in_a_chat_is_never_rechecked(clock: FakeClock) -> None:
    site = Visit(rule("page.dwell >= 10s"), clock)
    site.view(0)
    decision = site.send(2, "chat_started")
    assert (decision.chat, decision.recheck_in) == ("in_chat", None)
    assert site.view(5, "/a").recheck_in is None


def test_a_rule_that_does_not_listen_to_ticks_is_never_rechecked(clock: FakeClock) -> None:
    site = Visit(rule("page.dwell >= 10s", on="on page_view, help"), clock)
    assert site.view(0).recheck_in is None


def test_a_condition_on_visitor_attributes_only_is_never_rechecked(clock: FakeClock) -> None:
    site = Visit(rule('visitor.plan == "pro" and page.dwell >= 5s'), clock)
    assert site.view(0, attributes={"plan": "free"}).recheck_in is None
    assert site.view(10, attributes={"plan": "pro"}).recheck_in == 5


def test_a_tick_before_any_event_starts_no_session_and_is_never_rechecked(
    clock: FakeClock,
) -> None:
    site = Visit(rule("page.dwell >= 10s"), clock)
    assert site.send(0).recheck_in is None


# --- several rules ------------------------------------------------------------------------


def test_recheck_is_the_earliest_second_any_rule_could_fire(clock: FakeClock) -> None:
    source = (
        LOOSE
        + rule("page.dwell >= 30s", "priority 5", name="late")
        + rule("page.dwell >= 10s", name="early")
        + rule("page.dwell >= 5s", "at most 1 per visitor", name="spent")
    )
    site = Visit(source, clock)
    site.view(0)
    decision = site.send(5)
    assert decision.invitation is not None
    assert decision.invitation.rule == "spent"
    assert decision.recheck_in == 5  # `early` at 10s; `spent` is used up for good
    assert site.first_invitation(5, 40) == 10


# --- whole seconds, at least one -----------------------------------------------------------


def test_recheck_is_at_least_one_second_even_when_a_rule_could_fire_now(
    clock: FakeClock,
) -> None:
    site = Visit(rule("session.pageviews >= 1", on="on tick"), clock)
    assert site.view(0).recheck_in == 1
    assert site.send(1).invitation is not None


@pytest.mark.parametrize("condition", ["page.dwell >= 10s", "page.dwell > 10s"])
def test_recheck_is_rounded_up_to_whole_seconds(clock: FakeClock, condition: str) -> None:
    site = Visit(rule(condition), clock)
    site.view(0)
    decision = site.send(0.5)  # 9.5 s to go: 10 for >= and > alike (10.5 s > 10 s)
    assert decision.recheck_in == 10
    assert type(decision.recheck_in) is int


def test_recheck_of_a_page_viewed_between_seconds_is_never_early_by_a_fraction(
    clock: FakeClock,
) -> None:
    site = Visit(rule("page.dwell >= 10s"), clock)
    assert site.view(0.25).recheck_in == 10
    assert site.send(10.25).invitation is not None


# --- the property: ticking when told equals ticking every second ----------------------------

# Rule sets come from a small grammar; traffic is whole seconds over a few visitors.
OPS = [">=", ">", "<", "<=", "==", "!="]
PATHS = ["/", "/pricing", "/pricing/teams", "/products/lamp", "/checkout/payment"]
VISITORS = ["a", "b", "c"]
ZONES = [None, "Europe/Berlin", "Asia/Kolkata", "America/New_York"]
# Traffic starts at one of these moments: an ordinary Monday morning, a change of
# day, and a few minutes before daylight saving starts or ends.
STARTS = [
    T0,
    epoch("2026-01-09T23:56:00Z"),  # Friday night, UTC
    epoch("2026-03-29T00:56:00Z"),  # Berlin springs forward at 01:00 UTC
    epoch("2026-10-25T00:56:00Z"),  # Berlin falls back at 01:00 UTC
    epoch("2026-03-08T06:56:00Z"),  # New York springs forward at 07:00 UTC
]
TICK_EVERY_SECOND_AFTER = 240  # the sites keep ticking this long after the last event


def _atom_choices() -> list[st.SearchStrategy[str]]:
    op = st.sampled_from(OPS)
    return [
        st.builds("page.dwell {} {}".format, op, st.sampled_from(["3s", "5s", "10s", "20s", "1m"])),
        st.builds("page.dwell {} {}".format, op, st.sampled_from(["3s", "5s", "10s", "20s", "1m"])),
        st.builds(
            "page.dwell {} [{}, {}]".format,
            st.sampled_from(["in", "not in"]),
            st.sampled_from(["5s", "10s"]),
            st.sampled_from(["20s", "30s"]),
        ),
        st.builds("session.duration {} {}".format, op, st.sampled_from(["30s", "1m", "2m", "4m"])),
        st.builds("invitations.last {} {}".format, op, st.sampled_from(["5s", "20s", "1m"])),
        st.builds("invitations.today {} {}".format, op, st.integers(0, 2)),
        st.builds("invitations.session {} {}".format, op, st.integers(0, 2)),
        st.builds("session.pageviews {} {}".format, op, st.integers(1, 3)),
        st.sampled_from(
            [
                'page.path matches "/pricing*"',
                'page.path == "/"',
                'page.path in ["/", "/products/lamp"]',
                'page.url contains "x=1"',
                "page.scroll >= 50%",
            ]
        ),
        st.sampled_from(
            [
                "agents.available > 0",
                "agents.available == 0",
                "queue.wait < 1m",
                "queue.wait >= 30s",
                "agents.online >= 2",
            ]
        ),
        st.sampled_from(
            [
                'visitor.plan == "pro"',
                "visitor.vip",
                "visitor.cart >= 100",
                "visitor.returning",
                'event == "tick"',
                'event.kind == "x"',
            ]
        ),
    ]


# Cached: one strategy per depth. Built anew for each draw, Hypothesis validated the
# whole tree every time, which was most of the property's run time.
@functools.cache
def conditions(depth: int = 2) -> st.SearchStrategy[str]:
    atom = st.one_of(*_atom_choices())
    if depth == 0:
        return atom
    inner = conditions(depth - 1)
    return st.one_of(
        atom,
        atom,
        st.builds("({}) and ({})".format, inner, inner),
        st.builds("({}) or ({})".format, inner, inner),
        st.builds("not ({})".format, inner),
    )


@st.composite
def schedules(draw: st.DrawFn, start: float) -> str:
    """A schedule whose window opens or closes, in its zone's wall time, around the traffic."""
    zone = draw(st.sampled_from(ZONES))
    opens = start + 60 * draw(st.integers(-10, 14))
    closes = opens + 60 * draw(st.integers(1, 90))
    local = [datetime.fromtimestamp(t, ZoneInfo(zone or "UTC")) for t in (opens, closes)]
    day = local[0].strftime("%a").lower()
    days = draw(st.sampled_from(["daily", "weekdays", "weekends", day, f"{day},sat", "mon-fri"]))
    window = f"{local[0]:%H:%M}-{local[1]:%H:%M}"
    return f"{days} {window}" + (f' in "{zone}"' if zone else "")


@st.composite
def rule_sources(draw: st.DrawFn, index: int, start: float) -> str:
    lines = [f"rule r{index} {{"]
    if draw(st.booleans()):
        lines.append(f"priority {draw(st.integers(0, 3))}")
    on = draw(st.sampled_from(["", "", "on tick", "on tick, help", "on page_view", "on help"]))
    if on:
        lines.append(on)
    lines.append(f"when {draw(conditions())}")
    lines.append(f'say "r{index} a {{visitor.plan or friend}}" or "r{index} b"')
    if draw(st.booleans()):
        lines.append(f"cooldown {draw(st.sampled_from(['10s', '30s', '1m', '3m']))}")
    if draw(st.booleans()):
        window = draw(st.sampled_from(["session", "visitor", "20s", "1m", "5m"]))
        lines.append(f"at most {draw(st.integers(1, 3))} per {window}")
    if draw(st.integers(0, 3)) == 0:
        lines.append(f"during {draw(schedules(start))}")
    lines.append("}")
    return "\n".join(lines)


@st.composite
def policy_sources(draw: st.DrawFn, start: float) -> str:
    durations = st.sampled_from(["20s", "1m", "2m", "5m"])
    lines = ["policy {"]
    for _ in range(draw(st.integers(0, 2))):
        lines.append(f"at most {draw(st.integers(1, 3))} invitations per {draw(durations)}")
    if draw(st.booleans()):
        lines.append(f"at most {draw(st.integers(2, 6))} invitations per session")
    if draw(st.booleans()):
        lines.append(
            f"at most {draw(st.integers(1, 2))} invitations per {draw(durations)} sitewide"
        )
    if draw(st.booleans()):
        lines.append(f"quiet {draw(durations)} after dismiss")
    if draw(st.booleans()):
        lines.append(f"quiet {draw(durations)} after chat")
    if draw(st.integers(0, 2)) == 0:
        lines.append(f"only when {draw(conditions(1))}")
    if draw(st.integers(0, 2)) == 0:
        lines.append(f"never when {draw(conditions(1))}")
    if draw(st.integers(0, 3)) == 0:
        lines.append(f"during {draw(schedules(start))}")
    if draw(st.integers(0, 3)) == 0:
        lines.append(f"session timeout {draw(st.sampled_from(['2m', '5m']))}")
    lines.append("}")
    return "\n".join(lines)


@st.composite
def rule_sets(draw: st.DrawFn, start: float) -> str:
    count = draw(st.integers(1, 4))
    parts = [draw(rule_sources(i, start)) for i in range(count)]
    if draw(st.integers(0, 4)) > 0:
        parts.insert(0, draw(policy_sources(start)))
    return "\n".join(parts) + "\n"


# A traffic item: (second, kind, visitor or None, payload).
Item = tuple[int, str, str | None, dict[str, Any]]


@st.composite
def traffic(draw: st.DrawFn) -> list[Item]:
    visitors = VISITORS[: draw(st.integers(1, 3))]
    items: list[Item] = []
    for visitor in visitors:
        second = draw(st.integers(0, 60))
        for _ in range(draw(st.integers(1, 7))):
            kind = draw(
                st.sampled_from(
                    ["page_view"] * 5
                    + ["help", "scroll", "invitation_dismissed", "invitation_accepted"]
                    + ["chat_started", "chat_ended", "block", "unblock"]
                )
            )
            payload: dict[str, Any] = {}
            if kind == "page_view":
                payload["url"] = draw(st.sampled_from([*PATHS, "/pricing?x=1"]))
                if draw(st.booleans()):
                    payload["attributes"] = draw(
                        st.fixed_dictionaries(
                            {},
                            optional={
                                "plan": st.sampled_from(["pro", "free"]),
                                "vip": st.booleans(),
                                "cart": st.sampled_from([50, 150]),
                            },
                        )
                    )
            elif kind == "help" and draw(st.booleans()):
                payload["props"] = {"kind": "x"}
            elif kind == "scroll":
                payload["scroll"] = draw(st.sampled_from([30, 60, 90]))
            elif kind == "block":
                length = draw(st.sampled_from([None, 5, 30, 90]))
                payload["until"] = None if length is None else second + length
            items.append((second, kind, visitor, payload))
            second += draw(st.integers(1, 150))
    # Agent status: a few changes, each renewed every 30 s until the next one (the
    # last one until the replay ends), as a chat platform reports it. A renewal
    # repeats what the engine knows: it is not news, and the told site does not
    # ask again for it.
    changes: list[tuple[int, dict[str, Any]]] = []
    second = draw(st.integers(0, 30))
    for _ in range(draw(st.integers(0, 6))):
        payload = {
            "online": draw(st.integers(0, 3)),
            "available": draw(st.integers(0, 2)),
            "queue_wait": draw(st.sampled_from([0, 40, 90])),
        }
        changes.append((second, payload))
        second += draw(st.sampled_from([30, 60, 100, 150, 200, 400]))
    end = horizon([*items, *((at, "agents", None, p) for at, p in changes)])
    for i, (at, payload) in enumerate(changes):
        items.append((at, "agents", None, payload))
        until = changes[i + 1][0] if i + 1 < len(changes) else end + 1
        items.extend((r, "agents renewed", None, payload) for r in range(at + 30, until, 30))
    items.sort(key=lambda item: item[0])  # stable: generation order within a second
    return items


@dataclass
class Site:
    """One website on its own Engine: ticks every second, or only when told."""

    rules: RuleSet
    start: float
    told: bool
    clock: FakeClock = field(init=False)
    engine: Engine = field(init=False)
    calls: int = 0
    invitations: list[tuple[int, str, str, int, str]] = field(default_factory=list)
    # the last decision of each visitor at each second: (second, visitor) -> recheck_in
    decisions: dict[tuple[int, str], int | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.clock = FakeClock(self.start)
        self.engine = Engine(self.rules, clock=self.clock, trust_event_time=False)

    def evaluate(self, second: int, event: Event) -> Decision:
        self.clock.now = self.start + second
        self.calls += 1
        decision = self.engine.evaluate(event)
        if decision.invitation is not None:
            i = decision.invitation
            self.invitations.append((second, event.visitor, i.rule, i.variant, i.message))
        self.decisions[(second, event.visitor)] = decision.recheck_in
        return decision

    def control(self, second: int, kind: str, visitor: str | None, payload: dict[str, Any]) -> None:
        self.clock.now = self.start + second
        if kind in ("agents", "agents renewed"):
            self.engine.set_agents(**payload)
        elif kind == "block":
            assert visitor is not None
            until = payload["until"]
            self.engine.block(visitor, "test", until=None if until is None else self.start + until)
        else:
            assert visitor is not None
            self.engine.unblock(visitor)


CONTROLS = ("agents", "agents renewed", "block", "unblock")


def horizon(items: list[Item]) -> int:
    """The last second replayed: a while after the last event or change (renewals
    do not count: they go on until then)."""
    last = max((s for s, kind, _, _ in items if kind != "agents renewed"), default=0)
    return last + TICK_EVERY_SECOND_AFTER


def replay(rules: RuleSet, items: list[Item], start: float, *, told: bool) -> Site:
    """Each second: the site's own changes first, then each visitor in name order,
    their events in traffic order or else (every second, or when told) a tick."""
    site = Site(rules, start, told)
    by_second: dict[int, list[Item]] = defaultdict(list)
    for item in items:
        by_second[item[0]].append(item)
    visitors = sorted({v for _, kind, v, _ in items if v is not None and kind not in CONTROLS})
    last = horizon(items)
    ticks = {v: Event(visitor=v, event="tick") for v in visitors}
    seen: set[str] = set()
    due: dict[str, int] = {}  # the told site's next tick per visitor
    for second in range(last + 1):
        now = by_second.get(second, [])
        for _, kind, visitor, payload in now:
            if kind in CONTROLS:
                site.control(second, kind, visitor, payload)
                # recheck_in covers the passage of time only: a site that changes
                # what the engine reads (agent status, a visitor's block) asks again.
                if kind == "agents":
                    due.update(dict.fromkeys(seen, second))
                elif kind == "agents renewed":
                    pass  # the same status again: nothing the recheck did not assume
                elif visitor in seen:
                    due[visitor] = second
        for visitor in visitors:
            events = [
                Event(visitor=visitor, event=kind, **payload)
                for _, kind, v, payload in now
                if v == visitor and kind not in CONTROLS
            ]
            if not events and (visitor not in seen or (told and due.get(visitor) != second)):
                continue
            seen.add(visitor)
            for event in events or [ticks[visitor]]:
                recheck = site.evaluate(second, event).recheck_in
            due.pop(visitor, None)
            if recheck is not None:
                due[visitor] = second + recheck
    return site


def late_rechecks(told: Site, every: Site, items: list[Item]) -> list[str]:
    """Decisions of the told site asking again later than the every-second site was
    invited, while nothing but time passed (no event of that visitor, no agent
    status, no block or unblock of that visitor)."""
    busy: dict[str | None, list[int]] = defaultdict(list)
    for second, kind, visitor, _ in items:
        if kind != "agents renewed":
            busy[None if kind == "agents" else visitor].append(second)
    invited: dict[str, list[int]] = defaultdict(list)
    for second, visitor, *_ in every.invitations:
        invited[visitor].append(second)
    late = []
    for (second, visitor), recheck in sorted(told.decisions.items()):
        then = next((s for s in invited[visitor] if s > second), None)
        if then is None:
            continue
        if any(second < s <= then for s in (*busy[visitor], *busy[None])):
            continue
        if recheck is None or second + recheck > then:
            late.append(
                f"{visitor} at {second}s: recheck_in {recheck}, but invited by a tick at {then}s"
            )
    return late


def _checked(source: str) -> RuleSet | None:
    result = check_sources({"generated.rules": source})
    return compile_rules(result) if result.ok else None


def test_a_site_ticking_when_told_sees_the_same_invitations_as_one_ticking_every_second() -> None:
    totals: Counter[str] = Counter()

    @settings(
        max_examples=examples(120),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(st.data(), st.sampled_from(STARTS), traffic())
    def same_invitations(data: st.DataObject, start: float, items: list[Item]) -> None:
        source = data.draw(rule_sets(start), label="source")
        rules = _checked(source)
        assume(rules is not None)
        assert rules is not None
        told = replay(rules, items, start, told=True)
        every = replay(rules, items, start, told=False)
        assert late_rechecks(told, every, items) == []
        assert told.invitations == every.invitations
        assert told.calls <= every.calls
        totals["told"] += told.calls
        totals["every"] += every.calls
        totals["invitations"] += len(every.invitations)

    same_invitations()
    assert totals["told"] < totals["every"]
    assert totals["invitations"] > 0  # the generated sites do invite
    print(
        f"\ntold site: {totals['told']} evaluations, every-second site: {totals['every']} "
        f"(ratio {totals['told'] / totals['every']:.3f}), {totals['invitations']} invitations"
    )
