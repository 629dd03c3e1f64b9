"""Warnings about rules that would pester visitors, or never fire at all.

Run only once a site has no errors, on what the checker collected; each
warning has its own function so a new one is a new function, not a longer
one (docs/language.md lists the codes).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import assert_never

import msgspec

from politely import analysis
from politely import nodes as n
from politely.caps import Cap
from politely.clauses import CLAUSE_OF
from politely.fields import AGENT_FIELDS
from politely.language import CAPPING_CLAUSES, cap_of, rule_events, visitor_caps

# (path, span, code, message, *hints): how a warning is reported
Warn = Callable[..., None]


class Site(msgspec.Struct, frozen=True):
    """What the checker collected from a site's files."""

    defines: Mapping[str, n.Define]
    define_paths: Mapping[str, str]
    policy: n.Policy | None
    policy_path: str
    rules: list[tuple[str, n.Rule]]
    expanded: Sequence[analysis.Expanded]  # each rule's `when`, in the order of `rules`
    used: frozenset[str]  # the defines some condition (a rule's, the policy's, a define's) names


def pester(site: Site, warn: Warn) -> None:
    conditions = {name: d.condition for name, d in site.defines.items()}
    policy_only, looks_at_agents = _policy_gates(site, conditions, warn)
    gate = analysis.Gate(policy_only) if policy_only is not None else None
    gate_waits = analysis.waits_before_inviting(policy_only)
    policy_caps = visitor_caps(site.policy)
    looser_of: dict[Cap, Cap | None] = {}
    for (path, rule), expanded in zip(site.rules, site.expanded, strict=True):
        looks_at_agents |= _rule(
            path, rule, expanded, gate, gate_waits, policy_caps, looser_of, warn
        )
    _unused_defines(site, warn)
    if site.rules and not looks_at_agents:
        _no_agent_check(site, warn)


def _policy_gates(
    site: Site, conditions: Mapping[str, n.Condition], warn: Warn
) -> tuple[n.Condition | None, bool]:
    """The policy's `only when` written out, and whether its gates read agents."""
    policy_only = None
    looks_at_agents = False
    for clause in site.policy.clauses if site.policy is not None else ():
        match clause:
            case n.Only() | n.Never():
                expanded = analysis.expand(clause.condition, conditions)
                looks_at_agents |= analysis.reads_agents(expanded)
                never_holds(expanded, clause.condition, site.policy_path, warn)
                if isinstance(clause, n.Only):
                    policy_only = expanded
            case n.Cap() | n.During() | n.Quiet() | n.SessionTimeout():
                pass  # not gates
            case n.On() | n.When() | n.Say() | n.Priority() | n.Cooldown():
                pass  # rules only: the checker refuses them here
            case _:
                assert_never(clause)
    return policy_only, looks_at_agents


def _rule(
    path: str,
    rule: n.Rule,
    expanded: analysis.Expanded,
    gate: analysis.Gate | None,  # the policy's `only when`, for every rule
    gate_waits: bool,  # whether the policy's `only when` waits before inviting
    policy_caps: list[Cap],
    looser_of: dict[Cap, Cap | None],  # shared by every rule: see _caps_without_effect
    warn: Warn,
) -> bool:
    """Warn about one rule; True when its condition reads agents."""
    when = rule.when
    condition = expanded.condition
    never = never_holds(condition, when.condition, path, warn)
    if not never and gate is not None and gate.never_with(condition):
        never = True
        warn(
            path,
            n.keyword_span(when.span, "when"),
            "never-holds",
            f"rule `{rule.name.value}` can never hold together with the policy's `only when`",
        )
    # A rule that never fires cannot fire on load: one warning, not two. Joined to the
    # policy's `only when`, the rule waits if either does (an `and` waits if one
    # operand does), so the gate's answer is worked out once, not for every rule.
    if not never and not gate_waits and not analysis.waits_before_inviting(condition):
        _fires_on_load(path, rule, warn)
    _caps_without_effect(path, rule, policy_caps, looser_of, warn)
    return not expanded.reads.isdisjoint(AGENT_FIELDS)


def _fires_on_load(path: str, rule: n.Rule, warn: Warn) -> None:
    """For a rule whose condition (with the policy's gate) does not wait."""
    if "page_view" in rule_events(rule):
        warn(
            path,
            rule.name.span,
            "fires-on-load",
            f"rule `{rule.name.value}` can invite the instant a page loads",
            "give the visitor time first: page.dwell >= 20s, session.pageviews >= 2, "
            "page.scroll >= 50%, or listen to a specific event with `on`",
        )


def _caps_without_effect(
    path: str, rule: n.Rule, policy_caps: list[Cap], looser_of: dict[Cap, Cap | None], warn: Warn
) -> None:
    """`looser_of`: the policy cap covering each cap seen so far. A site writes the
    same few caps in rule after rule; each is compared with the policy's once."""
    for clause in rule.clauses:
        # Only these make caps: testing first spares cap_of's match on every clause.
        limit = cap_of(clause) if isinstance(clause, CAPPING_CLAUSES) else None
        if limit is None:
            continue
        if limit not in looser_of:
            looser_of[limit] = next((p for p in policy_caps if p.covers(limit)), None)
        looser = looser_of[limit]
        if looser is not None:
            keyword = CLAUSE_OF[type(clause)].keyword
            warn(
                path,
                n.keyword_span(clause.span, keyword),
                "cap-no-effect",
                f"this cap never binds: the policy already allows {looser.describe()}",
                "tighten it, or delete it",
            )


def _unused_defines(site: Site, warn: Warn) -> None:
    for name, define in site.defines.items():
        if name not in site.used:
            warn(
                site.define_paths[name],
                define.name.span,
                "unused-define",
                f"`{name}` is never used",
            )


def _no_agent_check(site: Site, warn: Warn) -> None:
    path, first = site.rules[0]
    policy = site.policy
    warn(
        site.policy_path if policy is not None else path,
        n.keyword_span(policy.span, "policy") if policy is not None else first.name.span,
        "no-agent-check",
        "no rule or policy looks at agent availability",
        "invite only when someone can answer: "
        "policy { only when agents.available > 0 and queue.wait < 2m }",
    )


def never_holds(expanded: n.Condition, written: n.Condition, path: str, warn: Warn) -> bool:
    found = analysis.contradiction(expanded)
    if found is None:
        return False
    span = found.span if _inside(found.span, written.span) else written.span
    warn(path, span, "never-holds", "this condition can never hold")
    return True


def _inside(inner: n.Span, outer: n.Span) -> bool:
    return outer.start_pos <= inner.start_pos and inner.end_pos <= outer.end_pos
