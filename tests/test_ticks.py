"""Tick sets (`politely.ticks`): the interval arithmetic behind `recheck_in`.

Each operation is checked on examples, then against a brute-force oracle that
treats a tick set as the plain set of integers it holds within a bounded range
(`-INF` and `INF` stand for "beyond the range on that side").
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import examples
from politely import ticks
from politely.ticks import EMPTY, FULL, INF, Ticks

LOW, HIGH = -40, 40  # the oracle looks at every integer in [LOW, HIGH)
OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}


def members(a: Ticks) -> set[int]:
    """The oracle's view of a tick set: the integers of [LOW, HIGH) it holds."""
    return {k for k in range(LOW, HIGH) if any(start <= k < end for start, end in a)}


def assert_canonical(a: Ticks) -> None:
    """Sorted, non-empty, disjoint intervals that do not touch, within [-INF, INF]."""
    for start, end in a:
        assert -INF <= start < end <= INF, a
    for (_, end), (start, _) in itertools.pairwise(a):
        assert end < start, a


@st.composite
def tick_sets(draw: st.DrawFn) -> Ticks:
    """Canonical tick sets whose finite edges lie inside the oracle's range."""
    edges = sorted(draw(st.sets(st.integers(LOW + 1, HIGH - 1), max_size=8)))
    if draw(st.booleans()):
        edges.insert(0, -INF)
    if draw(st.booleans()):
        edges.append(INF)
    if len(edges) % 2:
        edges.pop(draw(st.sampled_from([0, len(edges) - 1])))
    return tuple((edges[i], edges[i + 1]) for i in range(0, len(edges), 2))


quarters = st.integers(-160, 160).map(lambda q: q / 4)  # exact in binary floating point


# --- examples -------------------------------------------------------------------------


def test_since_holds_from_its_tick_on() -> None:
    assert ticks.since(30) == ((30, INF),)


def test_until_holds_before_its_tick_and_is_empty_from_minus_infinity() -> None:
    assert ticks.until(45) == ((-INF, 45),)
    assert ticks.until(-INF) == EMPTY


def test_both_keeps_the_ticks_in_both_sets() -> None:
    assert ticks.both(ticks.since(30), ticks.until(45)) == ((30, 45),)
    assert ticks.both(((0, 10), (20, 30)), ((5, 25),)) == ((5, 10), (20, 25))
    assert ticks.both(((0, 10),), ((10, 20),)) == EMPTY


def test_both_with_full_or_empty_is_the_other_set_or_empty() -> None:
    a = ((3, 7),)
    assert ticks.both(FULL, a) == a
    assert ticks.both(a, FULL) == a
    assert ticks.both(a, EMPTY) == EMPTY
    assert ticks.both(EMPTY, a) == EMPTY


def test_either_merges_overlapping_and_touching_intervals() -> None:
    assert ticks.either(((0, 5),), ((5, 10),)) == ((0, 10),)
    assert ticks.either(((0, 5),), ((3, 4),)) == ((0, 5),)
    assert ticks.either(((0, 2),), ((4, 6),)) == ((0, 2), (4, 6))
    assert ticks.either(EMPTY, ((1, 2),)) == ((1, 2),)


def test_invert_is_the_complement_over_all_integers() -> None:
    assert ticks.invert(EMPTY) == FULL
    assert ticks.invert(FULL) == EMPTY
    assert ticks.invert(((10, 20),)) == ((-INF, 10), (20, INF))
    assert ticks.invert(ticks.since(5)) == ((-INF, 5),)


def test_first_is_the_smallest_tick_at_or_after_the_lowest() -> None:
    assert ticks.first(ticks.invert(((10, 20),))) == 1
    assert ticks.first(((10, 20),)) == 10
    assert ticks.first(((-5, 3),)) == 1
    assert ticks.first(((-5, 1),)) is None
    assert ticks.first(((10, 20),), lowest=15) == 15
    assert ticks.first(((10, 20), (30, 40)), lowest=20) == 30
    assert ticks.first(EMPTY) is None


def test_at_least_and_above_round_to_whole_ticks() -> None:
    assert ticks.at_least(29.5) == 30
    assert ticks.at_least(30) == 30
    assert ticks.above(29.5) == 30
    assert ticks.above(30) == 31
    assert ticks.at_least(-0.5) == 0


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        (">=", ((30, INF),)),
        (">", ((31, INF),)),
        ("<", ((-INF, 30),)),
        ("<=", ((-INF, 31),)),
        ("==", ((30, 31),)),
        ("!=", ((-INF, 30), (31, INF))),
    ],
)
def test_compare_on_a_growing_quantity_is_exact_on_whole_ticks(op: str, expected: Ticks) -> None:
    assert ticks.compare(0, op, 30) == expected


def test_compare_greater_than_half_a_second_short_first_holds_at_the_next_tick() -> None:
    # page.dwell > 30s, 29.5 s into a page: true at tick 1 (30.5 s)
    assert ticks.first(ticks.compare(29.5, ">", 30)) == 1
    assert ticks.first(ticks.compare(29.5, ">=", 30)) == 1
    assert ticks.first(ticks.compare(29, ">", 30)) == 2
    assert ticks.first(ticks.compare(29, ">=", 30)) == 1


def test_compare_equal_never_holds_when_the_gap_is_not_whole() -> None:
    assert ticks.compare(0.5, "==", 30) == EMPTY
    assert ticks.compare(0.5, "!=", 30) == FULL


def test_steps_count_falls_by_one_at_each_release() -> None:
    # Three invitations leave the window at ticks 10, 20, 30.
    assert ticks.steps([20, 10, 30], "<", 2) == ((20, INF),)
    assert ticks.steps([10, 20, 30], "<=", 2) == ((10, INF),)
    assert ticks.steps([10, 20, 30], "==", 1) == ((20, 30),)
    assert ticks.steps([10, 20, 30], ">=", 3) == ((-INF, 10),)
    assert ticks.steps([10, 20, 30], "!=", 2) == ((-INF, 10), (20, INF))
    assert ticks.steps([], "==", 0) == FULL
    assert ticks.steps([], ">", 0) == EMPTY


def test_steps_with_releases_at_the_same_tick_drop_together() -> None:
    assert ticks.steps([10, 10], "==", 1) == EMPTY
    assert ticks.steps([10, 10], "==", 0) == ((10, INF),)


def test_of_turns_a_fixed_truth_into_all_or_no_ticks() -> None:
    assert ticks.of(True) == FULL
    assert ticks.of(False) == EMPTY


# --- against the oracle ---------------------------------------------------------------


@settings(max_examples=examples(150), deadline=None)
@given(tick_sets(), tick_sets())
def test_both_either_invert_match_set_algebra(a: Ticks, b: Ticks) -> None:
    for result in (ticks.both(a, b), ticks.either(a, b), ticks.invert(a)):
        assert_canonical(result)
    assert members(ticks.both(a, b)) == members(a) & members(b)
    assert members(ticks.either(a, b)) == members(a) | members(b)
    assert members(ticks.invert(a)) == set(range(LOW, HIGH)) - members(a)
    assert ticks.invert(ticks.invert(a)) == a


@settings(max_examples=examples(150), deadline=None)
@given(tick_sets(), st.integers(LOW, HIGH - 1))
def test_first_is_the_smallest_member_at_or_after_lowest(a: Ticks, lowest: int) -> None:
    found = sorted(k for k in members(a) if k >= lowest)
    assert ticks.first(a, lowest) == (found[0] if found else None)


@settings(max_examples=examples(200), deadline=None)
@given(quarters, st.sampled_from(sorted(OPS)), quarters)
def test_compare_holds_exactly_where_the_grown_quantity_compares(
    base: float, op: str, value: float
) -> None:
    result = ticks.compare(base, op, value)
    assert_canonical(result)
    assert members(result) == {k for k in range(LOW, HIGH) if OPS[op](base + k, value)}


@settings(max_examples=examples(200), deadline=None)
@given(
    st.lists(st.integers(LOW + 1, HIGH - 1), max_size=6),
    st.sampled_from(sorted(OPS)),
    st.integers(-1, 7),
)
def test_steps_holds_exactly_where_the_remaining_count_compares(
    releases: list[int], op: str, value: int
) -> None:
    result = ticks.steps(releases, op, value)
    assert_canonical(result)
    expected = {k for k in range(LOW, HIGH) if OPS[op](sum(1 for r in releases if r > k), value)}
    assert members(result) == expected
