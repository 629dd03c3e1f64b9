"""Why an invitation was held back: one table, in the order the evaluator checks.

The evaluator counts these, recheck computes when the policy gates open,
explain shows them (by their status word) and statistics sort by them; the
service's metrics label by them. The order is docs/contract.md, section 3.

    >>> [r.value for r in POLICY_GATES][:2]
    ['policy_only', 'policy_never']
    >>> REASONS[Reason.QUIET_AFTER_CHAT].status
    'quiet'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from politely.caps import sitewide_allows, visitor_allows

if TYPE_CHECKING:
    from politely.models import Event
    from politely.ruleset import RuleSet
    from politely.state import AgentStatus, SitewideUsage, VisitorState


class Reason(StrEnum):
    """A reason code, as counted and reported; the values are the public strings."""

    BLOCKED = "blocked"
    IN_CHAT = "in_chat"
    OUTSIDE_SCHEDULE = "outside_schedule"
    RULE_CAP = "rule_cap"
    POLICY_ONLY = "policy_only"
    POLICY_NEVER = "policy_never"
    VISITOR_CAP = "visitor_cap"
    SITEWIDE_CAP = "sitewide_cap"
    QUIET_AFTER_DISMISS = "quiet_after_dismiss"
    QUIET_AFTER_CHAT = "quiet_after_chat"
    POLICY_SCHEDULE = "policy_schedule"
    OUTRANKED = "outranked"
    CAP_RACE = "cap_race"


Stage = Literal["visitor", "rule", "policy", "choice"]
ExplainStatus = Literal[
    "not_considered", "outside_schedule", "capped", "policy", "quiet", "outranked"
]

# (rules, state, event, agents, sitewide usage, now) → True when the gate stops every rule
Blocks = Callable[
    ["RuleSet", "VisitorState", "Event", "AgentStatus | None", "Sequence[SitewideUsage]", float],
    bool,
]
# (rules, state, when the sitewide caps free up, now) → the moment the gate opens (inf: never)
Opens = Callable[["RuleSet", "VisitorState", "float | None", float], float]


@dataclass(frozen=True, slots=True)
class ReasonInfo:
    stage: Stage  # visitor: nobody considered; rule, policy: one rule held; choice: lost out
    status: ExplainStatus  # the word explain shows
    blocks: Blocks | None = None  # policy gates: does it stop invitations now
    opens: Opens | None = None  # time-released gates: when; the others are tick windows


def _only(
    rules: RuleSet, s: VisitorState, e: Event, a: AgentStatus | None, _: object, now: float
) -> bool:
    only = rules.policy.only
    return only is not None and not only(s, e, a, now)


def _never(
    rules: RuleSet, s: VisitorState, e: Event, a: AgentStatus | None, _: object, now: float
) -> bool:
    never = rules.policy.never
    return never is not None and never(s, e, a, now)


def _visitor_cap(
    rules: RuleSet, s: VisitorState, _e: object, _a: object, _u: object, now: float
) -> bool:
    return s.log is not None and not visitor_allows(rules.policy.caps, s.log, s.session, now)


def _sitewide_cap(
    rules: RuleSet, _s: object, _e: object, _a: object, usage: Sequence[SitewideUsage], _n: float
) -> bool:
    return bool(usage) and not sitewide_allows(rules.policy.sitewide, usage)


def _quiet_dismiss(
    rules: RuleSet, s: VisitorState, _e: object, _a: object, _u: object, now: float
) -> bool:
    return now < _dismiss_opens(rules, s, None, now)


def _quiet_chat(
    rules: RuleSet, s: VisitorState, _e: object, _a: object, _u: object, now: float
) -> bool:
    return now < _chat_opens(rules, s, None, now)


def _schedule(rules: RuleSet, _s: object, _e: object, _a: object, _u: object, now: float) -> bool:
    schedule = rules.policy.schedule
    return schedule is not None and not schedule.is_open(now)


def _caps_open(rules: RuleSet, s: VisitorState, _: float | None, now: float) -> float:
    opens = now
    if s.log is not None:
        for cap in rules.policy.caps:
            release = cap.release(s.log, s.session, now)
            if release is None:
                return math.inf
            opens = max(opens, release)
    return opens


def _sitewide_opens(_r: RuleSet, _s: VisitorState, sitewide: float | None, now: float) -> float:
    return now if sitewide is None else sitewide


def _dismiss_opens(rules: RuleSet, s: VisitorState, _: float | None, now: float) -> float:
    last = s.last_dismiss
    return now if last is None else last + rules.policy.quiet_after_dismiss


def _chat_opens(rules: RuleSet, s: VisitorState, _: float | None, now: float) -> float:
    last = s.last_chat_end
    return now if last is None else last + rules.policy.quiet_after_chat


REASONS: dict[Reason, ReasonInfo] = {  # in pipeline order
    Reason.BLOCKED: ReasonInfo("visitor", "not_considered"),
    Reason.IN_CHAT: ReasonInfo("visitor", "not_considered"),
    Reason.OUTSIDE_SCHEDULE: ReasonInfo("rule", "outside_schedule"),
    Reason.RULE_CAP: ReasonInfo("rule", "capped"),
    Reason.POLICY_ONLY: ReasonInfo("policy", "policy", _only),
    Reason.POLICY_NEVER: ReasonInfo("policy", "policy", _never),
    Reason.VISITOR_CAP: ReasonInfo("policy", "capped", _visitor_cap, _caps_open),
    Reason.SITEWIDE_CAP: ReasonInfo("policy", "capped", _sitewide_cap, _sitewide_opens),
    Reason.QUIET_AFTER_DISMISS: ReasonInfo("policy", "quiet", _quiet_dismiss, _dismiss_opens),
    Reason.QUIET_AFTER_CHAT: ReasonInfo("policy", "quiet", _quiet_chat, _chat_opens),
    Reason.POLICY_SCHEDULE: ReasonInfo("policy", "outside_schedule", _schedule),
    Reason.OUTRANKED: ReasonInfo("choice", "outranked"),
    Reason.CAP_RACE: ReasonInfo("choice", "capped"),
}
assert list(REASONS) == list(Reason)

# Why a visitor was not considered at all (counted once per evaluation).
VISITOR_SUPPRESSIONS = tuple(r for r in Reason if REASONS[r].stage == "visitor")
# Why a rule whose condition held did not fire (stats, explain, simulate).
SUPPRESSIONS = tuple(r for r in Reason if REASONS[r].stage != "visitor")
# The policy's gates, each with what blocks now.
POLICY_GATES = tuple(r for r in Reason if REASONS[r].stage == "policy")
ORDER = {reason.value: i for i, reason in enumerate(Reason)}
