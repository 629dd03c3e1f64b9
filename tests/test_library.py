"""The library surface of docs/contract.md, section 6: building engines, evaluating events,
errors that name what is wrong, statistics, `explain`, and the default system clock.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import politely
from conftest import T0, FakeClock, require
from events import MakeEngine, send, view
from politely import Engine, Event

LOOSE = "policy { at most 1000 invitations per visitor }\n"
DWELL = 'rule hello { when page.dwell >= 30s say "Hello!" or "Hi!" }\n'


def explained(engine: Engine, visitor: str, event: str, **fields: Any) -> dict[str, Any]:
    """rule name → its explanation, for one event."""
    result = engine.explain({"visitor": visitor, "event": event, **fields})
    return {r.rule: r for r in result.rules}


# --- building engines -----------------------------------------------------------------------


def test_from_path_reads_a_rules_file(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "site.rules"
    path.write_text(LOOSE + DWELL, encoding="utf-8")
    engine = Engine.from_path(path, clock=clock, trust_event_time=False)
    assert view(engine).recheck_in == 30
    engine = Engine.from_path(str(path), clock=clock, trust_event_time=False)
    assert view(engine).recheck_in == 30


def test_from_path_reads_every_rules_file_of_a_folder_in_name_order(
    tmp_path: Path, clock: FakeClock
) -> None:
    (tmp_path / "20-late.rules").write_text(
        'rule late { on page_view when session.pageviews >= 1 say "late" }\n', encoding="utf-8"
    )
    (tmp_path / "10-early.rules").write_text(
        'rule early { on page_view when session.pageviews >= 1 say "early" }\n', encoding="utf-8"
    )
    (tmp_path / "00-policy.rules").write_text(
        "policy { at most 1 invitation per visitor }\n", encoding="utf-8"
    )
    (tmp_path / "README.md").write_text("not rules { at all", encoding="utf-8")
    engine = Engine.from_path(tmp_path, clock=clock, trust_event_time=False)
    decision = view(engine)
    assert decision.invitation is not None
    assert decision.invitation.rule == "early"  # a tie goes to the first file by name
    assert view(engine).invitation is None  # the policy from another file applies
    assert [r.rule for r in engine.stats().rules] == ["early", "late"]


def test_from_source_builds_an_engine() -> None:
    engine = Engine.from_source(DWELL)
    assert isinstance(engine, Engine)
    assert engine.evaluate({"visitor": "v", "event": "page_view", "at": T0}).recheck_in == 30


def test_rules_error_lists_every_error(tmp_path: Path) -> None:
    source = (
        'rule a { when page.dwel >= 30s say "x" }\n'
        "rule b { when page.dwell >= 30 }\n"
        'rule c { on chat_ended when page.dwell >= 3s say "x" }\n'
    )
    with pytest.raises(politely.RulesError) as raised:
        Engine.from_source(source)
    errors = [d for d in raised.value.diagnostics if d.is_error]
    assert sorted((d.code, d.line) for d in errors) == [
        ("missing-say", 2),
        ("outcome-event", 3),
        ("type-mismatch", 2),
        ("unknown-field", 1),
    ]
    text = str(raised.value)
    for needle in ("page.dwel", "did you mean `page.dwell`", "30s", "chat_ended", "say"):
        assert needle in text


def test_rules_error_from_a_folder_lists_errors_of_every_file(tmp_path: Path) -> None:
    (tmp_path / "a.rules").write_text('rule a { when pge.path == "/" say "x" }\n', encoding="utf-8")
    (tmp_path / "b.rules").write_text(
        'rule b { when page.dwell >= 1x say "y" }\n', encoding="utf-8"
    )
    with pytest.raises(politely.RulesError) as raised:
        Engine.from_path(tmp_path)
    errors = [d for d in raised.value.diagnostics if d.is_error]
    assert {Path(d.path).name for d in errors} == {"a.rules", "b.rules"}
    assert isinstance(raised.value, politely.PolitelyError)


# --- evaluating --------------------------------------------------------------------------------


def test_evaluate_takes_an_event_or_a_dict_alike(make_engine: MakeEngine) -> None:
    by_model = make_engine(DWELL)
    by_dict = make_engine(DWELL)
    as_model = by_model.evaluate(Event(visitor="v1", event="page_view", url="/pricing"))
    as_dict = by_dict.evaluate({"visitor": "v1", "event": "page_view", "url": "/pricing"})
    assert as_model == as_dict
    assert as_model.recheck_in == 30


def test_the_events_at_is_the_time_when_trusted(clock: FakeClock) -> None:
    engine = Engine.from_source(LOOSE + DWELL, clock=clock)  # trust_event_time defaults to on
    view(engine, at="2026-01-05T10:00:00Z")
    decision = send(engine, "v1", "tick", at="2026-01-05T10:00:30Z")
    assert decision.invitation is not None
    assert clock.now == T0  # the clock was not needed


def test_an_event_without_at_uses_the_clock_even_when_trusted(clock: FakeClock) -> None:
    engine = Engine.from_source(LOOSE + DWELL, clock=clock)
    view(engine)
    clock.advance(30)
    assert send(engine, "v1", "tick").invitation is not None


def test_an_untrusted_events_at_is_ignored(make_engine: MakeEngine, clock: FakeClock) -> None:
    engine = make_engine(LOOSE + DWELL)
    view(engine)
    decision = send(engine, "v1", "tick", at="2026-01-05T11:00:00Z")
    assert decision.invitation is None
    assert decision.recheck_in == 30


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"event": "page_view"}, "visitor"),
        ({"visitor": "v1"}, "event"),
        ({"visitor": "v1", "event": "page view"}, "event"),
        ({"visitor": "", "event": "page_view"}, "visitor"),
        ({"visitor": "v1", "event": "page_view", "scroll": 150}, "scroll"),
        ({"visitor": "v1", "event": "page_view", "at": "yesterday"}, "at"),
        ({"visitor": "v1", "event": "page_view", "attributes": [1]}, "attributes"),
        ({"visitor": "v1", "event": "page_view", "props": "x"}, "props"),
        ({"visitor": "v1", "event": "page_view", "colour": "red"}, "colour"),
    ],
)
def test_a_bad_event_raises_event_error_naming_the_field(
    make_engine: MakeEngine, event: dict[str, Any], field: str
) -> None:
    engine = make_engine(DWELL)
    with pytest.raises(politely.EventError) as raised:
        engine.evaluate(event)
    assert field in str(raised.value)
    assert isinstance(raised.value, politely.PolitelyError)


def test_a_bad_event_changes_nothing(make_engine: MakeEngine) -> None:
    engine = make_engine(DWELL)
    before = engine.stats()
    with pytest.raises(politely.EventError):
        engine.evaluate({"visitor": "v1", "event": "page_view", "scroll": -1})
    assert engine.stats() == before
    assert send(engine, "v1", "tick").recheck_in is None  # no session was started


def test_every_decision_names_the_rule_sets_hash(make_engine: MakeEngine) -> None:
    engine = make_engine('rule r { when session.pageviews >= 1 say "Hi" }')
    ruleset = engine.rules.hash
    assert ruleset
    decisions = [
        view(engine, id="e1"),  # an invitation
        view(engine),  # capped
        send(engine, "v1", "tick"),
        send(engine, "v1", "invitation_dismissed"),
        view(engine, id="e1"),  # a retry
        send(engine, "nobody", "tick"),  # no session
    ]
    engine.block("v2", "test")
    decisions.append(view(engine, "v2"))
    send(engine, "v3", "chat_started")
    decisions.append(view(engine, "v3"))
    assert {d.ruleset for d in decisions} == {ruleset}
    assert engine.stats().ruleset == ruleset


def test_the_rule_set_hash_follows_the_rules_text(make_engine: MakeEngine) -> None:
    same = {make_engine(DWELL).rules.hash, make_engine(DWELL).rules.hash}
    other = make_engine(DWELL.replace("30s", "31s")).rules.hash
    assert len(same) == 1
    assert other not in same


# --- statistics -------------------------------------------------------------------------------


def test_stats_count_shown_accepted_and_dismissed_per_rule_and_variant(
    make_engine: MakeEngine,
) -> None:
    engine = make_engine(
        LOOSE + 'rule r { on page_view when session.pageviews >= 1 say "A" or "B" }\n'
    )
    outcomes: dict[int, list[str]] = {0: [], 1: []}
    for i, outcome in enumerate(
        ["invitation_accepted", "invitation_dismissed", "invitation_dismissed", None]
    ):
        invitation = view(engine, f"v{i}").invitation
        assert invitation is not None
        if outcome is not None:
            send(engine, f"v{i}", outcome, invitation=invitation.id)
            outcomes[invitation.variant].append(outcome)
    rule = engine.stats().rules[0]
    assert (rule.shown, rule.accepted, rule.dismissed) == (4, 1, 2)
    assert rule.acceptance_rate == 0.25
    for variant in rule.variants:
        assert variant.accepted == outcomes[variant.variant].count("invitation_accepted")
        assert variant.dismissed == outcomes[variant.variant].count("invitation_dismissed")
    assert sum(v.shown for v in rule.variants) == 4
    assert [v.message for v in rule.variants] == ["A", "B"]


def test_stats_count_suppressions_by_reason(make_engine: MakeEngine, clock: FakeClock) -> None:
    engine = make_engine(
        'policy { at most 1 invitation per 10m never when page.path == "/never" }\n'
        'rule top { priority 9 on page_view when page.path == "/top" say "T" }\n'
        'rule any { on page_view when session.pageviews >= 1 say "A" at most 1 per visitor }\n'
        'rule night { on page_view when session.pageviews >= 1 say "N" during daily 22:00-23:00 }\n'
    )
    view(engine, "v1", "/top")  # top fires; any is outranked
    view(engine, "v1", "/top")  # top: visitor cap; any: visitor cap
    view(engine, "v2", "/")  # any fires
    view(engine, "v2", "/")  # any: rule cap
    view(engine, "v3", "/never")  # any: policy_never
    stats = {r.rule: r for r in engine.stats().rules}
    assert stats["top"].shown == 1
    assert stats["top"].suppressed == {"visitor_cap": 1}
    assert stats["any"].shown == 1
    assert stats["any"].suppressed == {
        "outranked": 1,
        "policy_never": 1,
        "rule_cap": 1,
        "visitor_cap": 1,
    }
    assert stats["night"].suppressed == {"outside_schedule": 5}
    assert engine.stats().suppressed == {}


def test_stats_start_empty(make_engine: MakeEngine) -> None:
    stats = make_engine(DWELL).stats()
    assert [(r.rule, r.shown, r.suppressed) for r in stats.rules] == [("hello", 0, {})]
    assert stats.rules[0].acceptance_rate is None


# --- explain -----------------------------------------------------------------------------------


def test_explain_changes_no_state_and_no_stats(make_engine: MakeEngine, clock: FakeClock) -> None:
    engine = make_engine(
        LOOSE + 'rule third { on page_view when session.pageviews >= 3 say "A" or "B" or "C" }'
    )
    view(engine)
    view(engine)
    before = engine.stats()
    for _ in range(5):
        result = engine.explain({"visitor": "v1", "event": "page_view", "url": "/", "id": "x"})
        assert result.decision.invitation is not None
        engine.explain({"visitor": "v1", "event": "chat_started"})
        engine.explain({"visitor": "v1", "event": "page_view", "url": "/", "session": "new"})
    assert engine.stats() == before
    decision = view(engine, id="x")  # the id was not remembered by explain
    assert decision.invitation is not None
    assert decision.invitation == result.decision.invitation
    assert decision.chat == "available"


def test_explain_says_a_rule_would_fire(make_engine: MakeEngine) -> None:
    engine = make_engine(LOOSE + 'rule r { on page_view when session.pageviews >= 1 say "Hi" }')
    found = explained(engine, "v1", "page_view", url="/")["r"]
    assert found.status == "would_fire"
    assert found.could_fire_in is None


def test_explain_names_the_first_false_part_and_its_value(make_engine: MakeEngine) -> None:
    engine = make_engine(
        LOOSE + 'rule r { when page.path == "/pricing" and page.dwell >= 30s say "Hi" }'
    )
    home = explained(engine, "v1", "page_view", url="/home")["r"]
    assert home.status == "condition_false"
    assert "page.path" in home.detail
    assert '"/home"' in home.detail
    pricing = explained(engine, "v2", "page_view", url="/pricing")["r"]
    assert pricing.status == "condition_false"
    assert "page.dwell >= 30s" in pricing.detail
    assert "0s" in pricing.detail
    assert pricing.could_fire_in == 30


def test_explain_shows_a_missing_value(make_engine: MakeEngine) -> None:
    engine = make_engine(LOOSE + 'rule r { on page_view when visitor.plan == "pro" say "Hi" }')
    found = explained(engine, "v1", "page_view", url="/")["r"]
    assert found.status == "condition_false"
    assert "visitor.plan" in found.detail
    assert "missing" in found.detail


def test_explain_names_the_rule_cap_that_holds_a_rule_back(make_engine: MakeEngine) -> None:
    engine = make_engine(
        LOOSE + 'rule r { on page_view when session.pageviews >= 1 say "Hi" at most 1 per session }'
    )
    view(engine)
    found = explained(engine, "v1", "page_view", url="/")["r"]
    assert (found.status, found.suppression) == ("capped", "rule_cap")
    assert "per session" in found.detail


def test_explain_names_the_policy_cap_that_holds_a_rule_back(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine('rule r { when session.pageviews >= 1 say "Hi" }')
    view(engine)
    clock.advance(60)
    found = explained(engine, "v1", "tick")["r"]
    assert (found.status, found.suppression) == ("capped", "visitor_cap")
    assert "10m" in found.detail
    assert found.could_fire_in == 540


def test_explain_says_when_a_quiet_period_holds(make_engine: MakeEngine, clock: FakeClock) -> None:
    engine = make_engine(LOOSE + 'rule r { when session.pageviews >= 1 say "Hi" }')
    view(engine)
    send(engine, "v1", "invitation_dismissed")
    clock.advance(3600)
    found = explained(engine, "v1", "tick")["r"]
    assert (found.status, found.suppression) == ("quiet", "quiet_after_dismiss")
    assert found.could_fire_in == 86400 - 3600


def test_explain_says_outside_schedule(make_engine: MakeEngine) -> None:
    engine = make_engine(
        LOOSE + 'rule r { when session.pageviews >= 1 say "Hi" during daily 11:00-12:00 }'
    )
    found = explained(engine, "v1", "page_view", url="/")["r"]
    assert (found.status, found.suppression) == ("outside_schedule", "outside_schedule")
    assert found.could_fire_in == 3600


def test_explain_says_not_listening(make_engine: MakeEngine) -> None:
    engine = make_engine(LOOSE + 'rule r { on exit_intent when session.pageviews >= 1 say "Hi" }')
    found = explained(engine, "v1", "page_view", url="/")["r"]
    assert found.status == "not_listening"
    assert "exit_intent" in found.detail


def test_explain_says_outranked_and_by_whom(make_engine: MakeEngine) -> None:
    engine = make_engine(
        LOOSE
        + 'rule low { on page_view when session.pageviews >= 1 say "L" }\n'
        + 'rule high { priority 5 on page_view when session.pageviews >= 1 say "H" }\n'
    )
    result = explained(engine, "v1", "page_view", url="/")
    assert result["high"].status == "would_fire"
    assert (result["low"].status, result["low"].suppression) == ("outranked", "outranked")
    assert "high" in result["low"].detail


def test_explain_says_which_policy_gate_holds(make_engine: MakeEngine) -> None:
    engine = make_engine(
        'policy { only when visitor.plan == "pro" }\n'
        'rule r { on page_view when session.pageviews >= 1 say "Hi" }'
    )
    found = explained(engine, "v1", "page_view", url="/")["r"]
    assert (found.status, found.suppression) == ("policy", "policy_only")
    assert "visitor.plan" in found.detail


def test_explain_reports_blocked_and_in_chat_visitors(make_engine: MakeEngine) -> None:
    engine = make_engine(LOOSE + 'rule r { when session.pageviews >= 1 say "Hi" }')
    engine.block("v1", "test")
    blocked = engine.explain({"visitor": "v1", "event": "page_view", "url": "/"})
    assert blocked.decision.chat == "blocked"
    assert blocked.rules[0].status == "not_considered"
    view(engine, "v2")
    send(engine, "v2", "chat_started")
    in_chat = engine.explain({"visitor": "v2", "event": "tick"})
    assert in_chat.decision.chat == "in_chat"
    assert in_chat.rules[0].could_fire_in is None


# --- the default system clock ------------------------------------------------------------------


def test_freezegun_moves_the_default_system_clock() -> None:
    freezegun = require("freezegun")
    with freezegun.freeze_time("2026-01-05 10:00:00") as frozen:
        engine = Engine.from_source(LOOSE + DWELL, trust_event_time=False)
        assert view(engine).recheck_in == 30
        frozen.tick(timedelta(seconds=29))
        decision = send(engine, "v1", "tick")
        assert decision.invitation is None
        assert decision.recheck_in == 1
        frozen.tick(timedelta(seconds=1))
        assert send(engine, "v1", "tick").invitation is not None


def test_freezegun_moves_block_expiry_and_agent_freshness() -> None:
    freezegun = require("freezegun")
    with freezegun.freeze_time("2026-01-05 10:00:00") as frozen:
        engine = Engine.from_source(
            LOOSE + 'rule r { on page_view when agents.available > 0 say "Hi" }',
            trust_event_time=False,
        )
        engine.set_agents(online=1, available=1)
        engine.block("v1", "short", until=T0 + 60)
        assert view(engine, "v1").chat == "blocked"
        frozen.tick(timedelta(seconds=60))
        assert view(engine, "v1").invitation is not None
        frozen.tick(timedelta(seconds=61))
        assert view(engine, "v2").invitation is None  # the status is 121 s old


def test_explain_names_a_suppression_only_where_statistics_count_one(
    make_engine: MakeEngine,
) -> None:
    """Outside its schedule with a false condition: explain shows the schedule first
    (docs/semantics.md, section 10) but, like the statistics, counts no suppression."""
    engine = make_engine(
        LOOSE + 'rule r { when page.dwell >= 30s say "Hi" during sat 09:00-10:00 }\n'
    )  # the clock is a Monday
    explained_rule = engine.explain({"visitor": "v1", "event": "page_view", "url": "/"}).rules[0]
    assert (explained_rule.status, explained_rule.suppression) == ("outside_schedule", None)
    assert explained_rule.detail == "during sat 09:00-10:00"
    view(engine)
    assert engine.stats().rules[0].suppressed == {}
