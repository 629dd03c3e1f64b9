"""Sets of future ticks, the arithmetic behind `recheck_in`.

A site that is told "ask again in k seconds" sends its next tick at `now + k`.
To find the smallest k at which a rule could fire, every part of a rule
(condition, caps, quiet periods, block expiry) is turned into the set of
whole-second offsets k at which it would hold if nothing but time passed, and
the sets are combined with `and`/`or`/`not`. A set is a sorted tuple of
disjoint half-open integer intervals `(start, end)`:

    >>> both(since(30), until(45))
    ((30, 45),)
    >>> first(invert(((10, 20),)))
    1

Working on whole ticks instead of real time makes `>` versus `>=` exact:
`page.dwell > 30s`, 29.5 s into a page, first holds at tick k = 1 (30.5 s).
"""

from __future__ import annotations

import math

INF = 1 << 62
Ticks = tuple[tuple[int, int], ...]
FULL: Ticks = ((-INF, INF),)
EMPTY: Ticks = ()


def since(k: int) -> Ticks:
    return ((max(k, -INF), INF),)


def until(k: int) -> Ticks:
    return ((-INF, min(k, INF)),) if k > -INF else EMPTY


def at_least(x: float) -> int:
    """The smallest whole k with k >= x."""
    return math.ceil(x)


def above(x: float) -> int:
    """The smallest whole k with k > x."""
    return math.floor(x) + 1


def both(a: Ticks, b: Ticks) -> Ticks:
    if not a or not b:
        return EMPTY
    if a is FULL:
        return b
    if b is FULL:
        return a
    out: list[tuple[int, int]] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start = max(a[i][0], b[j][0])
        end = min(a[i][1], b[j][1])
        if start < end:
            out.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def either(a: Ticks, b: Ticks) -> Ticks:
    if not a:
        return b
    if not b:
        return a
    merged = sorted(a + b)
    out = [merged[0]]
    for start, end in merged[1:]:
        last_start, last_end = out[-1]
        if start <= last_end:
            if end > last_end:
                out[-1] = (last_start, end)
        else:
            out.append((start, end))
    return tuple(out)


def invert(a: Ticks) -> Ticks:
    if not a:
        return FULL
    out: list[tuple[int, int]] = []
    cursor = -INF
    for start, end in a:
        if start > cursor:
            out.append((cursor, start))
        cursor = end
    if cursor < INF:
        out.append((cursor, INF))
    return tuple(out)


def first(a: Ticks, lowest: int = 1) -> int | None:
    """The smallest k >= lowest in the set, or None."""
    for start, end in a:
        if end > lowest:
            return max(start, lowest)
    return None


def equal_to(x: float) -> Ticks:
    """Ticks k with k == x (none unless x is whole)."""
    return ((int(x), int(x) + 1),) if float(x).is_integer() else EMPTY


def compare(base: float, op: str, value: float) -> Ticks:
    """Ticks k at which `base + k OP value` holds: a quantity growing one per second."""
    x = value - base
    if op == ">=":
        return since(at_least(x))
    if op == ">":
        return since(above(x))
    if op == "<":
        return until(at_least(x))
    if op == "<=":
        return until(above(x))
    if op == "==":
        return equal_to(x)
    return invert(equal_to(x))


def steps(releases: list[int], op: str, value: float) -> Ticks:
    """Ticks at which `count OP value` holds for a count that drops by one at each release.

    At tick k the count is the number of releases greater than k (a rolling
    window's count falls as old invitations age out of it).
    """
    releases = sorted(releases)
    out: Ticks = EMPTY
    edges = [-INF, *releases, INF]
    for i in range(len(edges) - 1):
        start, end = edges[i], edges[i + 1]
        if start >= end:
            continue
        count = len(releases) - i
        if _holds(count, op, value):
            out = either(out, ((start, end),))
    return out


def _holds(count: float, op: str, value: float) -> bool:
    if op == ">=":
        return count >= value
    if op == ">":
        return count > value
    if op == "<=":
        return count <= value
    if op == "<":
        return count < value
    if op == "==":
        return count == value
    return count != value


def of(flag: bool) -> Ticks:
    return FULL if flag else EMPTY
