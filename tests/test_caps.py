"""Caps: rule caps, cooldowns, the policy's per-visitor and sitewide caps, and their defaults.

Windows are rolling and half-open (docs/semantics.md, section 5): an invitation at t
counts against `per D` until t + D and no longer, so every test that crosses a
window checks both t + D - 1 (still capped) and t + D (allowed again).
"""

from __future__ import annotations

from typing import Any

from conftest import FakeClock
from events import DAY, HOUR, MINUTE, MakeEngine, view
from politely import Engine

LOOSE = "policy { at most 1000 invitations per visitor }\n"
ALWAYS = 'rule {name} {{ on page_view when session.pageviews >= 1 say "Hi" {clauses} }}\n'


def rule(name: str = "r", clauses: str = "") -> str:
    """A rule that would fire on every page view but for its caps."""
    return ALWAYS.format(name=name, clauses=clauses)


def invited(engine: Engine, visitor: str = "v1", **fields: Any) -> str | None:
    """The rule that invited on a page view, or None."""
    invitation = view(engine, visitor, **fields).invitation
    return invitation.rule if invitation is not None else None


def suppressed(engine: Engine, rule_name: str) -> dict[str, int]:
    return next(r.suppressed for r in engine.stats().rules if r.rule == rule_name)


# --- rule caps ----------------------------------------------------------------------------


def test_rule_cap_per_session_allows_again_in_the_next_session(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(LOOSE + rule(clauses="at most 1 per session"))
    assert invited(engine) == "r"
    clock.advance(29 * MINUTE)
    assert invited(engine) is None
    clock.advance(30 * MINUTE + 1)
    assert invited(engine) == "r"


def test_rule_cap_per_session_follows_explicit_session_ids(make_engine: MakeEngine) -> None:
    engine = make_engine(LOOSE + rule(clauses="at most 2 per session"))
    assert [invited(engine, session="s1") for _ in range(3)] == ["r", "r", None]
    assert invited(engine, session="s2") == "r"


def test_rule_cap_per_visitor_holds_across_sessions(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(LOOSE + rule(clauses="at most 2 per visitor"))
    assert invited(engine) == "r"
    clock.advance(HOUR)
    assert invited(engine) == "r"
    for _ in range(3):
        clock.advance(6 * HOUR)
        assert invited(engine) is None


def test_rule_cap_per_visitor_holds_after_days_of_absence(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(LOOSE + rule(clauses="at most 1 per visitor"))
    assert invited(engine) == "r"
    clock.advance(3 * DAY)
    assert invited(engine) is None


def test_rolling_rule_cap_is_capped_until_the_oldest_invitation_is_exactly_d_old(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(LOOSE + rule(clauses="at most 2 per 1h"))
    assert invited(engine) == "r"  # t0
    clock.advance(10 * MINUTE)
    assert invited(engine) == "r"  # t0 + 10m
    clock.advance(50 * MINUTE - 1)
    assert invited(engine) is None  # t0 + 1h - 1s: both still count
    clock.advance(1)
    assert invited(engine) == "r"  # t0 + 1h: the first no longer counts
    clock.advance(10 * MINUTE - 1)
    assert invited(engine) is None  # the second and third still count


def test_rolling_rule_cap_is_not_a_calendar_day(make_engine: MakeEngine, clock: FakeClock) -> None:
    engine = make_engine(LOOSE + rule(clauses="at most 1 per 1d"))
    clock.advance(13 * HOUR + 30 * MINUTE)  # 23:30 UTC
    assert invited(engine) == "r"
    clock.advance(HOUR)  # 00:30 the next calendar day
    assert invited(engine) is None
    clock.advance(DAY - HOUR - 1)
    assert invited(engine) is None
    clock.advance(1)
    assert invited(engine) == "r"


def test_cooldown_ends_exactly_at_its_duration(make_engine: MakeEngine, clock: FakeClock) -> None:
    engine = make_engine(LOOSE + rule(clauses="cooldown 15m"))
    assert invited(engine) == "r"
    clock.advance(15 * MINUTE - 1)
    assert invited(engine) is None
    clock.advance(1)
    assert invited(engine) == "r"


def test_cooldown_spans_sessions(make_engine: MakeEngine, clock: FakeClock) -> None:
    engine = make_engine(LOOSE + rule(clauses="cooldown 2h"))
    assert invited(engine) == "r"
    clock.advance(HOUR)  # a new session
    assert invited(engine) is None


def test_rule_caps_count_only_their_own_rule(make_engine: MakeEngine) -> None:
    engine = make_engine(
        LOOSE + rule("first", "priority 1 at most 1 per session") + rule("second", "")
    )
    assert [invited(engine) for _ in range(3)] == ["first", "second", "second"]


def test_rule_caps_count_only_one_visitor(make_engine: MakeEngine) -> None:
    engine = make_engine(LOOSE + rule(clauses="at most 1 per visitor"))
    assert [invited(engine, visitor) for visitor in ("v1", "v2", "v1", "v3")] == [
        "r",
        "r",
        None,
        "r",
    ]


def test_every_rule_cap_must_allow(make_engine: MakeEngine, clock: FakeClock) -> None:
    engine = make_engine(LOOSE + rule(clauses="cooldown 10m at most 2 per session"))
    assert invited(engine) == "r"
    clock.advance(10 * MINUTE)
    assert invited(engine) == "r"
    clock.advance(10 * MINUTE)
    assert invited(engine) is None  # the cooldown allows, the session cap does not


def test_a_capped_rule_counts_a_rule_cap_suppression(make_engine: MakeEngine) -> None:
    engine = make_engine(LOOSE + rule(clauses="at most 1 per session"))
    for _ in range(3):
        view(engine)
    assert suppressed(engine, "r") == {"rule_cap": 2}


def test_cooldown_drives_recheck_in(make_engine: MakeEngine, clock: FakeClock) -> None:
    engine = make_engine(LOOSE + 'rule r { when session.pageviews >= 1 say "Hi" cooldown 15m }')
    assert view(engine).recheck_in == 15 * MINUTE
    clock.advance(5 * MINUTE)
    assert engine.evaluate({"visitor": "v1", "event": "tick"}).recheck_in == 10 * MINUTE


# --- policy per-visitor caps and their defaults --------------------------------------------


def test_default_policy_allows_one_invitation_per_ten_minutes(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(rule())
    decision = view(engine)
    assert decision.invitation is not None
    clock.advance(10 * MINUTE - 1)
    assert invited(engine) is None
    clock.advance(1)
    assert invited(engine) == "r"


def test_default_policy_allows_three_invitations_per_session(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(rule())
    found = []
    for _ in range(5):
        found.append(invited(engine))
        clock.advance(10 * MINUTE)
    assert found == ["r", "r", "r", None, None]
    clock.advance(31 * MINUTE)
    assert invited(engine) == "r"


def test_default_policy_caps_cover_all_rules_together(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(rule("a", "priority 2 at most 1 per session") + rule("b", ""))
    assert invited(engine) == "a"
    clock.advance(MINUTE)
    assert invited(engine) is None  # b would fire, but 1 per 10m covers every rule
    assert suppressed(engine, "b") == {"outranked": 1, "visitor_cap": 1}


def test_policy_without_per_visitor_caps_keeps_both_defaults(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(
        "policy { at most 100 invitations per 1m sitewide quiet 2d after dismiss }\n" + rule()
    )
    found = []
    for _ in range(5):
        found.append(invited(engine))
        clock.advance(5 * MINUTE)
    assert found == ["r", None, "r", None, "r"]
    clock.advance(10 * MINUTE)
    assert invited(engine) is None  # three this session


def test_writing_a_session_cap_replaces_both_defaults(make_engine: MakeEngine) -> None:
    engine = make_engine("policy { at most 2 invitations per session }\n" + rule())
    assert [invited(engine) for _ in range(3)] == ["r", "r", None]


def test_writing_a_rolling_cap_replaces_both_defaults(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine("policy { at most 1 invitation per 5m }\n" + rule())
    found = []
    for _ in range(5):
        found.append(invited(engine))
        clock.advance(5 * MINUTE)
    assert found == ["r"] * 5  # no 3 per session, no 1 per 10m


def test_policy_rolling_cap_releases_exactly_at_t_plus_d(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine("policy { at most 2 invitations per 7d }\n" + rule())
    assert invited(engine) == "r"
    clock.advance(DAY)
    assert invited(engine) == "r"
    clock.advance(6 * DAY - 1)
    assert invited(engine) is None
    clock.advance(1)
    assert invited(engine) == "r"


def test_policy_cap_per_visitor_holds_forever(make_engine: MakeEngine, clock: FakeClock) -> None:
    engine = make_engine("policy { at most 1 invitation per visitor }\n" + rule())
    assert invited(engine) == "r"
    clock.advance(2 * HOUR)
    assert invited(engine) is None
    assert view(engine).recheck_in is None


def test_policy_cap_per_visitor_holds_after_a_month_of_absence(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine("policy { at most 1 invitation per visitor }\n" + rule())
    assert invited(engine) == "r"
    clock.advance(30 * DAY)
    assert invited(engine) is None


def test_every_policy_cap_must_allow(make_engine: MakeEngine, clock: FakeClock) -> None:
    engine = make_engine(
        "policy { at most 1 invitation per 1m at most 2 invitations per session }\n" + rule()
    )
    assert invited(engine) == "r"
    assert invited(engine) is None
    clock.advance(MINUTE)
    assert invited(engine) == "r"
    clock.advance(MINUTE)
    assert invited(engine) is None


def test_a_rule_cap_cannot_loosen_the_policy(make_engine: MakeEngine, clock: FakeClock) -> None:
    engine = make_engine(rule(clauses="at most 10 per session"))
    assert invited(engine) == "r"
    clock.advance(MINUTE)
    assert invited(engine) is None


def test_recheck_in_after_an_invitation_waits_for_the_default_cap(make_engine: MakeEngine) -> None:
    engine = make_engine('rule r { when session.pageviews >= 1 say "Hi" }')
    decision = view(engine)
    assert decision.invitation is not None
    assert decision.recheck_in == 10 * MINUTE


# --- sitewide caps ------------------------------------------------------------------------

SITEWIDE = (
    "policy {\n"
    "    at most 1000 invitations per visitor\n"
    "    at most 2 invitations per 1m sitewide\n"
    "}\n"
)


def test_sitewide_cap_counts_every_visitor(make_engine: MakeEngine) -> None:
    engine = make_engine(SITEWIDE + rule())
    assert [invited(engine, v) for v in ("v1", "v2", "v3", "v4")] == ["r", "r", None, None]
    assert suppressed(engine, "r") == {"sitewide_cap": 2}


def test_sitewide_cap_releases_exactly_at_t_plus_d(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(SITEWIDE + rule())
    assert invited(engine, "v1") == "r"
    clock.advance(30)
    assert invited(engine, "v2") == "r"
    clock.advance(29)
    assert invited(engine, "v3") is None  # t0 + 59s
    clock.advance(1)
    assert invited(engine, "v3") == "r"  # t0 + 60s: v1's invitation no longer counts
    assert invited(engine, "v4") is None


def test_sitewide_cap_drives_recheck_in(make_engine: MakeEngine, clock: FakeClock) -> None:
    engine = make_engine(SITEWIDE + 'rule r { when session.pageviews >= 1 say "Hi" }')
    view(engine, "v1")
    clock.advance(20)
    view(engine, "v2")
    decision = view(engine, "v3")
    assert decision.invitation is None
    assert decision.recheck_in == 40


def test_sitewide_cap_keeps_the_per_visitor_defaults(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine("policy { at most 5 invitations per 1h sitewide }\n" + rule())
    assert invited(engine, "v1") == "r"
    clock.advance(MINUTE)
    assert invited(engine, "v1") is None  # the default 1 per 10m
    assert invited(engine, "v2") == "r"


def test_there_is_no_default_sitewide_cap(make_engine: MakeEngine) -> None:
    engine = make_engine(rule())
    assert all(invited(engine, f"v{i}") == "r" for i in range(200))


# --- invitations.* fields --------------------------------------------------------------------


def test_invitations_session_counts_this_sessions_invitations(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(
        LOOSE + 'rule r { on page_view when invitations.session < 2 say "n={invitations.session}" }'
    )
    messages = []
    for _ in range(3):
        invitation = view(engine).invitation
        messages.append(invitation.message if invitation is not None else None)
    assert messages == ["n=0", "n=1", None]
    clock.advance(31 * MINUTE)
    invitation = view(engine).invitation
    assert invitation is not None
    assert invitation.message == "n=0"


def test_invitations_today_is_a_rolling_24_hours(make_engine: MakeEngine, clock: FakeClock) -> None:
    engine = make_engine(
        LOOSE + 'rule r { on page_view when invitations.today < 2 say "Hi" cooldown 1m }'
    )
    assert invited(engine) == "r"  # t0
    clock.advance(MINUTE)
    assert invited(engine) == "r"  # t0 + 1m
    clock.advance(DAY - MINUTE - 1)
    assert invited(engine) is None  # t0 + 1d - 1s: two today
    clock.advance(1)
    assert invited(engine) == "r"  # t0 + 1d: the first is no longer today


def test_invitations_today_in_the_policy_counts_the_last_24_hours(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(
        "policy {\n    at most 10 invitations per session\n    only when invitations.today < 2\n}\n"
        + rule()
    )
    found = []
    for _ in range(4):
        found.append(invited(engine))
        clock.advance(11 * MINUTE)
    assert found == ["r", "r", None, None]


def test_invitations_today_in_a_message_counts_the_last_24_hours(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(
        "policy { at most 1 invitation per 1m }\n"
        'rule r { on page_view when session.pageviews >= 1 say "today={invitations.today}" }'
    )
    messages = []
    for _ in range(3):
        invitation = view(engine).invitation
        assert invitation is not None
        messages.append(invitation.message)
        clock.advance(2 * MINUTE)
    assert messages == ["today=0", "today=1", "today=2"]


def test_invitations_last_is_infinite_before_any_invitation(make_engine: MakeEngine) -> None:
    engine = make_engine(LOOSE + 'rule r { on page_view when invitations.last >= 30d say "Hi" }')
    assert invited(engine) == "r"
    assert invited(engine) is None


def test_invitations_last_grows_from_the_last_invitation(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(LOOSE + 'rule r { when invitations.last >= 20m say "Hi" }')
    decision = view(engine)
    assert decision.invitation is not None
    assert decision.recheck_in == 20 * MINUTE
    clock.advance(20 * MINUTE - 1)
    assert engine.evaluate({"visitor": "v1", "event": "tick"}).invitation is None
    clock.advance(1)
    assert engine.evaluate({"visitor": "v1", "event": "tick"}).invitation is not None
