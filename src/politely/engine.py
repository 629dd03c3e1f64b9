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
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from politely.checker import check_path, check_sources
from politely.compiler import compile_rules
from politely.errors import EventError
from politely.evaluator import Verdict, evaluate
from politely.models import Decision, Event
from politely.ruleset import RuleSet
from politely.state import AgentStatus, Block, Snapshot
from politely.stats import Stats, build_stats
from politely.stores import MemoryStore, Store

if TYPE_CHECKING:
    from politely.explain import Explanation

Clock = Callable[[], float]


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
    ) -> None:
        self.clock = clock or system_clock
        self.rules = rules
        self.store = store if store is not None else MemoryStore()
        self.store.retain_for(rules.retention)
        self.trust_event_time = trust_event_time

    @classmethod
    def from_path(cls, path: str | Path, **options: Any) -> Engine:
        """A `.rules` file or a site folder; raises RulesError listing every error."""
        return cls(compile_rules(check_path(path)), **options)

    @classmethod
    def from_source(cls, text: str, *, name: str = "<source>.rules", **options: Any) -> Engine:
        return cls(compile_rules(check_sources({name: text})), **options)

    # --- events ------------------------------------------------------------------

    def evaluate(self, event: Event | Mapping[str, Any]) -> Decision:
        """Record the event and decide: invite or not, and when to ask again."""
        event = to_event(event)
        return self.decide(event, self._now(event))[1].decision

    def decide(self, event: Event, now: float) -> tuple[Snapshot, Verdict]:
        """Load, evaluate and commit one event at `now`: the snapshot it was decided
        on and the verdict as applied (the simulator and explain replay use both)."""
        snapshot = self.store.load(event.visitor, now)
        return snapshot, self.apply(event.visitor, evaluate(self.rules, snapshot, event, now), now)

    def apply(self, visitor: str, verdict: Verdict, now: float) -> Verdict:
        """Commit a verdict through the store (atomic cap check) and count it."""
        if verdict.state is None:
            return verdict
        applied = self.store.commit(visitor, verdict, now)
        if applied.counts:
            self.store.count(applied.counts)
        return applied

    def explain(self, event: Event | Mapping[str, Any]) -> Explanation:
        """What the event would get, and why each rule would or would not fire.

        Changes nothing: not the visitor's state, not the statistics.
        """
        from politely.explain import explain

        event = to_event(event)
        now = self._now(event)
        return explain(self.rules, self.store.load(event.visitor, now), event, now)

    def _now(self, event: Event) -> float:
        if self.trust_event_time and event.at is not None:
            return event.at.timestamp()
        return self.clock()

    # --- the site's side ---------------------------------------------------------------

    def block(self, visitor: str, reason: str, until: datetime | float | None = None) -> None:
        """Never invite this visitor (until `until`, if given); decisions say `blocked`."""
        if isinstance(until, datetime) and until.tzinfo is None:
            until = until.replace(tzinfo=UTC)  # like an event's `at`: no zone means UTC
        expiry = until.timestamp() if isinstance(until, datetime) else until
        self.store.block(visitor, Block(reason, expiry, self.clock()))

    def unblock(self, visitor: str) -> bool:
        return self.store.unblock(visitor)

    def blocks(self) -> Mapping[str, Block]:
        return self.store.blocks(self.clock())

    def set_agents(
        self,
        *,
        online: int,
        available: int,
        queue_length: int = 0,
        queue_wait: float = 0.0,
        at: float | None = None,
    ) -> None:
        """Report agent status; it is unknown again two minutes later unless renewed."""
        self.store.set_agents(
            AgentStatus(
                online,
                available,
                queue_length,
                float(queue_wait),
                self.clock() if at is None else at,
            )
        )

    def stats(self) -> Stats:
        return build_stats(self.rules, self.store.stats())


def to_event(event: Event | Mapping[str, Any]) -> Event:
    if isinstance(event, Event):
        return event
    try:
        return Event.model_validate(event)
    except ValidationError as error:
        raise EventError(describe_validation(error)) from error


def describe_validation(error: ValidationError) -> str:
    """`field: what is wrong` for each problem, in one line."""
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "event"
        problems.append(f"{where}: {item['msg']}")
    return "; ".join(problems)
