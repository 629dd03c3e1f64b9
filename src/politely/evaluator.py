"""The pure core: (rule set, snapshot, event, now) → verdict. No I/O, no clock.

Recording the event is `recording.py`; `recheck_in` is `recheck.py`; this
module decides.

A `Verdict` is the decision plus the state change a store must apply: the
visitor's new state and, when a rule fired, the invitation to record together
with the caps to check again atomically. The order is LANGUAGE.md section 5:

1. record the event (session, page, attributes, outcome, open chat);
2. outcome events, blocked visitors and open chats stop there;
3. candidates: rules listening to the event whose condition holds, under
   their schedule and caps and the policy's gates, caps, quiet periods and
   schedule;
4. the highest-priority candidate fires;
5. the decision carries `recheck_in`.

    >>> from politely.compiler import compile_rules
    >>> from politely.checker import check_sources
    >>> from politely.models import Event
    >>> from politely.state import Snapshot
    >>> site = {"a.rules": 'rule r { when page.dwell >= 20s say "Hi" }'}
    >>> rules = compile_rules(check_sources(site))
    >>> view = Event(visitor="v", event="page_view", url="/")
    >>> evaluate(rules, Snapshot(None, None, None), view, 1000.0).decision.recheck_in
    20
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import msgspec

from politely.caps import Cap, sitewide_release, visitor_allows
from politely.language import OUTCOME_EVENTS
from politely.models import Decision, Event, Invitation
from politely.reasons import POLICY_GATES, REASONS, Blocks, Reason
from politely.recheck import AGENT_RECHECK, RecheckMemo, combine, first_ticks, fresh_agents
from politely.recording import quiet_tick_fields, record_event
from politely.ruleset import CompiledRule, RuleSet
from politely.state import (
    AgentStatus,
    Count,
    InvitationLog,
    InvitationRecord,
    SiteReading,
    SitewideUsage,
    Snapshot,
    VisitorState,
)

# Event ids are remembered for retries (by the store): the last 10 minutes, at most 64.
REMEMBER_EVENT_IDS_FOR = 600.0
REMEMBERED_EVENT_IDS = 64


class Verdict(msgspec.Struct):
    """A decision and the state change that goes with it, for the engine to commit.

    `refused` is the decision to give instead when the store's atomic re-check
    refuses the invitation (a concurrent request used the cap first): rendered
    here, before the atomic step, so no evaluator code runs inside a store.
    A msgspec Struct (never encoded): one is made for every event, in half the
    time a slotted dataclass takes.
    """

    decision: Decision
    state: VisitorState | None  # None: a retried event; nothing changes
    invitation: InvitationRecord | None = None
    caps: tuple[Cap, ...] = ()
    sitewide: tuple[Cap, ...] = ()
    counts: list[Count] = msgspec.field(default_factory=list)
    event_id: str | None = None
    changed: bool = True  # False: nothing to write (the counts aside)
    profile_changed: bool = True  # False: the visitor's profile is the snapshot's
    refused: Decision | None = None
    recheck: RecheckMemo | None = None  # for `state` as it is now, when no invitation was made

    def refused_counts(self) -> list[Count]:
        counts = [c for c in self.counts if c[2] != "shown"]
        if self.invitation is not None:
            counts.append((self.invitation.rule, None, Reason.CAP_RACE))
        return counts

    def as_refused(self) -> Verdict:
        """The verdict as applied when the store refused its invitation."""
        assert self.refused is not None
        counts = self.refused_counts()
        return msgspec.structs.replace(self, decision=self.refused, invitation=None, counts=counts)


# --- 2-5. deciding ------------------------------------------------------------------------


def evaluate(
    rules: RuleSet,
    snapshot: Snapshot,
    event: Event,
    now: float,
    *,
    agent_recheck: int = AGENT_RECHECK,
    memo: RecheckMemo | None = None,
    recheck: bool = True,
    quiet_ticks: bool = True,
) -> Verdict:
    """The verdict on one event. `memo` is a previous verdict's `recheck` for
    the same state (`snapshot.state`, the same object): when this event changes
    nothing and the memo can say, recheck_in is reused instead of recomputed.
    `recheck=False` leaves recheck_in out (null), for a caller that never reads
    it (simulate's summary): all else is the same. An event with an id is the
    exception: its decision is kept for a retry of the event (the store
    remembers it), so it is the decision a recheck=True call makes.
    `quiet_ticks=False`: the caller decides every event in full (`Engine.decide`,
    the simulator's), so the memo leaves what only `quiet_tick` reads to be worked
    out if it ever asks."""
    previous = snapshot.state
    if event.id is not None:
        recheck = True  # the decision is remembered: the same one, whoever asked
    if snapshot.replay is not None:
        first = replayed(snapshot.replay, now)
        if first is not None:
            return Verdict(first, None, changed=False, profile_changed=False)
    policy = rules.policy
    s = record_event(previous, event, now, policy.session_timeout)
    counts: list[Count] = []
    name = event.event
    log = s.log
    if name in ("invitation_dismissed", "invitation_accepted") and log is not None:
        shown = log.find(event.invitation)
        if shown is not None:
            what = "dismissed" if name == "invitation_dismissed" else "accepted"
            counts.append((shown.rule, shown.variant, what))

    block = snapshot.block
    blocked = block is not None and block.active(now)
    chat = "blocked" if blocked else "in_chat" if s.in_chat else "available"
    invitation: Invitation | None = None
    record: InvitationRecord | None = None
    caps: tuple[Cap, ...] = ()
    if name in OUTCOME_EVENTS or s.session is None:
        pass
    elif chat != "available":
        counts.append((None, None, chat))
    else:
        agents = snapshot.agents
        fresh = agents if agents is not None and agents.fresh(now) else None
        candidates = rules.candidates(event, s, fresh, now)
        if candidates:
            winner = _choose(rules, candidates, s, event, fresh, snapshot, now, counts)
            if winner is not None:
                invitation, record = _invite(winner, s, event, fresh, now)
                caps = (*winner.caps, *policy.caps)
                counts.append((winner.name, record.variant, "shown"))

    recheck_in = None
    if not recheck:
        memo = None
    else:
        usage = snapshot.sitewide
        # when the sitewide cap next lets one through
        sitewide_opens = sitewide_release(usage, after_one=record is not None) if usage else None
        after = s
        if record is not None:  # recheck_in counts the invitation just made
            after = with_invitation(s, record, rules.keep_invitations_for)
        found = None
        if record is None and memo is not None and s is previous:
            found = memo.shifted(rules, s, snapshot, sitewide_opens, now, agent_recheck)
        if found is None:
            best, free = first_ticks(rules, after, snapshot, sitewide_opens, now, agent_recheck)
            if record is None:
                memo = RecheckMemo.of(
                    rules,
                    after,
                    snapshot,
                    sitewide_opens,
                    now,
                    agent_recheck,
                    best,
                    free,
                    quiet_ticks=quiet_ticks,
                )
        else:
            best, free = found
        recheck_in = combine(best, free, agent_recheck)
    refused = None
    if invitation is None:
        decision = rules.plain_decision(recheck_in, chat)
    else:
        decision = Decision.model_construct(
            invitation=invitation, recheck_in=recheck_in, chat=chat, ruleset=rules.hash
        )
        refused = rules.plain_decision(1, chat)  # ask again soon: the cap may free up
    profile_changed = s is not previous
    return Verdict(  # positional: one is made for every event
        decision,
        s,
        record,
        caps,
        policy.sitewide if record is not None else (),
        counts,
        event.id,
        profile_changed or record is not None or event.id is not None,
        profile_changed,
        refused,
        memo if record is None else None,
    )


def quiet_tick(
    rules: RuleSet,
    s: VisitorState,
    site: SiteReading,
    event: Event,
    now: float,
    memo: RecheckMemo,
    agent_recheck: int = AGENT_RECHECK,
) -> Decision | None:
    """`evaluate(...).decision` when the event is a plain tick with no id or props
    that changes nothing and counts nothing, on state `s` (whose recheck `memo`
    answers) and the site as it is; else None (then `evaluate` decides). Three
    events in four are such ticks: this one records nothing, builds no snapshot
    or verdict, and the engine writes nothing. (No id: no retry to replay.)"""
    # (`memo` is for `s`, or `shifted` declines below: `s` itself is read only
    # when a condition may hold, so most quiet ticks never touch it.)
    if not memo.ticks_may_be_quiet or not quiet_tick_fields(event):
        return None  # (an id may be a retry; props: conditions may read them)
    block = site.block
    if block is not None and block.active(now):
        return None  # blocked: counted
    usage = site.sitewide
    opens = sitewide_release(usage) if usage else None
    found = memo.shifted(rules, s, site, opens, now, agent_recheck)
    if found is None:
        return None
    # Between the memo's first tick and the first at which a condition holds (as
    # `shifted` moves ticks, so moves that set), no condition holds: none to test.
    elapsed = now - memo.at
    holds_from = memo.conditions_hold_from
    if holds_from < 0:
        holds_from = memo.holds_from()
    if not 1 <= elapsed < holds_from and rules.candidates(event, s, fresh_agents(site, now), now):
        return None  # a condition holds: its rule fires or its reason is counted
    return rules.plain_decision(combine(found[0], found[1], agent_recheck), "available")


def with_invitation(s: VisitorState, record: InvitationRecord, keep_for: float) -> VisitorState:
    """A copy of the state as it is once this invitation is recorded."""
    after = s.copy()
    after.log = s.log.copy() if s.log is not None else InvitationLog()
    after.log.record(record, keep_for)
    return after


def replayed(entry: tuple[float, Decision], now: float) -> Decision | None:
    """The decision an event id already got, if still remembered, for a retry.

    Its recheck_in counts from now, so a site that retried late still asks
    again at the moment the first answer meant (early is allowed, late is not).
    """
    at, decision = entry
    if now - at >= REMEMBER_EVENT_IDS_FOR:
        return None
    if decision.recheck_in is None or now <= at:
        return decision
    remaining = max(1, decision.recheck_in - math.ceil(now - at))
    return decision.model_copy(update={"recheck_in": remaining})


def policy_reason(
    rules: RuleSet,
    s: VisitorState,
    event: Event,
    agents: AgentStatus | None,
    sitewide: Sequence[SitewideUsage],
    now: float,
) -> Reason | None:
    """The first policy gate that stops any invitation now, or None."""
    for gate, blocks in _GATES:
        if blocks(rules, s, event, agents, sitewide, now):
            return gate
    return None


def _gate(reason: Reason) -> tuple[Reason, Blocks]:
    blocks = REASONS[reason].blocks
    assert blocks is not None
    return reason, blocks


_GATES = tuple(_gate(reason) for reason in POLICY_GATES)  # each with its test, in order


def rule_reason(rule: CompiledRule, s: VisitorState, now: float) -> Reason | None:
    """The rule's own reason not to fire now (schedule, then caps), or None."""
    if rule.schedule is not None and not rule.schedule.is_open(now):
        return Reason.OUTSIDE_SCHEDULE
    if rule.caps and not visitor_allows(rule.caps, s.log, s.session, now):
        return Reason.RULE_CAP
    return None


def _choose(
    rules: RuleSet,
    candidates: list[CompiledRule],
    s: VisitorState,
    event: Event,
    agents: AgentStatus | None,
    snapshot: Snapshot,
    now: float,
    counts: list[Count],
) -> CompiledRule | None:
    winner = None
    policy = policy_reason(rules, s, event, agents, snapshot.sitewide, now)
    for rule in candidates:
        reason = rule_reason(rule, s, now) or policy
        if reason is None:
            if winner is None:
                winner = rule
                continue
            reason = Reason.OUTRANKED
        counts.append((rule.name, None, reason))
    return winner


def _invite(
    rule: CompiledRule, s: VisitorState, event: Event, agents: AgentStatus | None, now: float
) -> tuple[Invitation, InvitationRecord]:
    log = s.log
    last = log.last_variant.get(rule.name) if log is not None else None
    variant = rule.first_variant(event.visitor) if last is None else (last + 1) % len(rule.messages)
    message = rule.messages[variant].render(s, event, agents, now)
    seed = f"{event.visitor}\0{rule.name}\0{now!r}\0{log.ever if log else 0}"
    invitation_id = hashlib.blake2b(seed.encode(), digest_size=8).hexdigest()
    assert s.session is not None
    record = InvitationRecord(invitation_id, now, rule.name, variant, s.session)
    return Invitation.model_construct(
        id=invitation_id, rule=rule.name, message=message, variant=variant
    ), record
