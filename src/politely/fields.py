"""The fields a condition or message may read, with their types.

Known fields are typed and checked before any rule runs; `visitor.X` and
`event.X` are custom and typed at run time (docs/language.md, section 9).

    >>> lookup(("page", "dwell")).spec.type
    'duration'
    >>> lookup(("pge", "path")).suggestions
    ('page.path',)
"""

from __future__ import annotations

import math
from difflib import get_close_matches
from functools import lru_cache
from typing import Literal

import msgspec

FieldType = Literal["text", "number", "duration", "bool", "any"]


_UNBOUNDED = (-math.inf, math.inf)
_COUNT = (0.0, math.inf)  # counts, durations, ages: never negative


class FieldSpec(msgspec.Struct, frozen=True):
    """Everything known about a field, so the checker, generator and analysis agree.

    `load` is the generated Python that reads it (`{log}` stands for the
    invitation log's local; None: read from the site's attributes or props);
    `window_load` replaces it in tick-set functions. `on_load` is its value
    the instant a page loads, when a threshold above it makes a rule wait.
    """

    name: str
    type: FieldType
    doc: str
    load: str | None = None
    window_load: str | None = None
    range: tuple[float, float] = _UNBOUNDED
    on_load: float | None = None
    moves: bool = False  # changes with the passage of time alone
    agents: bool = False  # read from the agent status
    attribute: bool = False  # from the site's free-form attributes: typed at run time too


_AGENT = "if a is not None else None"
_FIELDS = (
    FieldSpec("event", "text", "name of the event being evaluated", "e.event"),
    FieldSpec("page.url", "text", "path and query of the current page", "s.page_url"),
    FieldSpec("page.path", "text", "path of the current page, without the query", "s.page_path"),
    FieldSpec("page.title", "text", "title of the current page", "s.page_title"),
    FieldSpec("page.referrer", "text", "referrer of the current page", "s.page_referrer"),
    FieldSpec(
        "page.dwell",
        "duration",
        "time on the current page",
        "(now - s.page_start) if s.page_start is not None else None",
        range=_COUNT,
        on_load=0,
        moves=True,
    ),
    FieldSpec(
        "page.scroll",
        "number",
        "deepest scroll on this page, 0-100",
        "s.scroll if s.page_start is not None else None",
        range=(0, 100),
        on_load=0,
    ),
    FieldSpec(
        "session.pageviews",
        "number",
        "page views this session, the current one included",
        "s.pageviews",
        range=_COUNT,
        on_load=1,
    ),
    FieldSpec(
        "session.duration",
        "duration",
        "time since the session's first event",
        "(now - s.session_start) if s.session_start is not None else None",
        range=_COUNT,
        moves=True,
    ),
    FieldSpec("session.landing", "text", "path of the session's first page", "s.landing"),
    FieldSpec(
        "session.referrer",
        "text",
        "referrer of the session's first page view",
        "s.session_referrer",
    ),
    FieldSpec(
        "session.utm_source",
        "text",
        "utm_source of the session's first page view",
        "s.utm[0] if s.utm is not None else None",
    ),
    FieldSpec(
        "session.utm_medium",
        "text",
        "utm_medium of the session's first page view",
        "s.utm[1] if s.utm is not None else None",
    ),
    FieldSpec(
        "session.utm_campaign",
        "text",
        "utm_campaign of the session's first page view",
        "s.utm[2] if s.utm is not None else None",
    ),
    FieldSpec(
        "visitor.visits", "number", "sessions so far, this one included", "s.visits", range=_COUNT
    ),
    FieldSpec("visitor.returning", "bool", "more than one visit", "s.visits > 1"),
    FieldSpec("visitor.chats", "number", "chats ever started", "s.chats", range=_COUNT),
    FieldSpec("visitor.country", "text", "country, as sent by the site", attribute=True),
    FieldSpec("visitor.language", "text", "language, as sent by the site", attribute=True),
    FieldSpec("visitor.device", "text", "device, as sent by the site", attribute=True),
    FieldSpec(
        "agents.online",
        "number",
        "agents online, from the last agent status",
        f"a.online {_AGENT}",
        range=_COUNT,
        agents=True,
    ),
    FieldSpec(
        "agents.available",
        "number",
        "agents free to chat, from the last agent status",
        f"a.available {_AGENT}",
        range=_COUNT,
        agents=True,
    ),
    FieldSpec(
        "queue.length",
        "number",
        "visitors waiting for an agent",
        f"a.queue_length {_AGENT}",
        range=_COUNT,
        agents=True,
    ),
    FieldSpec(
        "queue.wait",
        "duration",
        "estimated wait for an agent",
        f"a.queue_wait {_AGENT}",
        range=_COUNT,
        agents=True,
    ),
    FieldSpec(
        "invitations.session",
        "number",
        "invitations shown this session",
        "({log}.session_count if {log} is not None and {log}.session == s.session else 0)",
        range=_COUNT,
    ),
    FieldSpec(
        "invitations.today",
        "number",
        "invitations shown in the last 24 hours",
        "_today({log}, now)",
        window_load="_today_releases({log}, now)",
        range=_COUNT,
        moves=True,
    ),
    FieldSpec(
        "invitations.last",
        "duration",
        "time since the last invitation (infinite if none)",
        "(now - {log}.recent[-1].at) if {log} is not None and {log}.recent else _INF",
        range=_COUNT,
        moves=True,
    ),
)
KNOWN_FIELDS: dict[str, FieldSpec] = {spec.name: spec for spec in _FIELDS}

NAMESPACES = ("event", "page", "session", "visitor", "agents", "queue", "invitations")
CUSTOM_NAMESPACES = ("visitor", "event")

# Read by recheck_in, the compiler and the "fires the instant a page loads" warning.
TIME_FIELDS = frozenset(f.name for f in _FIELDS if f.moves)
AGENT_FIELDS = frozenset(f.name for f in _FIELDS if f.agents)
ATTRIBUTE_FIELDS = frozenset(f.name for f in _FIELDS if f.attribute)


class Lookup(msgspec.Struct, frozen=True):
    """A field path resolved against the schema: a spec, or why not and guesses."""

    spec: FieldSpec | None
    problem: Literal["unknown-field", "unknown-namespace"] | None = None
    suggestions: tuple[str, ...] = ()


@lru_cache(maxsize=4096)  # the checker and the code generator ask it of every test
def lookup(path: tuple[str, ...]) -> Lookup:
    name = ".".join(path)
    if name in KNOWN_FIELDS:
        return Lookup(KNOWN_FIELDS[name])
    namespace = path[0]
    if namespace in CUSTOM_NAMESPACES and len(path) > 1:
        return Lookup(FieldSpec(name, "any", "custom value sent by the site"))
    if namespace in NAMESPACES:
        return Lookup(None, "unknown-field", _guess(name, namespace))
    if len(path) == 1:  # `dwell` for `page.dwell`
        ends = [f for f in KNOWN_FIELDS if f.endswith("." + namespace)]
        close = get_close_matches(namespace, [f.split(".")[-1] for f in KNOWN_FIELDS], n=1)
        ends += [f for f in KNOWN_FIELDS if close and f.endswith("." + close[0])]
        return Lookup(None, "unknown-namespace", tuple(dict.fromkeys(ends))[:2])
    guesses = get_close_matches(namespace, NAMESPACES, n=1, cutoff=0.6)
    if guesses and len(path) > 1:
        fixed = ".".join((guesses[0], *path[1:]))
        if fixed in KNOWN_FIELDS or guesses[0] in CUSTOM_NAMESPACES:
            return Lookup(None, "unknown-namespace", (fixed,))
        return Lookup(None, "unknown-namespace", _guess(fixed, guesses[0]) or (guesses[0],))
    return Lookup(None, "unknown-namespace", tuple(guesses))


@lru_cache(maxsize=4096)  # a site repeats its own fields in rule after rule
def near_miss(path: tuple[str, ...]) -> str | None:
    """The known field a custom one is one typo away from (`visitor.retuning`).

    `visitor.X` and `event.X` take any name, so a misspelt known field checks
    clean and the rule quietly never fires. `event.name` counts as a near miss
    of `event`, which is the event's name. Other custom names (`visitor.plan`,
    `visitor.country_code`) are not near misses.

    >>> near_miss(("visitor", "retuning")), near_miss(("event", "nam"))
    ('visitor.returning', 'event')
    >>> near_miss(("visitor", "plan")) is None
    True
    """
    if len(path) != 2 or path[0] not in CUSTOM_NAMESPACES or ".".join(path) in KNOWN_FIELDS:
        return None
    known = {f.split(".")[1]: f for f in KNOWN_FIELDS if f.startswith(path[0] + ".")}
    if path[0] == "event":
        known["name"] = "event"
    close = get_close_matches(path[1], list(known), n=1, cutoff=0.8)
    return known[close[0]] if close else None


def _guess(name: str, namespace: str) -> tuple[str, ...]:
    same_namespace = [f for f in KNOWN_FIELDS if f.startswith(namespace + ".")]
    guesses = get_close_matches(name, same_namespace, n=2, cutoff=0.6)
    if not guesses:
        guesses = get_close_matches(name, list(KNOWN_FIELDS), n=2, cutoff=0.6)
    return tuple(guesses)
