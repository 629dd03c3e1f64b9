"""The shapes that cross the edges: events in, decisions out (docs/contract.md).

Pydantic validates an event once, where it enters (the library's `evaluate`
given a dict, the HTTP service, a traffic file); the evaluator then reads the
model's attributes directly. Decisions are built with `model_construct`: the
engine made every field itself, so validating them again would only cost time.

Times are read one way everywhere (an event's `at`, `set_agents(at=)`,
`block(until=, at=)`, a traffic line): `to_timestamp` accepts what `at` does.
Attributes and props are bounded by `AttributeLimits`, which the engine applies
to every event it is given.

    >>> Event.model_validate({"visitor": "v1", "event": "page_view", "url": "/pricing"}).url
    '/pricing'
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_serializer,
)

from politely.errors import EventError

# The times politely accepts: from the Unix epoch to the end of year 2999. Far
# enough for any real traffic, and every computation on them (schedules look a
# week ahead and a day back, windows and quiet periods add their durations)
# stays inside what datetime can represent.
EARLIEST = 0.0
LATEST = datetime(3000, 1, 1, tzinfo=UTC).timestamp()


_ZERO = timedelta(0)


def _instant(value: datetime) -> datetime:
    """A time without a zone is read as UTC, the zone of every example. A UTC
    time gets the standard library's UTC (pydantic's own zone object makes every
    later `timestamp()` three times slower, and each event needs one)."""
    zone = value.tzinfo
    if zone is None or (zone is not UTC and value.utcoffset() == _ZERO):
        value = value.replace(tzinfo=UTC)
    if not EARLIEST <= value.timestamp() < LATEST:
        raise ValueError("a time must be between 1970-01-01 and 2999-12-31 (UTC)")
    return value


def _shown(value: object) -> str:
    """A short repr, safe for any value (a 5,000-digit int has no repr)."""
    if isinstance(value, int) and value.bit_length() > 64:
        return "a number too large"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_TIMES = "write ISO 8601 such as 2026-01-05T10:00:00Z, or a number of Unix seconds"
Instant = Annotated[datetime, AfterValidator(_instant)]
_INSTANT: TypeAdapter[datetime] = TypeAdapter(Instant)


def to_timestamp(value: object, name: str = "at") -> float:
    """Unix seconds from anything an event's `at` accepts: a number of Unix seconds,
    a `datetime` (no zone means UTC) or an ISO 8601 string. Anything else raises
    `EventError` naming `name`.

        >>> to_timestamp("2026-01-05T10:00:00Z"), to_timestamp(1767607200)
        (1767607200.0, 1767607200.0)
    """
    return to_instant(value, name).timestamp()


def to_instant(value: object, name: str = "at") -> datetime:
    """The aware datetime an event's `at` holds for `value`, as `Event` validates it
    (`to_timestamp` is its Unix seconds); raises `EventError` naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | datetime):
        raise EventError(
            f"{name}: expected a time (Unix seconds, a datetime or an ISO 8601 string), "
            f"got {type(value).__name__}"
        )
    try:
        return _INSTANT.validate_python(value)
    except ValidationError as error:
        raise EventError(f"{name}: {problem(error.errors()[0], value)}") from None


def problem(item: Any, value: object) -> str:
    """What is wrong, in words, from one of pydantic's errors about `value`.

    pydantic's own message, without its "Value error, " prefix; for a time that
    does not parse (pydantic says "Input should be a valid datetime..."), what
    politely accepts instead."""
    if str(item["type"]).startswith("datetime") and "input" in item:
        return f"not a time: {_shown(item['input'])}; {_TIMES}"
    return str(item["msg"]).removeprefix("Value error, ")


# An event's limits: `Event` states them, and so does `event_lines.EventLine`
# (simulate's quick reading of a traffic line), from these.
NAME_LENGTH = 200  # a visitor, session, event id or invitation id
TEXT_LENGTH = 2000  # a URL, title or referrer
LABEL_LENGTH = 100  # an event's name, a country, language or device
EVENT_NAME = "[A-Za-z0-9_.:-]+"  # the characters of an event's name
SCROLL_MAX = 100  # scroll is a percentage, from 0

Name = Annotated[str, Field(min_length=1, max_length=NAME_LENGTH)]
ShortText = Annotated[str, Field(max_length=TEXT_LENGTH)]
Label = Annotated[str, Field(max_length=LABEL_LENGTH)]


class Event(BaseModel):
    """One thing a visitor did, or a `tick` asking whether to invite now."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    visitor: Name
    event: Annotated[str, Field(min_length=1, max_length=LABEL_LENGTH, pattern=f"^{EVENT_NAME}$")]
    session: Name | None = None
    at: Instant | None = None
    url: ShortText | None = None
    title: ShortText | None = None
    referrer: ShortText | None = None
    scroll: Annotated[float, Field(ge=0, le=SCROLL_MAX)] | None = None
    props: dict[str, Any] = Field(default_factory=dict)
    attributes: dict[str, Any] = Field(default_factory=dict)
    country: Label | None = None
    language: Label | None = None
    device: Label | None = None
    invitation: Annotated[str, Field(max_length=NAME_LENGTH)] | None = None
    id: Name | None = None

    @field_validator("url")
    @classmethod
    def _splits(cls, value: str | None) -> str | None:
        """A URL the evaluator could not take apart is refused here, with its field."""
        if value is not None:
            split_url(value)
        return value

    @property
    def timestamp(self) -> float | None:
        return self.at.timestamp() if self.at is not None else None


# Event's defaults, in its order; None holds the place of a field whose default a
# factory makes (`construct_event` names them: test_event_lines.py fails when
# Event gains one it does not make).
_EVENT_DEFAULTS = {
    name: None if info.default_factory is not None else info.default
    for name, info in Event.model_fields.items()
}
_new_object = object.__new__
_set_slot = object.__setattr__
# BaseModel's own slots, set through their descriptors: what `object.__setattr__`
# does once it has looked the name up, without the lookup (half the time).
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def construct_event(sent: dict[str, Any]) -> Event:
    """An `Event` of fields already known to meet its rules: `sent` holds the
    fields the event had (they become its `model_fields_set`), with `at` already
    a datetime as `Event` makes it.

    It is what `Event.model_construct(set(sent), **sent)` makes (the fields in
    their declared order, the defaults, no extras), set as pydantic itself sets
    them, without model_construct's work per field, which costs some 50 times
    more than building the event: `event_lines.py` checks a traffic line
    against Event's rules with msgspec and builds it here. Nothing is checked.
    """
    fields = {**_EVENT_DEFAULTS, **sent}
    if "props" not in sent:  # (named, not looped over: a third of the time)
        fields["props"] = {}
    if "attributes" not in sent:
        fields["attributes"] = {}
    event = _new_object(Event)
    _set_slot(event, "__dict__", fields)
    _set_fields_set(event, set(sent))
    _set_extra(event, None)
    _set_private(event, None)
    return event


# Keys people reach for, and the event's key that means it.
_SYNONYMS = {
    "page": "url",
    "path": "url",
    "href": "url",
    "location": "url",
    "page_url": "url",
    "time": "at",
    "timestamp": "at",
    "ts": "at",
    "date": "at",
    "user": "visitor",
    "user_id": "visitor",
    "visitor_id": "visitor",
    "uid": "visitor",
    "type": "event",
    "name": "event",
    "event_type": "event",
    "session_id": "session",
    "properties": "props",
    "attrs": "attributes",
    "traits": "attributes",
    "lang": "language",
    "locale": "language",
    "page_title": "title",
    "referer": "referrer",
    "event_id": "id",
    "invitation_id": "invitation",
}


def key_text(key: object) -> str:
    """A key as a message shows it: on one line, at most about 40 characters."""
    text = str(key)
    if not text or not text.isprintable():
        text = json.dumps(text, ensure_ascii=False)
        text = text if text.isprintable() else json.dumps(str(key))
    return text if len(text) <= 40 else text[:39] + "…"


def unknown_key(key: str, known: Iterable[str], shape: str = "an event") -> str:
    """`key: not a key of SHAPE; did you mean `x`?` (or the keys it may have)."""
    import difflib

    keys = list(known)
    guess = _SYNONYMS.get(key.lower())
    if guess not in keys:
        close = difflib.get_close_matches(key.lower(), keys, n=1, cutoff=0.75)
        guess = close[0] if close else None
    shown = key_text(key)
    if guess is not None:
        return f"{shown}: not a key of {shape}; did you mean `{guess}`?"
    return f"{shown}: not a key of {shape} (its keys: {', '.join(keys)})"


def split_url(url: str) -> tuple[str, str]:
    """(page.url, page.path) from what the site sent: an absolute URL or a path.

    Raises ValueError, saying why, for a URL that does not parse (an unclosed
    `[`, a host that is not an IP address inside `[...]`, a host that changes
    under Unicode normalisation).
    """
    if url.startswith("/") and not url.startswith("//") and "#" not in url:
        return url, url.split("?", 1)[0]
    try:
        parts = urlsplit(url)
    except ValueError as error:
        raise ValueError(f"not a URL politely can read: {error}") from None
    path = parts.path or "/"
    return (path + "?" + parts.query if parts.query else path), path


class Invitation(BaseModel):
    """What to show: `message` is plain text; the site must insert it as text."""

    id: str
    rule: str
    message: str
    variant: int


ChatStatus = Literal["available", "blocked", "in_chat"]


class Decision(BaseModel):
    """The engine's answer to one event."""

    model_config = ConfigDict(frozen=True)

    invitation: Invitation | None = None
    recheck_in: int | None = None
    chat: ChatStatus = "available"
    ruleset: str = ""
    degraded: bool = False  # the store could not be reached: no invitation, ask again later
    visitor: str | None = None  # set when the service issued the visitor's id

    @model_serializer(mode="wrap")
    def _only_when_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """`degraded` and `visitor` appear in JSON only when they say something."""
        data: dict[str, Any] = handler(self)
        if not data.get("degraded"):
            data.pop("degraded", None)
        if data.get("visitor") is None:
            data.pop("visitor", None)
        return data


Count = Annotated[int, Field(ge=0, le=1_000_000_000)]


class AgentsUpdate(BaseModel):
    """Agent status as a site reports it (`queue_wait` in seconds)."""

    model_config = ConfigDict(extra="forbid")

    online: Count
    available: Count
    queue_length: Count = 0
    queue_wait: Annotated[float, Field(ge=0, le=1_000_000_000, allow_inf_nan=False)] = 0.0


# --- bounds on what a visitor's attributes and an event's props may hold ---------------


@dataclass(frozen=True, slots=True)
class AttributeLimits:
    """How much an event's `attributes` and `props`, and a visitor's merged
    attributes, may hold. Counted over the whole value, nested parts included:

    - `entries`: keys of every object plus items of every list (50);
    - `key_length`: characters in one key (100);
    - `text_length`: characters in one text value (1,000);
    - `depth`: objects and lists inside one another, the attributes object
      itself being the first (3: `{"a": {"b": [1]}}` is as deep as it goes);
    - `characters`: keys and text values together (10,000).

    Values are JSON values: text, finite numbers (whole numbers up to 2^63 - 1
    either way), true/false, null, lists and objects with text keys.
    """

    entries: int = 50
    key_length: int = 100
    text_length: int = 1000
    depth: int = 3
    characters: int = 10_000

    def check(self, event: Event) -> None:
        """Raise EventError naming the first field of `event` over a bound."""
        if event.attributes:
            self.check_value("attributes", event.attributes)
        if event.props:
            self.check_value("props", event.props)

    def check_value(self, name: str, value: dict[str, Any]) -> None:
        _Measure(self, name).walk(value, name, 1)

    def check_merged(self, attributes: dict[str, Any] | None) -> None:
        """The visitor's attributes after merging an event's: the same bounds."""
        if attributes:
            measure = _Measure(self, "attributes")
            try:
                measure.walk(attributes, "attributes", 1)
            except EventError as error:
                raise EventError(
                    f"attributes: the visitor's attributes would grow past a bound ({error}); "
                    "send null for attributes you no longer need"
                ) from None


_LARGEST_WHOLE = 2**63 - 1


class _Measure:
    __slots__ = ("characters", "entries", "limits", "name")

    def __init__(self, limits: AttributeLimits, name: str) -> None:
        self.limits = limits
        self.name = name
        self.entries = 0
        self.characters = 0

    def _count(self, characters: int) -> None:
        limits = self.limits
        self.entries += 1
        self.characters += characters
        if self.entries > limits.entries:
            raise EventError(f"{self.name}: more than {limits.entries:,} entries in all")
        if self.characters > limits.characters:
            raise EventError(
                f"{self.name}: more than {limits.characters:,} characters of keys and text in all"
            )

    def walk(self, value: object, where: str, depth: int) -> None:
        limits = self.limits
        if isinstance(value, dict):
            if depth > limits.depth:
                raise EventError(f"{where}: nested more than {limits.depth} levels deep")
            for key, item in value.items():
                if not isinstance(key, str):
                    raise EventError(f"{where}: keys must be text, not {type(key).__name__}")
                inner = f"{where}.{key_text(key)}"
                if len(key) > limits.key_length:
                    raise EventError(f"{inner}: a key of more than {limits.key_length} characters")
                self._count(len(key))
                self.walk(item, inner, depth + 1)
        elif isinstance(value, list | tuple):
            if depth > limits.depth:
                raise EventError(f"{where}: nested more than {limits.depth} levels deep")
            for i, item in enumerate(value):
                inner = f"{where}.{i}"
                self._count(0)
                self.walk(item, inner, depth + 1)
        elif isinstance(value, str):
            if len(value) > limits.text_length:
                raise EventError(f"{where}: text longer than {limits.text_length:,} characters")
            self.characters += len(value)
            if self.characters > limits.characters:
                raise EventError(
                    f"{self.name}: more than {limits.characters:,} characters of keys and text "
                    "in all"
                )
        elif value is None or isinstance(value, bool):
            return
        elif isinstance(value, int):
            if not -_LARGEST_WHOLE <= value <= _LARGEST_WHOLE:
                raise EventError(f"{where}: a whole number larger than 2^63 - 1")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise EventError(f"{where}: a number must be finite, not {value}")
        else:
            raise EventError(
                f"{where}: {type(value).__name__} is not a JSON value "
                "(text, number, true/false, null, list or object)"
            )


DEFAULT_LIMITS = AttributeLimits()
