"""Step 1 of every evaluation: the visitor's state after an event. Pure, no clock.

Sessions start on activity after `session_timeout` idle (or when the event
names a new session); ticks never start or extend one. A page view replaces
the page; scroll and attributes merge; outcomes mark dismissals and chats.

    >>> from politely.models import Event
    >>> s = record_event(None, Event(visitor="v", event="page_view", url="/a?b=1"), 10.0, 1800)
    >>> s.session, s.pageviews, s.page_path, s.page_url
    ('~1', 1, '/a', '/a?b=1')
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from politely.language import OUTCOME_EVENTS
from politely.models import Event, split_url
from politely.state import VisitorState

# Keys of inferred sessions ("~" + the visit number), shared so that a hundred
# thousand first visits hold one string, not a hundred thousand.
_SESSION_KEYS = tuple(f"~{i}" for i in range(100))
_PROFILE = frozenset({"country", "language", "device"})
# The fields a tick may be given and still be quiet: record nothing (`plain_tick`),
# ask for no replay (no id) and give conditions nothing new to read (no props).
# Listed, not derived, so that a field added to Event is never quiet by accident.
QUIET_TICK_FIELDS = frozenset(
    {"visitor", "event", "session", "at", "url", "title", "referrer", "invitation"}
)


def record_event(
    previous: VisitorState | None, event: Event, now: float, session_timeout: float
) -> VisitorState:
    """The visitor's state after this event (a new object; `previous` is unchanged).

    A plain tick changes nothing: `previous` itself is returned, so the store
    has nothing to write for three events out of four.
    """
    if previous is not None and plain_tick(event):
        return previous
    name = event.event
    s = previous.copy() if previous is not None else VisitorState()
    if name != "tick":  # ticks never start a session, nor keep one alive
        explicit = event.session
        if explicit is not None:
            starts = explicit != s.session
        else:
            starts = (
                s.session is None
                or s.last_activity is None
                or now - s.last_activity > session_timeout
            )
        if starts:
            visit = s.visits + 1
            key = explicit or (_SESSION_KEYS[visit] if visit < 100 else f"~{visit}")
            _start_session(s, key, now, name)
        s.last_activity = now
    if name == "page_view":
        _view_page(s, event, now)
    elif event.scroll is not None and s.page_start is not None:
        s.scroll = max(s.scroll, event.scroll)
    if (
        event.attributes
        or event.country is not None
        or event.language is not None
        or event.device is not None
        or (s.attributes and not _PROFILE.isdisjoint(event.model_fields_set))
    ):
        _merge_attributes(s, event)
    if name in OUTCOME_EVENTS:
        _record_outcome(s, name, now)
    return s


def quiet_tick_fields(event: Event) -> bool:
    """A tick given no field but QUIET_TICK_FIELDS: a plain tick with no id or props,
    told in one set operation on the fields given (a field given as its default,
    `"props": {}`, makes a tick that is not told so: it takes the longer way)."""
    return event.event == "tick" and QUIET_TICK_FIELDS.issuperset(event.__pydantic_fields_set__)


def plain_tick(event: Event) -> bool:
    """A tick that records nothing: no scroll, no attributes, no profile key (not even null)."""
    return (
        event.event == "tick"
        and event.scroll is None
        and not event.attributes
        and _PROFILE.isdisjoint(event.__pydantic_fields_set__)
    )


def _start_session(s: VisitorState, key: str, now: float, first_event: str) -> None:
    s.session = key
    s.session_start = now
    s.visits += 1
    if s.in_chat:  # an open chat ends with its session; its quiet period starts now
        s.in_chat = False
        s.last_chat_end = now
    s.pageviews, s.landing, s.session_referrer, s.utm = 0, None, None, None
    if first_event != "page_view" and s.page_path is not None:
        # The visitor is still on a page: it is this session's first page.
        s.pageviews, s.landing = 1, s.page_path


def _view_page(s: VisitorState, event: Event, now: float) -> None:
    url = path = None
    if event.url is not None:
        url, path = split_url(event.url)
    s.page_url, s.page_path = url, path
    s.page_title, s.page_referrer = event.title, event.referrer
    s.page_start = now
    s.scroll = event.scroll or 0.0
    s.pageviews += 1
    if s.pageviews == 1:
        s.landing = path
        s.session_referrer = event.referrer
        s.utm = _utm(url)


def _utm(url: str | None) -> tuple[str | None, str | None, str | None] | None:
    if url is None or "utm_" not in url:
        return None
    query = parse_qs(url.partition("?")[2])
    values = tuple(query.get(k, [None])[0] for k in ("utm_source", "utm_medium", "utm_campaign"))
    return values if any(values) else None  # type: ignore[return-value]


def _merge_attributes(s: VisitorState, event: Event) -> None:
    merged: dict[str, Any] = dict(s.attributes or {})
    changes = dict(event.attributes)
    for key in _PROFILE & event.model_fields_set:  # sent, possibly as null to remove it
        changes[key] = getattr(event, key)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    s.attributes = merged or None


def _record_outcome(s: VisitorState, name: str, now: float) -> None:
    if name == "invitation_dismissed":
        s.last_dismiss = now
    elif name in ("invitation_accepted", "chat_started"):
        if not s.in_chat:  # an acceptance followed by chat_started is one chat
            s.in_chat = True
            s.chats += 1
    elif name == "chat_ended":
        s.in_chat = False
        s.last_chat_end = now
