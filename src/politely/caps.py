"""Caps over a visitor's or the site's invitations: do they allow one now, and when.

Caps are plain values (a limit, a window, a rule), so they travel to stores
as data. The evaluator uses these to pick a rule and compute `recheck_in`;
the Python stores use the same counting inside their atomic "record if every
cap still allows it" step (the Redis store's Lua script mirrors it), so the
two can never disagree. Windows are rolling and half-open: an
invitation at t counts against `per D` until t + D, and no longer.

    >>> cap = Cap(limit=1, window=600)
    >>> cap.release_time([1000.0], now=1300.0)
    1600.0
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from typing import Literal

import msgspec

from politely.state import InvitationLog, SitewideUsage

Window = int | Literal["session", "visitor"]


class Cap(msgspec.Struct, frozen=True):
    """At most `limit` invitations per `window`, of one rule or (rule None) all rules."""

    limit: int
    window: Window
    rule: str | None = None

    def covers(self, other: Cap) -> bool:
        """True when this cap alone already keeps `other` from ever binding."""
        if self.limit > other.limit:
            return False
        if self.window == "visitor":
            return True
        if isinstance(self.window, int) and isinstance(other.window, int):
            return self.window >= other.window
        return self.window == other.window

    def describe(self) -> str:
        """As a rule writer would write it: `at most 2 invitations per 1d`."""
        from politely.durations import format_duration

        window = format_duration(self.window) if isinstance(self.window, int) else self.window
        noun = "invitation" if self.limit == 1 else "invitations"
        return f"at most {self.limit} {noun} per {window}"

    def count(self, log: InvitationLog | None, session: str | None, now: float) -> int:
        if log is None:
            return 0
        if self.window == "session":
            return log.in_session(session, self.rule)
        if self.window == "visitor":
            return log.in_total(self.rule)
        return _in_window(log.times(self.rule), self.window, now)

    def allows(self, log: InvitationLog | None, session: str | None, now: float) -> bool:
        return self.count(log, session, now) < self.limit

    def release(self, log: InvitationLog | None, session: str | None, now: float) -> float | None:
        """The earliest time >= now at which this cap allows an invitation, or None
        when only a new session (or nothing) could free it."""
        if log is None:
            return now
        if isinstance(self.window, int):
            return self.release_time(log.times(self.rule), now)
        return now if self.allows(log, session, now) else None

    def release_time(self, times: Sequence[float], now: float) -> float:
        """For a rolling cap over `times` (oldest first): when the count drops below limit."""
        if _in_window(times, self.window, now) < self.limit:  # type: ignore[arg-type]
            return now
        return times[-self.limit] + self.window  # type: ignore[operator]


def _in_window(times: Sequence[float], window: int, now: float) -> int:
    count = 0
    for t in reversed(times):
        if t + window <= now:
            break
        count += 1
    return count


def sitewide_usage(cap: Cap, times: Sequence[float], now: float) -> SitewideUsage:
    """A sitewide cap's use from the site's invitation times (sorted, oldest first).

    Stores that keep times in memory or in SQL call this; it looks at most two
    times by position, so its cost does not grow with the invitations in the
    window. `times` may hold times after `now` (another instance's clock).
    """
    # A sitewide cap's window is whole seconds, more than none (the checker takes
    # no other), so the window's end is searched for from where it starts.
    window: int = cap.window  # type: ignore[assignment]  # (no isinstance: every event)
    limit = cap.limit
    start = bisect_right(times, now - window)
    count = bisect_right(times, now, start) - start
    if count + 1 < limit:  # room for this one and the next: both releases are now
        return SitewideUsage(count, now, now)
    return SitewideUsage(
        min(count, limit),  # a full cap reads its limit: stores need count no further
        _release(limit, window, times, start, count, now),
        _release(limit, window, times, start, count + 1, now, extra=now),
    )


def _release(
    limit: int,
    window: int,
    times: Sequence[float],
    start: int,
    count: int,
    now: float,
    extra: float | None = None,
) -> float:
    """When `count` invitations from `times[start]` on (plus `extra`, the newest)
    drop below `limit`: the (count - limit)-th of them leaves the window."""
    if count < limit:
        return now
    index = count - limit
    held = extra if extra is not None and index == count - 1 else times[start + index]
    return held + window


def sitewide_allows(caps: Sequence[Cap], usage: Sequence[SitewideUsage]) -> bool:
    return all(u.used < c.limit for c, u in zip(caps, usage, strict=True))


def sitewide_release(usage: Sequence[SitewideUsage], *, after_one: bool = False) -> float | None:
    """When every sitewide cap allows an invitation again (None: no sitewide cap)."""
    latest = None
    for u in usage:  # a loop, not max(): most sites have one sitewide cap, if any
        release = u.release_after_one if after_one else u.release
        if latest is None or release > latest:
            latest = release
    return latest


def visitor_allows(
    caps: Sequence[Cap], log: InvitationLog | None, session: str | None, now: float
) -> bool:
    return all(c.allows(log, session, now) for c in caps)
