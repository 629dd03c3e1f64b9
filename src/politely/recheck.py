"""recheck_in: whole seconds until time alone could let a rule fire. Pure, no clock.

Never late: with every quantity measured in whole ticks after `now`, the
answer is the first tick at which some `tick`-listening rule's condition,
caps and schedule and the policy's gates all hold at once. Agent status is
news, not time: the tick sets assume the last status holds, and when only an
agent or queue condition holds a rule back, the answer is at most
`agent_recheck`, so a site that ticks when told asks again soon after an
agent frees up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from politely import ticks
from politely.durations import DAY
from politely.reasons import POLICY_GATES, REASONS
from politely.ruleset import CompiledRule, RuleSet
from politely.schedule import CompiledSchedule
from politely.state import AgentStatus, Snapshot, VisitorState

AGENT_RECHECK = 30  # seconds: how soon to ask again while agents alone hold a rule back


def recheck_in(
    rules: RuleSet,
    s: VisitorState,
    snapshot: Snapshot,
    sitewide: float | None,
    now: float,
    agent_recheck: int = AGENT_RECHECK,
) -> int | None:
    """Whole seconds until time alone could let a rule fire, or None if it never could.

    `sitewide` is when the sitewide caps next allow an invitation, if any. When
    agent status (rather than time) is all that holds a rule back, the answer
    is at most `agent_recheck`, or the rule's own first tick if that is later.
    """
    if s.session is None or s.in_chat:
        return None
    listening = rules.listening("tick", s.page_path)
    if not listening:
        return None
    best = _first_tick(rules, listening, s, snapshot, sitewide, now, None, free=False)
    if best is not None and best <= agent_recheck:
        return best
    if not rules.policy.reads_agents and all(r.free_window is None for r in listening):
        return best
    free = _first_tick(rules, listening, s, snapshot, sitewide, now, best, free=True)
    if free is None:
        return best
    return max(free, agent_recheck) if best is None else min(best, max(free, agent_recheck))


def _first_tick(
    rules: RuleSet,
    listening: Sequence[CompiledRule],
    s: VisitorState,
    snapshot: Snapshot,
    sitewide: float | None,
    now: float,
    before: int | None,
    *,
    free: bool,
) -> int | None:
    gate = policy_ticks(rules, s, snapshot, sitewide, now, free=free)
    if not gate:
        return None
    best = before
    found: int | None = None
    for rule in listening:
        k = rule_first_tick(rules, rule, s, snapshot, gate, now, best, free=free)
        if k is not None and (best is None or k < best):
            best = found = k
            if k == 1:
                break
    return found


def fresh_agents(snapshot: Snapshot, now: float) -> AgentStatus | None:
    """The agent status as conditions read it: unknown once stale."""
    agents = snapshot.agents
    return agents if agents is not None and agents.fresh(now) else None


def policy_ticks(
    rules: RuleSet,
    s: VisitorState,
    snapshot: Snapshot,
    sitewide: float | None,
    now: float,
    *,
    free: bool = False,
) -> ticks.Ticks:
    """The future ticks at which the policy (and any block) would let a rule fire;
    with `free`, whatever the agent status would have to be."""
    policy = rules.policy
    opens = now + 1  # the earliest moment every release below allows
    block = snapshot.block
    if block is not None and block.active(now):
        if block.until is None:
            return ticks.EMPTY
        opens = max(opens, block.until)
    for reason in POLICY_GATES:
        opens_at = REASONS[reason].opens
        if opens_at is not None:
            opens = max(opens, opens_at(rules, s, sitewide, now))
    if opens == math.inf:
        return ticks.EMPTY
    gate = ticks.since(ticks.at_least(opens - now))
    agents = fresh_agents(snapshot, now)
    only = policy.only_free_window if free else policy.only_window
    never = policy.never_free_window if free else policy.never_window
    if only is not None:
        gate = ticks.both(gate, only(s, agents, now))
    if never is not None:
        gate = ticks.both(gate, ticks.invert(never(s, agents, now)))
    return gate


def rule_first_tick(
    rules: RuleSet,
    rule: CompiledRule,
    s: VisitorState,
    snapshot: Snapshot,
    gate: ticks.Ticks,
    now: float,
    before: int | None = None,
    *,
    free: bool = False,
) -> int | None:
    """The first future tick at which this rule could fire (with `free`: if the
    agent status let it), or None."""
    window_of = (rule.free_window or rule.window) if free else rule.window
    if window_of is None:
        return None
    lowest = 1
    for cap in rule.caps:
        release = cap.release(s.log, s.session, now)
        if release is None:
            return None
        lowest = max(lowest, ticks.at_least(release - now))
    window = ticks.both(window_of(s, fresh_agents(snapshot, now), now), gate)
    if lowest > 1:
        window = ticks.both(window, ticks.since(lowest))
    schedules = [x for x in (rule.schedule, rules.policy.schedule) if x is not None]
    return first_scheduled_tick(window, schedules, now, before)


def first_scheduled_tick(
    window: ticks.Ticks,
    schedules: Sequence[CompiledSchedule],
    now: float,
    before: int | None = None,
) -> int | None:
    """The first tick k >= 1 in `window` at which every schedule is open."""
    for start, end in window:
        k = max(start, 1)
        if k >= end:
            continue
        if not schedules:
            return k
        first_k = k
        while k < end:
            if before is not None and k >= before:
                return None
            if end >= ticks.INF and k - first_k > 8 * DAY:
                return None  # only the weekly schedules change past first_k: never
            for schedule in schedules:
                found = schedule.next_open(now + k)
                if found is None:
                    return None
                opens = ticks.at_least(found[0] - now)
                if opens > k:
                    k = opens
                    break
            else:
                return k
    return None
