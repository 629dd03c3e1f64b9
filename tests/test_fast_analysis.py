"""The shortcuts a 10,000-rule site's check and compile take answer as the plain ways do.

- `analysis.contradiction` looks at each field's tests together only for fields
  tested more than once, and asks whether a test alone can hold without making
  its field's bounds; `analysis.path_prefixes` skips operands testing other
  fields without a call; `analysis.glob_prefix` is one regular expression. Each
  is compared, on generated input, with the plain version it replaced (kept
  below as the oracle): the same node, the same prefixes.
- `analysis.walk` lists the nodes (a generator cost more); compared with recursion.
- `analysis.measure` measures in one loop over an `and`'s operands; compared
  with the version that listed them first, on conditions using defines.
- `analysis.Expander` writes each define out once per site, not at every use;
  compared with the `expand` that walked it again each time, and with
  `fields_read` of that, on generated defines and rules.
- The checker expands each rule's `when` once and hands it to the compiler on
  its result; a rule set compiled from those equals one compiled from a result
  the compiler must expand afresh (`dataclasses.replace` drops them).
- fires-on-load asks whether a rule waits and whether the policy's `only when`
  waits apart (the gate once per site): joined, they wait when either does.
- Rules saying the same text share one compiled message; each still has the
  slots, fallbacks and getters its own message names.
- A message text the checker found nothing to say about is not checked again where
  another rule says it; one with an error or a warning is reported wherever it is said.
- Which policy cap covers a cap is asked once per distinct cap of a site; every
  cap without effect is still warned of, wherever it is written.
- Which defines are unused comes from the references the checker's walk saw;
  it equals walking every written condition again.
- The checker measures a rule's condition again (`analysis.measure`) only where
  the counts of its walk say it may be past a bound: those counts give exactly
  measure's tests and at least its depth.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from conftest import examples
from politely import analysis
from politely import nodes as n
from politely.checker import _Checker, check_sources
from politely.compiler import compile_rules
from politely.fields import KNOWN_FIELDS
from politely.language import cap_of, visitor_caps
from politely.limits import MAX_DEPTH, MAX_TESTS

# --- the plain versions the shortcuts replaced (the oracles) ----------------------------


def contradiction_plainly(condition: n.Condition) -> n.Condition | None:
    """`contradiction` as it was: every operand alone, then every field's tests in order."""
    match condition:
        case n.Compare() | n.InList():
            bounds = analysis._domain(condition.field.name)
            analysis._constrain(bounds, condition)
            return condition if bounds.empty() else None
        case n.Matches() | n.Not() | n.Contains() | n.Bare() | n.Ref():
            return None
        case n.Or():
            parts = [contradiction_plainly(o) for o in condition.operands]
            return condition if all(p is not None for p in parts) else None
        case n.And():
            pass
    for operand in condition.operands:
        inner = contradiction_plainly(operand)
        if inner is not None:
            return inner
    by_field: dict[str, analysis._Bounds] = {}
    for operand in condition.operands:
        if isinstance(operand, n.Compare | n.InList):
            name = operand.field.name
            bounds = by_field.setdefault(name, analysis._domain(name))
            analysis._constrain(bounds, operand)
            if bounds.empty():
                return condition
    return None


def empty_plainly(bounds: analysis._Bounds) -> bool:
    """`_Bounds.empty` as it was: every allowed value inside the range, less the
    excluded, as a set."""
    if bounds.low > bounds.high or (
        bounds.low == bounds.high and (bounds.low_open or bounds.high_open)
    ):
        return True
    if bounds.allowed is None:
        return False
    possible = {v for v in bounds.allowed if bounds._inside(v)} - (bounds.excluded or set())
    return not possible


def depth_plainly(condition: n.Condition) -> int:
    """How many levels a condition nests: a stack of (node, level) pairs, the deepest
    test's level (the parser's count, `test_bounds`, is held against it)."""
    deepest = 0
    pending: list[tuple[n.Condition, int]] = [(condition, 0)]
    while pending:
        node, level = pending.pop()
        match node:
            case n.Not(operand=operand):
                pending.append((operand, level + 1))
            case n.And(operands=operands) | n.Or(operands=operands):
                pending.extend((operand, level + 1) for operand in operands)
            case _:
                deepest = max(deepest, level)
    return deepest


def glob_prefix_plainly(pattern: str) -> str:
    """`glob_prefix` as it was: character by character up to the first wildcard."""
    for i, char in enumerate(pattern):
        if char in "*?":
            return pattern[:i]
    return pattern


def path_prefixes_plainly(condition: n.Condition) -> frozenset[str] | None:
    """`path_prefixes` as it was: every operand asked, by the field's dotted name."""
    match condition:
        case n.And():
            found = [p for p in map(path_prefixes_plainly, condition.operands) if p is not None]
            if not found:
                return None
            return max(found, key=lambda prefixes: min(len(p) for p in prefixes))
        case n.Or():
            parts = [path_prefixes_plainly(o) for o in condition.operands]
            if any(p is None for p in parts):
                return None
            return frozenset().union(*(p for p in parts if p is not None))
        case n.Contains() | n.Bare() | n.Not() | n.Ref():
            return None
    name = condition.field.name
    if name not in ("page.path", "page.url"):
        return None
    match condition:
        case n.Matches():
            prefixes = {glob_prefix_plainly(condition.pattern.value)}
        case n.InList():
            if condition.negated or not all(isinstance(v, n.Text) for v in condition.values):
                return None
            prefixes = {str(analysis.literal(v)) for v in condition.values}
        case n.Compare():
            if condition.op != "==" or not isinstance(condition.value, n.Text):
                return None
            prefixes = {condition.value.value}
    if name == "page.url":
        prefixes = {p.split("?", 1)[0] for p in prefixes}
    return frozenset(prefixes)


def measure_plainly(
    condition: n.Condition, defines: dict[str, analysis.Measure]
) -> analysis.Measure:
    """`measure` as it was: every part measured into a list, then its depth and tests."""
    match condition:
        case n.Ref(name=name):
            return defines.get(name, analysis.Measure(0, 1, "test"))
        case n.Not(operand=operand):
            inner = measure_plainly(operand, defines)
            return analysis.Measure(inner.depth + 1, inner.tests, "not")
        case n.And(operands=operands) | n.Or(operands=operands):
            top: Literal["and", "or"] = "and" if isinstance(condition, n.And) else "or"
            parts = [measure_plainly(operand, defines) for operand in operands]
            depth = max(p.depth if p.top == top else p.depth + 1 for p in parts)
            return analysis.Measure(depth, sum(p.tests for p in parts), top)
    return analysis.Measure(0, 1, "test")


def expand_plainly(condition: n.Condition, defines: dict[str, n.Condition]) -> n.Condition:
    """`expand` as it was: every use of a define walks its body again."""
    match condition:
        case n.Ref():
            return expand_plainly(defines[condition.name], defines)
        case n.Not():
            operand = expand_plainly(condition.operand, defines)
            return condition if operand is condition.operand else n.Not(operand, condition.span)
        case n.And() | n.Or():
            kind = type(condition)
            operands: list[n.Condition] = []
            same = True
            for operand in condition.operands:
                expanded = expand_plainly(operand, defines)
                if isinstance(expanded, kind):
                    operands.extend(expanded.operands)
                    same = False
                else:
                    operands.append(expanded)
                    same = same and expanded is operand
            return condition if same else kind(tuple(operands), condition.span)
    return condition


# --- generated conditions ----------------------------------------------------------------

_DWELL = n.Field(("page", "dwell"))
_SCROLL = n.Field(("page", "scroll"))

# Few fields, so an `and` often tests one twice; the path's fields often, with texts;
# one bounded above (0 to 100) as well as below.
FIELDS = ["page.dwell", "page.dwell", "page.path", "page.url", "visitor.plan", "page.scroll"]
_field = st.sampled_from(FIELDS).map(lambda name: n.Field(tuple(name.split("."))))
_path = st.sampled_from(["page.path", "page.url"]).map(lambda name: n.Field(tuple(name.split("."))))
_text = st.sampled_from(["a", "/", "/pricing", "/pricing/x?y=1", "/p?"]).map(n.Text)
_value = st.one_of(
    st.integers(-1, 4).map(n.Number),
    st.sampled_from([99, 100, 101]).map(n.Percent),  # at and past page.scroll's end
    st.sampled_from([-1.5, 0.5, math.inf]).map(n.Number),
    st.integers(0, 3).map(n.Duration),
    st.integers(0, 100).map(n.Percent),
    _text,
    st.booleans().map(n.Boolean),
)
_glob = st.sampled_from(["/pricing*", "/p?x*", "*", "/docs/", "/a?b=1*"]).map(n.Text)
_ops = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])
_test = st.one_of(
    st.builds(n.Compare, _field, _ops, _value),
    st.builds(n.Compare, _path, st.sampled_from(["==", "!="]), _text),
    st.builds(n.InList, _field, st.lists(_value, min_size=1, max_size=3).map(tuple), st.booleans()),
    # An empty list (the checker refuses it; contradiction still reads it) off the path.
    st.builds(n.InList, st.just(n.Field(("page", "dwell"))), st.just(()), st.booleans()),
    st.builds(n.InList, _path, st.lists(_text, min_size=1, max_size=3).map(tuple), st.booleans()),
    st.builds(n.Matches, _field, _glob),
    st.builds(n.Matches, _path, _glob),
    st.builds(n.Contains, _field, _glob),
    st.builds(n.Bare, _field),
)
_path_test = st.one_of(
    st.builds(n.Compare, _path, st.just("=="), _text), st.builds(n.Matches, _path, _glob)
)


# An `and` of tests (often two of one field) and of `or`s of path tests, as rules are.
def _combined(
    leaves: st.SearchStrategy[n.Condition], *, widest_and: int, widest_or: int
) -> st.SearchStrategy[n.Condition]:
    """Conditions of `leaves` under `not`, `and` and `or`, up to twelve leaves."""
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            inner.map(n.Not),
            st.lists(inner, min_size=2, max_size=widest_and).map(lambda ops: n.And(tuple(ops))),
            st.lists(inner, min_size=2, max_size=widest_or).map(lambda ops: n.Or(tuple(ops))),
        ),
        max_leaves=12,
    )


_joined = st.lists(
    st.one_of(
        _test, st.lists(_path_test, min_size=2, max_size=3).map(lambda ops: n.Or(tuple(ops)))
    ),
    min_size=2,
    max_size=4,
).map(lambda ops: n.And(tuple(ops)))
conditions = st.one_of(
    _joined,
    _combined(_test, widest_and=5, widest_or=3),
)


@settings(max_examples=examples(600), deadline=None)
@given(conditions)
@example(  # empty after the second test, not after the third ({0} & {False} is {False})
    n.And(
        (
            n.Compare(_DWELL, "==", n.Number(0)),
            n.Compare(_DWELL, ">", n.Number(0)),
            n.Compare(_DWELL, "==", n.Boolean(False)),
        )
    )
)
@example(  # at each end of a field's range, and past it: open or closed
    n.And(
        (
            n.Compare(_SCROLL, ">=", n.Percent(100)),
            n.Compare(_DWELL, "<=", n.Duration(0)),
            n.Compare(_SCROLL, "==", n.Percent(0)),
            n.InList(_SCROLL, (n.Percent(101), n.Percent(100)), negated=False),
        )
    )
)
@example(  # an `or` inside an `and` that never holds: the `or` is the answer
    n.And(
        (
            n.Compare(_DWELL, ">=", n.Duration(5)),
            n.Or((n.Compare(_DWELL, "<", n.Duration(0)), n.Compare(_SCROLL, ">", n.Percent(100)))),
        )
    )
)
@example(n.Compare(_SCROLL, ">", n.Percent(100)))
@example(n.Compare(_DWELL, "<", n.Duration(0)))
@example(n.InList(_SCROLL, (n.Percent(101), n.Number(-1)), negated=False))
@example(n.Compare(_SCROLL, "==", n.Number(101)))
def test_contradiction_names_the_node_the_plain_way_names(condition: n.Condition) -> None:
    assert analysis.contradiction(condition) is contradiction_plainly(condition)


def test_every_fields_domain_is_a_range_that_is_not_empty() -> None:
    """What `contradiction` assumes when it asks a test alone without the bounds."""
    for spec in KNOWN_FIELDS.values():
        low, high = spec.range
        assert low <= high, spec.name


@settings(max_examples=examples(600), deadline=None)
@given(conditions)
def test_path_prefixes_are_those_the_plain_way_finds(condition: n.Condition) -> None:
    assert analysis.path_prefixes(condition) == path_prefixes_plainly(condition)


_refs = st.sampled_from(["and_define", "or_define", "not_define", "missing"]).map(n.Ref)
_DEFINES = {
    "and_define": analysis.Measure(2, 5, "and"),
    "or_define": analysis.Measure(3, 4, "or"),
    "not_define": analysis.Measure(1, 1, "not"),
}
_with_refs = st.recursive(
    st.one_of(_test, _refs),
    lambda inner: st.one_of(
        inner.map(n.Not),
        st.lists(inner, min_size=2, max_size=4).map(lambda ops: n.And(tuple(ops))),
        st.lists(inner, min_size=2, max_size=4).map(lambda ops: n.Or(tuple(ops))),
    ),
    max_leaves=12,
)


def _using(names: list[str]) -> st.SearchStrategy[n.Condition]:
    """Conditions of tests and of references to `names`."""
    leaves = st.one_of(_test, st.sampled_from(names).map(n.Ref)) if names else _test
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            inner.map(n.Not),
            st.lists(inner, min_size=2, max_size=3).map(lambda ops: n.And(tuple(ops))),
            st.lists(inner, min_size=2, max_size=3).map(lambda ops: n.Or(tuple(ops))),
        ),
        max_leaves=6,
    )


@st.composite
def defines_and_rules(draw: st.DrawFn) -> tuple[dict[str, n.Condition], list[n.Condition]]:
    """Defines each using earlier ones (so none is in a cycle), and rules using them."""
    defines: dict[str, n.Condition] = {}
    for i in range(draw(st.integers(0, 4))):
        defines[f"d{i}"] = draw(_using(list(defines)))
    return defines, draw(st.lists(_using(list(defines)), min_size=1, max_size=6))


@settings(max_examples=examples(150), deadline=None)
@given(defines_and_rules())
def test_the_expander_writes_out_what_expand_wrote_and_the_fields_it_reads(
    site: tuple[dict[str, n.Condition], list[n.Condition]],
) -> None:
    defines, rules = site
    expander = analysis.Expander(defines)  # one for all the rules, as the checker does
    for rule in rules:
        plainly = expand_plainly(rule, defines)
        found = expander.expanded(rule)
        assert found.condition == plainly
        assert [o.span for o in analysis.walk(found.condition)] == [
            o.span for o in analysis.walk(plainly)
        ]
        assert found.reads == analysis.fields_read(plainly)


@settings(max_examples=examples(400), deadline=None)
@given(_with_refs)
def test_measure_is_what_the_plain_way_measures(condition: n.Condition) -> None:
    assert analysis.measure(condition, _DEFINES) == measure_plainly(condition, _DEFINES)


_LARGE = {  # defines near the bounds, so the rules using them cross them
    **_DEFINES,
    "deep_define": analysis.Measure(MAX_DEPTH - 1, 3, "and"),
    "wide_define": analysis.Measure(1, MAX_TESTS - 2, "or"),
}
_near_the_bounds = _combined(
    st.one_of(_test, st.sampled_from(sorted(_LARGE)).map(n.Ref)), widest_and=4, widest_or=4
)


@settings(max_examples=examples(400), deadline=None)
@given(_near_the_bounds)
def test_a_rule_is_measured_again_only_where_it_may_be_past_a_bound(
    condition: n.Condition,
) -> None:
    """The checker's walk counts a rule's tests as `measure` does, and its depth at
    least as deep: a rule it finds surely small is one `measure` finds small."""
    checking = _Checker({})
    checking.measures = dict(_LARGE)
    shape = checking._check_condition(condition, dict.fromkeys(_LARGE))
    measured = analysis.measure(condition, _LARGE)
    depth, tests = checking._at_most(shape)
    assert tests == measured.tests
    assert depth >= measured.depth
    if checking._surely_small(shape):
        assert measured.depth <= MAX_DEPTH
        assert measured.tests <= MAX_TESTS


def walk_plainly(condition: n.Condition) -> list[n.Condition]:
    """`walk` as recursion: each node, then its operands' walks left to right."""
    match condition:
        case n.Not():
            return [condition, *walk_plainly(condition.operand)]
        case n.And() | n.Or():
            return [condition, *(node for o in condition.operands for node in walk_plainly(o))]
        case _:
            return [condition]


@settings(max_examples=examples(400), deadline=None)
@given(st.one_of(conditions, _with_refs))
def test_walk_lists_parents_before_children_and_operands_left_to_right(
    condition: n.Condition,
) -> None:
    """The checker reports in the order it walks (a line's errors as written)."""
    assert [id(node) for node in analysis.walk(condition)] == [
        id(node) for node in walk_plainly(condition)
    ]


_EVENT = n.Field(("event",))
_waiting = st.recursive(  # tests that wait before inviting and tests that do not, mixed
    st.sampled_from(
        [
            n.Compare(_DWELL, ">=", n.Duration(30)),
            n.Compare(_DWELL, ">=", n.Duration(0)),
            n.Compare(_DWELL, ">", n.Duration(0)),
            n.Compare(n.Field(("session", "pageviews")), ">=", n.Number(2)),
            n.Compare(_EVENT, "==", n.Text("tick")),
            n.Compare(_EVENT, "!=", n.Text("page_view")),
            n.InList(_EVENT, (n.Text("page_view"), n.Text("tick")), negated=False),
            n.InList(_EVENT, (n.Text("page_view"),), negated=True),
            n.Matches(n.Field(("page", "path")), n.Text("/pricing*")),
        ]
    ),
    lambda inner: st.one_of(
        inner.map(n.Not),
        st.lists(inner, min_size=2, max_size=3).map(lambda ops: n.And(tuple(ops))),
        st.lists(inner, min_size=2, max_size=3).map(lambda ops: n.Or(tuple(ops))),
    ),
    max_leaves=8,
)


@settings(max_examples=examples(400), deadline=None)
@given(st.text(st.sampled_from("ab/*?\n\u00e9"), max_size=12))
def test_a_globs_literal_start_is_the_plain_ways(pattern: str) -> None:
    assert analysis.glob_prefix(pattern) == glob_prefix_plainly(pattern)


@settings(max_examples=examples(400), deadline=None)
@given(_waiting, st.one_of(st.none(), _waiting))
def test_a_rule_joined_to_the_gate_waits_when_either_waits(
    rule: n.Condition, gate: n.Condition | None
) -> None:
    """fires-on-load asks of the rule and of the policy's `only when` apart."""
    joined = analysis.waits_before_inviting(analysis.conjoin(rule, gate))
    apart = analysis.waits_before_inviting(rule) or analysis.waits_before_inviting(gate)
    assert joined == apart


# --- generated sites ---------------------------------------------------------------------

_ATOMS = [
    'page.path matches "/pricing*"',
    'page.url == "/docs?x=1"',
    "page.dwell >= 30s",
    "page.dwell < 10s",
    "agents.available > 0",
    'visitor.plan in ["a", "b"]',
    "not visitor.returning",
    "session.pageviews >= 2",
]


_SAYS = [
    '"Hi"',
    '"Hi {visitor.name or there}"',
    '"Hi {visitor.name}" or "Been here {page.dwell or a while}?"',
    '"Hi {visitor.name or you}" or "Hi"',
]


@st.composite
def sites(draw: st.DrawFn) -> dict[str, str]:
    """Defines using atoms and earlier defines, a policy, and rules using both."""
    names = [f"d{i}" for i in range(draw(st.integers(0, 5)))]

    def condition(usable: list[str]) -> str:
        parts = draw(st.lists(st.sampled_from([*_ATOMS, *usable]), min_size=1, max_size=3))
        return draw(st.sampled_from([" and ", " or "])).join(parts)

    lines = [f"define {name} = {condition(names[:i])}" for i, name in enumerate(names)]
    if draw(st.booleans()):
        lines.append(f"policy {{\n only when {condition(names)}\n}}")
    for i in range(draw(st.integers(1, 6))):
        on = draw(st.sampled_from(["", "on tick", "on page_view, help"]))
        say = draw(st.sampled_from(_SAYS))
        lines.append(f"rule r{i} {{ {on} when {condition(names)} say {say} }}")
    half = len(lines) // 2
    return {"a.rules": "\n".join(lines[:half]) + "\n", "b.rules": "\n".join(lines[half:]) + "\n"}


@settings(max_examples=examples(150), deadline=None)
@given(sites())
def test_a_rule_set_from_the_checkers_expansions_equals_one_expanded_afresh(
    files: dict[str, str],
) -> None:
    result = check_sources(files)
    if not result.ok:
        return
    assert len(result.expanded) == len(result.rules)
    reused = compile_rules(result)
    afresh = compile_rules(dataclasses.replace(result))  # drops the expansions and the key
    assert afresh is not reused
    assert [(r.name, r.condition, r.time_dependent, r.events) for r in reused.rules] == [
        (r.name, r.condition, r.time_dependent, r.events) for r in afresh.rules
    ]
    assert sorted(reused.getters) == sorted(afresh.getters)
    assert {
        event: (
            [b.label for b in entry.free],
            {p: [[r.name for r in b.rules] for b in bs] for p, bs in entry.by_prefix.items()},
        )
        for event, entry in reused.index.items()
    } == {
        event: (
            [b.label for b in entry.free],
            {p: [[r.name for r in b.rules] for b in bs] for p, bs in entry.by_prefix.items()},
        )
        for event, entry in afresh.index.items()
    }


@settings(max_examples=examples(150), deadline=None)
@given(sites())
def test_the_unused_defines_are_those_no_written_condition_names(files: dict[str, str]) -> None:
    result = check_sources(files)
    if not result.ok:
        return
    written = [d.condition for d in result.defines.values()]
    if result.policy is not None:
        written += [c.condition for c in result.policy.clauses if isinstance(c, n.Only)]
    written += [c.condition for _, r in result.rules for c in r.clauses if isinstance(c, n.When)]
    used = {ref.name for condition in written for ref in analysis.refs(condition)}
    warned = {d.message.split("`")[1] for d in result.warnings if d.code == "unused-define"}
    assert warned == set(result.defines) - used


@settings(max_examples=examples(100), deadline=None)
@given(sites())
def test_each_rule_is_given_the_messages_it_says(files: dict[str, str]) -> None:
    """Rules saying the same text share one compiled message: it is that text's."""
    result = check_sources(files)
    if not result.ok:
        return
    rules = compile_rules(result)
    for (_, rule), compiled in zip(result.rules, rules.rules, strict=True):
        say = next(c for c in rule.clauses if isinstance(c, n.Say))
        assert len(compiled.messages) == len(say.messages)
        for message, made in zip(say.messages, compiled.messages, strict=True):
            assert made.template == message.text
            assert len(made.parts) == len(message.parts)
            for part, filled in zip(message.parts, made.parts, strict=True):
                if isinstance(part, str):
                    assert filled == part
                else:
                    assert not isinstance(filled, str)
                    assert filled.get is rules.getters[part.field.name]
                    assert filled.fallback == (part.fallback or "")
                    assert filled.duration == (part.field.name == "page.dwell")


_POLICY_CAPS = ["at most 1 invitation per 1h", "at most 2 invitations per session", ""]
_RULE_CAPS = ["cooldown 10m", "cooldown 2h", "at most 1 per session", "at most 3 per 1d", ""]


@settings(max_examples=examples(100), deadline=None)
@given(
    st.lists(st.sampled_from(_POLICY_CAPS), max_size=2),
    st.lists(st.lists(st.sampled_from(_RULE_CAPS), max_size=3), min_size=1, max_size=6),
)
def test_each_cap_without_effect_is_warned_of_wherever_it_is_written(
    policy: list[str], rules: list[list[str]]
) -> None:
    """The policy cap covering a cap is worked out once per distinct cap, not per rule."""
    lines = ["policy {", "only when agents.available > 0", *policy, "}"]
    for i, caps in enumerate(rules):
        lines += [f"rule r{i} {{", "when page.dwell >= 30s", 'say "Hi"', *caps, "}"]
    result = check_sources({"a.rules": "\n".join(lines) + "\n"})
    assert result.ok
    policy_caps = visitor_caps(result.policy)
    expected = {
        (clause.span.line, clause.span.column)
        for _, rule in result.rules
        for clause in rule.clauses
        if (limit := cap_of(clause)) is not None and any(p.covers(limit) for p in policy_caps)
    }
    warned = {(d.line, d.column) for d in result.warnings if d.code == "cap-no-effect"}
    assert warned == expected


@pytest.mark.parametrize(
    ("said", "code"),
    [('"Hi {event.nam or you}"', "near-miss-field"), ('"<b>Hi</b>"', "markup-in-message")],
)
def test_a_message_said_again_is_reported_again_unless_it_had_nothing_to_say(
    said: str, code: str
) -> None:
    agents = "policy { only when agents.available > 0 }\n"
    rules = [
        f"rule r{i} {{ when page.dwell >= 5s say {text} }}"
        for i, text in enumerate(['"Hi {visitor.name}"', said, '"Hi {visitor.name}"', said, said])
    ]
    result = check_sources({"a.rules": agents + "\n".join(rules) + "\n"})
    assert [(d.code, d.line) for d in result.diagnostics] == [(code, 3), (code, 5), (code, 6)]


_bound_values = st.one_of(
    st.integers(-3, 3), st.sampled_from([0.5, -0.0, math.inf]), st.booleans(), st.sampled_from("ab")
)
_ends = st.one_of(st.just(-math.inf), st.just(math.inf), st.integers(-3, 3).map(float))


@settings(max_examples=examples(600), deadline=None)
@given(
    _ends,
    st.booleans(),
    _ends,
    st.booleans(),
    st.none() | st.frozensets(_bound_values, max_size=6),
    st.none() | st.frozensets(_bound_values, max_size=4),
)
def test_bounds_are_empty_as_the_plain_way_finds(
    low: float,
    low_open: bool,
    high: float,
    high_open: bool,
    allowed: frozenset[object] | None,
    excluded: frozenset[object] | None,
) -> None:
    """`empty` stops at the first value left (and skips the range when there is
    none): a 50,000-value list was made into a set of the possible values again
    for each rule using it."""
    bounds = analysis._Bounds(low, low_open, high, high_open, allowed, excluded)
    assert bounds.empty() is empty_plainly(bounds)


def test_a_long_list_s_values_are_made_once_per_node() -> None:
    values = tuple(n.Number(k) for k in range(analysis.LONG_LIST))
    one, other = (n.InList(n.Field(("visitor", "visits")), values, False) for _ in range(2))
    found = analysis._list_values(one)
    assert found == frozenset(range(analysis.LONG_LIST))
    assert analysis._list_values(one) is found  # the same list node: made once
    assert analysis._list_values(other) is not found  # another node, equal or not
    analysis._list_memo[id(other)] = (one, frozenset({"wrong"}))  # as if its id were reused
    assert analysis._list_values(other) == found
    short = n.InList(n.Field(("visitor", "visits")), values[:3], False)
    assert analysis._list_values(short) == frozenset(range(3))
    assert id(short) not in analysis._list_memo  # short lists are not kept
