"""Caps over a visitor's or the site's invitations: do they allow one now, and when.

The evaluator uses these to pick a rule and compute `recheck_in`; every store
uses them again inside its atomic "record if every cap still allows it" step,
so the two can never disagree. Windows are rolling and half-open: an
invitation at t counts against `per D` until t + D, and no longer.

    >>> cap = Cap(limit=1, window=600)
    >>> cap.release_time([1000.0], now=1300.0)
    1600.0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from politely.state import InvitationLog

Window = int | Literal["session", "visitor"]


@dataclass(frozen=True, slots=True)
class Cap:
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


def sitewide_allows(caps: Sequence[Cap], times: Sequence[float], now: float) -> bool:
    return all(_in_window(times, c.window, now) < c.limit for c in caps)  # type: ignore[arg-type]


def sitewide_release(caps: Sequence[Cap], times: Sequence[float], now: float) -> float:
    return max((c.release_time(times, now) for c in caps), default=now)


def visitor_allows(
    caps: Sequence[Cap], log: InvitationLog | None, session: str | None, now: float
) -> bool:
    return all(c.allows(log, session, now) for c in caps)
