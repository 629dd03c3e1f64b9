"""The policy's gates and the rule clauses that choose among candidates.

Quiet periods (and their 1d defaults) end exactly at their duration; `only
when` and `never when` gate every rule; schedules of the policy and of rules
are weekly wall-clock windows in a zone, with an exclusive end, crossing
midnight when written so, and following daylight saving in Europe/Berlin.
Priority picks one winner per evaluation; `on` chooses the events a rule hears.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from conftest import FakeClock
from events import DAY, HOUR, MINUTE, MakeEngine, send, tick, view
from politely import Decision, Engine

LOOSE = "policy { at most 1000 invitations per visitor }\n"
ALWAYS = 'rule r { when session.pageviews >= 1 say "Hi" }\n'


def invited(decision: Decision) -> str | None:
    return decision.invitation.rule if decision.invitation is not None else None


def epoch(text: str) -> float:
    """An ISO time without a zone, read as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


# --- quiet periods --------------------------------------------------------------------------


def test_default_quiet_after_dismiss_is_one_day(make_engine: MakeEngine, clock: FakeClock) -> None:
    engine = make_engine(LOOSE + ALWAYS)
    assert invited(view(engine)) == "r"
    clock.advance(MINUTE)
    send(engine, "v1", "invitation_dismissed")
    dismissed = clock.now
    clock.advance(HOUR)
    decision = view(engine)
    assert decision.invitation is None
    assert decision.recheck_in == dismissed + DAY - clock.now
    clock.now = dismissed + DAY - 1
    assert invited(tick(engine)) is None
    clock.now = dismissed + DAY
    assert invited(tick(engine)) == "r"


def test_written_quiet_after_dismiss_replaces_the_default(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(
        "policy {\n    at most 1000 invitations per visitor\n    quiet 2h after dismiss\n}\n"
        + ALWAYS
    )
    view(engine)
    send(engine, "v1", "invitation_dismissed")
    clock.advance(2 * HOUR - 1)
    assert invited(tick(engine)) is None
    clock.advance(1)
    assert invited(tick(engine)) == "r"


def test_quiet_after_dismiss_is_counted_per_rule_as_a_suppression(
    make_engine: MakeEngine,
) -> None:
    engine = make_engine(LOOSE + ALWAYS)
    view(engine)
    send(engine, "v1", "invitation_dismissed")
    view(engine)
    view(engine)
    rule = engine.stats().rules[0]
    assert rule.suppressed == {"quiet_after_dismiss": 2}


def test_quiet_after_dismiss_holds_across_sessions(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(LOOSE + ALWAYS)
    view(engine)
    send(engine, "v1", "invitation_dismissed")
    clock.advance(5 * HOUR)
    assert invited(view(engine)) is None


def test_default_quiet_after_chat_is_one_day_from_the_chat_end(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(LOOSE + ALWAYS)
    view(engine)
    send(engine, "v1", "chat_started")
    clock.advance(20 * MINUTE)
    send(engine, "v1", "chat_ended")
    ended = clock.now
    decision = view(engine)
    assert decision.invitation is None
    assert decision.recheck_in == DAY
    clock.now = ended + DAY - 1
    assert invited(view(engine)) is None
    clock.now = ended + DAY
    assert invited(view(engine)) == "r"


def test_written_quiet_after_chat_replaces_the_default(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(
        "policy {\n    at most 1000 invitations per visitor\n    quiet 3d after chat\n}\n" + ALWAYS
    )
    view(engine)
    send(engine, "v1", "chat_started")
    send(engine, "v1", "chat_ended")
    clock.advance(3 * DAY - 1)
    assert invited(view(engine)) is None
    clock.advance(1)
    assert invited(view(engine)) == "r"


def test_quiet_after_chat_applies_to_a_chat_that_ended_with_its_session(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(LOOSE + ALWAYS)
    view(engine)
    send(engine, "v1", "chat_started")
    clock.advance(2 * HOUR)  # no chat_ended: the chat ends with the session
    decision = view(engine)
    assert decision.chat == "available"
    assert decision.invitation is None


def test_writing_one_quiet_period_keeps_the_other_default(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(
        "policy {\n    at most 1000 invitations per visitor\n    quiet 1h after chat\n}\n" + ALWAYS
    )
    view(engine)
    send(engine, "v1", "invitation_dismissed")
    clock.advance(2 * HOUR)
    assert invited(view(engine)) is None  # still the 1d default after dismiss


# --- only when, never when ----------------------------------------------------------------


def test_only_when_gates_every_rule(make_engine: MakeEngine) -> None:
    engine = make_engine(
        'policy { only when visitor.plan == "pro" }\n'
        'rule a { on page_view when page.path == "/a" say "A" }\n'
        'rule b { on page_view when page.path == "/b" say "B" }\n'
    )
    assert invited(view(engine, "free1", "/a", attributes={"plan": "free"})) is None
    assert invited(view(engine, "free2", "/b")) is None
    assert invited(view(engine, "pro1", "/a", attributes={"plan": "pro"})) == "a"
    assert invited(view(engine, "pro2", "/b", attributes={"plan": "pro"})) == "b"
    suppressed = {r.rule: r.suppressed for r in engine.stats().rules}
    assert suppressed == {"a": {"policy_only": 1}, "b": {"policy_only": 1}}


def test_never_when_excludes_every_rule(make_engine: MakeEngine) -> None:
    engine = make_engine(
        'policy { never when page.path matches "/checkout/*" }\n'
        'rule a { on page_view when session.pageviews >= 1 say "A" }\n'
        'rule b { priority 5 on page_view when page.path contains "pay" say "B" }\n'
    )
    assert invited(view(engine, "v1", "/checkout/payment")) is None
    assert invited(view(engine, "v2", "/pay-later")) == "b"
    assert invited(view(engine, "v3", "/home")) == "a"


def test_only_when_with_time_drives_recheck_in(make_engine: MakeEngine, clock: FakeClock) -> None:
    engine = make_engine("policy { only when session.duration >= 2m }\n" + ALWAYS)
    decision = view(engine)
    assert decision.invitation is None
    assert decision.recheck_in == 2 * MINUTE
    clock.advance(2 * MINUTE)
    assert invited(tick(engine)) == "r"


def test_never_when_with_time_drives_recheck_in(make_engine: MakeEngine, clock: FakeClock) -> None:
    engine = make_engine("policy { never when page.dwell < 45s }\n" + ALWAYS)
    assert view(engine).recheck_in == 45
    clock.advance(44)
    assert invited(tick(engine)) is None
    clock.advance(1)
    assert invited(tick(engine)) == "r"


# --- policy during ------------------------------------------------------------------------

OFFICE = "policy { during weekdays 09:00-17:00 }\n" + ALWAYS


@pytest.mark.parametrize(
    ("at", "open_"),
    [
        ("2026-01-05T08:59:59", False),
        ("2026-01-05T09:00:00", True),
        ("2026-01-05T16:59:59", True),
        ("2026-01-05T17:00:00", False),  # the end is exclusive
        ("2026-01-09T12:00:00", True),  # Friday
        ("2026-01-10T12:00:00", False),  # Saturday
        ("2026-01-11T12:00:00", False),  # Sunday
    ],
)
def test_policy_during_is_a_weekly_window_with_an_exclusive_end(
    clock: FakeClock, at: str, open_: bool
) -> None:
    engine = Engine.from_source(OFFICE, clock=clock, trust_event_time=True)
    decision = view(engine, at=at)
    assert (decision.invitation is not None) is open_


def test_outside_the_policy_schedule_recheck_in_points_at_the_next_opening(
    clock: FakeClock,
) -> None:
    engine = Engine.from_source(OFFICE, clock=clock, trust_event_time=True)
    decision = view(engine, at="2026-01-09T17:00:00")  # Friday, just closed
    assert decision.invitation is None
    assert decision.recheck_in == epoch("2026-01-12T09:00:00") - epoch("2026-01-09T17:00:00")
    assert engine.stats().rules[0].suppressed == {"policy_schedule": 1}


def test_policy_during_default_zone_is_utc(clock: FakeClock) -> None:
    engine = Engine.from_source(
        "policy { during mon 10:00-11:00 }\n" + ALWAYS, clock=clock, trust_event_time=True
    )
    assert invited(view(engine, "v1", at="2026-01-05T10:00:00Z")) == "r"
    assert invited(view(engine, "v2", at="2026-01-05T10:00:00+01:00")) is None  # 09:00 UTC


# --- rule during, zones, midnight ---------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "open_"),
    [
        ('mon 11:00-12:00 in "Europe/Berlin"', True),  # T0 is 11:00 in Berlin
        ('mon 10:00-11:00 in "Europe/Berlin"', False),
        ("mon 10:00-11:00", True),
        ('mon 05:00-06:00 in "America/New_York"', True),
        ('sun 10:00-12:00 in "Pacific/Auckland"', False),  # Monday 23:00 in Auckland
        ('mon 22:00-23:00 in "Pacific/Auckland"', False),
        ('mon 23:00-23:30 in "Pacific/Auckland"', True),
    ],
)
def test_rule_during_reads_the_wall_clock_of_its_zone(
    make_engine: MakeEngine, schedule: str, open_: bool
) -> None:
    engine = make_engine(
        f'rule r {{ on page_view when session.pageviews >= 1 say "Hi" during {schedule} }}'
    )
    assert (invited(view(engine)) is not None) is open_


def test_a_rule_outside_its_schedule_leaves_room_for_others(make_engine: MakeEngine) -> None:
    engine = make_engine(
        'rule night { priority 9 on page_view when session.pageviews >= 1 say "N" '
        "during daily 22:00-06:00 }\n"
        'rule day { on page_view when session.pageviews >= 1 say "D" }\n'
    )
    assert invited(view(engine)) == "day"
    assert engine.stats().rules[0].suppressed == {"outside_schedule": 1}


@pytest.mark.parametrize(
    ("at", "open_"),
    [
        ("2026-01-05T21:59:59", False),  # Monday
        ("2026-01-05T22:00:00", True),
        ("2026-01-05T23:59:59", True),
        ("2026-01-06T00:00:00", True),  # Tuesday, still Monday's window
        ("2026-01-06T01:59:59", True),
        ("2026-01-06T02:00:00", False),
        ("2026-01-05T01:00:00", False),  # Monday early: Sunday has no window
        ("2026-01-06T22:30:00", False),  # Tuesday evening
    ],
)
def test_an_overnight_window_belongs_to_the_day_it_starts(
    clock: FakeClock, at: str, open_: bool
) -> None:
    engine = Engine.from_source(
        'rule late { on page_view when session.pageviews >= 1 say "Hi" during mon 22:00-02:00 }',
        clock=clock,
        trust_event_time=True,
    )
    assert (invited(view(engine, at=at)) is not None) is open_


def test_recheck_in_waits_for_the_rules_schedule(clock: FakeClock) -> None:
    engine = Engine.from_source(
        'rule late { when session.pageviews >= 1 say "Hi" during daily 22:00-02:00 }',
        clock=clock,
        trust_event_time=True,
    )
    decision = view(engine, at="2026-01-05T21:00:00")
    assert decision.invitation is None
    assert decision.recheck_in == HOUR
    assert invited(tick(engine, at="2026-01-05T21:59:59")) is None
    assert invited(tick(engine, at="2026-01-05T22:00:00")) == "late"


# --- daylight saving in Europe/Berlin ------------------------------------------------------


def berlin_rule(window: str) -> str:
    return (
        LOOSE
        + f'rule r {{ when session.pageviews >= 1 say "Hi" during {window} in "Europe/Berlin" }}'
    )


def berlin(clock: FakeClock, window: str) -> Engine:
    """An engine trusting event times, with one rule open `window` in Berlin."""
    return Engine.from_source(berlin_rule(window), clock=clock, trust_event_time=True)


def open_at(engine: Engine, at: str) -> bool:
    """Would a fresh visitor's page view at `at` (UTC) be invited?"""
    return view(engine, f"visitor-{at}", at=at + "Z").invitation is not None


@pytest.mark.parametrize(
    ("at", "open_"),
    [
        ("2026-03-28T01:15:00", True),  # the day before: 02:15 CET
        ("2026-03-29T00:14:59", False),  # 01:14 CET
        ("2026-03-29T00:30:00", False),  # 01:30 CET
        ("2026-03-29T01:00:00", False),  # 03:00 CEST: 02:00-03:00 never happened
        ("2026-03-29T01:30:00", False),
        ("2026-03-30T00:14:59", False),  # 02:14 CEST
        ("2026-03-30T00:15:00", True),  # 02:15 CEST
        ("2026-03-30T00:44:59", True),
        ("2026-03-30T00:45:00", False),
    ],
)
def test_a_window_inside_the_skipped_spring_hour_does_not_open_that_day(
    clock: FakeClock, at: str, open_: bool
) -> None:
    engine = berlin(clock, "daily 02:15-02:45")
    assert open_at(engine, at) is open_


def test_a_site_ticking_through_the_spring_change_is_invited_the_next_day(
    clock: FakeClock,
) -> None:
    engine = berlin(clock, "daily 02:15-02:45")
    start = epoch("2026-03-28T23:00:00")  # Sunday 00:00 CET
    decision = view(engine, at=start)
    assert decision.invitation is None
    assert decision.recheck_in == epoch("2026-03-30T00:15:00") - start
    for minute in range(5, 25 * 60 + 20, 5):
        decision = tick(engine, at=start + minute * MINUTE)
        if decision.invitation is not None:
            break
    assert decision.invitation is not None
    assert start + minute * MINUTE == epoch("2026-03-30T00:15:00")


@pytest.mark.parametrize(
    ("at", "open_"),
    [
        ("2026-03-29T00:29:59", False),  # 01:29 CET
        ("2026-03-29T00:30:00", True),  # 01:30 CET
        ("2026-03-29T00:59:59", True),  # 01:59:59 CET
        ("2026-03-29T01:00:00", True),  # 03:00 CEST
        ("2026-03-29T01:29:59", True),
        ("2026-03-29T01:30:00", False),  # 03:30 CEST
    ],
)
def test_a_window_across_the_spring_change_is_an_hour_shorter(
    clock: FakeClock, at: str, open_: bool
) -> None:
    engine = berlin(clock, "daily 01:30-03:30")
    assert open_at(engine, at) is open_


@pytest.mark.parametrize(
    ("at", "open_"),
    [
        ("2026-10-25T00:14:59", False),  # 02:14:59 CEST
        ("2026-10-25T00:15:00", True),  # 02:15 CEST, the first time
        ("2026-10-25T00:44:59", True),
        ("2026-10-25T00:45:00", False),
        ("2026-10-25T01:14:59", False),  # 02:14:59 CET
        ("2026-10-25T01:15:00", True),  # 02:15 CET, the second time
        ("2026-10-25T01:44:59", True),
        ("2026-10-25T01:45:00", False),
        ("2026-10-26T01:15:00", True),  # 02:15 CET the next day
    ],
)
def test_a_window_inside_the_repeated_autumn_hour_opens_twice(
    clock: FakeClock, at: str, open_: bool
) -> None:
    engine = berlin(clock, "daily 02:15-02:45")
    assert open_at(engine, at) is open_


def test_recheck_in_between_the_two_autumn_passes_points_at_the_second(clock: FakeClock) -> None:
    engine = berlin(clock, "daily 02:15-02:45")
    decision = view(engine, at="2026-10-25T00:45:00Z")
    assert decision.invitation is None
    assert decision.recheck_in == 30 * MINUTE


def test_policy_during_follows_daylight_saving(clock: FakeClock) -> None:
    engine = Engine.from_source(
        LOOSE.replace("}", 'during daily 08:00-09:00 in "Europe/Berlin" }') + ALWAYS,
        clock=clock,
        trust_event_time=True,
    )
    assert open_at(engine, "2026-03-28T07:00:00")  # 08:00 CET
    assert not open_at(engine, "2026-03-29T07:00:00")  # 09:00 CEST
    assert open_at(engine, "2026-03-29T06:00:00")  # 08:00 CEST


# --- priority and one invitation per evaluation ----------------------------------------------


def test_the_highest_priority_candidate_fires(make_engine: MakeEngine) -> None:
    engine = make_engine(
        LOOSE
        + 'rule low { on page_view when session.pageviews >= 1 say "low" }\n'
        + 'rule high { priority 10 on page_view when session.pageviews >= 1 say "high" }\n'
        + 'rule below { priority -5 on page_view when session.pageviews >= 1 say "below" }\n'
    )
    assert invited(view(engine)) == "high"


def test_equal_priorities_go_to_the_first_rule_in_source_order(make_engine: MakeEngine) -> None:
    engine = make_engine(
        LOOSE
        + 'rule zeta { priority 3 on page_view when session.pageviews >= 1 say "z" }\n'
        + 'rule alpha { priority 3 on page_view when session.pageviews >= 1 say "a" }\n'
    )
    assert invited(view(engine)) == "zeta"


def test_a_higher_priority_rule_whose_condition_fails_does_not_block_others(
    make_engine: MakeEngine,
) -> None:
    engine = make_engine(
        LOOSE
        + 'rule high { priority 10 on page_view when page.path == "/pricing" say "high" }\n'
        + 'rule low { on page_view when session.pageviews >= 1 say "low" }\n'
    )
    assert invited(view(engine, "v1", "/home")) == "low"
    assert invited(view(engine, "v2", "/pricing")) == "high"


def test_at_most_one_invitation_per_evaluation(make_engine: MakeEngine) -> None:
    engine = make_engine(
        LOOSE
        + "".join(
            f'rule r{i} {{ priority {i} on page_view when session.pageviews >= 1 say "{i}" }}\n'
            for i in range(5)
        )
    )
    decision = view(engine)
    assert invited(decision) == "r4"
    stats = {r.rule: (r.shown, r.suppressed) for r in engine.stats().rules}
    assert stats["r4"] == (1, {})
    assert all(stats[f"r{i}"] == (0, {"outranked": 1}) for i in range(4))


def test_a_capped_higher_priority_rule_yields_to_the_next(make_engine: MakeEngine) -> None:
    engine = make_engine(
        LOOSE
        + 'rule high { priority 10 on page_view when session.pageviews >= 1 say "h" '
        + "at most 1 per session }\n"
        + 'rule low { on page_view when session.pageviews >= 1 say "l" }\n'
    )
    assert [invited(view(engine)) for _ in range(3)] == ["high", "low", "low"]


# --- on ---------------------------------------------------------------------------------------


def test_a_rule_without_on_listens_to_page_views_and_ticks(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(LOOSE + ALWAYS)
    assert invited(view(engine, "v1")) == "r"
    clock.advance(1)
    assert invited(tick(engine, "v1")) == "r"
    view(engine, "v3")
    assert invited(send(engine, "v3", "exit_intent")) is None
    assert invited(send(engine, "v3", "add_to_cart")) is None


def test_a_rule_listens_only_to_the_events_in_its_on_list(make_engine: MakeEngine) -> None:
    engine = make_engine(
        LOOSE + 'rule leaving { on exit_intent, idle when session.pageviews >= 1 say "Wait" }'
    )
    assert invited(view(engine)) is None
    assert invited(tick(engine)) is None
    assert invited(send(engine, "v1", "add_to_cart")) is None
    assert invited(send(engine, "v1", "exit_intent")) == "leaving"
    assert invited(send(engine, "v1", "idle")) == "leaving"


def test_a_rule_that_does_not_listen_to_ticks_is_never_rechecked(make_engine: MakeEngine) -> None:
    engine = make_engine(LOOSE + 'rule r { on page_view when page.dwell >= 30s say "Hi" }')
    assert view(engine).recheck_in is None


def test_event_name_and_properties_are_fields(make_engine: MakeEngine) -> None:
    engine = make_engine(
        LOOSE
        + "rule big { on add_to_cart, checkout_error "
        + 'when event == "checkout_error" or event.value >= 100 say "Hi" }'
    )
    view(engine)
    assert invited(send(engine, "v1", "add_to_cart", props={"value": 20})) is None
    assert invited(send(engine, "v1", "add_to_cart", props={"value": "lots"})) is None
    assert invited(send(engine, "v1", "add_to_cart", props={"value": 150})) == "big"
    assert invited(send(engine, "v2", "checkout_error")) == "big"
