"""Schedules in real time: is a moment inside one, and when does one next open.

A schedule is weekly in wall-clock time of its zone. Daylight saving makes the
real-time intervals uneven, so they are computed per UTC day from the wall
clock itself: the wall-clock test can only change where wall time crosses a
window boundary or the zone changes its offset, and both kinds of instant are
candidates. Decisions (`is_open`) and `recheck_in` (`next_open`) read the same
intervals, so they can never disagree.

Each compiled schedule keeps the days it computed (the last `DAYS_KEPT`), so
the cost of a tick does not depend on how many other schedules a site has: a
shared cache of bounded size would thrash once the site's schedules times the
days a tick looks at (up to 9) outgrew it. Within a rule set, schedules with
the same windows and zone are one object (the compiler shares them), so a
thousand rules `during mon-fri 09:00-17:00` compute each day once. There is no
process-wide table of schedules: a schedule lives as long as its rule set.

    >>> office = CompiledSchedule(((frozenset(range(5)), 9 * 60, 17 * 60),), "UTC")
    >>> office.is_open(1767607200)  # Monday 2026-01-05 10:00 UTC
    True
"""

from __future__ import annotations

import bisect
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from politely import nodes as n
from politely.durations import DAY

Window = tuple[frozenset[int], int, int]  # days, start minute, end minute (exclusive)
Intervals = tuple[tuple[float, ...], tuple[float, ...]]  # starts, ends

DAYS_KEPT = 64  # days of intervals each schedule keeps: two months of replayed traffic


@dataclass(frozen=True, eq=False)  # identity hash: each keeps its own days
class CompiledSchedule:
    windows: tuple[Window, ...]
    zone_name: str = "UTC"
    text: str = ""  # as written in the rules (canonical), for explanations
    zone: ZoneInfo = field(init=False, compare=False, repr=False)
    _days: dict[int, Intervals] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "zone", ZoneInfo(self.zone_name))
        object.__setattr__(self, "_days", {})

    @classmethod
    def from_node(cls, schedule: n.Schedule, text: str = "") -> CompiledSchedule:
        windows = tuple((w.days, w.start, w.end) for w in schedule.windows)
        return cls(windows, schedule.zone.value if schedule.zone else "UTC", text)

    def intervals(self, day: int) -> Intervals:
        """Open intervals within UTC day `day`, computed once per schedule and day."""
        days = self._days
        found = days.get(day)
        if found is None:
            found = _day_intervals(self, day)
            if len(days) >= DAYS_KEPT:
                # Forget the day computed first (another thread may have already).
                with contextlib.suppress(KeyError, RuntimeError, StopIteration):
                    del days[next(iter(days))]
            days[day] = found
        return found

    def is_open(self, t: float) -> bool:
        starts, ends = self.intervals(int(t // DAY))
        i = bisect.bisect_right(starts, t) - 1
        return i >= 0 and t < ends[i]

    def next_open(self, t: float, horizon: float = 8 * DAY) -> tuple[float, float] | None:
        """The first open interval (start, end) with end > t, or None within `horizon`.

        Intervals that touch at midnight UTC are merged; an interval still open
        at the horizon is returned cut there.
        """
        day, last_day = int(t // DAY), int((t + horizon) // DAY)
        found: tuple[float, float] | None = None
        while day <= last_day:
            starts, ends = self.intervals(day)
            for start, end in zip(starts, ends, strict=True):
                if found is None:
                    if end > t:
                        found = (start, end)
                elif start == found[1]:
                    found = (found[0], end)
                else:
                    return found
            if found is not None and found[1] < (day + 1) * DAY:
                return found
            day += 1
        return found

    def wall_open(self, t: float) -> bool:
        """The definition: is the zone's wall clock at t inside a window?"""
        wall = datetime.fromtimestamp(t, self.zone)
        weekday = wall.weekday()
        second = wall.hour * 3600 + wall.minute * 60 + wall.second
        for days, start, end in self.windows:
            start_s, end_s = start * 60, end * 60
            if start < end:
                if weekday in days and start_s <= second < end_s:
                    return True
            elif (weekday in days and second >= start_s) or (
                (weekday - 1) % 7 in days and second < end_s
            ):
                return True
        return False


def never_together(a: CompiledSchedule, b: CompiledSchedule) -> bool:
    """Whether two schedules are never open at the same moment, for certain.

    Of one zone, one wall clock reads both, so windows that share no minute of
    the week never meet. Of two zones, daylight saving may bring them together
    some weeks and not others: not certain, False.

        >>> weekdays = CompiledSchedule(((frozenset(range(5)), 9 * 60, 17 * 60),), "UTC")
        >>> saturday_night = CompiledSchedule(((frozenset({5}), 22 * 60, 2 * 60),), "UTC")
        >>> never_together(weekdays, saturday_night)
        True
    """
    if a.zone_name != b.zone_name:
        return False
    theirs = _week_minutes(b)
    return not any(
        start < other_end and other_start < end
        for start, end in _week_minutes(a)
        for other_start, other_end in theirs
    )


_WEEK = 7 * 24 * 60


def _week_minutes(schedule: CompiledSchedule) -> list[tuple[int, int]]:
    """The schedule's open minutes of the week (Monday 00:00 = 0), as `wall_open`
    reads its windows: one that ends at or before it starts runs past midnight."""
    spans = []
    for days, start, end in schedule.windows:
        for day in days:
            base = day * 24 * 60
            if start < end:
                spans.append((base + start, base + end))
            else:
                spans.append((base + start, base + 24 * 60))
                after = (base + 24 * 60) % _WEEK
                spans.append((after, after + end))
    return spans


def _day_intervals(schedule: CompiledSchedule, day: int) -> Intervals:
    """Open intervals within UTC day `day`, as (starts, ends): the computation
    `CompiledSchedule.intervals` keeps."""
    day_start, day_end = day * DAY, (day + 1) * DAY
    candidates = {float(day_start)}
    zone = schedule.zone
    first_date = datetime.fromtimestamp(day_start, zone).date() - timedelta(days=1)
    boundaries = {m for _, start, end in schedule.windows for m in (start, end)}
    for offset in range(4):
        local_date = first_date + timedelta(days=offset)
        for minute in boundaries:
            for instant in _instants(local_date, minute, zone):
                if day_start <= instant < day_end:
                    candidates.add(instant)
    candidates.update(_offset_changes(zone, day_start, day_end))
    ordered = sorted(candidates)
    starts: list[float] = []
    ends: list[float] = []
    for i, instant in enumerate(ordered):
        stop = ordered[i + 1] if i + 1 < len(ordered) else float(day_end)
        if schedule.wall_open(instant):
            if ends and ends[-1] == instant:
                ends[-1] = stop
            else:
                starts.append(instant)
                ends.append(stop)
    return tuple(starts), tuple(ends)


def _instants(local_date: date, minute: int, zone: ZoneInfo) -> set[float]:
    """Real instants at which the wall clock shows local_date + minute (0, 1 or 2)."""
    if minute >= 24 * 60:
        local_date, minute = local_date + timedelta(days=1), minute - 24 * 60
    naive = datetime.combine(local_date, time(minute // 60, minute % 60))
    return {naive.replace(tzinfo=zone, fold=fold).timestamp() for fold in (0, 1)}


def _offset_changes(zone: ZoneInfo, start: int, end: int) -> list[float]:
    """Instants in [start, end) at which the zone's UTC offset changes."""
    changes: list[float] = []

    def offset(t: float) -> timedelta | None:
        return datetime.fromtimestamp(t, UTC).astimezone(zone).utcoffset()

    step = 3600
    previous_t, previous = float(start), offset(start)
    t = start + step
    while t <= end:
        current = offset(t)
        if current != previous:
            low, high = previous_t, float(t)
            while high - low > 1:
                middle = (low + high) // 2
                if offset(middle) == previous:
                    low = middle
                else:
                    high = middle
            if start <= high < end:
                changes.append(high)
        previous_t, previous = float(t), current
        t += step
    return changes
