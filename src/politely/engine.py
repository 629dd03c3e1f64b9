"""The library: an `Engine` evaluates events against a compiled rule set and a store.

    >>> engine = Engine.from_source('''
    ...     rule hello {
    ...         when page.dwell >= 20s and agents.available > 0
    ...         say "Hi! Any questions?"
    ...     }
    ... ''')
    >>> engine.set_agents(online=2, available=1, at=1000.0)
    >>> engine.evaluate({"visitor": "v1", "event": "page_view", "url": "/", "at": 1000}).recheck_in
    20
    >>> engine.evaluate({"visitor": "v1", "event": "tick", "at": 1020}).invitation.message
    'Hi! Any questions?'

Time comes from the clock the engine is given (default: the system clock), or
from the event's `at` when `trust_event_time` is on (the library default and
simulations; the HTTP service turns it off: its clock is the only clock).

Each event is load, evaluate, commit. The commit is atomic and checks the
visitor's version: when another event of the same visitor was committed in
between, the engine loads and evaluates again, so concurrent events of one
visitor give the result of the same events in some order. A plain tick whose
visitor is stored as it was at its last event here, and whose recheck memo
answers, takes a short path (`evaluator.quiet_tick`): the same decision, with
nothing to commit. When the store
cannot be reached, the engine fails quiet: a decision with no invitation,
`degraded` set, a log line, and `engine.degraded` counts it.

Every time the engine is given (an event's `at`, `set_agents(at=)`,
`block(until=, at=)`, `blocks(at=)`, `visitor_state(at=)`) is read the same
way: Unix seconds, a `datetime` or an ISO 8601 string. A bad one raises
`EventError` at the call that was given it.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from politely.checker import check_path, check_sources
from politely.codec import (
    decode_decision,
    decode_history,
    decode_profile,
    encode_decision,
    encode_profile,
)
from politely.compiler import compile_rules
from politely.durations import DAY
from politely.errors import EventError, StoreError
from politely.evaluator import (
    REMEMBER_EVENT_IDS_FOR,
    REMEMBERED_EVENT_IDS,
    Verdict,
    evaluate,
    quiet_tick,
)
from politely.models import (
    DEFAULT_LIMITS,
    AgentsUpdate,
    AttributeLimits,
    Decision,
    Event,
    key_text,
    problem,
    to_timestamp,
    unknown_key,
)
from politely.recheck import AGENT_RECHECK, RecheckMemo
from politely.recording import quiet_tick_fields
from politely.ruleset import RuleSet
from politely.state import AgentStatus, Block, Snapshot, VisitorState
from politely.stats import Stats, build_stats
from politely.stores import MemoryStore, Store
from politely.stores.base import Claim, Loaded, Outcome, Remember, Write

if TYPE_CHECKING:
    from politely.explain import Explanation

Clock = Callable[[], float]
Time = float | int | datetime | str  # what an event's `at` accepts
log = logging.getLogger("politely.engine")

DEFAULT_RETENTION = 30 * DAY  # long enough to recognise most returning visitors
MAX_ATTEMPTS = 30  # loads of one event while other events of its visitor keep committing
DEGRADED_RECHECK = 30  # seconds: when a site should ask again after a degraded decision
RECENT_VISITORS = 10_000  # decoded states kept for visitors' next events (then started over)

# A visitor's state as last decoded or written: the profile and history bytes it
# came from, the state, and the verdict's recheck memo for it (None: none).
_Recent = tuple[bytes | None, bytes | None, VisitorState, "RecheckMemo | None"]
# `Snapshot(...)` through NamedTuple's own `__new__`, a Python function, costs about
# twice as much as making the tuple; every field is given, so nothing is lost.
_new_snapshot = tuple.__new__


def system_clock() -> float:
    return time.time()  # looked up at call time, so freezegun can move it


class Engine:
    """Rules, a store and a clock: the same core the CLI and the service use."""

    def __init__(
        self,
        rules: RuleSet,
        *,
        store: Store | None = None,
        clock: Clock | None = None,
        trust_event_time: bool = True,
        site: str = "default",
        retention: float = DEFAULT_RETENTION,
        agent_recheck: int = AGENT_RECHECK,
        attribute_limits: AttributeLimits = DEFAULT_LIMITS,
    ) -> None:
        self.clock = clock or system_clock
        self.rules = rules
        self.store = store if store is not None else MemoryStore()
        self.trust_event_time = trust_event_time
        self.site = site
        # An idle visitor is kept this long: the site's retention, never less than
        # the rules need (every window, quiet period and timeout; forever for a
        # cap per visitor), so forgetting can break no cap.
        self.keep_visitors_for = max(retention, rules.retention)
        self.attribute_limits = attribute_limits
        self.degraded = 0  # decisions made without the store
        # While only agent status holds a rule back, ask again at least this often.
        self.agent_recheck = agent_recheck
        # The last state of recently seen visitors, so their next event decodes
        # nothing when the store holds the same bytes, and a tick that changes
        # nothing reuses its recheck. Bounded; a plain dict, atomic under the GIL.
        self._recent: dict[str, _Recent] = {}

    def __repr__(self) -> str:
        clock = "system" if self.clock is system_clock else "custom"
        return (
            f"Engine(site={self.site!r}, rules={len(self.rules.rules)}, "
            f"ruleset={self.rules.hash!r}, store={self.store!r}, "
            f"time={'event at, else ' if self.trust_event_time else ''}{clock} clock)"
        )

    @classmethod
    def from_path(cls, path: str | Path, **options: Any) -> Engine:
        """A `.rules` file or a site folder; raises RulesError listing every error."""
        return cls(compile_rules(check_path(path)), **options)

    @classmethod
    def from_source(cls, text: str, *, name: str = "<source>.rules", **options: Any) -> Engine:
        return cls(compile_rules(check_sources({name: text})), **options)

    # --- events ------------------------------------------------------------------

    def evaluate(self, event: Event | Mapping[str, Any]) -> Decision:
        """Record the event and decide: invite or not, and when to ask again.

        A quiet tick (no id, props, attributes or other recorded field, its
        visitor's kept state what the store still holds, and that state's recheck
        memo answering: three events in four) is decided by
        `evaluator.quiet_tick`, with no snapshot, verdict or write."""
        if not isinstance(event, Event):
            event = to_event(event)
        try:
            # `_now`, spelled out: the call alone is 780 instructions, 3% of a quiet tick.
            at = event.at
            now = at.timestamp() if at is not None and self.trust_event_time else self.clock()
            loaded = None
            if quiet_tick_fields(event):  # (so nothing over a bound: see `_decide`)
                decision, loaded = self._quiet_tick(event, now)
                if decision is not None:
                    return decision
            return self._decide(event, now, True, loaded, quiet_ticks=True)[1].decision
        except StoreError as error:
            self.degraded += 1
            log.warning("no invitation for %s: %s", event.visitor, error)
            return Decision.model_construct(
                invitation=None,
                recheck_in=DEGRADED_RECHECK,
                chat="available",
                ruleset=self.rules.hash,
                degraded=True,
            )

    def decide(self, event: Event, now: float, *, recheck: bool = True) -> tuple[Snapshot, Verdict]:
        """Load, evaluate and commit one event at `now`: the snapshot it was decided
        on and the verdict as applied (the simulator and explain replay use both);
        `recheck=False`: no recheck_in (see `evaluate`).

        Raises EventError when the event's attributes or props are over a bound
        (`attribute_limits`), or would make the visitor's attributes so; StoreError
        when the store fails or the visitor keeps changing."""
        return self._decide(event, now, recheck, None, quiet_ticks=False)

    def _quiet_tick(self, event: Event, now: float) -> tuple[Decision | None, Loaded | None]:
        """`evaluator.quiet_tick` on the visitor's kept state, when the store still
        holds its bytes (as `_snapshot`); and what was loaded (None: nothing)."""
        visitor = event.visitor
        kept = self._recent.get(visitor)
        if kept is None:
            return None, None
        profile, history, state, memo = kept
        if memo is None or profile is None:
            return None, None
        rules = self.rules
        loaded = self.store.load(self.site, visitor, now, sitewide=rules.policy.sitewide)
        if loaded.profile != profile or loaded.history != history:
            return None, loaded
        return quiet_tick(rules, state, loaded, event, now, memo, self.agent_recheck), loaded

    def _decide(
        self, event: Event, now: float, recheck: bool, loaded: Loaded | None, *, quiet_ticks: bool
    ) -> tuple[Snapshot, Verdict]:
        """`decide`, on `loaded` first when given (it was loaded for this event);
        `quiet_ticks`: the caller answers quiet ticks from the memos (`evaluate`)."""
        limits = self.attribute_limits
        limits.check(event)
        visitor = event.visitor
        recent = self._recent
        store, site, rules = self.store, self.site, self.rules
        sitewide = rules.policy.sitewide
        for attempt in range(MAX_ATTEMPTS):
            if loaded is None:
                loaded = store.load(site, visitor, now, event_id=event.id, sitewide=sitewide)
            snapshot, kept = self._snapshot(loaded, recent.get(visitor))
            memo = kept[3] if kept is not None else None
            verdict = evaluate(
                rules,
                snapshot,
                event,
                now,
                agent_recheck=self.agent_recheck,
                memo=memo,
                recheck=recheck,
                quiet_ticks=quiet_ticks,
            )
            state = verdict.state
            if verdict.profile_changed and state is not None:
                before = snapshot.state.attributes if snapshot.state is not None else None
                if state.attributes is not before:
                    limits.check_merged(state.attributes)
            if not verdict.changed:
                if verdict.counts:
                    store.count(site, verdict.counts)
                if state is not None and (kept is None or kept[3] is not verdict.recheck):
                    self._remember(
                        visitor, (loaded.profile, loaded.history, state, verdict.recheck)
                    )
                return snapshot, verdict
            write = self._write(loaded, verdict, now)
            outcome = store.commit(site, visitor, write)
            if outcome is Outcome.APPLIED:
                if write.claim is None and state is not None:
                    profile = write.profile if write.profile is not None else loaded.profile
                    self._remember(visitor, (profile, loaded.history, state, verdict.recheck))
                else:  # the store changed the history: decode it next time
                    recent.pop(visitor, None)
                return snapshot, verdict
            recent.pop(visitor, None)
            loaded = None
            if outcome is Outcome.REFUSED:
                return snapshot, verdict.as_refused()
            if attempt >= 1:  # a crowd of one visitor's events: back off, with jitter
                time.sleep(random.uniform(0, 0.0002 * 2 ** min(attempt, 9)))
        raise StoreError(f"visitor changed {MAX_ATTEMPTS} times while one event was decided")

    def _snapshot(self, loaded: Loaded, recent: _Recent | None) -> tuple[Snapshot, _Recent | None]:
        """The snapshot of what was loaded, with the state decoded last time when
        the bytes are the same; and what was kept, when it is for these bytes."""
        if recent is None or loaded.profile is None:
            return snapshot_of(loaded), None
        profile, history, state, _ = recent
        if profile != loaded.profile or history != loaded.history:
            return snapshot_of(loaded), None
        replay = None
        if loaded.replay is not None:
            replay = (loaded.replay[0], decode_decision(loaded.replay[1]))
        snapshot = _new_snapshot(
            Snapshot, (state, loaded.block, loaded.agents, loaded.sitewide, replay)
        )
        return snapshot, recent

    def clear_recent(self) -> int:
        """Drop the decoded states kept for recent visitors (each decodes again on
        its next event); returns how many there were."""
        count = len(self._recent)
        self._recent.clear()
        return count

    def _remember(self, visitor: str, recent: _Recent) -> None:
        if len(self._recent) >= RECENT_VISITORS and visitor not in self._recent:
            self._recent.clear()
        self._recent[visitor] = recent

    def _load(self, event: Event, now: float) -> Loaded:
        return self.store.load(
            self.site, event.visitor, now, event_id=event.id, sitewide=self.rules.policy.sitewide
        )

    def _write(self, loaded: Loaded, verdict: Verdict, now: float) -> Write:
        """The verdict as plain data for the store's atomic commit."""
        state = verdict.state
        assert state is not None
        rules = self.rules
        claim = remember = None
        if verdict.invitation is not None:
            claim = Claim(
                verdict.invitation,
                verdict.caps,
                verdict.sitewide,
                rules.keep_invitations_for,
                rules.keep_sitewide_for,
            )
        if verdict.event_id is not None:
            refused = verdict.refused
            remember = Remember(
                verdict.event_id,
                now,
                encode_decision(verdict.decision),
                encode_decision(refused) if refused is not None else None,
                REMEMBER_EVENT_IDS_FOR,
                REMEMBERED_EVENT_IDS,
            )
        return Write(
            loaded.version,
            now,
            encode_profile(state) if verdict.profile_changed else None,
            self.keep_visitors_for,
            claim,
            remember,
            tuple(verdict.counts),
            tuple(verdict.refused_counts()) if claim is not None else (),
        )

    def explain(self, event: Event | Mapping[str, Any]) -> Explanation:
        """What the event would get, and why each rule would or would not fire.

        Changes nothing: not the visitor's state, not the statistics.
        """
        from politely.explain import explain

        event = to_event(event)
        self.attribute_limits.check(event)
        now = self._now(event)
        snapshot = snapshot_of(self._load(event, now))
        return explain(self.rules, snapshot, event, now, agent_recheck=self.agent_recheck)

    def visitor_state(self, visitor: str, at: Time | None = None) -> VisitorState | None:
        """What the engine knows about a visitor now (or at `at`): None if nothing."""
        return snapshot_of(self.store.load(self.site, visitor, self._time(at, "at"))).state

    def _time(self, at: Time | None, name: str) -> float:
        """`at` as Unix seconds, or the engine's clock when None."""
        return self.clock() if at is None else to_timestamp(at, name)

    def _now(self, event: Event) -> float:
        if self.trust_event_time and event.at is not None:
            return event.at.timestamp()
        return self.clock()

    # --- the site's side ---------------------------------------------------------------

    def block(
        self,
        visitor: str,
        reason: str,
        until: Time | None = None,
        *,
        by: str | None = None,
        at: Time | None = None,
    ) -> None:
        """Never invite this visitor (until `until`, if given); decisions say `blocked`.

        `until` and `at` (when the block was made; default the engine's clock)
        accept what an event's `at` does. The block is active while `now < until`,
        in decisions and in `blocks()` alike."""
        if not isinstance(visitor, str) or not visitor:
            raise EventError("visitor: expected a visitor id (non-empty text)")
        if not isinstance(reason, str):
            raise EventError(f"reason: expected text, got {type(reason).__name__}")
        if by is not None and not isinstance(by, str):
            raise EventError(f"by: expected text, got {type(by).__name__}")
        expiry = None if until is None else to_timestamp(until, "until")
        made = self._time(at, "at")
        self.store.block(self.site, visitor, Block(reason, expiry, made, by))

    def unblock(self, visitor: str) -> bool:
        return self.store.unblock(self.site, visitor)

    def blocks(self, at: Time | None = None) -> Mapping[str, Block]:
        """The blocks active at `at` (default: now by the engine's clock), exactly
        those under which `evaluate` at that time answers `blocked`."""
        return self.store.blocks(self.site, self._time(at, "at"))

    def forget(self, visitor: str) -> bool:
        """Erase everything stored about a visitor (state, history, block)."""
        self._recent.pop(visitor, None)
        return self.store.forget(self.site, visitor)

    def set_agents(
        self,
        *,
        online: int,
        available: int,
        queue_length: int = 0,
        queue_wait: float = 0.0,
        at: Time | None = None,
    ) -> None:
        """Report agent status; it is unknown again two minutes later unless renewed.

        Counts are whole numbers from 0, `queue_wait` seconds from 0; `at`
        accepts what an event's `at` does. A bad value raises EventError."""
        try:
            status = AgentsUpdate(
                online=online,
                available=available,
                queue_length=queue_length,
                queue_wait=queue_wait,
            )
        except ValidationError as error:
            raise EventError(describe_validation(error)) from error
        self.store.set_agents(
            self.site,
            AgentStatus(
                status.online,
                status.available,
                status.queue_length,
                status.queue_wait,
                self._time(at, "at"),
            ),
        )

    def stats(self) -> Stats:
        return build_stats(self.rules, self.store.stats(self.site))


def snapshot_of(loaded: Loaded) -> Snapshot:
    """What the evaluator reads, decoded from what the store returned."""
    log = decode_history(loaded.history) if loaded.history is not None else None
    state = decode_profile(loaded.profile, log) if loaded.profile is not None else None
    replay = None
    if loaded.replay is not None:
        replay = (loaded.replay[0], decode_decision(loaded.replay[1]))
    return _new_snapshot(Snapshot, (state, loaded.block, loaded.agents, loaded.sitewide, replay))


def to_event(event: Event | Mapping[str, Any]) -> Event:
    if isinstance(event, Event):
        return event
    try:
        return Event.model_validate(event)
    except ValidationError as error:
        raise EventError(describe_validation(error)) from error


def describe_validation(
    error: ValidationError, prefix: str = "", model: type[BaseModel] = Event
) -> str:
    """`field: what is wrong` for each problem, in one line; `prefix` names where
    the validated object sits (`agents` in a traffic line), `model` its shape."""
    problems = []
    for item in error.errors():
        where = ".".join(key_text(part) for part in (prefix, *item["loc"]) if part != "") or "event"
        if item["type"] == "extra_forbidden":
            shape = "an event" if model is Event else f"`{prefix or model.__name__}`"
            known = [name for name in model.model_fields]
            key = str(item["loc"][-1])
            text = unknown_key(key, known, shape)
            problems.append(f"{prefix}.{text}" if prefix else text)
        else:
            problems.append(f"{where}: {problem(item, item.get('input'))}")
    return "; ".join(problems)
