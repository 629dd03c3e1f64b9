"""msgspec's check of an event line (`event_lines.py`) is pydantic's `Event`.

At every bound of every field, and for each kind of wrong value, the line's
fields read by `EventLines` and built by `construct_event` are exactly the
event `Event.model_validate` makes (the same values of the same types, in the
same order, the same fields set), and a line one refuses the other refuses,
except where pydantic is laxer (text for a number): those fall back to it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from politely.event_lines import EventLines
from politely.models import Event, construct_event, to_instant

AT = "2026-01-05T10:00:00Z"
BASE = {"visitor": "v1", "event": "tick", "at": AT}

# (field, the longest text it takes, the shortest)
TEXTS = [
    ("visitor", 200, 1),
    ("event", 100, 1),
    ("session", 200, 1),
    ("url", 2000, 0),
    ("title", 2000, 0),
    ("referrer", 2000, 0),
    ("country", 100, 0),
    ("language", 100, 0),
    ("device", 100, 0),
    ("invitation", 200, 0),
    ("id", 200, 1),
]
WRONG = [None, 1, 1.5, True, [], {}, ["a"]]


def text_cases() -> list[tuple[str, Any]]:
    cases: list[tuple[str, Any]] = []
    for name, longest, shortest in TEXTS:
        start = "/" if name == "url" else "a"
        for length in {shortest, max(shortest - 1, 0), longest, longest + 1}:
            cases.append((name, (start + "😀" * length)[:length] if length else ""))
        cases.extend((name, value) for value in WRONG)
    return cases


CASES: list[tuple[str, Any]] = [
    *text_cases(),
    *(
        ("event", name)
        for name in ["page_view", "a.b:c-d", "A9", "tick\n", "\ntick", "a b", "é", "tick!", "t/"]
    ),
    *(("scroll", v) for v in [0, -0.0, 100, 100.0, 99.5, 1e-400, -1, 100.0001, 1e400, 2**70]),
    *(("scroll", v) for v in ["50", True, False, None]),
    *(("props", v) for v in [{}, {"a": [1, {"b": None}]}, None, [], "x"]),
    *(("attributes", v) for v in [{}, {"plan": "team", "n": 2**63}, None, [1]]),
    *(("url", v) for v in ["http://[::1", "https://shop.example/a?b=1#c", "//x", "/a#b"]),
    ("colour", "red"),
    ("Visitor", "v2"),
]
# pydantic reads these, msgspec does not: such a line is read by pydantic instead.
LAXER = {("scroll", "50"), ("scroll", True), ("scroll", False)}


def read_by_pydantic(data: dict[str, Any]) -> Event | None:
    try:
        return Event.model_validate(data)
    except ValidationError:
        return None


def read_by_msgspec(line: str) -> Event | None:
    fields = EventLines().fields(line.encode())
    if fields is None:
        return None
    fields["at"] = to_instant(fields["at"])
    return construct_event(fields)


def shown(event: Event) -> str:
    slots = (event.__pydantic_extra__, event.__pydantic_private__)  # pydantic's own
    return f"{event.__dict__!r} {sorted(event.model_fields_set)} {slots} {type(event).__name__}"


@pytest.mark.parametrize(("field", "value"), CASES, ids=repr)
def test_msgspec_reads_an_event_line_as_pydantic_does(field: str, value: Any) -> None:
    data = {**BASE, field: value}
    line = json.dumps(data)
    expected = read_by_pydantic(json.loads(line))
    found = read_by_msgspec(line)
    if found is None:
        assert expected is None or (field, value) in LAXER
        return
    assert expected is not None, f"msgspec read {line} that pydantic refuses"
    assert shown(found) == shown(expected)
    assert found == expected
    assert found.model_dump_json() == expected.model_dump_json()


def test_an_event_of_every_field_reads_alike() -> None:
    data = {
        "visitor": "v1",
        "event": "page_view",
        "session": "s1",
        "at": 1767607200,
        "url": "/pricing?plan=team",
        "title": "Plans",
        "referrer": "https://www.google.com/",
        "scroll": 40,
        "props": {"x": 1},
        "attributes": {"plan": "team"},
        "country": "DE",
        "language": "de",
        "device": "mobile",
        "invitation": "i1",
        "id": "e1",
    }
    assert list(data) == list(Event.model_fields)
    for keys in (list(data), list(reversed(data))):  # the fields in any order on the line
        line = json.dumps({key: data[key] for key in keys})
        found = read_by_msgspec(line)
        assert found is not None
        assert shown(found) == shown(Event.model_validate(data))


def test_an_event_built_without_props_gets_dicts_of_its_own() -> None:
    first = read_by_msgspec(json.dumps(BASE))
    second = read_by_msgspec(json.dumps(BASE))
    assert first is not None
    assert second is not None
    assert first.props == {}
    assert first.attributes == {}
    assert first.props is not second.props
    assert first.attributes is not second.attributes
    assert first.model_fields_set == {"visitor", "event", "at"}


def test_an_event_name_found_good_once_is_still_checked_by_length() -> None:
    lines = EventLines(known=2)
    for name in ["a", "b", "c", "a", "d"]:  # past the bound: the names are forgotten
        assert lines.fields(json.dumps({**BASE, "event": name})) is not None
    assert len(lines._names) <= 2
    assert lines.fields(json.dumps({**BASE, "event": "a" * 101})) is None
    assert lines.fields(json.dumps({**BASE, "event": "a b"})) is None
