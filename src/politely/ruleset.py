"""A compiled site: its rules, its policy and the index, shared read-only by every evaluation.

Rules are grouped into buckets by the events they listen to and the literal
prefix their condition requires of `page.path`; each bucket is one generated
function testing its rules in priority order. An event evaluates only the
buckets of its name whose prefix starts its page's path, so a 10,000-rule set
costs about what a 20-rule set costs per event.
"""

from __future__ import annotations

import math
import threading
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from cachetools import LRUCache

from politely import nodes as n
from politely import ticks
from politely.caps import Cap
from politely.codegen import Condition, Generator, Getter, Window, generate_window, stale_tick
from politely.durations import format_duration
from politely.models import Decision
from politely.schedule import CompiledSchedule
from politely.state import AgentStatus, VisitorState


@dataclass(frozen=True, eq=False)
class CompiledMessage:
    """A message variant: literal parts and field slots filled at render time."""

    template: str
    parts: tuple[str | tuple[Getter, str, bool], ...]  # literal, or (getter, fallback, duration)

    def render(
        self, state: VisitorState, event: Any, agents: AgentStatus | None, now: float
    ) -> str:
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            else:
                getter, fallback, duration = part
                text = display(getter(state, event, agents, now), duration=duration)
                out.append(text if text else fallback)
        return "".join(out)


def display(value: Any, *, duration: bool = False) -> str:
    """A field value as plain text in a message; tags are taken out (never markup).

    Durations read as written in rules (`2m`, `1h30m`); missing values are empty,
    so the slot's fallback shows.
    """
    if value is None:
        return ""
    if duration and isinstance(value, int | float) and not isinstance(value, bool):
        return "" if math.isinf(value) else format_duration(max(0, round(value)))
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isinf(value):
            return ""
        if value.is_integer():
            value = int(value)
    if isinstance(value, dict | list):
        return ""
    return " ".join(str(value).replace("<", "").replace(">", "").split())


@dataclass(frozen=True, eq=False)
class CompiledRule:
    """A rule ready to run. Its tick-set function for recheck_in (`window`) is
    generated on first use: most rules of a large set never need it."""

    name: str
    order: int  # position in the source
    rank: int  # position in priority order (highest priority first, ties by source order)
    priority: int
    events: frozenset[str]
    caps: tuple[Cap, ...]
    schedule: CompiledSchedule | None
    messages: tuple[CompiledMessage, ...]
    condition: n.Condition  # with defines expanded, for explain
    time_dependent: frozenset[str]  # the time quantities the condition reads
    prefixes: frozenset[str] | None
    path: str
    line: int

    @cached_property
    def window(self) -> Window | None:
        """Future ticks at which the condition would hold; None unless it listens to ticks."""
        if "tick" not in self.events:
            return None
        return generate_window(self.condition)

    def first_variant(self, visitor: str) -> int:
        """Stable across processes and restarts, so A/B splits are repeatable."""
        return zlib.crc32(f"{visitor}\0{self.name}".encode()) % len(self.messages)


@dataclass(frozen=True, eq=False)
class CompiledPolicy:
    """The policy ready to run. A gate that reads agent fields only (the common
    `only when agents.available > 0`) is an `AgentGate`, with the same calls."""

    caps: tuple[Cap, ...]
    sitewide: tuple[Cap, ...]
    quiet_after_dismiss: int
    quiet_after_chat: int
    session_timeout: int
    schedule: CompiledSchedule | None
    only: Condition | None
    never: Condition | None
    only_window: Window | None
    never_window: Window | None
    only_condition: n.Condition | None
    never_condition: n.Condition | None


class AgentGate:
    """A condition that reads agent fields only: its value changes only when the
    site reports a new status, or when the status goes stale. So it is computed
    once per status, not once per event, and its future ticks are known:
    its value while fresh until the status goes stale, its stale value after.
    """

    def __init__(self, test: Condition) -> None:
        self.test = test
        self.when_stale = bool(test(None, None, None, 0.0))  # type: ignore[arg-type]
        self._memo: tuple[AgentStatus | None, bool] = (None, self.when_stale)

    def __call__(self, s: Any, e: Any, fresh: AgentStatus | None, now: float) -> bool:
        """The value now, like a generated condition; `fresh` is None when stale."""
        if fresh is None:
            return self.when_stale
        status, value = self._memo
        if status is not fresh:
            value = bool(self.test(None, None, fresh, 0.0))  # type: ignore[arg-type]
            self._memo = (fresh, value)  # one assignment: safe across threads
        return value

    def window(self, s: Any, agents: AgentStatus | None, now: float) -> ticks.Ticks:
        """Future ticks at which it holds, like a generated tick-set function."""
        if agents is None:
            return ticks.of(self.when_stale)
        stale = stale_tick(agents, now)
        out = ticks.until(stale) if self(None, None, agents, now) else ticks.EMPTY
        return ticks.either(out, ticks.since(stale)) if self.when_stale else out


@dataclass(frozen=True, slots=True)
class Bucket:
    """Rules sharing an event set and a path prefix, tested by one generated function."""

    test: Callable[[VisitorState, Any, AgentStatus | None, float], list[int]]
    ranks: tuple[int, ...]


@dataclass(eq=False)
class RuleSet:
    """A compiled site: shared read-only by every evaluation."""

    rules: tuple[CompiledRule, ...]  # source order
    by_rank: tuple[CompiledRule, ...]  # priority order
    policy: CompiledPolicy
    hash: str
    sources: Mapping[str, str]
    keep_invitations_for: int
    keep_sitewide_for: int
    retention: float  # how long a store must keep an idle visitor for the rules to hold
    _index: dict[str, tuple[Bucket | None, tuple[int, ...], dict[str, Bucket]]]
    _getters: dict[str, Getter]
    _source: str = field(repr=False, default="")
    _cache: LRUCache[tuple[str, str | None], tuple[Bucket, ...]] = field(
        default_factory=lambda: LRUCache(maxsize=4096)
    )
    _listening: LRUCache[tuple[str, str | None], tuple[CompiledRule, ...]] = field(
        default_factory=lambda: LRUCache(maxsize=4096)
    )
    # cachetools caches are not thread-safe; evaluations share this rule set.
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _decisions: dict[tuple[int | None, str], Decision] = field(default_factory=dict)

    def plain_decision(self, recheck_in: int | None, chat: str) -> Decision:
        """A decision without an invitation. Decisions are frozen, so these are
        shared: building a pydantic model costs more than the rest of a tick."""
        key = (recheck_in, chat)
        found = self._decisions.get(key)
        if found is None:
            if len(self._decisions) >= 4096:
                self._decisions.clear()
            found = Decision.model_construct(
                invitation=None, recheck_in=recheck_in, chat=chat, ruleset=self.hash
            )
            self._decisions[key] = found
        return found

    def buckets(self, event: str, path: str | None) -> tuple[Bucket, ...]:
        """The buckets an event must test: its name's unconstrained rules, and the
        rules whose required prefix starts the page's path."""
        key = (event, path)
        with self._lock:
            found = self._cache.get(key)
        if found is None:
            found = self._lookup(event, path)
            with self._lock:
                self._cache[key] = found
        return found

    def _lookup(self, event: str, path: str | None) -> tuple[Bucket, ...]:
        entry = self._index.get(event)
        if entry is None:
            return ()
        free, lengths, by_prefix = entry
        found = [free] if free is not None else []
        if path is not None:
            for length in lengths:
                if length > len(path):
                    break
                bucket = by_prefix.get(path[:length])
                if bucket is not None:
                    found.append(bucket)
        return tuple(found)

    def candidates(
        self, event: Any, state: VisitorState, agents: AgentStatus | None, now: float
    ) -> list[CompiledRule]:
        """Rules listening to the event whose condition holds, highest priority first."""
        buckets = self.buckets(event.event, state.page_path)
        if not buckets:
            return []
        if len(buckets) == 1:
            ranks = buckets[0].test(state, event, agents, now)
        else:
            found: set[int] = set()
            for bucket in buckets:
                found.update(bucket.test(state, event, agents, now))
            ranks = sorted(found)
        by_rank = self.by_rank
        return [by_rank[r] for r in ranks]

    def listening(self, event: str, path: str | None) -> tuple[CompiledRule, ...]:
        """Rules listening to the event that could match the path, by priority."""
        key = (event, path)
        with self._lock:
            found = self._listening.get(key)
        if found is None:
            ranks = sorted({r for b in self.buckets(event, path) for r in b.ranks})
            found = tuple(self.by_rank[r] for r in ranks)
            with self._lock:
                self._listening[key] = found
        return found

    def matching(
        self, state: VisitorState, event: Any, agents: AgentStatus | None, now: float
    ) -> list[CompiledRule]:
        """Every rule whose condition holds, whatever it listens to (no index).

        One generated function tests them all, loading each field once; it is
        generated on first use (explain and benchmarks use it, decisions do not).
        """
        return [self.by_rank[r] for r in self._match_all(state, event, agents, now)]

    @cached_property
    def _match_all(self) -> Callable[[VisitorState, Any, AgentStatus | None, float], list[int]]:
        generator = Generator("match all")
        name = generator.bucket("match_all", [(r.rank, r.name, r.condition) for r in self.by_rank])
        return generator.run()[name]  # type: ignore[no-any-return]

    def value(
        self, name: str, state: VisitorState, event: Any, agents: AgentStatus | None, now: float
    ) -> Any:
        """A field's value as conditions see it (None when missing)."""
        return self._getters[name](state, event, agents, now)

    def rule(self, name: str) -> CompiledRule:
        for rule in self.rules:
            if rule.name == name:
                return rule
        raise KeyError(name)

    @property
    def generated_source(self) -> str:
        return self._source
