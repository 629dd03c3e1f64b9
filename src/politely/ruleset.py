"""A compiled site: its rules, its policy and the index, shared read-only by every evaluation.

Rules are grouped into buckets by the events they listen to and the literal
prefix their condition requires of `page.path`; each bucket is one generated
function testing its rules in priority order. An event evaluates only the
buckets of its name whose prefix starts its page's path, so a 10,000-rule set
costs about what a 20-rule set costs per event.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from politely import analysis
from politely import nodes as n
from politely.caps import Cap
from politely.codegen import (
    AgentReading,
    Condition,
    Generator,
    Getter,
    Window,
    generate_agent_reading,
    generate_window,
    reads_agents,
)
from politely.durations import format_duration
from politely.fields import AGENT_FIELDS
from politely.schedule import CompiledSchedule, never_together
from politely.state import AgentStatus, VisitorState

if TYPE_CHECKING:  # pydantic's models load with the engine: compiling rules needs neither
    from politely.models import Decision, Event

BucketTest = Callable[[VisitorState, "Event", AgentStatus | None, float], list[int]]
MEMO_SIZE = 4096  # entries per memo before it starts over
# Past this many agent tests, `agent_reading` is the status's figures themselves:
# testing them all on every quiet tick would cost more than a recheck it saves.
AGENT_TESTS_READ = 32
_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")


@dataclass(frozen=True, slots=True)
class Slot:
    """A `{field or fallback}` of a message, ready to fill."""

    get: Getter
    fallback: str
    duration: bool  # render as `2m`, not seconds


@dataclass(frozen=True, eq=False)
class CompiledMessage:
    """A message variant: literal parts and slots filled at render time."""

    template: str
    parts: tuple[str | Slot, ...]

    def render(
        self, state: VisitorState, event: Event, agents: AgentStatus | None, now: float
    ) -> str:
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            else:
                text = display(part.get(state, event, agents, now), duration=part.duration)
                out.append(text if text else part.fallback)
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

    @cached_property
    def window(self) -> Window | None:
        """Future ticks at which the condition would hold; None unless it listens to ticks."""
        if "tick" not in self.events:
            return None
        return generate_window(self.condition, label=f"recheck {self.name}")

    @cached_property
    def free_window(self) -> Window | None:
        """`window` with agent tests free (holding whenever that helps): when the
        rule could fire if agent status changed. None unless it reads agents."""
        if "tick" not in self.events or not reads_agents(self.condition):
            return None
        return generate_window(
            self.condition, optimistic_agents=True, label=f"recheck free {self.name}"
        )

    def first_variant(self, visitor: str) -> int:
        """Stable across processes and restarts, so A/B splits are repeatable."""
        return zlib.crc32(f"{visitor}\0{self.name}".encode()) % len(self.messages)


@dataclass(frozen=True, eq=False)
class CompiledPolicy:
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
    # The same with agent tests free: what the gates allow if agents change.
    only_free_window: Window | None
    never_free_window: Window | None
    reads_agents: bool
    only_condition: n.Condition | None
    never_condition: n.Condition | None


class Bucket:
    """Rules sharing an event set and a path prefix, tested by one generated function
    that returns the ranks of those whose condition holds.

    The function is generated and compiled on the bucket's first test, not when
    the rule set is compiled: a site of 10,000 rules has thousands of buckets,
    and an event tests only those of its name and page. `test` is that function
    once made (two threads testing a new bucket at once may both make it; either
    result serves). `compiled` makes it now.
    """

    __slots__ = ("label", "rules", "test")

    def __init__(self, rules: tuple[CompiledRule, ...], label: str) -> None:
        self.rules = rules  # in priority order
        self.label = label  # names its generated module
        self.test: BucketTest = self._first_test

    def compiled(self) -> BucketTest:
        """The bucket's generated function (made on the first call)."""
        if self.test == self._first_test:
            generator = Generator(self.label)
            name = generator.bucket("bucket", [(r.rank, r.name, r.condition) for r in self.rules])
            self.test = generator.run()[name]
        return self.test

    def _first_test(
        self, state: VisitorState, event: Event, agents: AgentStatus | None, now: float
    ) -> list[int]:
        return self.compiled()(state, event, agents, now)

    def __repr__(self) -> str:
        return f"Bucket({self.label!r}, {len(self.rules)} rules)"


@dataclass(frozen=True, slots=True)
class EventIndex:
    """The buckets of one event name: those with no path prefix, and by prefix."""

    free: tuple[Bucket, ...]
    lengths: tuple[int, ...]  # the distinct prefix lengths, shortest first
    by_prefix: Mapping[str, tuple[Bucket, ...]]


class Memo(Generic[_K, _V]):
    """A bounded memo: at most MEMO_SIZE entries, started over when full.

    A plain dict underneath: each get and set is atomic under the GIL, so
    threads share it without a lock (two threads may compute the same entry;
    both results are equal). A key seen once costs no more than no memo.
    """

    __slots__ = ("_entries", "find")

    def __init__(self) -> None:
        self._entries: dict[_K, _V] = {}
        # The entry under a key, or None: the dict's own `get`, bound once, so a
        # hit (most events, most ticks) costs one C call, no Python frame.
        self.find: Callable[[_K], _V | None] = self._entries.get

    def get(self, key: _K, compute: Callable[[], _V]) -> _V:
        entries = self._entries
        found = entries.get(key)
        if found is None:
            if len(entries) >= MEMO_SIZE:
                entries.clear()
            found = entries[key] = compute()
        return found

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class RuleSetCaches:
    """The caches a rule set owns: lookups that depend only on (event, page path)
    or on a plain decision's fields, each a bounded `Memo`. They live and die with
    their rule set; nothing in them is shared with another rule set."""

    __slots__ = ("buckets", "decisions", "listening")

    def __init__(self) -> None:
        self.buckets: Memo[tuple[str, str | None], tuple[Bucket, ...]] = Memo()
        self.listening: Memo[tuple[str, str | None], tuple[CompiledRule, ...]] = Memo()
        self.decisions: Memo[tuple[int | None, str], Decision] = Memo()


@dataclass(frozen=True, eq=False)
class RuleSet:
    """A compiled site: shared read-only by every evaluation.

    Its fields never change. It also owns caches (`caches`, bounded memos of
    index lookups and plain decisions, and functions generated on first use:
    `matching`, the rules' windows); they only remember what the frozen fields
    already determine, so a rule set behaves the same with them cold or warm.
    """

    rules: tuple[CompiledRule, ...]  # source order
    by_rank: tuple[CompiledRule, ...]  # priority order
    policy: CompiledPolicy
    hash: str
    sources: Mapping[str, str]
    keep_invitations_for: int
    keep_sitewide_for: int
    retention: float  # how long a store must keep an idle visitor for the rules to hold
    index: Mapping[str, EventIndex]
    getters: Mapping[str, Getter]
    caches: RuleSetCaches = field(default_factory=RuleSetCaches, repr=False)

    def plain_decision(self, recheck_in: int | None, chat: str) -> Decision:
        """A decision without an invitation. Decisions are frozen, so these are
        shared: building a pydantic model costs more than the rest of a tick."""
        found = self.caches.decisions.find((recheck_in, chat))
        # Most ticks find one. The closure is built elsewhere: a function that holds
        # one makes a cell of every variable it captures, on every call.
        return found if found is not None else self._new_plain_decision(recheck_in, chat)

    def _new_plain_decision(self, recheck_in: int | None, chat: str) -> Decision:
        from politely.models import Decision  # loaded by then: its engine made the event

        return self.caches.decisions.get(
            (recheck_in, chat),
            lambda: Decision.model_construct(
                invitation=None, recheck_in=recheck_in, chat=chat, ruleset=self.hash
            ),
        )

    def buckets(self, event: str, path: str | None) -> tuple[Bucket, ...]:
        """The buckets an event must test: its name's unconstrained rules, and the
        rules whose required prefix starts the page's path."""
        found = self.caches.buckets.find((event, path))  # most events (no cell: see above)
        return found if found is not None else self._new_buckets(event, path)

    def _new_buckets(self, event: str, path: str | None) -> tuple[Bucket, ...]:
        return self.caches.buckets.get((event, path), lambda: self._lookup(event, path))

    def _lookup(self, event: str, path: str | None) -> tuple[Bucket, ...]:
        entry = self.index.get(event)
        if entry is None:
            return ()
        found = list(entry.free)
        if path is not None:
            for length in entry.lengths:
                if length > len(path):
                    break
                found.extend(entry.by_prefix.get(path[:length], ()))
        return tuple(found)

    def candidates(
        self, event: Event, state: VisitorState, agents: AgentStatus | None, now: float
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
        if not ranks:  # most events: no rule's condition holds
            return []
        by_rank = self.by_rank
        return [by_rank[r] for r in ranks]

    def listening(self, event: str, path: str | None) -> tuple[CompiledRule, ...]:
        """Rules listening to the event that could match the path, by priority."""
        buckets = self.buckets(event, path)
        if len(buckets) == 1:
            return buckets[0].rules
        found = self.caches.listening.find((event, path))  # (no cell: see plain_decision)
        return found if found is not None else self._new_listening(event, path, buckets)

    def _new_listening(
        self, event: str, path: str | None, buckets: tuple[Bucket, ...]
    ) -> tuple[CompiledRule, ...]:
        return self.caches.listening.get(
            (event, path),
            lambda: tuple(
                sorted({r for b in buckets for r in b.rules}, key=lambda rule: rule.rank)
            ),
        )

    def matching(
        self, state: VisitorState, event: Event, agents: AgentStatus | None, now: float
    ) -> list[CompiledRule]:
        """Every rule whose condition holds, whatever it listens to (no index).

        One generated function tests them all, loading each field once; it is
        generated on first use (explain and benchmarks use it, decisions do not).
        """
        return [self.by_rank[r] for r in self._match_all(state, event, agents, now)]

    @cached_property
    def agent_reading(self) -> AgentReading:
        """What `recheck_in`'s tick sets read of an agent status (None: unknown or
        stale): the value of each agent test in the policy's gates and in the rules
        that listen to ticks. Two statuses that read the same give every tick set
        the same ticks, so a recheck memo holds across an agent report that changes
        nothing the rules test (a site reports one a minute, or on every change)."""
        conditions = [self.policy.only_condition, self.policy.never_condition]
        conditions += [rule.condition for rule in self.rules if "tick" in rule.events]
        tests = [
            node
            for condition in conditions
            if condition is not None
            for node in analysis.walk(condition)
            if isinstance(node, n.Test) and node.field.name in AGENT_FIELDS
        ]
        if len(tests) > AGENT_TESTS_READ:
            return _agent_figures
        return generate_agent_reading(tests)

    @cached_property
    def schedules(self) -> tuple[CompiledSchedule, ...]:
        """Every distinct `during` schedule of the rules and the policy."""
        found = [self.policy.schedule, *(r.schedule for r in self.rules)]
        return tuple({id(x): x for x in found if x is not None}.values())

    @property
    def has_schedules(self) -> bool:
        return bool(self.schedules)

    @cached_property
    def apart(self) -> frozenset[str]:
        """The rules whose schedule and the policy's are never open at once: no
        time can let them fire (`recheck_in` says never, not "ask again later")."""
        policy = self.policy.schedule
        if policy is None:
            return frozenset()
        return frozenset(
            rule.name
            for rule in self.rules
            if rule.schedule is not None and never_together(rule.schedule, policy)
        )

    @cached_property
    def _match_all(self) -> BucketTest:
        generator = Generator(f"match all {self.hash}")
        name = generator.bucket("match_all", [(r.rank, r.name, r.condition) for r in self.by_rank])
        return generator.run()[name]  # type: ignore[no-any-return]

    def value(
        self, name: str, state: VisitorState, event: Event, agents: AgentStatus | None, now: float
    ) -> Any:
        """A field's value as conditions see it (None when missing)."""
        return self.getters[name](state, event, agents, now)


def _agent_figures(agents: AgentStatus | None) -> tuple[object, ...] | None:
    """`RuleSet.agent_reading` for many agent tests: the figures they test."""
    if agents is None:
        return None
    return (agents.online, agents.available, agents.queue_length, agents.queue_wait)
