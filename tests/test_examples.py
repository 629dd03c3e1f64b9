"""The example site in rules/ is a golden file: it checks with no error and no
warning, is already formatted, and shows the practices the language is for:
wait for engagement before inviting, only when an agent can answer, stay quiet
after a dismissal or a chat, several message variants per rule, an exit-intent
rule for big carts, a rule for error pages and one for returning customers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import politely
from conftest import FakeClock
from politely import analysis
from politely import nodes as n
from politely.cli import main
from politely.formatter import format_source
from politely.parser import parse
from politely.ruleset import CompiledRule, RuleSet

RULES = Path(__file__).resolve().parent.parent / "rules"
RULE_FILES = sorted(RULES.glob("*.rules"))
DAY = 86400


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    return politely.compile_rules(politely.check_path(RULES))


def leaf_tests(condition: n.Condition) -> Iterator[n.Test]:
    for node in analysis.walk(condition):
        if isinstance(node, n.Compare | n.InList | n.Matches | n.Contains | n.Bare):
            yield node


def threshold(rule: CompiledRule, field: str) -> float | None:
    """The lowest value `field >= X` / `field > X` in the rule's condition asks for."""
    found = [
        float(analysis.literal(t.value))  # type: ignore[arg-type]
        for t in leaf_tests(rule.condition)
        if isinstance(t, n.Compare) and t.field.name == field and t.op in (">=", ">")
    ]
    return min(found) if found else None


def test_there_are_example_files() -> None:
    assert len(RULE_FILES) >= 2


def test_the_example_site_checks_with_no_error_and_no_warning() -> None:
    result = politely.check_path(RULES)
    assert [(d.path, d.line, d.code, d.message) for d in result.diagnostics] == []
    assert result.policy is not None
    assert len(result.rules) >= 5


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_each_example_file_parses_without_a_diagnostic(path: Path) -> None:
    result = parse(path.read_text(encoding="utf-8"), str(path))
    assert result.diagnostics == ()
    assert result.program is not None


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_each_example_file_formats_unchanged(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert format_source(source, str(path)) == source


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_each_example_file_explains_itself_with_a_leading_comment(path: Path) -> None:
    assert path.read_text(encoding="utf-8").startswith("# ")


def test_the_example_site_invites_a_reader_only_once_an_agent_is_available(
    clock: FakeClock,  # a Monday, 11:00 in Berlin: inside the policy's schedule
) -> None:
    engine = politely.Engine.from_path(RULES, clock=clock, trust_event_time=False)
    page = {"visitor": "v", "event": "page_view", "url": "/pricing", "scroll": 60}
    assert engine.evaluate(page).invitation is None
    clock.advance(50)
    assert engine.evaluate({"visitor": "v", "event": "tick"}).invitation is None
    engine.set_agents(online=2, available=1, queue_length=0, queue_wait=10)
    invitation = engine.evaluate({"visitor": "v", "event": "tick"}).invitation
    assert invitation is not None
    assert invitation.rule == "pricing_help"


# --- the practices the examples teach ---------------------------------------------------


def test_every_rule_has_several_message_variants(ruleset: RuleSet) -> None:
    assert {r.name: len(r.messages) >= 2 for r in ruleset.rules} == {
        r.name: True for r in ruleset.rules
    }


def test_invitations_wait_for_an_agent_who_can_answer(ruleset: RuleSet) -> None:
    only = ruleset.policy.only_condition
    assert only is not None
    fields = analysis.fields_read(only)
    assert "agents.available" in fields
    assert "queue.wait" in fields
    assert analysis.reads_agents(only)


def test_the_policy_stays_quiet_after_a_dismissal_and_after_a_chat(ruleset: RuleSet) -> None:
    assert ruleset.policy.quiet_after_dismiss >= DAY
    assert ruleset.policy.quiet_after_chat >= DAY


def test_the_policy_caps_invitations_per_visitor_and_sitewide(ruleset: RuleSet) -> None:
    caps = {(c.limit, c.window) for c in ruleset.policy.caps}
    per_session = [limit for limit, window in caps if window == "session"]
    assert per_session
    assert min(per_session) <= 3
    assert any(isinstance(window, int) and window >= 10 * 60 for _, window in caps)
    assert ruleset.policy.sitewide


def test_every_page_view_rule_waits_for_dwell_page_views_or_scroll(ruleset: RuleSet) -> None:
    on_load = [
        r.name
        for r in ruleset.rules
        if "page_view" in r.events and not analysis.waits_before_inviting(r.condition)
    ]
    assert on_load == []


def test_there_are_dwell_and_page_view_thresholds(ruleset: RuleSet) -> None:
    dwell = [threshold(r, "page.dwell") for r in ruleset.rules]
    pageviews = [threshold(r, "session.pageviews") for r in ruleset.rules]
    assert any(t is not None and t >= 20 for t in dwell)
    assert any(t is not None and t >= 2 for t in pageviews)


def test_every_rule_caps_itself(ruleset: RuleSet) -> None:
    assert [r.name for r in ruleset.rules if not r.caps] == []


def test_an_exit_intent_rule_rescues_big_carts(ruleset: RuleSet) -> None:
    rescue = [r for r in ruleset.rules if r.events == frozenset({"exit_intent"})]
    assert rescue
    (rule,) = rescue
    cart = threshold(rule, "visitor.cart_value")
    assert cart is not None
    assert cart >= 50
    # the highest priority: a visitor about to leave with a big cart comes first
    assert rule.rank == 0


def test_an_error_page_rule_listens_for_errors(ruleset: RuleSet) -> None:
    def about_errors(rule: CompiledRule) -> bool:
        for t in leaf_tests(rule.condition):
            value = getattr(t, "value", None) or getattr(t, "text", None)
            if isinstance(value, n.Text) and "error" in value.value.lower():
                return True
        return any("error" in event for event in rule.events)

    assert [r.name for r in ruleset.rules if about_errors(r)]


def test_a_rule_welcomes_returning_customers(ruleset: RuleSet) -> None:
    returning = [
        r
        for r in ruleset.rules
        if any(isinstance(t, n.Bare) and t.field.name == "visitor.returning"
               for t in leaf_tests(r.condition))
    ]  # fmt: skip
    assert returning
    assert all(threshold(r, "page.dwell") for r in returning)


def test_rules_are_ranked_by_priority_then_source_order(ruleset: RuleSet) -> None:
    ranked = [(r.priority, -r.order) for r in ruleset.by_rank]
    assert ranked == sorted(ranked, reverse=True)
    assert [r.rank for r in ruleset.by_rank] == list(range(len(ruleset.rules)))


def test_a_message_greets_by_name_with_a_fallback() -> None:
    slots = [
        part
        for path in RULE_FILES
        for item in (parse(path.read_text(encoding="utf-8")).program or n.Program(())).items
        if isinstance(item, n.Rule)
        for clause in item.clauses
        if isinstance(clause, n.Say)
        for message in clause.messages
        for part in message.parts
        if isinstance(part, n.Slot)
    ]
    assert any(slot.fallback for slot in slots)


def test_the_demo_traffic_simulates_with_invitations(capsys: pytest.CaptureFixture[str]) -> None:
    traffic = RULES / "demo-traffic.jsonl"
    assert main(["simulate", str(RULES), str(traffic), "--json"]) == 0
    decisions = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert decisions
    assert any(d["invitation"] is not None for d in decisions)
