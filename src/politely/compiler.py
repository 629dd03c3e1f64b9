"""Checked syntax tree → `RuleSet`: immutable, with generated Python for every condition.

Conditions become Python source, compiled once per rule set. Rules are
grouped into buckets by the events they listen to and the literal prefix their
condition requires of `page.path`; each bucket is one generated function that
loads every field its rules read once, into locals, and tests the rules in
priority order. An event evaluates only the buckets of its name whose prefix
starts its page's path, so a 10,000-rule set costs about what a 20-rule set
costs per event.

For `recheck_in`, each rule that listens to `tick` also gets a generated
function returning the set of future ticks at which its condition would hold
if nothing but time passed (`politely.ticks`).

    >>> from politely.checker import check_sources
    >>> site = {"a.rules": 'rule r { when page.dwell >= 5s say "Hi" }'}
    >>> rules = compile_rules(check_sources(site))
    >>> [r.name for r in rules.rules], sorted(rules.rules[0].time_dependent)
    (['r'], ['page.dwell'])
"""

from __future__ import annotations

import hashlib
import linecache
import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cachetools import LRUCache

from politely import analysis, ticks
from politely import nodes as n
from politely.caps import Cap
from politely.checker import (
    DEFAULT_QUIET_AFTER_CHAT,
    DEFAULT_QUIET_AFTER_DISMISS,
    DEFAULT_SESSION_TIMEOUT,
    CheckResult,
    cap_window,
    rule_events,
    visitor_caps,
)
from politely.errors import RulesError
from politely.fields import AGENT_FIELDS, ATTRIBUTE_FIELDS, KNOWN_FIELDS, lookup
from politely.formatter import format_duration
from politely.glob import compile_glob
from politely.models import Decision
from politely.schedule import CompiledSchedule
from politely.state import AGENT_STATUS_TTL, AgentStatus, InvitationLog, VisitorState

DAY = 86400
Condition = Callable[[VisitorState, Any, AgentStatus | None, float], bool]
Window = Callable[[VisitorState, AgentStatus | None, float], ticks.Ticks]
Getter = Callable[[VisitorState, Any, AgentStatus | None, float], Any]

# Fields whose value grows one second per second (`base + k` at tick k).
_GROWING = frozenset({"page.dwell", "session.duration", "invitations.last"})


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
        stale = _stale_tick(agents, now)
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
    _index: dict[str, tuple[Bucket | None, tuple[int, ...], dict[str, Bucket]]]
    _getters: dict[str, Getter]
    _source: str = field(repr=False, default="")
    _cache: LRUCache[tuple[str, str | None], tuple[Bucket, ...]] = field(
        default_factory=lambda: LRUCache(maxsize=4096)
    )
    _listening: LRUCache[tuple[str, str | None], tuple[CompiledRule, ...]] = field(
        default_factory=lambda: LRUCache(maxsize=4096)
    )
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
        found = self._cache.get(key)
        if found is None:
            found = self._lookup(event, path)
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
        found = self._listening.get(key)
        if found is None:
            ranks = sorted({r for b in self.buckets(event, path) for r in b.ranks})
            found = tuple(self.by_rank[r] for r in ranks)
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
        generator = _Generator("match all")
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


def compile_path(path: str | Path) -> RuleSet:
    from politely.checker import check_path

    return compile_rules(check_path(path))


def compile_rules(result: CheckResult) -> RuleSet:
    """Compile a checked site; raises RulesError if the check found errors."""
    if not result.ok:
        raise RulesError(result.diagnostics, result.sources)
    return _Compiler(result).build()


# --- code generation -----------------------------------------------------------------


class _Tick:
    """The event a future tick would bring: what `recheck_in` evaluates against."""

    event = "tick"
    props: Mapping[str, Any] = MappingProxyType({})


def _dig(value: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _today(log: InvitationLog | None, now: float) -> int:
    if log is None:
        return 0
    return sum(1 for r in log.recent if r.at + DAY > now)


def _today_releases(log: InvitationLog | None, now: float) -> list[int]:
    if log is None:
        return []
    return [ticks.at_least(r.at + DAY - now) for r in log.recent if r.at + DAY > now]


def _stale_tick(agents: AgentStatus | None, now: float) -> int:
    """The first tick at which the agent status is too old to use."""
    if agents is None:
        return -ticks.INF
    return ticks.above(agents.at + AGENT_STATUS_TTL - now)


def _in_ticks(base: float, values: tuple[float, ...], negated: bool) -> ticks.Ticks:
    found: ticks.Ticks = ticks.EMPTY
    for value in values:
        found = ticks.either(found, ticks.equal_to(value - base))
    return ticks.invert(found) if negated else found


def _steps_in(releases: list[int], values: tuple[float, ...], negated: bool) -> ticks.Ticks:
    found: ticks.Ticks = ticks.EMPTY
    for value in values:
        found = ticks.either(found, ticks.steps(releases, "==", value))
    return ticks.invert(found) if negated else found


def _all_of(*sets: ticks.Ticks) -> ticks.Ticks:
    out = sets[0]
    for other in sets[1:]:
        out = ticks.both(out, other)
    return out


def _any_of(*sets: ticks.Ticks) -> ticks.Ticks:
    out = sets[0]
    for other in sets[1:]:
        out = ticks.either(out, other)
    return out


_HELPERS: dict[str, Any] = {
    "_NUM": (int, float),
    "_INF": math.inf,
    "_NOATTR": MappingProxyType({}),
    "_TICK": _Tick(),
    "_dig": _dig,
    "_today": _today,
    "_today_releases": _today_releases,
    "_stale_tick": _stale_tick,
    "_FULL": ticks.FULL,
    "_EMPTY": ticks.EMPTY,
    "_of": ticks.of,
    "_cmp": ticks.compare,
    "_until": ticks.until,
    "_invert": ticks.invert,
    "_steps": ticks.steps,
    "_in_ticks": _in_ticks,
    "_steps_in": _steps_in,
    "_all_of": _all_of,
    "_any_of": _any_of,
}


class _Fields:
    """The locals a generated function loads: one per field, in first-use order."""

    def __init__(self, *, window: bool) -> None:
        self.window = window
        self.lines: list[str] = []
        self.names: dict[str, str] = {}

    def _load(self, key: str, expression: str) -> str:
        if key not in self.names:
            self.names[key] = f"f{len(self.names)}"
            self.lines.append(f"{self.names[key]} = {expression}")
        return self.names[key]

    def get(self, name: str) -> str:
        path = tuple(name.split("."))
        namespace, rest = path[0], path[1:]
        simple = {
            "event": "e.event",
            "page.url": "s.page_url",
            "page.path": "s.page_path",
            "page.title": "s.page_title",
            "page.referrer": "s.page_referrer",
            "page.dwell": "(now - s.page_start) if s.page_start is not None else None",
            "page.scroll": "s.scroll if s.page_start is not None else None",
            "session.pageviews": "s.pageviews",
            "session.duration": "(now - s.session_start) if s.session_start is not None else None",
            "session.landing": "s.landing",
            "session.referrer": "s.session_referrer",
            "session.utm_source": "s.utm[0] if s.utm is not None else None",
            "session.utm_medium": "s.utm[1] if s.utm is not None else None",
            "session.utm_campaign": "s.utm[2] if s.utm is not None else None",
            "visitor.visits": "s.visits",
            "visitor.returning": "s.visits > 1",
            "visitor.chats": "s.chats",
            "agents.online": "a.online if a is not None else None",
            "agents.available": "a.available if a is not None else None",
            "queue.length": "a.queue_length if a is not None else None",
            "queue.wait": "a.queue_wait if a is not None else None",
        }
        if name in simple:
            return self._load(name, simple[name])
        if namespace == "invitations":
            log = self._load("log", "s.log")
            expression = {
                "invitations.session": f"({log}.session_count if {log} is not None "
                f"and {log}.session == s.session else 0)",
                "invitations.today": f"_today_releases({log}, now)"
                if self.window
                else f"_today({log}, now)",
                "invitations.last": f"(now - {log}.recent[-1].at) if {log} is not None "
                f"and {log}.recent else _INF",
            }[name]
            return self._load(name, expression)
        if namespace == "visitor":
            attrs = self._load("attributes", "s.attributes or _NOATTR")
            first = self._load(f"visitor.{rest[0]}", f"{attrs}.get({rest[0]!r})")
            return first if len(rest) == 1 else self._load(name, f"_dig({first}, {rest[1:]!r})")
        # event.X
        props = self._load("props", "e.props")
        first = self._load(f"event.{rest[0]}", f"{props}.get({rest[0]!r})")
        return first if len(rest) == 1 else self._load(name, f"_dig({first}, {rest[1:]!r})")

    def agents_expiry(self) -> str:
        return self._load("agents expiry", "_stale_tick(a, now)")


class _Constants:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def add(self, value: Any) -> str:
        name = f"_c{len(self.values)}"
        self.values[name] = value
        return name


def _typed(v: str, spec_type: str, value: object, test: str) -> str:
    """Guard a test so a missing or wrongly typed value makes it false."""
    if spec_type == "attribute text":  # visitor.country etc.: sent by the site, any type
        return f"(type({v}) is str and {test})"
    if spec_type == "any":
        if isinstance(value, bool):
            return f"(type({v}) is bool and {test})"
        if isinstance(value, str):
            return f"(type({v}) is str and {test})"
        return f"(type({v}) in _NUM and {test})"
    if spec_type == "bool":
        return f"({test})"
    return f"({v} is not None and {test})"


class _Emitter:
    """Python expressions for conditions: booleans, or tick sets for recheck_in."""

    def __init__(self, constants: _Constants, fields: _Fields) -> None:
        self.constants = constants
        self.fields = fields

    # booleans
    def boolean(self, condition: n.Condition) -> str:
        if isinstance(condition, n.And):
            return "(" + " and ".join(self.boolean(o) for o in condition.operands) + ")"
        if isinstance(condition, n.Or):
            return "(" + " or ".join(self.boolean(o) for o in condition.operands) + ")"
        if isinstance(condition, n.Not):
            return f"(not {self.boolean(condition.operand)})"
        assert not isinstance(condition, n.Ref), "defines must be expanded"
        return self.test(condition)

    def test(self, test: n.Test) -> str:
        name = test.field.name
        spec = lookup(test.field.path).spec
        assert spec is not None, name
        v = self.fields.get(name)
        kind = "attribute text" if name in ATTRIBUTE_FIELDS else spec.type
        if isinstance(test, n.Bare):
            return f"({v} is True)" if spec.type == "any" else f"({v})"
        if isinstance(test, n.Compare):
            value = analysis.literal(test.value)
            return _typed(v, kind, value, f"{v} {test.op} {value!r}")
        if isinstance(test, n.InList):
            values = frozenset(analysis.literal(x) for x in test.values)
            word = "not in" if test.negated else "in"
            constant = self.constants.add(values)
            return _typed(v, kind, next(iter(values)), f"{v} {word} {constant}")
        if isinstance(test, n.Contains):
            return _typed(v, kind, "", f"{test.text.value!r} in {v}")
        assert isinstance(test, n.Matches)
        return _typed(v, kind, "", self._glob(v, test.pattern.value))

    def _glob(self, v: str, pattern: str) -> str:
        stars = pattern.count("*")
        if "?" not in pattern:
            if stars == 0:
                return f"{v} == {pattern!r}"
            if stars == 1 and pattern.endswith("*"):
                return f"{v}.startswith({pattern[:-1]!r})"
            if stars == 1 and pattern.startswith("*"):
                return f"{v}.endswith({pattern[1:]!r})"
            if stars == 2 and pattern.startswith("*") and pattern.endswith("*"):
                return f"{pattern[1:-1]!r} in {v}"
        return f"{self.constants.add(compile_glob(pattern))}({v})"

    # tick sets
    def window(self, condition: n.Condition) -> str:
        if not _moves(condition):
            return f"_of({self.boolean(condition)})"
        if isinstance(condition, n.Not):
            return f"_invert({self.window(condition.operand)})"
        if isinstance(condition, n.And | n.Or):
            fixed = [o for o in condition.operands if not _moves(o)]
            moving = ", ".join(self.window(o) for o in condition.operands if _moves(o))
            if isinstance(condition, n.And):
                combined = f"_all_of({moving})"
                if not fixed:
                    return combined
                guard = " and ".join(self.boolean(o) for o in fixed)
                return f"({combined} if ({guard}) else _EMPTY)"
            combined = f"_any_of({moving})"
            if not fixed:
                return combined
            guard = " or ".join(self.boolean(o) for o in fixed)
            return f"(_FULL if ({guard}) else {combined})"
        assert isinstance(condition, n.Compare | n.InList | n.Bare | n.Matches | n.Contains)
        name = condition.field.name
        if name in AGENT_FIELDS:
            return f"(_until({self.fields.agents_expiry()}) if {self.test(condition)} else _EMPTY)"
        v = self.fields.get(name)
        if name == "invitations.today":
            if isinstance(condition, n.InList):
                values = tuple(analysis.literal(x) for x in condition.values)
                return f"_steps_in({v}, {values!r}, {condition.negated})"
            assert isinstance(condition, n.Compare)
            return f"_steps({v}, {condition.op!r}, {analysis.literal(condition.value)!r})"
        if isinstance(condition, n.InList):
            values = tuple(analysis.literal(x) for x in condition.values)
            moving = f"_in_ticks({v}, {values!r}, {condition.negated})"
        else:
            assert isinstance(condition, n.Compare)
            value = analysis.literal(condition.value)
            moving = f"_cmp({v}, {condition.op!r}, {value!r})"
        if name == "invitations.last":  # infinite until the first invitation
            return f"(_of({self.test(condition)}) if {v} == _INF else {moving})"
        return f"(_EMPTY if {v} is None else {moving})"


def _moves(condition: n.Condition) -> bool:
    """Can the passage of time alone change this condition's value?"""
    return any(
        isinstance(node, n.Compare | n.InList | n.Bare | n.Matches | n.Contains)
        and (
            node.field.name in _GROWING
            or node.field.name in AGENT_FIELDS
            or node.field.name == "invitations.today"
        )
        for node in analysis.walk(condition)
    )


class _Generator:
    """Collects generated functions and their constants, then compiles them together."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.constants = _Constants()
        self.functions: list[str] = []

    def _add(self, name: str, args: str, fields: _Fields, body: list[str]) -> str:
        lines = [f"def {name}({args}):"]
        lines.extend(f"    {line}" for line in (*fields.lines, *body))
        self.functions.append("\n".join(lines))
        return name

    def bucket(self, name: str, members: Sequence[tuple[int, str, n.Condition]]) -> str:
        """A function returning the ranks of the members whose condition holds."""
        fields = _Fields(window=False)
        emitter = _Emitter(self.constants, fields)
        body = ["found = []"]
        for rank, label, condition in members:
            body.append(f"if {emitter.boolean(condition)}:")
            body.append(f"    found.append({rank})  # {label}")
        body.append("return found")
        return self._add(name, "s, e, a, now", fields, body)

    def condition(self, name: str, condition: n.Condition) -> str:
        fields = _Fields(window=False)
        expression = _Emitter(self.constants, fields).boolean(condition)
        return self._add(name, "s, e, a, now", fields, [f"return {expression}"])

    def window(self, name: str, condition: n.Condition) -> str:
        fields = _Fields(window=True)
        expression = _Emitter(self.constants, fields).window(condition)
        fields.lines.insert(0, "e = _TICK")
        return self._add(name, "s, a, now", fields, [f"return {expression}"])

    def getter(self, name: str, field_name: str) -> str:
        fields = _Fields(window=False)
        local = fields.get(field_name)
        return self._add(name, "s, e, a, now", fields, [f"return {local}"])

    @property
    def source(self) -> str:
        return "\n\n".join(self.functions) + "\n"

    def run(self) -> dict[str, Any]:
        source = self.source
        filename = f"<politely {self.label}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        namespace: dict[str, Any] = {**_HELPERS, **self.constants.values}
        exec(compile(source, filename, "exec"), namespace)
        return namespace


def generate_window(condition: n.Condition) -> Window:
    generator = _Generator("recheck")
    name = generator.window("window", condition)
    return generator.run()[name]  # type: ignore[no-any-return]


def generate_condition(condition: n.Condition) -> Condition:
    generator = _Generator("condition")
    name = generator.condition("test", condition)
    return generator.run()[name]  # type: ignore[no-any-return]


@dataclass
class _RuleParts:
    rule: n.Rule
    path: str
    order: int
    condition: n.Condition
    events: tuple[str, ...]
    priority: int


class _Compiler:
    def __init__(self, result: CheckResult) -> None:
        self.result = result
        self.defines = {name: d.condition for name, d in result.defines.items()}
        self.generator = _Generator(f"rules {ruleset_hash(result.sources)}")

    def build(self) -> RuleSet:
        parts = [self._parts(i, path, rule) for i, (path, rule) in enumerate(self.result.rules)]
        ranked = sorted(parts, key=lambda p: (-p.priority, p.order))
        rank_of = {p.order: i for i, p in enumerate(ranked)}

        # buckets: (events, prefix) -> members, in priority order
        groups: dict[tuple[tuple[str, ...], str | None], list[_RuleParts]] = {}
        prefixes_of: dict[int, frozenset[str] | None] = {}
        for p in ranked:
            prefixes = analysis.path_prefixes(p.condition)
            prefixes_of[p.order] = prefixes
            events = tuple(sorted(set(p.events)))
            for prefix in sorted(prefixes) if prefixes is not None else [None]:
                groups.setdefault((events, prefix), []).append(p)
        bucket_names = {
            key: self.generator.bucket(
                f"bucket_{i}",
                [(rank_of[m.order], m.rule.name.value, m.condition) for m in members],
            )
            for i, (key, members) in enumerate(groups.items())
        }
        policy_conditions = self._policy_conditions()
        policy_names = {
            kind: self.generator.condition(f"policy_{kind}", condition)
            for kind, condition in policy_conditions.items()
        }
        window_names = {  # an agent-only condition's ticks come from its AgentGate
            kind: self.generator.window(f"policy_{kind}_window", condition)
            for kind, condition in policy_conditions.items()
            if not _reads_agents_only(condition)
        }
        getter_names = self._getters(parts, policy_conditions)

        namespace = self.generator.run()
        index = self._index(groups, bucket_names, namespace, rank_of)
        policy = self._policy(
            {kind: namespace[name] for kind, name in policy_names.items()},
            {kind: namespace[name] for kind, name in window_names.items()},
            policy_conditions,
        )
        compiled: dict[int, CompiledRule] = {}
        for p in parts:
            compiled[p.order] = CompiledRule(
                name=p.rule.name.value,
                order=p.order,
                rank=rank_of[p.order],
                priority=p.priority,
                events=frozenset(p.events),
                caps=self._rule_caps(p.rule),
                schedule=_schedule(p.rule.clauses),
                messages=self._messages(p.rule, namespace, getter_names),
                condition=p.condition,
                time_dependent=frozenset(
                    f
                    for f in analysis.fields_read(p.condition)
                    if f in _GROWING or f == "invitations.today"
                ),
                prefixes=prefixes_of[p.order],
                path=p.path,
                line=p.rule.span.line,
            )
        rules = tuple(compiled[p.order] for p in parts)
        windows_used = [c.window for c in (*policy.caps, *(cap for r in rules for cap in r.caps))]
        keep = max([w for w in windows_used if isinstance(w, int)] + [0])
        if "invitations.today" in getter_names:  # read by a condition or a message
            keep = max(keep, DAY)
        return RuleSet(
            rules=rules,
            by_rank=tuple(compiled[p.order] for p in ranked),
            policy=policy,
            hash=ruleset_hash(self.result.sources),
            sources=MappingProxyType(dict(self.result.sources)),
            keep_invitations_for=keep,
            keep_sitewide_for=max([int(c.window) for c in policy.sitewide] + [0]),
            _index=index,
            _getters={name: namespace[fn] for name, fn in getter_names.items()},
            _source=self.generator.source,
        )

    def _parts(self, order: int, path: str, rule: n.Rule) -> _RuleParts:
        when = next(c for c in rule.clauses if isinstance(c, n.When))
        priority = next((c.value.value for c in rule.clauses if isinstance(c, n.Priority)), 0)
        return _RuleParts(
            rule,
            path,
            order,
            analysis.expand(when.condition, self.defines),
            rule_events(rule),
            int(priority),
        )

    def _index(
        self,
        groups: dict[tuple[tuple[str, ...], str | None], list[_RuleParts]],
        names: dict[tuple[tuple[str, ...], str | None], str],
        namespace: dict[str, Any],
        rank_of: dict[int, int],
    ) -> dict[str, tuple[Bucket | None, tuple[int, ...], dict[str, Bucket]]]:
        """event → (bucket of rules without a path prefix, prefix lengths, prefix → bucket)."""
        by_event: dict[str, tuple[Bucket | None, list[int], dict[str, Bucket]]] = {}
        for key, members in groups.items():
            events, prefix = key
            bucket = Bucket(namespace[names[key]], tuple(rank_of[m.order] for m in members))
            for event in events:
                free, lengths, by_prefix = by_event.setdefault(event, (None, [], {}))
                if prefix is None:
                    by_event[event] = (_merge(free, bucket), lengths, by_prefix)
                else:
                    by_prefix[prefix] = _merge(by_prefix.get(prefix), bucket)
                    lengths.append(len(prefix))
        return {
            event: (free, tuple(sorted(set(lengths))), by_prefix)
            for event, (free, lengths, by_prefix) in by_event.items()
        }

    def _policy_conditions(self) -> dict[str, n.Condition]:
        policy = self.result.policy
        conditions: dict[str, n.Condition] = {}
        for clause in policy.clauses if policy is not None else ():
            if isinstance(clause, n.Only | n.Never):
                kind = "only" if isinstance(clause, n.Only) else "never"
                conditions[kind] = analysis.expand(clause.condition, self.defines)
        return conditions

    def _policy(
        self,
        functions: dict[str, Condition],
        windows: dict[str, Window],
        conditions: dict[str, n.Condition],
    ) -> CompiledPolicy:
        policy = self.result.policy
        clauses = policy.clauses if policy is not None else ()
        caps = tuple(Cap(c.limit, c.window) for c in visitor_caps(policy))
        sitewide = tuple(
            Cap(int(c.count.value), c.duration.seconds)
            for c in clauses
            if isinstance(c, n.Cap) and c.sitewide and c.duration is not None
        )
        quiet = {c.after: c.duration.seconds for c in clauses if isinstance(c, n.Quiet)}
        gates = {
            kind: AgentGate(functions[kind])
            for kind, condition in conditions.items()
            if _reads_agents_only(condition)
        }
        timeout = next(
            (c.duration.seconds for c in clauses if isinstance(c, n.SessionTimeout)),
            DEFAULT_SESSION_TIMEOUT,
        )
        return CompiledPolicy(
            caps=caps,
            sitewide=sitewide,
            quiet_after_dismiss=quiet.get("dismiss", DEFAULT_QUIET_AFTER_DISMISS),
            quiet_after_chat=quiet.get("chat", DEFAULT_QUIET_AFTER_CHAT),
            session_timeout=timeout,
            schedule=_schedule(clauses),
            only=gates.get("only") or functions.get("only"),
            never=gates.get("never") or functions.get("never"),
            only_window=gates["only"].window if "only" in gates else windows.get("only"),
            never_window=gates["never"].window if "never" in gates else windows.get("never"),
            only_condition=conditions.get("only"),
            never_condition=conditions.get("never"),
        )

    def _rule_caps(self, rule: n.Rule) -> tuple[Cap, ...]:
        name = rule.name.value
        caps: list[Cap] = []
        for clause in rule.clauses:
            if isinstance(clause, n.Cooldown):
                caps.append(Cap(1, clause.duration.seconds, name))
            elif isinstance(clause, n.Cap):
                caps.append(Cap(int(clause.count.value), cap_window(clause), name))
        return tuple(caps)

    def _getters(
        self, parts: list[_RuleParts], policy_conditions: dict[str, n.Condition]
    ) -> dict[str, str]:
        """One generated getter per field any condition or message reads."""
        names: set[str] = set()
        for condition in [*(p.condition for p in parts), *policy_conditions.values()]:
            names.update(analysis.fields_read(condition))
        for p in parts:
            for clause in p.rule.clauses:
                if isinstance(clause, n.Say):
                    for message in clause.messages:
                        names.update(s.field.name for s in message.parts if isinstance(s, n.Slot))
        return {
            name: self.generator.getter(f"get_{i}", name) for i, name in enumerate(sorted(names))
        }

    def _messages(
        self, rule: n.Rule, namespace: dict[str, Any], getters: dict[str, str]
    ) -> tuple[CompiledMessage, ...]:
        say = next(c for c in rule.clauses if isinstance(c, n.Say))
        messages = []
        for message in say.messages:
            parts: list[str | tuple[Getter, str, bool]] = []
            for part in message.parts:
                if isinstance(part, n.Slot):
                    name = part.field.name
                    duration = name in KNOWN_FIELDS and KNOWN_FIELDS[name].type == "duration"
                    parts.append((namespace[getters[name]], part.fallback or "", duration))
                else:
                    parts.append(part)
            messages.append(CompiledMessage(message.text, tuple(parts)))
        return tuple(messages)


def _reads_agents_only(condition: n.Condition) -> bool:
    return analysis.fields_read(condition) <= AGENT_FIELDS


def _merge(existing: Bucket | None, bucket: Bucket) -> Bucket:
    """Two buckets under one key (same prefix, overlapping event sets) become one."""
    if existing is None:
        return bucket
    first, second = existing.test, bucket.test

    def test(s: VisitorState, e: Any, a: AgentStatus | None, now: float) -> list[int]:
        return sorted(set(first(s, e, a, now)) | set(second(s, e, a, now)))

    return Bucket(test, tuple(sorted(set(existing.ranks) | set(bucket.ranks))))


def _schedule(clauses: Sequence[n.Clause]) -> CompiledSchedule | None:
    during = next((c for c in clauses if isinstance(c, n.During)), None)
    return CompiledSchedule.from_node(during.schedule) if during is not None else None


def ruleset_hash(sources: Mapping[str, str]) -> str:
    """A short hash of a site's files (names without folders, and texts)."""
    digest = hashlib.sha256()
    for path in sorted(sources, key=lambda p: Path(p).name):
        digest.update(Path(path).name.encode() + b"\0" + sources[path].encode() + b"\0")
    return digest.hexdigest()[:16]
