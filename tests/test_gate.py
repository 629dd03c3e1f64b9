"""`analysis.Gate` answers what `contradiction(conjoin(rule, gate))` answers, with the
gate's part worked out once: the pestering warnings ask it of every rule."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import examples
from politely import analysis
from politely import nodes as n

FIELDS = ["page.dwell", "page.scroll", "session.pageviews", "visitor.plan", "visitor.cart_value"]
_field = st.sampled_from(FIELDS).map(lambda name: n.Field(tuple(name.split("."))))
_value = st.one_of(
    st.integers(-1, 4).map(n.Number),
    st.integers(0, 3).map(n.Duration),
    st.sampled_from(["a", "b"]).map(n.Text),
)
_compare = st.builds(n.Compare, _field, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), _value)
_in_list = st.builds(n.InList, _field, st.lists(_value, max_size=3).map(tuple), st.booleans())
_test = st.one_of(_compare, _in_list)
_part = st.one_of(
    _test,
    _test.map(n.Not),
    st.lists(_test, min_size=2, max_size=3).map(lambda ts: n.Or(tuple(ts))),
)
_condition = st.one_of(
    _part, st.lists(_part, min_size=2, max_size=5).map(lambda ps: n.And(tuple(ps)))
)


@settings(max_examples=examples(400), deadline=None)
@given(_condition, _condition)
def test_a_gate_finds_what_contradiction_finds_in_the_conjunction(
    rule: n.Condition, gate: n.Condition
) -> None:
    if analysis.contradiction(rule) is not None:
        return  # the pestering warnings ask only of rules that can hold alone
    both = analysis.conjoin(rule, gate)
    assert both is not None
    expected = analysis.contradiction(both) is not None
    assert analysis.Gate(gate).never_with(rule) == expected


def test_a_gate_joins_bounds_on_the_same_field() -> None:
    dwell = n.Field(("page", "dwell"))
    gate = analysis.Gate(n.Compare(dwell, ">=", n.Duration(60)))
    assert gate.never_with(n.Compare(dwell, "<", n.Duration(30)))
    assert not gate.never_with(n.Compare(dwell, "<", n.Duration(90)))
    # The gate's bounds are copied for each rule, never narrowed by one.
    assert not gate.never_with(n.Compare(dwell, ">=", n.Duration(60)))


def test_a_gates_field_is_narrowed_by_each_of_the_rules_tests_on_it() -> None:
    """Only the fields the gate bounds are joined (any other was found possible by
    the rule's own check), but each of those by every test the rule makes of it."""
    dwell, scroll = n.Field(("page", "dwell")), n.Field(("page", "scroll"))
    gate = analysis.Gate(n.Compare(dwell, ">=", n.Duration(5)))
    rule = n.And(
        (
            n.Compare(dwell, "<", n.Duration(10)),
            n.Compare(scroll, ">", n.Percent(5)),
            n.Compare(dwell, "<", n.Duration(5)),  # closes the gate's dwell
        )
    )
    assert analysis.contradiction(rule) is None
    assert gate.never_with(rule)
    assert not gate.never_with(n.And(rule.operands[:2]))
