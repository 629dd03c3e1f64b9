"""Why each rule would or would not fire for an event, and when it could.

`explain` runs the same pure evaluation as a decision, changes nothing, and
then walks every rule in the order of docs/contract.md, section 3: listening,
schedule, condition, rule caps, policy gates, caps, quiet periods, schedule.
A false condition is reported by its first false part and that field's
actual value, computed by the same generated code that makes decisions.

    >>> from politely.engine import Engine
    >>> engine = Engine.from_source('rule hi { when page.dwell >= 30s say "Hi" }')
    >>> result = engine.explain({"visitor": "v", "event": "page_view", "url": "/", "at": 0})
    >>> result.rules[0].status, result.rules[0].detail, result.rules[0].could_fire_in
    ('condition_false', 'page.dwell >= 30s is false: page.dwell is 0s', 30)
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal, assert_never

from pydantic import BaseModel

from politely import nodes as n
from politely.caps import Cap, sitewide_release
from politely.codegen import generate_condition
from politely.durations import format_duration
from politely.evaluator import (
    Verdict,
    evaluate,
    policy_reason,
    rule_reason,
    with_invitation,
)
from politely.formatter import format_condition
from politely.language import OUTCOME_EVENTS
from politely.models import Decision, Event
from politely.reasons import REASONS, Reason
from politely.recheck import AGENT_RECHECK, fresh_agents, policy_ticks, rule_first_tick
from politely.ruleset import CompiledRule, RuleSet
from politely.state import AgentStatus, Snapshot, VisitorState

Status = Literal[
    "fired",
    "would_fire",
    "outranked",
    "not_listening",
    "not_considered",
    "outside_schedule",
    "condition_false",
    "capped",
    "policy",
    "quiet",
]


class RuleExplanation(BaseModel):
    rule: str
    status: Status
    detail: str
    suppression: str | None = None  # the statistics' reason code, when one applies
    could_fire_in: int | None = None  # seconds until time alone could let it fire


class Explanation(BaseModel):
    visitor: str
    event: str
    at: datetime
    decision: Decision
    rules: list[RuleExplanation]


def explain(
    rules: RuleSet,
    snapshot: Snapshot,
    event: Event,
    now: float,
    *,
    applied: Verdict | None = None,
    agent_recheck: int = AGENT_RECHECK,
) -> Explanation:
    """Explain an event against the snapshot it was (or would be) evaluated on.

    With `applied`, the verdict a replay applied, the rule that won says
    `fired` instead of `would_fire`.
    """
    # pure: the state before any commit
    verdict = evaluate(rules, snapshot, event, now, agent_recheck=agent_recheck)
    decision = (applied or verdict).decision
    state = verdict.state or snapshot.state or VisitorState()
    agents = fresh_agents(snapshot, now)
    winner = decision.invitation.rule if decision.invitation is not None else None
    visitor_reason = _visitor_reason(event, state, decision)
    after = state  # "could fire" counts this event's invitation
    invited = verdict.invitation is not None and decision.invitation is not None
    if invited:
        assert verdict.invitation is not None
        after = with_invitation(state, verdict.invitation, rules.keep_invitations_for)
    sitewide = sitewide_release(snapshot.sitewide, after_one=invited)
    gate = policy_ticks(rules, after, snapshot, sitewide, now)
    explained = []
    for rule in rules.rules:
        could = None
        if not visitor_reason:
            could = rule_first_tick(rules, rule, after, agents, gate, now)
        status, detail, suppression = _status(
            rules,
            rule,
            state,
            event,
            agents,
            snapshot,
            now,
            visitor_reason,
            winner,
            applied is not None,
        )
        if status in ("fired", "would_fire"):
            could = None
        explained.append(
            RuleExplanation(
                rule=rule.name,
                status=status,
                detail=detail,
                suppression=suppression,
                could_fire_in=could,
            )
        )
    return Explanation(
        visitor=event.visitor,
        event=event.event,
        at=datetime.fromtimestamp(now, UTC),
        decision=decision,
        rules=explained,
    )


def _visitor_reason(event: Event, state: VisitorState, decision: Decision) -> str | None:
    if event.event in OUTCOME_EVENTS:
        return f"`{event.event}` is an outcome event: recorded, never answered with an invitation"
    if decision.chat == "blocked":
        return "the visitor is blocked"
    if decision.chat == "in_chat":
        return "the visitor is in a chat"
    if state.session is None:
        return "no session yet: a tick never starts one"
    return None


def _status(
    rules: RuleSet,
    rule: CompiledRule,
    s: VisitorState,
    event: Event,
    agents: AgentStatus | None,
    snapshot: Snapshot,
    now: float,
    visitor_reason: str | None,
    winner: str | None,
    applied: bool,
) -> tuple[Status, str, str | None]:
    """The rule's status, in words, and the statistics' reason code when one applies.

    The reasons come from the evaluator's own `rule_reason` and `policy_reason`,
    so explain cannot disagree with decisions or statistics; like statistics,
    it names a suppression only for a rule whose condition held.
    """
    if visitor_reason:
        return "not_considered", visitor_reason, None
    if event.event not in rule.events:
        return "not_listening", "listens to " + ", ".join(sorted(rule.events)), None
    false_part = first_false(rules, rule.condition, s, event, agents, now)
    reason = rule_reason(rule, s, now) or policy_reason(
        rules, s, event, agents, snapshot.sitewide, now
    )
    if reason is Reason.OUTSIDE_SCHEDULE:  # the rule's schedule comes before its condition
        assert rule.schedule is not None
        return (
            "outside_schedule",
            f"during {rule.schedule.text}",
            (reason if false_part is None else None),
        )
    if false_part is not None:
        return "condition_false", false_part, None
    if reason is not None:
        return REASONS[reason].status, _why(reason, rules, rule, s, event, agents, now), reason
    if winner == rule.name:
        return ("fired" if applied else "would_fire"), "its condition holds", None
    if winner is not None:
        verb = "fired" if applied else "would fire"
        return "outranked", f"`{winner}` {verb} instead", Reason.OUTRANKED
    return "would_fire", "its condition holds", None


def _why(
    reason: Reason,
    rules: RuleSet,
    rule: CompiledRule,
    s: VisitorState,
    event: Event,
    agents: AgentStatus | None,
    now: float,
) -> str:
    """The words for a suppression reason: which cap, which gate, how long ago."""
    policy = rules.policy
    match reason:
        case Reason.RULE_CAP:
            return f"this rule's cap: {_binding(rule.caps, s, now).describe()}"
        case Reason.VISITOR_CAP:
            return f"the policy's cap: {_binding(policy.caps, s, now).describe()}"
        case Reason.SITEWIDE_CAP:
            caps = ", ".join(cap.describe() for cap in policy.sitewide)
            return f"the sitewide cap: {caps} sitewide"
        case Reason.POLICY_ONLY:
            assert policy.only_condition is not None
            part = first_false(rules, policy.only_condition, s, event, agents, now)
            return f"the policy's `only when`: {part}"
        case Reason.POLICY_NEVER:
            assert policy.never_condition is not None
            never = format_condition(policy.never_condition)
            return f"the policy's `never when` holds: {never}"
        case Reason.QUIET_AFTER_DISMISS:
            assert s.last_dismiss is not None
            ago, quiet = now - s.last_dismiss, policy.quiet_after_dismiss
            return f"dismissed {_ago(ago)} ago; quiet {format_duration(quiet)} after dismiss"
        case Reason.QUIET_AFTER_CHAT:
            assert s.last_chat_end is not None
            ago, quiet = now - s.last_chat_end, policy.quiet_after_chat
            return f"a chat ended {_ago(ago)} ago; quiet {format_duration(quiet)} after chat"
        case Reason.POLICY_SCHEDULE:
            assert policy.schedule is not None
            return f"the policy's schedule: during {policy.schedule.text}"
        case Reason.OUTSIDE_SCHEDULE:
            assert rule.schedule is not None
            return f"during {rule.schedule.text}"
        case Reason.BLOCKED | Reason.IN_CHAT | Reason.OUTRANKED | Reason.CAP_RACE:
            raise AssertionError(f"{reason} is not a rule's or the policy's reason")
        case _:
            assert_never(reason)


def _binding(caps: tuple[Cap, ...], s: VisitorState, now: float) -> Cap:
    return next(cap for cap in caps if not cap.allows(s.log, s.session, now))


def _ago(seconds: float) -> str:
    return format_duration(max(0, int(seconds)))


# --- the first false part ------------------------------------------------------------


@lru_cache(maxsize=4096)
def _test_function(condition: n.Condition) -> Any:
    """A condition compiled on its own, by the generator that compiles rule sets."""
    return generate_condition(condition)


def holds(
    condition: n.Condition, s: VisitorState, event: Event, agents: AgentStatus | None, now: float
) -> bool:
    return bool(_test_function(condition)(s, event, agents, now))


def first_false(
    rules: RuleSet,
    condition: n.Condition,
    s: VisitorState,
    event: Event,
    agents: AgentStatus | None,
    now: float,
) -> str | None:
    """None when the condition holds; else its first false part, with the value seen."""
    if holds(condition, s, event, agents, now):
        return None
    match condition:
        case n.And():
            for operand in condition.operands:
                found = first_false(rules, operand, s, event, agents, now)
                if found is not None:
                    return found
        case n.Or():
            parts = [first_false(rules, o, s, event, agents, now) for o in condition.operands]
            return "none of the alternatives holds: " + "; ".join(p for p in parts if p)
        case n.Bare():
            value = rules.value(condition.field.name, s, event, agents, now)
            return f"{condition.field.name} is {show_value(condition.field.name, value)}"
        case n.Compare() | n.InList() | n.Matches() | n.Contains():
            value = rules.value(condition.field.name, s, event, agents, now)
            shown = show_value(condition.field.name, value)
            return f"{format_condition(condition)} is false: {condition.field.name} is {shown}"
        case n.Not() | n.Ref():
            pass
        case _:
            assert_never(condition)
    return f"{format_condition(condition)} is false"


def show_value(name: str, value: Any) -> str:
    if value is None:
        return "missing"
    if isinstance(value, float) and math.isinf(value):
        return "never (no invitation yet)"
    from politely.fields import KNOWN_FIELDS

    spec = KNOWN_FIELDS.get(name)
    if spec is not None and spec.type == "duration" and isinstance(value, int | float):
        return _ago(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if not isinstance(value, int | float) else str(value)
