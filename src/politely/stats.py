"""What invitations achieve: shown, accepted, dismissed, and why others were held back.

Counts come from the store as (rule, variant, what) triples; this module
shapes them for people (`engine.stats()`, the service's `/stats`, simulate).
A suppression is counted once per evaluation in which a rule's condition held
but something stopped it (`rule_cap`, `quiet_after_dismiss`, ...), so a rule
held back on ten ticks counts ten.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import TYPE_CHECKING

from pydantic import BaseModel

from politely.reasons import ORDER

if TYPE_CHECKING:
    from politely.ruleset import RuleSet
    from politely.state import Count


class VariantStats(BaseModel):
    variant: int
    message: str
    shown: int = 0
    accepted: int = 0
    dismissed: int = 0
    acceptance_rate: float | None = None


class RuleStats(BaseModel):
    rule: str
    shown: int = 0
    accepted: int = 0
    dismissed: int = 0
    acceptance_rate: float | None = None
    variants: list[VariantStats]
    suppressed: dict[str, int]


class Stats(BaseModel):
    ruleset: str
    rules: list[RuleStats]
    suppressed: dict[str, int]  # visitors not considered at all: blocked, in_chat


def _rate(accepted: int, dismissed: int, shown: int) -> float | None:
    """Accepted per shown, once an outcome was recorded; None before (not 0.0:
    invitations nobody has answered yet say nothing about acceptance)."""
    return round(accepted / shown, 4) if shown and (accepted or dismissed) else None


def _pipeline_order(item: tuple[Count, int]) -> tuple[int, str]:
    """Reasons in the order the evaluator checks them (docs/contract.md, the evaluation order)."""
    what = item[0][2]
    return (ORDER.get(what, len(ORDER)), what)


def build_stats(rules: RuleSet, counts: Counter[Count]) -> Stats:
    held: dict[str | None, dict[str, int]] = defaultdict(dict)  # rule (None: visitor) → reasons
    for (name, variant, what), count in sorted(counts.items(), key=_pipeline_order):
        if variant is None and count:
            held[name][what] = count
    per_rule: list[RuleStats] = []
    for rule in rules.rules:
        variants = []
        for i, message in enumerate(rule.messages):
            shown, accepted, dismissed = (
                counts.get((rule.name, i, what), 0) for what in ("shown", "accepted", "dismissed")
            )
            variants.append(
                VariantStats(
                    variant=i,
                    message=message.template,
                    shown=shown,
                    accepted=accepted,
                    dismissed=dismissed,
                    acceptance_rate=_rate(accepted, dismissed, shown),
                )
            )
        suppressed = held.get(rule.name, {})
        shown = sum(v.shown for v in variants)
        accepted = sum(v.accepted for v in variants)
        dismissed = sum(v.dismissed for v in variants)
        per_rule.append(
            RuleStats(
                rule=rule.name,
                shown=shown,
                accepted=accepted,
                dismissed=dismissed,
                acceptance_rate=_rate(accepted, dismissed, shown),
                variants=variants,
                suppressed=suppressed,
            )
        )
    return Stats(ruleset=rules.hash, rules=per_rule, suppressed=held.get(None, {}))
