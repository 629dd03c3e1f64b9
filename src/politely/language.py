"""What the language means beyond its grammar: defaults, events, and the caps clauses make.

The checker, the compiler, the evaluator and explain all read these, so a
default or an event name is written once (docs/language.md, sections 4 and 5).

    >>> [cap.describe() for cap in DEFAULT_VISITOR_CAPS]
    ['at most 1 invitation per 10m', 'at most 3 invitations per session']
"""

from __future__ import annotations

from typing import Literal, assert_never

from politely import nodes as n
from politely.caps import Cap

OUTCOME_EVENTS = frozenset(
    {"invitation_dismissed", "invitation_accepted", "chat_started", "chat_ended"}
)
DEFAULT_EVENTS = ("page_view", "tick")
BUILTIN_EVENTS = ("page_view", "tick", *sorted(OUTCOME_EVENTS))

# The policy defaults, each kept unless the policy writes its kind; a policy
# that writes any per-visitor cap replaces both caps.
DEFAULT_VISITOR_CAPS = (Cap(1, 600), Cap(3, "session"))
DEFAULT_QUIET_AFTER_DISMISS = 86400
DEFAULT_QUIET_AFTER_CHAT = 86400
DEFAULT_SESSION_TIMEOUT = 1800


def cap_window(cap: n.Cap) -> int | Literal["session", "visitor"]:
    """A cap's window: seconds for a duration, else "session" or "visitor"."""
    if cap.duration is not None:
        return cap.duration.seconds
    return "session" if cap.window == "session" else "visitor"


# The clauses `cap_of` may make a cap of: tested first where every clause of every
# rule is looked at (a tuple, not `n.Cooldown | n.Cap`, which is built at each test).
CAPPING_CLAUSES = (n.Cooldown, n.Cap)


def cap_of(clause: n.Clause, rule: str | None = None) -> Cap | None:
    """The per-visitor cap a `cooldown` or `at most` clause makes (sitewide caps aside)."""
    match clause:
        case n.Cooldown():
            return Cap(1, clause.duration.seconds, rule)
        case n.Cap():
            if clause.sitewide:
                return None  # the policy's, counted across visitors
            return Cap(int(clause.count.value), cap_window(clause), rule)
        case (
            n.When()
            | n.Say()
            | n.On()
            | n.Priority()
            | n.During()
            | n.Quiet()
            | n.Only()
            | n.Never()
            | n.SessionTimeout()
        ):
            return None
        case _:
            assert_never(clause)


def visitor_caps(policy: n.Policy | None) -> list[Cap]:
    """The policy's per-visitor caps, or the defaults when it writes none."""
    written = [c for c in map(cap_of, policy.clauses if policy else ()) if c is not None]
    return written or list(DEFAULT_VISITOR_CAPS)


def rule_events(rule: n.Rule) -> tuple[str, ...]:
    return events_of(next((c for c in rule.clauses if isinstance(c, n.On)), None))


def events_of(on: n.On | None) -> tuple[str, ...]:
    """The events a rule's `on` clause names; a rule without one hears the defaults."""
    return tuple(e.value for e in on.events) if on is not None else DEFAULT_EVENTS
