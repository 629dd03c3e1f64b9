"""The fields a condition or message may read, with their types.

Known fields are typed and checked before any rule runs; `visitor.X` and
`event.X` are custom and typed at run time (docs/language.md, section 9).

    >>> lookup(("page", "dwell")).spec.type
    'duration'
    >>> lookup(("pge", "path")).suggestions
    ('page.path',)
"""

from __future__ import annotations

from dataclasses import dataclass
from difflib import get_close_matches
from functools import lru_cache
from typing import Literal

FieldType = Literal["text", "number", "duration", "bool", "any"]


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    type: FieldType
    doc: str


def _spec(name: str, type_: FieldType, doc: str) -> tuple[str, FieldSpec]:
    return name, FieldSpec(name, type_, doc)


KNOWN_FIELDS: dict[str, FieldSpec] = dict(
    [
        _spec("event", "text", "name of the event being evaluated"),
        _spec("page.url", "text", "path and query of the current page"),
        _spec("page.path", "text", "path of the current page, without the query"),
        _spec("page.title", "text", "title of the current page"),
        _spec("page.referrer", "text", "referrer of the current page"),
        _spec("page.dwell", "duration", "time on the current page"),
        _spec("page.scroll", "number", "deepest scroll on this page, 0-100"),
        _spec("session.pageviews", "number", "page views this session, the current one included"),
        _spec("session.duration", "duration", "time since the session's first event"),
        _spec("session.landing", "text", "path of the session's first page"),
        _spec("session.referrer", "text", "referrer of the session's first page view"),
        _spec("session.utm_source", "text", "utm_source of the session's first page view"),
        _spec("session.utm_medium", "text", "utm_medium of the session's first page view"),
        _spec("session.utm_campaign", "text", "utm_campaign of the session's first page view"),
        _spec("visitor.visits", "number", "sessions so far, this one included"),
        _spec("visitor.returning", "bool", "more than one visit"),
        _spec("visitor.chats", "number", "chats ever started"),
        _spec("visitor.country", "text", "country, as sent by the site"),
        _spec("visitor.language", "text", "language, as sent by the site"),
        _spec("visitor.device", "text", "device, as sent by the site"),
        _spec("agents.online", "number", "agents online, from the last agent status"),
        _spec("agents.available", "number", "agents free to chat, from the last agent status"),
        _spec("queue.length", "number", "visitors waiting for an agent"),
        _spec("queue.wait", "duration", "estimated wait for an agent"),
        _spec("invitations.session", "number", "invitations shown this session"),
        _spec("invitations.today", "number", "invitations shown in the last 24 hours"),
        _spec("invitations.last", "duration", "time since the last invitation (infinite if none)"),
    ]
)

NAMESPACES = ("event", "page", "session", "visitor", "agents", "queue", "invitations")
CUSTOM_NAMESPACES = ("visitor", "event")

# Fields whose value changes with the passage of time alone; recheck_in and the
# "fires the instant a page loads" warning look at these.
TIME_FIELDS = frozenset({"page.dwell", "session.duration", "invitations.last", "invitations.today"})
AGENT_FIELDS = frozenset({"agents.online", "agents.available", "queue.length", "queue.wait"})
# Known fields read from the site's free-form attributes: typed at run time too.
ATTRIBUTE_FIELDS = frozenset({"visitor.country", "visitor.language", "visitor.device"})


@dataclass(frozen=True, slots=True)
class Lookup:
    """A field path resolved against the schema: a spec, or why not and guesses."""

    spec: FieldSpec | None
    problem: Literal["unknown-field", "unknown-namespace"] | None = None
    suggestions: tuple[str, ...] = ()


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
