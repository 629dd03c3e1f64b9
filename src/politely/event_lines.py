"""An event line of a traffic file, checked against `Event`'s rules by msgspec.

pydantic's validation of an event (`Event.model_validate`) was most of what
reading a traffic line cost. Here msgspec decodes the line's JSON straight
into `EventLine`, a struct stating the rules `Event` states: the same keys and
no others, the same types, the same lengths of text, scroll's range (the limits
are `models`' own constants, which `Event` reads too); the event name's pattern
and whether the URL can be taken apart are checked after it.
What passes is what pydantic accepts, with the values pydantic gives (a
whole-number scroll becomes a float); what does not pass gives None, and the
caller reads the line with pydantic, which accepts it after all (pydantic is
laxer: `"scroll": "50"`) or says what is wrong. tests/test_event_lines.py
holds the two against each other at every bound and on generated lines.

`at` is left as the line has it: the caller reads times (and remembers them).

    >>> EventLines().fields(b'{"visitor": "v1", "event": "tick", "at": 1}')
    {'visitor': 'v1', 'event': 'tick', 'at': 1}
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, UnsetType

from politely.models import (
    EVENT_NAME,
    LABEL_LENGTH,
    NAME_LENGTH,
    SCROLL_MAX,
    TEXT_LENGTH,
    split_url,
)

Name = Annotated[str, Meta(min_length=1, max_length=NAME_LENGTH)]
ShortText = Annotated[str, Meta(max_length=TEXT_LENGTH)]
Label = Annotated[str, Meta(max_length=LABEL_LENGTH)]
# The pattern of an event's name (`Event.event`) is checked apart, once a name:
# a pattern in the struct would be run on every line.
_EVENT_NAME = re.compile(EVENT_NAME)


class EventLine(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """`Event`'s fields and rules, in its order; a field the line lacks is UNSET.

    (A struct holds no reference back to itself, so it needs no tracking by the
    garbage collector; it lives only while its line is read.)"""

    visitor: Name
    event: Annotated[str, Meta(min_length=1, max_length=LABEL_LENGTH)]  # and _EVENT_NAME
    session: Name | UnsetType | None = UNSET
    at: Any = UNSET
    url: ShortText | UnsetType | None = UNSET
    title: ShortText | UnsetType | None = UNSET
    referrer: ShortText | UnsetType | None = UNSET
    scroll: Annotated[float, Meta(ge=0, le=SCROLL_MAX)] | UnsetType | None = UNSET
    props: dict[str, Any] | UnsetType = UNSET
    attributes: dict[str, Any] | UnsetType = UNSET
    country: Label | UnsetType | None = UNSET
    language: Label | UnsetType | None = UNSET
    device: Label | UnsetType | None = UNSET
    invitation: Annotated[str, Meta(max_length=NAME_LENGTH)] | UnsetType | None = UNSET
    id: Name | UnsetType | None = UNSET


_DECODER = msgspec.json.Decoder(EventLine)
_fields_of = msgspec.to_builtins


class EventLines:
    """Reads event lines into the fields of an `Event`, or None.

    Remembers the event names it has found good (traffic has a handful); bounded.
    """

    def __init__(self, known: int = 1024) -> None:
        self.known = known
        self._names: set[str] = set()

    def fields(self, line: bytes | str) -> dict[str, Any] | None:
        """The fields the line sets, `at` as it is, when they meet `Event`'s rules;
        None when they do not, or when the line is not such JSON (or not an event)."""
        try:
            found = _DECODER.decode(line)
        except (msgspec.DecodeError, UnicodeEncodeError):  # a lone surrogate in a str
            return None
        name = found.event
        if name not in self._names:
            if _EVENT_NAME.fullmatch(name) is None:
                return None
            if len(self._names) >= self.known:
                self._names.clear()
            self._names.add(name)
        url = found.url
        if url is not None and url is not UNSET:
            try:
                split_url(url)
            except ValueError:
                return None
        fields: dict[str, Any] = _fields_of(found)
        return fields
