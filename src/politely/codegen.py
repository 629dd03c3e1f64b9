"""Conditions as generated Python: one source of truth for their meaning at run time.

Every way politely evaluates a condition goes through the `Emitter` here: the
bucket functions that pick candidates, the tick-set functions behind
`recheck_in`, the field getters for messages, and the one-off functions
`explain` compiles. Fields load into locals once per function; a missing or
wrongly typed value makes a test false (`!=` included), as docs/semantics.md
section 4 says.

    >>> from politely.parser import parse
    >>> when = parse('rule r { when page.dwell >= 30s say "x" }').program.items[0].clauses[0]
    >>> generator = Generator("example")
    >>> name = generator.condition("test", when.condition)
    >>> print(generator.source.strip())
    def test(s, e, a, now):
        f0 = (now - s.page_start) if s.page_start is not None else None
        return (f0 is not None and f0 >= 30)
"""

from __future__ import annotations

import itertools
import linecache
import math
import weakref
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, assert_never

from politely import analysis, ticks
from politely import nodes as n
from politely.durations import DAY
from politely.fields import AGENT_FIELDS, KNOWN_FIELDS, TIME_FIELDS, lookup
from politely.glob import compile_glob, inline
from politely.state import AgentStatus, InvitationLog, VisitorState

Condition = Callable[[VisitorState, Any, AgentStatus | None, float], bool]
Window = Callable[[VisitorState, AgentStatus | None, float], ticks.Ticks]
Getter = Callable[[VisitorState, Any, AgentStatus | None, float], Any]
AgentReading = Callable[[AgentStatus | None], tuple[object, ...] | None]


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
        spec = KNOWN_FIELDS.get(name)
        if spec is not None and spec.load is not None:
            expression = (spec.window_load or spec.load) if self.window else spec.load
            if "{log}" in expression:
                expression = expression.format(log=self._load("log", "s.log"))
            return self._load(name, expression)
        if namespace == "visitor":
            attrs = self._load("attributes", "s.attributes or _NOATTR")
            first = self._load(f"visitor.{rest[0]}", f"{attrs}.get({rest[0]!r})")
            return first if len(rest) == 1 else self._load(name, f"_dig({first}, {rest[1:]!r})")
        # event.X
        props = self._load("props", "e.props")
        first = self._load(f"event.{rest[0]}", f"{props}.get({rest[0]!r})")
        return first if len(rest) == 1 else self._load(name, f"_dig({first}, {rest[1:]!r})")


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
        self.optimistic_agents = False

    # booleans
    def boolean(self, condition: n.Condition) -> str:
        match condition:
            case n.And():
                return "(" + " and ".join(self.boolean(o) for o in condition.operands) + ")"
            case n.Or():
                return "(" + " or ".join(self.boolean(o) for o in condition.operands) + ")"
            case n.Not():
                return f"(not {self.boolean(condition.operand)})"
            case n.Ref():
                raise AssertionError("defines must be expanded")
            case n.Compare() | n.InList() | n.Matches() | n.Contains() | n.Bare():
                return self.test(condition)
            case _:
                assert_never(condition)

    def test(self, test: n.Test) -> str:
        name = test.field.name
        spec = lookup(test.field.path).spec
        assert spec is not None, name
        v = self.fields.get(name)
        kind = "attribute text" if spec.attribute else spec.type
        match test:
            case n.Bare():
                return f"({v} is True)" if spec.type == "any" else f"({v})"
            case n.Compare():
                value = analysis.literal(test.value)
                return _typed(v, kind, value, f"{v} {test.op} {value!r}")
            case n.InList():
                values = frozenset(analysis.literal(x) for x in test.values)
                word = "not in" if test.negated else "in"
                constant = self.constants.add(values)
                return _typed(v, kind, next(iter(values)), f"{v} {word} {constant}")
            case n.Contains():
                return _typed(v, kind, "", f"{test.text.value!r} in {v}")
            case n.Matches():
                return _typed(v, kind, "", self._glob(v, test.pattern.value))
            case _:
                assert_never(test)

    def _glob(self, v: str, pattern: str) -> str:
        return inline(v, pattern) or f"{self.constants.add(compile_glob(pattern))}({v})"

    # tick sets
    def window(self, condition: n.Condition, positive: bool = True) -> str:
        """The ticks at which the condition holds. Agent status is news, not time:
        a test on it holds at every future tick as it does now (the status is
        assumed renewed), or, for `optimistic_agents`, it holds whenever that
        helps the whole condition hold (`positive` tracks negation)."""
        if not _moves(condition):
            return f"_of({self.boolean(condition)})"
        match condition:
            case n.Not():
                return f"_invert({self.window(condition.operand, not positive)})"
            case n.And() | n.Or():
                word = " and " if isinstance(condition, n.And) else " or "
                fixed = [o for o in condition.operands if not _moves(o)]
                agent = [o for o in condition.operands if _agent_test(o)]
                parts = [
                    self.window(o, positive)
                    for o in condition.operands
                    if _moves(o) and o not in agent
                ]
                if agent:
                    tests = word.join(self.test(o) for o in agent)  # type: ignore[arg-type]
                    parts.append(self._agents(f"_of({tests})", positive))
                if len(parts) == 1:
                    combined = parts[0]
                else:
                    combined = f"_{'all' if word == ' and ' else 'any'}_of({', '.join(parts)})"
                if not fixed:
                    return combined
                guard = word.join(self.boolean(o) for o in fixed)
                if word == " and ":
                    return f"({combined} if ({guard}) else _EMPTY)"
                return f"(_FULL if ({guard}) else {combined})"
            case n.Compare() | n.InList() | n.Bare() | n.Matches() | n.Contains():
                pass  # a test: below
            case n.Ref():
                raise AssertionError("defines must be expanded")
            case _:
                assert_never(condition)
        name = condition.field.name
        if name in AGENT_FIELDS:
            return self._agents(f"_of({self.test(condition)})", positive)
        v = self.fields.get(name)
        match condition:  # a field that moves with time is a number: compared or listed
            case n.InList():
                values = tuple(analysis.literal(x) for x in condition.values)
                if name == "invitations.today":
                    return f"_steps_in({v}, {values!r}, {condition.negated})"
                moving = f"_in_ticks({v}, {values!r}, {condition.negated})"
            case n.Compare():
                value = analysis.literal(condition.value)
                if name == "invitations.today":
                    return f"_steps({v}, {condition.op!r}, {value!r})"
                moving = f"_cmp({v}, {condition.op!r}, {value!r})"
            case n.Bare() | n.Matches() | n.Contains():
                raise AssertionError(f"{name} moves with time, so it is a number")
            case _:
                assert_never(condition)
        if name == "invitations.last":  # infinite until the first invitation
            return f"(_of({self.test(condition)}) if {v} == _INF else {moving})"
        return f"(_EMPTY if {v} is None else {moving})"

    def _agents(self, as_now: str, positive: bool) -> str:
        if not self.optimistic_agents:
            return as_now
        return "_FULL" if positive else "_EMPTY"


def reads_agents(condition: n.Condition) -> bool:
    return bool(analysis.fields_read(condition) & AGENT_FIELDS)


def _moves(condition: n.Condition) -> bool:
    """Can the passage of time alone change this condition's value?"""
    return bool(analysis.fields_read(condition) & (TIME_FIELDS | AGENT_FIELDS))


def _agent_test(condition: n.Condition) -> bool:
    """A test of an agent field, not under `not`: false once the status is stale."""
    match condition:
        case n.Compare() | n.InList() | n.Bare() | n.Matches() | n.Contains():
            return condition.field.name in AGENT_FIELDS
        case n.Not() | n.And() | n.Or() | n.Ref():
            return False
        case _:
            assert_never(condition)


class Generator:
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

    def window(
        self,
        name: str,
        condition: n.Condition,
        *,
        optimistic_agents: bool = False,
        positive: bool = True,
    ) -> str:
        """A tick-set function; with `optimistic_agents`, agent tests take whichever
        value makes the condition hold (or, `positive` False, not hold)."""
        fields = _Fields(window=True)
        emitter = _Emitter(self.constants, fields)
        emitter.optimistic_agents = optimistic_agents
        expression = emitter.window(condition, positive)
        fields.lines.insert(0, "e = _TICK")
        return self._add(name, "s, a, now", fields, [f"return {expression}"])

    def agent_tests(self, name: str, tests: Sequence[n.Test]) -> str:
        """A function of an agent status `a` (None: unknown or stale) giving the
        value of each test, in order (a test written twice, once)."""
        fields = _Fields(window=False)
        emitter = _Emitter(self.constants, fields)
        values = "".join(f"{x}, " for x in dict.fromkeys(emitter.test(t) for t in tests))
        return self._add(name, "a", fields, [f"return ({values})"])

    def getter(self, name: str, field_name: str) -> str:
        fields = _Fields(window=False)
        local = fields.get(field_name)
        return self._add(name, "s, e, a, now", fields, [f"return {local}"])

    @property
    def source(self) -> str:
        return "\n\n".join(self.functions) + "\n"

    def run(self) -> dict[str, Any]:
        """Compile the functions into a fresh namespace, their module.

        Each module gets a filename of its own (`<politely LABEL #N>`), so a
        traceback shows its source; the source is registered in `linecache`
        while the module lives, that is while a function of it is reachable
        (the rule set that owns them, or a lazy window), and removed when the
        next module is made after it was garbage collected.
        """
        _forget_released()
        source = self.source
        filename = f"<politely {self.label} #{next(_MODULES)}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        namespace: dict[str, Any] = {**_HELPERS, **self.constants.values}
        owner = _Module(filename)
        namespace["__politely_module__"] = owner
        weakref.finalize(owner, _release, filename)
        exec(compile(source, filename, "exec"), namespace)
        return namespace


_MODULES = itertools.count(1)  # numbers generated modules; next() is atomic under the GIL


class _Module:
    """Lives as long as a generated namespace (its functions' globals hold it):
    its finalizer releases the module's linecache entry."""

    __slots__ = ("__weakref__", "filename")

    def __init__(self, filename: str) -> None:
        self.filename = filename


# Collected modules whose linecache entries go when the next module is made. A
# finalizer must not remove one itself: the collector may run it inside
# `linecache.checkcache`, between its listing the entries and reading each
# one, and that read would raise KeyError. (linecache is not thread-safe: a
# `checkcache()` of every entry in another thread can still meet a removal
# here, as it can meet linecache's own; tracebacks check one file, whose
# module their frame keeps alive.)
_released: list[str] = []


def _release(filename: str) -> None:
    _released.append(filename)


def _forget_released() -> None:
    while True:
        try:
            filename = _released.pop()  # (atomic: threads may drain it together)
        except IndexError:
            return
        linecache.cache.pop(filename, None)


def generate_window(
    condition: n.Condition, *, optimistic_agents: bool = False, label: str = "recheck"
) -> Window:
    """Future ticks at which the condition holds, given the agent status `a`
    (None when unknown or stale); see `_Emitter.window` for what agents do."""
    generator = Generator(label)
    name = generator.window("window", condition, optimistic_agents=optimistic_agents)
    return generator.run()[name]  # type: ignore[no-any-return]


def generate_agent_reading(tests: Sequence[n.Test]) -> AgentReading:
    """The values of these agent tests on a status (see `Generator.agent_tests`)."""
    generator = Generator("agent tests")
    name = generator.agent_tests("reading", tests)
    return generator.run()[name]  # type: ignore[no-any-return]


def generate_condition(condition: n.Condition) -> Condition:
    generator = Generator("condition")
    name = generator.condition("test", condition)
    return generator.run()[name]  # type: ignore[no-any-return]
