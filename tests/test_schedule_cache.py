"""Schedules keep their own days: the work of a tick does not grow with the number of
other schedules a site has. These tests count computations, never time.
"""

from __future__ import annotations

import gc
import weakref
from collections import Counter

import pytest

from conftest import T0
from politely import Engine, schedule
from politely.durations import DAY
from politely.schedule import DAYS_KEPT, CompiledSchedule


@pytest.fixture
def computed(monkeypatch: pytest.MonkeyPatch) -> Counter[tuple[int, int]]:
    """(id of schedule, day) → how many times its intervals were computed."""
    counts: Counter[tuple[int, int]] = Counter()
    original = schedule._day_intervals

    def counting(s: CompiledSchedule, day: int) -> schedule.Intervals:
        counts[(id(s), day)] += 1
        return original(s, day)

    monkeypatch.setattr(schedule, "_day_intervals", counting)
    return counts


def distinct(count: int) -> list[CompiledSchedule]:
    """`count` different schedules, each open one minute on Sundays (closed on the
    Monday of T0, so `next_open` looks at every day up to its horizon)."""
    return [
        CompiledSchedule(((frozenset({6}), minute, minute + 1),), "Europe/Berlin", f"s{minute}")
        for minute in range(count)
    ]


def test_each_schedule_computes_a_day_once_however_many_schedules_there_are(
    computed: Counter[tuple[int, int]],
) -> None:
    schedules = distinct(1200)  # 1,200 schedules x 9 days: more than the old shared cache held
    for _ in range(3):
        for s in schedules:
            s.is_open(T0)
            s.next_open(T0)
    assert computed  # the days were computed...
    assert set(computed.values()) == {1}  # ...each once per schedule, over three passes
    assert len(computed) > 8192  # the size of the shared cache that used to thrash
    assert {key[0] for key in computed} == {id(s) for s in schedules}


def test_a_schedule_keeps_a_bounded_number_of_days(computed: Counter[tuple[int, int]]) -> None:
    (s,) = distinct(1)
    first = int(T0 // DAY)
    for day in range(first, first + 3 * DAYS_KEPT):
        s.is_open(day * DAY + 1)
    assert len(s._days) == DAYS_KEPT
    assert min(s._days) == first + 2 * DAYS_KEPT  # the oldest days were forgotten
    s.is_open(first * DAY + 1)  # a forgotten day is simply computed again
    assert computed[(id(s), first)] == 2


def test_rules_with_the_same_schedule_share_one_compiled_schedule(
    computed: Counter[tuple[int, int]],
) -> None:
    rules = "".join(
        f'rule r{i} {{ when page.dwell >= {i + 1}s say "Hi" during mon-fri 09:00-17:00 }}\n'
        for i in range(50)
    )
    policy = "policy { at most 1000 invitations per visitor }\n"
    engine = Engine.from_source(policy + rules)
    assert len({id(rule.schedule) for rule in engine.rules.rules}) == 1
    engine.evaluate({"visitor": "v", "event": "page_view", "url": "/", "at": T0})
    for second in range(1, 20):
        engine.evaluate({"visitor": "v", "event": "tick", "at": T0 + second})
    assert set(computed.values()) == {1}
    assert len({key[0] for key in computed}) == 1  # one schedule computed its days


def test_a_tick_computes_nothing_new_once_its_days_are_known(
    computed: Counter[tuple[int, int]],
) -> None:
    rules = "".join(
        f'rule r{i} {{ when page.dwell >= 10s say "Hi" during sun 00:{i:02}-00:{i + 1:02} }}\n'
        for i in range(40)
    )
    engine = Engine.from_source("policy { at most 1000 invitations per visitor }\n" + rules)
    engine.evaluate({"visitor": "v", "event": "page_view", "url": "/", "at": T0})
    engine.evaluate({"visitor": "v", "event": "tick", "at": T0 + 1})
    before = sum(computed.values())
    assert len({key[0] for key in computed}) == 40
    for second in range(2, 30):
        engine.evaluate({"visitor": "v", "event": "tick", "at": T0 + second})
    assert sum(computed.values()) == before


def test_schedules_are_shared_within_a_rule_set_never_across() -> None:
    text = 'rule r { when page.dwell >= 1s say "Hi" during mon 09:00-10:00 }\n'
    first, second = Engine.from_source(text), Engine.from_source(text + text.replace("r ", "q "))
    (a,) = first.rules.rules
    b, c = second.rules.rules
    assert b.schedule is c.schedule
    assert a.schedule is not b.schedule
    assert a.schedule is not None
    alive = weakref.ref(a.schedule)
    del first, a
    gc.collect()
    assert alive() is None  # gone with its rule set: no process-wide table holds it
