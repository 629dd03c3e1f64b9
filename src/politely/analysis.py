"""Static facts about conditions, used by the checker's warnings and the compiler.

All functions take conditions whose `define` references are already expanded
(`expand`), so a define is analysed exactly as if it were written in place.

    >>> from politely.parser import parse
    >>> program = parse('rule r { when page.path matches "/pricing*" say "x" }').program
    >>> path_prefixes(program.items[0].clauses[0].condition)
    frozenset({'/pricing'})
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from copy import copy
from typing import Literal, assert_never

import msgspec

from politely import nodes as n
from politely.fields import AGENT_FIELDS, KNOWN_FIELDS

# --- define expansion ------------------------------------------------------------


def expand(condition: n.Condition, defines: Mapping[str, n.Condition]) -> n.Condition:
    """Replace every `define` reference by its condition (defines must be acyclic).

    A part without references is returned as it is, not copied: the rules using
    a define share its nodes (a 10,000-rule site would otherwise hold thousands
    of copies of each).
    """
    return Expander(defines).expanded(condition).condition


class Expanded(msgspec.Struct, frozen=True, gc=False):
    """A rule's `when` with its defines written out, and the fields it reads.

    The checker's warnings need both for every rule, and so does the compiler:
    worked out once (`Expander`) and handed from one to the other on the check's
    result, a 10,000-rule site pays for one expansion, not two.
    """

    condition: n.Condition  # what `expand` gives
    reads: frozenset[str]  # what `fields_read` gives of that


class Expander:
    """Writes out the defines of one site's conditions, each define once.

    A 10,000-rule site uses each define thousands of times: its body is written out
    (with the fields it reads) at its first use, and every use after is a lookup,
    not another walk. Every use then shares one written-out body.

        >>> from politely.parser import parse
        >>> a = parse("define a = page.dwell >= 5s and visitor.vip").program.items[0]
        >>> rule = parse('rule r { when a and page.path == "/" say "Hi" }').program.items[0]
        >>> found = Expander({"a": a.condition}).expanded(rule.clauses[0].condition)
        >>> sorted(found.reads)
        ['page.dwell', 'page.path', 'visitor.vip']
    """

    def __init__(self, defines: Mapping[str, n.Condition]) -> None:
        self._defines = defines
        self._written: dict[str, tuple[n.Condition, frozenset[str]]] = {}

    def expanded(self, condition: n.Condition) -> Expanded:
        reads: set[str] = set()
        return Expanded(self._expand(condition, reads), frozenset(reads))

    def _define(self, name: str) -> tuple[n.Condition, frozenset[str]]:
        found = self._written.get(name)
        if found is None:
            reads: set[str] = set()
            whole = self._expand(self._defines[name], reads)
            found = self._written[name] = (whole, frozenset(reads))
        return found

    def _expand(self, condition: n.Condition, reads: set[str]) -> n.Condition:
        match condition:  # tests first, the commonest
            case n.Compare() | n.InList() | n.Matches() | n.Contains() | n.Bare():
                reads.add(condition.field.name)
                return condition
            case n.Ref():
                whole, read = self._define(condition.name)
                reads |= read
                return whole
            case n.Not():
                operand = self._expand(condition.operand, reads)
                if operand is condition.operand:
                    return condition
                return n.Not(operand, condition.span)
            case n.And() | n.Or():
                kind = type(condition)
                operands: list[n.Condition] = []
                same = True
                for operand in condition.operands:
                    expanded = self._expand(operand, reads)
                    if isinstance(expanded, kind):  # an `and` define in an `and`: merged
                        operands.extend(expanded.operands)
                        same = False
                    else:
                        operands.append(expanded)
                        same = same and expanded is operand
                return condition if same else kind(tuple(operands), condition.span)
            case _:
                assert_never(condition)


def expanded_rules(
    defines: Mapping[str, n.Condition], rules: Iterable[tuple[str, n.Rule]]
) -> tuple[Expanded, ...]:
    """Each rule's `when` written out, in order; the rules that use a define share
    one written-out body (a saved check keeps none: MessagePack would write the
    body out once per use)."""
    expander = Expander(defines)
    return tuple(expander.expanded(rule.when.condition) for _, rule in rules)


class Measure(msgspec.Struct, frozen=True):
    """A condition's size with its defines written out, as the compiler sees it.

    `depth` counts `not`/`and`/`or` levels, `tests` the tests (a define used
    twice counts twice), `top` its outermost operator: an `and` define used
    inside an `and` merges into it, as `expand` merges it.
    """

    depth: int
    tests: int
    top: Literal["and", "or", "not", "test"]


ONE_TEST = Measure(0, 1, "test")  # a test, and a define unknown or past a bound


def measure(condition: n.Condition, defines: Mapping[str, Measure]) -> Measure:
    """The Measure of `condition` once `expand` has written its defines out.

    `defines` holds each define's own Measure; a name missing from it (an
    error reported elsewhere) counts as one test. Recursion goes only as deep
    as the written condition, which the parser bounds.
    """
    match condition:  # tests first, the commonest: the checker measures every rule
        case n.Compare() | n.InList() | n.Matches() | n.Contains() | n.Bare():
            return ONE_TEST
        case n.Ref(name=name):
            return defines.get(name, ONE_TEST)
        case n.Not(operand=operand):
            inner = measure(operand, defines)
            return Measure(inner.depth + 1, inner.tests, "not")
        case n.And(operands=operands) | n.Or(operands=operands):
            top: Literal["and", "or"] = "and" if isinstance(condition, n.And) else "or"
            depth = tests = 0  # an `and` or `or` part is at least 1 deep: 0 is never kept
            for operand in operands:  # one loop, not a list and two passes over it
                part = measure(operand, defines)
                # A part with the same operator merges into this one, as `expand` merges it.
                depth = max(depth, part.depth if part.top == top else part.depth + 1)
                tests += part.tests
            return Measure(depth, tests, top)
        case _:
            assert_never(condition)


def walk(condition: n.Condition) -> list[n.Condition]:
    """Every node, parents before children, operands left to right. Iterative (a
    recursive generator pays for every level at every node), and a list: the checker
    walks every rule, and resuming a generator at each node cost more than the list."""
    nodes: list[n.Condition] = []
    pending = [condition]
    while pending:
        node = pending.pop()
        nodes.append(node)
        match node:  # tests first, the commonest
            case n.Compare() | n.Matches() | n.Bare() | n.InList() | n.Contains() | n.Ref():
                pass
            case n.And() | n.Or():
                pending.extend(reversed(node.operands))
            case n.Not():
                pending.append(node.operand)
            case _:
                assert_never(node)
    return nodes


def fields_read(condition: n.Condition) -> frozenset[str]:
    """The fields the condition tests. Iterative: the compiler asks it of every rule."""
    names: set[str] = set()
    pending = [condition]
    while pending:
        node = pending.pop()
        match node:
            case n.Not(operand=operand):
                pending.append(operand)
            case n.And(operands=operands) | n.Or(operands=operands):
                pending.extend(operands)
            case n.Compare() | n.InList() | n.Matches() | n.Contains() | n.Bare():
                names.add(node.field.name)
            case n.Ref():
                pass
            case _:
                assert_never(node)
    return frozenset(names)


def refs(condition: n.Condition) -> Iterator[n.Ref]:
    return (node for node in walk(condition) if isinstance(node, n.Ref))


def conjoin(*conditions: n.Condition | None) -> n.Condition | None:
    present = [c for c in conditions if c is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    operands: list[n.Condition] = []
    for c in present:
        operands.extend(c.operands if isinstance(c, n.And) else (c,))
    return n.And(tuple(operands), present[-1].span)


# --- contradictions ------------------------------------------------------------------


# What a literal's value must be an instance of (a bool aside) to be ordered: a tuple,
# as `int | float` would build a union type at each test of each rule.
_NUMBERS = (int, float)


def literal(value: n.Value) -> object:
    """The run-time value of a literal: durations in seconds, percents as numbers."""
    match value:
        case n.Duration():
            return value.seconds
        case n.Number() | n.Percent() | n.Text() | n.Boolean():
            return value.value
        case _:
            assert_never(value)


class _Bounds(msgspec.Struct):
    """What a conjunction says about one field."""

    low: float = -math.inf
    low_open: bool = False
    high: float = math.inf
    high_open: bool = False
    allowed: frozenset[object] | None = None  # from == and `in`
    excluded: frozenset[object] | None = None  # from != and `not in`

    def narrow_low(self, value: float, open_: bool) -> None:
        if value > self.low or (value == self.low and open_):
            self.low, self.low_open = value, open_

    def narrow_high(self, value: float, open_: bool) -> None:
        if value < self.high or (value == self.high and open_):
            self.high, self.high_open = value, open_

    def allow(self, values: frozenset[object]) -> None:
        self.allowed = values if self.allowed is None else self.allowed & values

    def exclude(self, values: frozenset[object]) -> None:
        self.excluded = values if self.excluded is None else self.excluded | values

    def empty(self) -> bool:
        if self.low > self.high or (self.low == self.high and (self.low_open or self.high_open)):
            return True
        if self.allowed is None:
            return False
        excluded = self.excluded or frozenset()
        if self.low == -math.inf == -self.high and not (self.low_open or self.high_open):
            return all(v in excluded for v in self.allowed)  # no range: any value will do
        return not any(v not in excluded and self._inside(v) for v in self.allowed)

    def _inside(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, _NUMBERS):
            return True
        above = value > self.low or (value == self.low and not self.low_open)
        below = value < self.high or (value == self.high and not self.high_open)
        return above and below


def _constrain(bounds: _Bounds, test: n.Compare | n.InList) -> None:
    match test:
        case n.InList():
            (bounds.exclude if test.negated else bounds.allow)(_list_values(test))
        case n.Compare():
            value, op = literal(test.value), test.op
            if op == "==":
                bounds.allow(frozenset({value}))
            elif op == "!=":
                bounds.exclude(frozenset({value}))
            elif isinstance(value, _NUMBERS) and not isinstance(value, bool):
                if op in (">", ">="):
                    bounds.narrow_low(value, op == ">")
                else:
                    bounds.narrow_high(value, op == "<")
        case _:
            assert_never(test)


# The values of long lists, by the list node (its id, and the node itself: an id alone
# may be reused), made once: a define's list is one node in every rule using it, and
# a 50,000-value list was made into a set again for each of them (11 s for 200 rules).
# At most LIST_MEMO values in all, forgotten all at once past that.
LONG_LIST = 32
LIST_MEMO = 1_000_000
_list_memo: dict[int, tuple[n.InList, frozenset[object]]] = {}


def _list_values(test: n.InList) -> frozenset[object]:
    if len(test.values) < LONG_LIST:
        return frozenset([literal(v) for v in test.values])
    found = _list_memo.get(id(test))
    if found is not None and found[0] is test:
        return found[1]
    values = frozenset([literal(v) for v in test.values])
    if sum(len(kept) for _, kept in _list_memo.values()) + len(values) > LIST_MEMO:
        _list_memo.clear()
    _list_memo[id(test)] = (test, values)
    return values


def contradiction(condition: n.Condition) -> n.And | n.Condition | None:
    """The innermost part of `condition` that can never hold, or None.

    Exact for conjunctions of comparisons on one field (`page.dwell >= 30s and
    page.dwell < 10s`, `visitor.plan == "a" and visitor.plan == "b"`); an `or`
    never holds when none of its operands can; `not` is not looked into.
    """
    match condition:  # the commonest nodes first: this runs on every test of every rule
        case n.Compare() | n.InList():
            return condition if _impossible(condition) else None
        case n.Matches() | n.Not() | n.Contains() | n.Bare() | n.Ref():
            return None
        case n.Or():  # never, when no operand can hold: the first that can answers
            for operand in condition.operands:
                if contradiction(operand) is None:
                    return None
            return condition
        case n.And():
            pass  # looked into below
        case _:
            assert_never(condition)
    # Each operand alone first, in order (the innermost answer), then the tests of each
    # field tested more than once, together. A field tested once was found possible
    # alone, which is all that joining its tests would ask of it. Emptiness is asked
    # after each test, as the tests narrow: it is not always kept by narrowing further
    # (`x == 0 and x > 0 and x == false`: {0} & {False} may be {False}, never numeric).
    together: dict[str, list[n.Compare | n.InList]] = {}
    for operand in condition.operands:
        match operand:
            case n.Compare() | n.InList():
                if _impossible(operand):
                    return operand
                together.setdefault(operand.field.name, []).append(operand)
            case n.Or() | n.And():
                inner = contradiction(operand)
                if inner is not None:
                    return inner
            case n.Matches() | n.Not() | n.Contains() | n.Bare() | n.Ref():
                pass  # `contradiction` of these is None (`not` is not looked into): no call
            case _:
                assert_never(operand)
    for name, tests in together.items():
        if len(tests) > 1:
            bounds = _domain(name)
            for test in tests:
                _constrain(bounds, test)
                if bounds.empty():
                    return condition
    return None


def _impossible(test: n.Compare | n.InList) -> bool:
    """Whether `test` alone can never hold: what `_constrain` of it on its field's
    domain, then `empty()`, say, worked out without making the bounds (every test
    of every rule is asked this). A domain is a closed range, never empty."""
    low, high = _range(test.field.name)
    match test:
        case n.InList():
            if test.negated:  # excluded values leave the rest of the domain
                return False
            return all(_outside(literal(v), low, high) for v in test.values)
        case n.Compare():
            value, op = literal(test.value), test.op
            if op == "==":
                return _outside(value, low, high)
            if op == "!=" or isinstance(value, bool) or not isinstance(value, _NUMBERS):
                return False  # (text and true/false are not ordered: no bound narrows)
            if op in (">", ">="):
                return value > high or (value == high and op == ">")
            return value < low or (value == low and op == "<")
        case _:
            assert_never(test)


def _outside(value: object, low: float, high: float) -> bool:
    """Whether a value a test allows is outside a field's domain (only numbers are)."""
    if isinstance(value, bool) or not isinstance(value, _NUMBERS):
        return False
    return not low <= value <= high


_BOUNDED = (n.Compare, n.InList)  # the tests that narrow a field's bounds


class Gate:
    """A condition every rule is joined to (the policy's `only when`), with its part
    of `contradiction` worked out once rather than again for each rule."""

    def __init__(self, gate: n.Condition) -> None:
        operands = gate.operands if isinstance(gate, n.And) else (gate,)
        self._bounds: dict[str, _Bounds] = {}
        for operand in operands:
            if isinstance(operand, n.Compare | n.InList):
                name = operand.field.name
                _constrain(self._bounds.setdefault(name, _domain(name)), operand)
        self._never = any(contradiction(o) is not None for o in operands) or any(
            b.empty() for b in self._bounds.values()
        )

    def never_with(self, condition: n.Condition) -> bool:
        """Whether `contradiction(conjoin(condition, gate))` finds something, for a
        condition that can hold alone (`contradiction(condition)` is None).

        The operands' own contradictions are then the gate's; what is left is each
        field's bounds over both, which do not depend on the order they narrow in.
        Only the fields the gate bounds are looked at: any other is narrowed by the
        condition's tests alone, as `contradiction(condition)` narrowed it and found
        it possible (most rules test no field of the policy's gate).
        """
        if self._never:
            return True
        operands = condition.operands if isinstance(condition, n.And) else (condition,)
        joined: dict[str, _Bounds] = {}
        for operand in operands:
            if not isinstance(operand, _BOUNDED):
                continue
            name = operand.field.name
            known = self._bounds.get(name)
            if known is None:
                continue  # not the gate's: possible, as `contradiction` found
            bounds = joined.get(name)
            if bounds is None:
                bounds = joined[name] = copy(known)
            _constrain(bounds, operand)  # makes new sets, never changes `known`'s
            if bounds.empty():
                return True
        return False


def _domain(name: str) -> _Bounds:
    low, high = _range(name)
    return _Bounds(low=low, high=high)


def _range(name: str) -> tuple[float, float]:
    """What is true of every value the field can take: a closed range."""
    spec = KNOWN_FIELDS.get(name)
    return spec.range if spec is not None else _UNBOUNDED


_UNBOUNDED = (-math.inf, math.inf)


# --- pestering ---------------------------------------------------------------------


def waits_before_inviting(condition: n.Condition | None) -> bool:
    """True when the condition cannot hold the instant a page loads.

    That is: it requires some dwell, a second page view, some scroll, or an
    event other than `page_view` (docs/language.md: fires-on-load).
    """
    if condition is None:
        return False
    match condition:  # the commonest nodes first: this runs on every test of every rule
        case n.Compare():
            pass  # read below
        case n.And():
            return any(waits_before_inviting(o) for o in condition.operands)
        case n.Matches() | n.Not() | n.Contains() | n.Bare() | n.Ref():
            return False
        case n.InList():
            if condition.field.name != "event":
                return False
            names = {literal(v) for v in condition.values}
            return ("page_view" in names) == condition.negated
        case n.Or():
            return all(waits_before_inviting(o) for o in condition.operands)
        case _:
            assert_never(condition)
    name, op, value = condition.field.name, condition.op, literal(condition.value)
    if name == "event":
        return (op == "==" and value != "page_view") or (op == "!=" and value == "page_view")
    spec = KNOWN_FIELDS.get(name)
    floor = spec.on_load if spec is not None else None
    if floor is None or isinstance(value, bool) or not isinstance(value, _NUMBERS):
        return False
    return (op == ">=" and value > floor) or (op == ">" and value >= floor)


def reads_agents(condition: n.Condition | None) -> bool:
    if condition is None:
        return False
    return bool(fields_read(condition) & AGENT_FIELDS)


# --- the path index ---------------------------------------------------------------------


_LITERAL_START = re.compile(r"[^*?]*")  # up to the first wildcard: one call, not a loop


def glob_prefix(pattern: str) -> str:
    """The literal text a glob's matches all start with."""
    found = _LITERAL_START.match(pattern)
    assert found is not None  # `[^*?]*` matches the empty text at least
    return found.group()


_PATH_FIELDS = (("page", "path"), ("page", "url"))  # the fields that say the page's path
_PATH_TESTS = (n.Compare, n.InList, n.Matches)  # the tests that can say it (a tuple: `|`
_NESTED = (n.And, n.Or)  # would build a union type at every test)


def path_prefixes(condition: n.Condition) -> frozenset[str] | None:
    """Prefixes one of which `page.path` must start with for the condition to hold.

    None when the condition does not constrain the path. Used to index rules so
    an event only evaluates rules that can match its page.
    """
    match condition:
        case n.And():
            found = []
            for operand in condition.operands:
                # What cannot say the path is skipped without a call: most operands of
                # most rules, and the compiler asks this of every rule.
                if isinstance(operand, _PATH_TESTS):
                    if operand.field.path not in _PATH_FIELDS:
                        continue
                elif not isinstance(operand, _NESTED):
                    continue  # contains, bare, not, a define: nothing of the path
                part = path_prefixes(operand)
                if part is not None:
                    found.append(part)
            if len(found) < 2:
                return found[0] if found else None
            return max(found, key=lambda prefixes: min(len(p) for p in prefixes))
        case n.Or():  # None at the first operand that does not say the path
            parts = []
            for operand in condition.operands:
                if isinstance(operand, _PATH_TESTS):
                    if operand.field.path not in _PATH_FIELDS:
                        return None
                elif not isinstance(operand, _NESTED):
                    return None  # contains, bare, not, a define
                part = path_prefixes(operand)
                if part is None:
                    return None
                parts.append(part)
            return frozenset().union(*parts)
        case n.Compare() | n.InList() | n.Matches():
            pass  # read below
        case n.Contains() | n.Bare() | n.Not() | n.Ref():
            return None
        case _:
            assert_never(condition)
    field = condition.field.path
    if field not in _PATH_FIELDS:
        return None
    match condition:
        case n.Matches():
            prefixes = {glob_prefix(condition.pattern.value)}
        case n.InList():
            if condition.negated or not all(isinstance(v, n.Text) for v in condition.values):
                return None
            prefixes = {str(literal(v)) for v in condition.values}
        case n.Compare():
            if condition.op != "==" or not isinstance(condition.value, n.Text):
                return None
            prefixes = {condition.value.value}
        case _:
            assert_never(condition)
    if field == _PATH_FIELDS[1]:  # the url starts with the path, which ends at "?"
        prefixes = {p.split("?", 1)[0] for p in prefixes}
    return frozenset(prefixes)
