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
from collections.abc import Iterator, Sequence

import msgspec

from politely import ticks
from politely.durations import DAY
from politely.reasons import POLICY_GATES, REASONS
from politely.ruleset import CompiledRule, RuleSet
from politely.schedule import CompiledSchedule
from politely.state import AgentStatus, Block, SiteReading, Snapshot, VisitorState

AGENT_RECHECK = 30  # seconds: how soon to ask again while agents alone hold a rule back
LOOK_AHEAD = 8 * DAY  # how far past a rule's window opening its schedules are searched
# A first tick not found within the look-ahead (there may be one past it): `first_ticks`
# may answer it, `combine` makes it the look-ahead itself (ask again then: never late),
# a memo never reuses it (later it may be found).
BEYOND = ticks.INF


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
    best, free = first_ticks(rules, s, snapshot, sitewide, now, agent_recheck)
    return combine(best, free, agent_recheck)


def first_ticks(
    rules: RuleSet,
    s: VisitorState,
    snapshot: Snapshot,
    sitewide: float | None,
    now: float,
    agent_recheck: int = AGENT_RECHECK,
) -> tuple[int | None, int | None]:
    """The two first ticks `recheck_in` combines: the first at which a rule could
    fire with the agent status as it is (`best`), and the first at which one
    could if the agents let it (`free`, looked for only when it can matter:
    before `best`, and when `best` is later than `agent_recheck`)."""
    if s.session is None or s.in_chat:
        return None, None
    listening = rules.listening("tick", s.page_path)
    if not listening:
        return None, None
    lowest = policy_lowest(rules, s, snapshot, sitewide, now)
    if lowest is None:
        return None, None
    agents = fresh_agents(snapshot, now)
    gate = policy_window(rules, s, agents, lowest, now)
    best = _first_tick(rules, listening, s, agents, gate, now, None, free=False)
    if best is not None and best <= agent_recheck:
        return best, None
    free_gate = gate
    if rules.policy.reads_agents:
        free_gate = policy_window(rules, s, agents, lowest, now, free=True)
    searched: Sequence[CompiledRule] = listening
    if free_gate == gate:
        # The agents hold the policy back at no tick: a rule that reads none of them
        # finds in the free pass what it found in the first, so only the others can
        # find a sooner tick.
        searched = [rule for rule in listening if rule.free_window is not None]
        if not searched:
            return best, None
    free = _first_tick(rules, searched, s, agents, free_gate, now, best, free=True)
    return best, free


def combine(best: int | None, free: int | None, agent_recheck: int) -> int | None:
    """recheck_in from the first ticks: `best`, or sooner (at most `agent_recheck`,
    never before `free`) when only agent status holds a rule back."""
    if best is not None and best <= agent_recheck:
        return best
    # Nothing found within the schedules' look-ahead: the first tick, if any, lies
    # past it, so asking again at its end is never late (null would say never).
    if best == BEYOND:
        best = LOOK_AHEAD
    if free is None:
        return best
    if free == BEYOND:
        free = LOOK_AHEAD
    return max(free, agent_recheck) if best is None else min(best, max(free, agent_recheck))


def _first_tick(
    rules: RuleSet,
    listening: Sequence[CompiledRule],
    s: VisitorState,
    agents: AgentStatus | None,
    gate: ticks.Ticks,
    now: float,
    before: int | None,
    *,
    free: bool,
) -> int | None:
    if not gate:
        return None
    best = before
    found: int | None = None
    for rule in listening:
        k = _rule_tick(rules, rule, s, agents, gate, now, best, free=free)
        if k is not None and (best is None or k < best):
            best = found = k
            if k == 1:
                break
    return found


def fresh_agents(site: SiteReading, now: float) -> AgentStatus | None:
    """The agent status as conditions read it: unknown once stale."""
    agents = site.agents
    return agents if agents is not None and agents.fresh(now) else None


# When each time-released policy gate opens, in the pipeline's order.
_GATE_OPENS = tuple(
    opens for opens in (REASONS[reason].opens for reason in POLICY_GATES) if opens is not None
)


def policy_lowest(
    rules: RuleSet, s: VisitorState, snapshot: Snapshot, sitewide: float | None, now: float
) -> int | None:
    """The first tick at which the block and every time-released policy gate (caps,
    quiet periods, the sitewide caps) allow an invitation; None for never. Agents
    play no part, so `first_ticks` asks once for both of its passes."""
    # Each release is measured from `now` (never as `now + 1`: near a power of
    # two that sum rounds to a hair over a second).
    lowest = 1
    block = snapshot.block
    if block is not None and block.active(now):
        if block.until is None:
            return None
        lowest = max(lowest, ticks.at_least(block.until - now))
    for opens_at in _GATE_OPENS:
        opens = opens_at(rules, s, sitewide, now)
        if opens == math.inf:
            return None
        lowest = max(lowest, ticks.at_least(opens - now))
    return lowest


def policy_window(
    rules: RuleSet,
    s: VisitorState,
    agents: AgentStatus | None,
    lowest: int,
    now: float,
    *,
    free: bool = False,
) -> ticks.Ticks:
    """The ticks from `lowest` (`policy_lowest`) on at which the policy's `only
    when` and `never when` let a rule fire, `agents` as conditions read them
    (`fresh_agents`); with `free`, whatever the agent status would have to be."""
    policy = rules.policy
    gate = ticks.since(lowest)
    only = policy.only_free_window if free else policy.only_window
    never = policy.never_free_window if free else policy.never_window
    if only is not None:
        gate = ticks.both(gate, only(s, agents, now))
    if never is not None:
        gate = ticks.both(gate, ticks.invert(never(s, agents, now)))
    return gate


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
    lowest = policy_lowest(rules, s, snapshot, sitewide, now)
    if lowest is None:
        return ticks.EMPTY
    return policy_window(rules, s, fresh_agents(snapshot, now), lowest, now, free=free)


def rule_first_tick(
    rules: RuleSet,
    rule: CompiledRule,
    s: VisitorState,
    agents: AgentStatus | None,
    gate: ticks.Ticks,
    now: float,
    before: int | None = None,
    *,
    free: bool = False,
) -> int | None:
    """The first future tick at which this rule could fire (with `free`: if the
    agent status let it; `agents` as conditions read them, `fresh_agents`), or None.
    Past the schedules' look-ahead it is the look-ahead, as in `combine`: never late."""
    k = _rule_tick(rules, rule, s, agents, gate, now, before, free=free)
    return LOOK_AHEAD if k == BEYOND else k


def _rule_tick(
    rules: RuleSet,
    rule: CompiledRule,
    s: VisitorState,
    agents: AgentStatus | None,
    gate: ticks.Ticks,
    now: float,
    before: int | None,
    *,
    free: bool,
) -> int | None:
    """`rule_first_tick`, or BEYOND when its schedules were searched as far as they are."""
    window_of = (rule.free_window or rule.window) if free else rule.window
    if window_of is None:
        return None
    # The condition first: most rules' conditions hold at no future tick of a page
    # (another path), and then their caps need not be counted.
    window = ticks.both(window_of(s, agents, now), gate)
    if not window:
        return None
    log = s.log
    if log is not None:  # with no invitation yet, every cap allows one now
        lowest = 1
        for cap in rule.caps:
            release = cap.release(log, s.session, now)
            if release is None:
                return None
            lowest = max(lowest, ticks.at_least(release - now))
        if lowest > 1:
            window = ticks.both(window, ticks.since(lowest))
    schedule, policy_schedule = rule.schedule, rules.policy.schedule
    if schedule is not None and policy_schedule is not None and rule.name in rules.apart:
        return None  # never open together: no look-ahead could find a tick
    schedules = [x for x in (schedule, policy_schedule) if x is not None]
    return first_scheduled_tick(window, schedules, now, before)


def first_scheduled_tick(
    window: ticks.Ticks,
    schedules: Sequence[CompiledSchedule],
    now: float,
    before: int | None = None,
) -> int | None:
    """The first tick k >= 1 in `window` at which every schedule is open; BEYOND
    when none is within the look-ahead (though one may be past it)."""
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
            if end >= ticks.INF and k - first_k > LOOK_AHEAD:
                return BEYOND  # weekly schedules that DST (or zones) may yet bring together
            for schedule in schedules:
                found = schedule.next_open(now + k)
                if found is None:
                    return BEYOND  # none within its look-ahead (a DST gap may skip a week)
                opens = ticks.at_least(found[0] - now)
                if opens > k:
                    k = opens
                    break
            else:
                return k
    return None


# --- reusing an answer ------------------------------------------------------------------------

# A margin around the phases below: far above float rounding at Unix-time scale
# (a quarter of a microsecond), far below anything a clock tells apart.
PHASE_MARGIN = 1e-4
# With more schedules than this, whole seconds always count as a threshold: asking
# each one when it next changes would cost a tick more than recomputing.
FEW_SCHEDULES = 8


class RecheckMemo(msgspec.Struct, eq=False, gc=False):
    """The first ticks found at `at` for one state and snapshot, to reuse later.

    Every set `first_ticks` intersects has its edges at thresholds: a time the
    state or snapshot holds (a page's start, an invitation, a block's expiry, a
    sitewide release) plus whole seconds, or a whole second of the clock
    (schedules, time of day). At `at + d`, with the same inputs, the ticks are
    the old ones moved by d. When d is whole, each lands on an old tick, so each
    first tick is the old one minus d. When d has a fraction f, each tick moves
    by f and stays inside or outside every set as long as no threshold lies
    within f after an old tick: no threshold's phase (its distance past the
    old tick before it) in [0, f]. Either way the answer holds only while d is
    less than it: what lies past a first tick was never looked at. And a first
    tick not found within the schedules' look-ahead (BEYOND) is never reused:
    the look-ahead moves with the clock, so later it may be found.

    The thresholds depend only on what the memo holds (its inputs must be the
    same for it to answer at all), so their phases are worked out once, on the
    first fractional move, and kept (`_nearest`): the nearest phase, or 0.0 when
    a phase lies within the margin below a whole second (no fraction is safe).

    Its fields never change, but `report`: a later status that reads the same
    takes its place, so the next check is one identity test. A msgspec Struct
    (never encoded): one is made for every event that changes the state, in a
    twentieth of the time a frozen dataclass takes; it refers to nothing that
    refers back to it, so the collector need not track it.
    """

    at: float
    best: int | None
    free: int | None
    rules: RuleSet
    agent_recheck: int
    state: VisitorState
    block: Block | None
    report: AgentStatus | None  # the agent status at `at`, or a later one that reads the same
    agents: tuple[object, ...] | None  # what the tick sets read of it (`agent_reading`)
    sitewide: float | None  # when the sitewide caps free up, if after the first tick
    # Its state has a session and no chat open: a tick on it may be quiet (one in
    # a chat is counted; a state with no session, a visitor who has only ticked,
    # is rare and left to `evaluate`).
    ticks_may_be_quiet: bool
    # Neither first tick is BEYOND (later it may be found), nor `best` so far off
    # that another rule's search of its schedules may have stopped short of it.
    reusable: bool
    # The first tick after `at` at which the condition of a rule listening to ticks
    # holds on a plain tick without props (ticks.INF: never), once `holds_from` was
    # asked (-1 before). Before it, with the inputs `shifted` checks unchanged, no
    # candidate is there to test.
    conditions_hold_from: int = -1
    _nearest: list[float] = msgspec.field(default_factory=list)  # see above

    @classmethod
    def of(
        cls,
        rules: RuleSet,
        s: VisitorState,
        snapshot: Snapshot,
        sitewide: float | None,
        now: float,
        agent_recheck: int,
        best: int | None,
        free: int | None,
        *,
        quiet_ticks: bool = True,
    ) -> RecheckMemo:
        """The memo of `first_ticks`' answer. With `quiet_ticks`, what quiet ticks
        read of it (`holds_from`) is worked out now, while what it reads is still in
        the CPU's caches (first_ticks read it), not on the first quiet tick: it would
        weigh on the median tick; without, only if one asks (see `evaluate`)."""
        report = fresh_agents(snapshot, now)
        effective = _effective(sitewide, now)
        quiet = s.session is not None and not s.in_chat
        far = best is not None and best > LOOK_AHEAD and rules.has_schedules
        reusable = best != BEYOND and free != BEYOND and not far
        block = snapshot.block
        memo = cls(
            now,
            best,
            free,
            rules,
            agent_recheck,
            s,
            block,
            report,
            rules.agent_reading(report),
            effective,
            quiet,
            reusable,
        )
        if quiet_ticks:
            memo.holds_from()
        return memo

    def shifted(
        self,
        rules: RuleSet,
        s: VisitorState,
        site: SiteReading,
        sitewide: float | None,
        now: float,
        agent_recheck: int,
    ) -> tuple[int | None, int | None] | None:
        """`first_ticks` at `now`, from this memo; None when it cannot say (other
        inputs, or a move of the ticks that could change the answer)."""
        at = self.at
        if not self.reusable or s is not self.state or rules is not self.rules:
            return None
        if agent_recheck != self.agent_recheck:
            return None
        block = site.block
        if block != self.block or (block is not None and block.active(now) != block.active(at)):
            return None
        agents = site.agents
        if agents is not None and not agents.fresh(now):
            agents = None  # as `fresh_agents` has it
        if agents is not self.report:
            if rules.agent_reading(agents) != self.agents:
                return None
            self.report = agents  # (any status kept here reads as `agents`)
        if _effective(sitewide, now) != self.sitewide:
            return None
        elapsed = now - at
        if elapsed < 0:
            return None
        whole = math.floor(elapsed)
        best, free = self.best, self.free
        if (best is not None and whole >= best) or (free is not None and whole >= free):
            return None
        fraction = elapsed - whole
        if fraction and self.nearest_phase() <= fraction + PHASE_MARGIN:
            return None
        return (None if best is None else best - whole, None if free is None else free - whole)

    def holds_from(self) -> int:
        """`conditions_hold_from`, worked out the first time it is asked."""
        found = self.conditions_hold_from
        if found < 0:
            found = _conditions_hold_from(self.rules, self.state, self.report, self.at)
            self.conditions_hold_from = found  # (any thread works out the same)
        return found

    def nearest_phase(self) -> float:
        """The smallest phase of the memo's thresholds, or 0.0 when one lies within
        the margin below a whole second: a move by a fraction f crosses none exactly
        when f + PHASE_MARGIN is less than this (inf: no threshold, any f is safe)."""
        nearest = self._nearest
        if not nearest:  # the first fractional move: work the phases out once
            # Past the first tick no edge can move a tick that decides (`free` is
            # before it when both are found). With no first tick every tick decides,
            # however soon the free one: a schedule opening past it may let a rule in.
            at, best = self.at, self.best
            horizon = at + best + 1 if best is not None else math.inf
            found = math.inf
            for t in _thresholds(self.rules, self.state, self.block, self.sitewide, at, horizon):
                phase = (t - at) % 1.0
                if phase >= 1.0 - PHASE_MARGIN:
                    found = 0.0
                    break
                found = min(found, phase)
            nearest.append(found)  # a list the memo holds: set once, read after
        return nearest[0]


def _conditions_hold_from(
    rules: RuleSet, s: VisitorState, agents: AgentStatus | None, at: float
) -> int:
    """`RecheckMemo.conditions_hold_from`: every tick-listening rule's tick set at `at`."""
    first = ticks.INF
    for rule in rules.listening("tick", s.page_path):
        window = rule.window
        k = ticks.first(window(s, agents, at)) if window is not None else None
        if k is not None and k < first:
            first = k
    return first


def _changes_before(schedule: CompiledSchedule, now: float, horizon: float) -> bool:
    """Whether the schedule opens or closes after `now` and by `horizon` (or may:
    an interval cut at `next_open`'s own horizon counts as a change)."""
    found = schedule.next_open(now)
    if found is None:
        return horizon > now + LOOK_AHEAD  # next_open looks this far ahead
    start, end = found
    return (start if start > now else end) <= horizon


def _effective(sitewide: float | None, now: float) -> float | None:
    """The sitewide release as the gate sees it: before the first tick it is no edge."""
    return sitewide if sitewide is not None and sitewide - now > 1 else None


def _thresholds(
    rules: RuleSet,
    s: VisitorState,
    block: Block | None,
    sitewide: float | None,
    now: float,
    horizon: float = math.inf,
) -> Iterator[float]:
    """Every time a tick set's edge can sit at, less whole seconds (see RecheckMemo).

    Each time the state holds that a condition (`page.dwell`, `session.duration`,
    `invitations.*`), cap, quiet period or gate measures from; a field that
    measures from another must add it here (tests/test_recheck_memo.py compares
    reuse with recomputing). `last_activity` is not one: ticks never end a session."""
    schedules = rules.schedules
    if len(schedules) > FEW_SCHEDULES or any(_changes_before(x, now, horizon) for x in schedules):
        yield math.floor(now)  # schedules open and close on whole seconds of the clock
    for t in (s.session_start, s.page_start, s.last_dismiss, s.last_chat_end):
        if t is not None:
            yield t
    if s.log is not None:
        for record in s.log.recent:
            yield record.at
    if block is not None and block.until is not None:
        yield block.until
    if sitewide is not None:
        yield sitewide
