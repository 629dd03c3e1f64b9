"""The simulator's fast paths give exactly what the plain ones give.

Traffic lines are read by `_Reader` (msgspec's JSON parser, each `at` validated
once) and `--json` lines are written by `DecisionLines` (no pydantic dump, no
dict). Each is proved against the plain code it replaces, on generated input,
valid and invalid: `parse_traffic_line` (json.loads and pydantic, the error
messages the CLI tests pin), the first read of a line as `json.loads` and
`_line_time` see it, and `json.dumps(step.as_json())`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import examples
from politely.errors import EventError, TrafficError
from politely.evaluator import Verdict
from politely.models import Decision, Event, Invitation, to_instant
from politely.simulate import (
    FAST_LINE,
    DecisionLines,
    Step,
    TrafficFile,
    _json_object,
    _line_time,
    _Reader,
    parse_traffic_line,
    utc_second,
)

# 200 lines per property by default (generating these lines is most of their time);
# the politely-long profile reads ten times as many.
SETTINGS = settings(
    max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
PATH = "traffic.jsonl"

# --- generated traffic lines -------------------------------------------------------------------

times = st.one_of(
    st.sampled_from(
        [
            "2026-01-05T10:00:00Z",
            "2026-01-05T10:00:00.5+01:00",
            "2026-01-05 10:00:00",
            "2026-01-05",
            "0001-01-01T00:00:00Z",
            "tomorrow",
            "",
            "1767607200",
        ]
    ),
    st.integers(min_value=-10, max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.just([1]),
)
texts = st.one_of(
    st.sampled_from(["v1", "tick", "page_view", "", "/pricing", "http://[::1", "a b", "\ud800"]),
    st.text(max_size=12),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
KEYS = [
    "at",
    "visitor",
    "event",
    "url",
    "title",
    "scroll",
    "props",
    "attributes",
    "session",
    "id",
    "agents",
    "block",
    "unblock",
    "colour",
    "",
]


def value_for(key: str) -> st.SearchStrategy[Any]:
    if key == "at":
        return times
    if key in ("visitor", "event", "url", "unblock"):
        return texts
    if key == "scroll":
        return st.one_of(st.integers(-5, 150), st.floats(allow_nan=True), st.just("50"))
    if key == "agents":
        return st.one_of(
            st.fixed_dictionaries(
                {"online": st.integers(-1, 3), "available": st.integers(0, 3)},
                optional={"queue_wait": st.floats(allow_nan=True), "queue": st.just(1)},
            ),
            values,
        )
    if key == "block":
        return st.one_of(
            st.fixed_dictionaries(
                {"visitor": texts}, optional={"reason": texts, "until": times, "why": texts}
            ),
            values,
        )
    return values


def encode(value: Any, ascii_only: bool) -> str:
    return json.dumps(value, allow_nan=True, ensure_ascii=ascii_only)


GOOD = {
    "at": st.sampled_from(["2026-01-05T10:00:00Z", "2026-01-05T10:00:01+01:00", 1767607200]),
    "visitor": st.sampled_from(["v1", "v2", "visitor-7"]),
    "event": st.sampled_from(["tick", "page_view", "scroll", "exit_intent"]),
    "url": st.sampled_from(["/", "/pricing?plan=team", "https://shop.example/cart#top"]),
    "title": st.text(max_size=12),
    "scroll": st.one_of(st.integers(0, 100), st.floats(0, 100)),
    "props": st.dictionaries(st.text(max_size=5), values, max_size=3),
    "attributes": st.dictionaries(st.text(max_size=5), values, max_size=3),
    "country": st.sampled_from(["DE", "FR", None]),
}


@st.composite
def fields(draw: st.DrawFn) -> list[tuple[str, Any]]:
    """An event that is mostly good (its keys in any order, a few optional
    ones), or any keys with any values."""
    if draw(st.booleans()):
        more = draw(st.lists(st.sampled_from(list(GOOD)), max_size=3))
        keys = draw(st.permutations(["at", "visitor", "event", *more]))
        return [
            (key, draw(GOOD[key] if draw(st.integers(0, 5)) else value_for(key))) for key in keys
        ]
    keys = draw(
        st.lists(st.sampled_from(KEYS), max_size=6).map(
            lambda k: (["at", "visitor", "event"] if len(k) % 3 else []) + k
        )
    )
    return [(key, draw(value_for(key))) for key in keys]


@st.composite
def lines(draw: st.DrawFn) -> str:
    """JSON text of a traffic line: duplicate keys, NaN, lone surrogates, odd
    spacing and, now and then, text cut short or with a character put in."""
    ascii_only = draw(st.booleans())
    spacing = draw(st.sampled_from([(", ", ": "), (",", ":"), (" ,\t", " : ")]))
    pairs = [
        f"{encode(key, ascii_only)}{spacing[1]}{encode(value, ascii_only)}"
        for key, value in draw(fields())
    ]
    text = "{" + spacing[0].join(pairs) + "}"
    match draw(st.integers(0, 12)):
        case 0:
            text = text[: draw(st.integers(0, len(text)))]
        case 1:
            at = draw(st.integers(0, len(text)))
            text = text[:at] + draw(st.sampled_from(list('{}[],:"\\ \x00x1-'))) + text[at:]
        case 2:
            text = encode(draw(values), ascii_only)  # not an object, or an odd one
    return text


def outcome(call: Any) -> tuple[str, str]:
    """What a read gave, as text that shows every type and value (1 is not 1.0)."""
    try:
        result = call()
    except TrafficError as error:
        return "error", str(error)
    if isinstance(result, Event):
        fields = sorted(result.model_fields_set)
        return "event", f"{result.__dict__!r} {fields} {result.at!r}"
    return "other", repr(result)


def first_read(text: str, number: int) -> tuple[float, str | None]:
    """The first read as `TrafficFile` did it before `_Reader`: json.loads, then `at`."""
    where = f"{PATH}:{number}"
    data = _json_object(text, where)
    at = _line_time(data, where)
    visitor = data.get("visitor")
    return at, visitor if "event" in data and isinstance(visitor, str) else None


CORNERS = [
    '{"at": "2026-01-05T10:00:00Z", "visitor": "v1", "event": "tick"}',
    '{"at": 1767607200, "visitor": "v1", "event": "tick", "at": "2026-01-05T10:00:01Z"}',
    '{"at": 1, "visitor": "v1", "event": "tick", "props": {"x": NaN}}',
    '{"at": 1, "visitor": "v1", "event": "tick", "props": {"x": 1e400}}',
    '{"at": 1e400, "visitor": "v1", "event": "tick"}',
    '{"at": true, "visitor": "v1", "event": "tick"}',
    '{"at": 1, "visitor": "\\ud800", "event": "tick"}',
    '{"at": 1, "visitor": "v1", "event": "tick", "scroll": 1.0}',
    '{"at": 1, "visitor": "v1", "event": "tick", "props": {"n": 123456789012345678901234}}',
    '{"at": 1, "agents": {"online": 1, "available": 1}}',
    '{"at": null, "visitor": "v1", "event": "tick"}',
    '{"at": 1, "visitor": "v1"}',
    '{"at": 1, "visitor": "v1", "event": "tick", "url": "http://[::1"}',
    '{"at": 1, "visitor": "v1", "event": "tick"} x',
    '\ufeff{"at": 1, "visitor": "v1", "event": "tick"}',
    '{"at": 1, "visitor": "v1", "event": "tick", "props": {"x": "\t"}}',
    '[{"at": 1}]',
    '{"at": 1, "visitor": "v1", "event": "tick", "props": ' + "[" * 600 + "]" * 600 + "}",
    '{"at": 1, "visitor": "v1", "event": "tick", "scroll": ' + "1" * 5000 + "}",
]


@SETTINGS
@given(text=lines(), number=st.integers(1, 10**6))
@example(text=CORNERS[0], number=1)
def test_reading_a_line_gives_what_parse_traffic_line_gives(text: str, number: int) -> None:
    reader = _Reader(PATH)
    expected = outcome(lambda: parse_traffic_line(text, f"{PATH}:{number}"))
    assert outcome(lambda: reader.parse(text, number)) == expected
    assert outcome(lambda: reader.parse(text, number)) == expected  # its `at` now known
    if text.isascii():  # the line's bytes, as a file in time order is read
        event = reader.quick_event(text.encode() + b"\n")
        if event is not None:
            assert outcome(lambda: event) == expected


@SETTINGS
@given(text=lines(), number=st.integers(1, 10**6))
def test_the_first_read_of_a_line_gives_what_json_loads_and_at_give(text: str, number: int) -> None:
    reader = _Reader(PATH)
    expected = outcome(lambda: first_read(text, number))
    assert outcome(lambda: reader.head(text, number)) == expected
    assert outcome(lambda: reader.head(text, number)) == expected
    if text.isascii():
        head = reader.quick_head(text.encode() + b"\r\n")
        if head is not None:
            assert outcome(lambda: head) == expected


@pytest.mark.parametrize("text", CORNERS)
def test_the_corners_of_json_read_alike(text: str) -> None:
    reader = _Reader(PATH)
    assert outcome(lambda: reader.parse(text, 2)) == outcome(
        lambda: parse_traffic_line(text, f"{PATH}:2")
    )
    assert outcome(lambda: reader.head(text, 2)) == outcome(lambda: first_read(text, 2))


def test_most_lines_of_a_file_are_read_by_the_quick_paths() -> None:
    """Not a behaviour a user sees, but what keeps the quick paths from falling
    silently out of use: a tick and a page view go through msgspec alone."""
    reader = _Reader(PATH)
    for line in CORNERS[0], '{"at": 1, "visitor": "v", "event": "page_view", "url": "/a"}':
        assert reader.quick_head(line.encode()) is not None
        assert isinstance(reader.quick_event(line.encode()), Event)


def test_a_file_reads_as_its_decoded_lines_do(tmp_path: Path) -> None:
    """Bytes read without decoding (ASCII lines) and decoded lines agree on what
    is blank, a line break, a byte order mark and a line of another kind."""
    tick = b'{"at": 1767607200, "visitor": "v1", "event": "tick"}'
    path = tmp_path / "traffic.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf"
        + tick
        + b"\r\n"  # a byte order mark, a Windows line break
        + b"\x1c \t\n"  # blank to str.strip(), not to bytes.strip()
        + b'{"at": 1767607200, "agents": {"online": 1, "available": 1}}\n'
        + tick.replace(b"v1", b"v\xc3\xa9")
        + b"\n"  # v\u00e9: not ASCII
        + tick.replace(b"tick", b"tick!")  # not an event name: parse says so
    )
    traffic = TrafficFile(path)
    assert traffic.lines == 4
    assert traffic.last_seen == {"v1": 1767607200.0, "v\u00e9": 1767607200.0}
    items = iter(traffic)
    read = [
        (n, type(item).__name__, getattr(item, "visitor", None))
        for n, item in [next(items), next(items), next(items)]
    ]
    assert read == [(1, "Event", "v1"), (3, "_Control", None), (4, "Event", "v\u00e9")]
    with pytest.raises(TrafficError, match=r"traffic.jsonl:5: event: String should match"):
        next(items)


def test_a_byte_that_is_not_utf8_is_found_by_the_first_read(tmp_path: Path) -> None:
    """Even in a key the first read skips (it reads only `at`, `visitor`, `event`)."""
    path = tmp_path / "traffic.jsonl"
    path.write_bytes(b'{"at": 1767607200, "visitor": "v1", "event": "tick", "title": "\xff"}\n')
    with pytest.raises(TrafficError, match=r"traffic.jsonl:1: not UTF-8 \(byte 64 of the line\)"):
        TrafficFile(path)


def test_lines_longer_than_the_fast_bound_are_read_by_json(tmp_path: Path) -> None:
    """The only JSON msgspec reads and json refuses needs a long line."""
    deep = '{"at": 1, "visitor": "v", "event": "tick", "props": ' + "[" * 2000 + "]" * 2000 + "}"
    assert len(deep) > FAST_LINE
    with pytest.raises(TrafficError, match="nested too deeply"):
        _Reader(PATH).head(deep, 1)


def test_a_time_is_known_by_its_type_as_well_as_its_value() -> None:
    reader = _Reader(PATH)
    one = reader.instant(1)
    assert one is not None
    assert reader.instant(1.0) == one  # the same time, read on its own
    assert reader.instant(True) is None  # equal to 1 as a key, but not a time
    assert reader.instant(None) is None
    assert reader.instant([1]) is None


def test_the_known_times_are_bounded() -> None:
    reader = _Reader(PATH, known=10)
    for second in range(100):
        assert reader.instant(1_767_607_200 + second) is not None
    assert len(reader._instants) <= 10


def test_events_of_one_time_share_its_datetime(tmp_path: Path) -> None:
    path = tmp_path / "traffic.jsonl"
    same = {"at": "2026-01-05T10:00:00Z", "event": "tick"}
    path.write_text(
        "".join(json.dumps({**same, "visitor": v}) + "\n" for v in ("a", "b")), encoding="utf-8"
    )
    (_, first), (_, second) = list(TrafficFile(path))
    assert isinstance(first, Event)
    assert isinstance(second, Event)
    assert first.at is second.at


seconds = st.datetimes(min_value=datetime(1969, 12, 31, 23), max_value=datetime(3000, 1, 1, 1)).map(
    lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")
)
written_seconds = st.one_of(
    seconds,
    st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z", fullmatch=True),
    seconds.map(lambda s: s.replace("Z", "+01:00")),
    seconds.map(lambda s: s.replace("Z", "")),
    seconds.map(lambda s: s.replace("T", " ")),
    seconds.map(lambda s: s.replace("Z", ".5Z")),
    seconds.map(lambda s: s.lower()),
)


def instant_of(value: object) -> tuple[str, str] | None:
    """What `to_instant` makes of a value (the time and its zone object), None if it refuses."""
    try:
        instant = to_instant(value)
    except EventError:
        return None
    return repr(instant), repr(instant.tzinfo)


@SETTINGS
@given(text=written_seconds)
@example(text="1969-12-31T23:59:59Z")
@example(text="3000-01-01T00:00:00Z")
@example(text="2026-01-05T10:00:00+00:00")
def test_a_time_to_the_second_in_utc_is_read_as_to_instant_reads_it(text: str) -> None:
    """`utc_second` reads the times examples write without pydantic: what it reads
    is what `to_instant` reads, to the zone object, and it reads every such time."""
    quick = utc_second(text)
    expected = instant_of(text)
    if quick is not None:
        instant, seconds = quick
        assert (repr(instant), repr(instant.tzinfo)) == expected
        assert seconds == instant.timestamp()
    elif text.endswith("Z") and "T" in text and len(text) == 20:
        assert expected is None, text  # a time written so is read, unless to_instant refuses it


# --- --json lines ------------------------------------------------------------------------------

names = st.text(min_size=1, max_size=20)
invitations = st.builds(
    Invitation, id=names, rule=names, message=st.text(max_size=40), variant=st.integers(0, 5)
)
decisions = st.builds(
    Decision.model_construct,
    invitation=st.none() | invitations,
    recheck_in=st.none() | st.integers(0, 10**6),
    chat=st.sampled_from(["available", "blocked", "in_chat"]),
    ruleset=st.text(max_size=12),
    degraded=st.booleans(),
    visitor=st.none() | names,
)
events = st.builds(
    Event.model_construct,
    visitor=names,
    event=st.sampled_from(["tick", "page_view", "invitation_accepted", "a.b:c-d"]),
)
moments = st.floats(0, datetime(2999, 1, 1, tzinfo=UTC).timestamp())


@SETTINGS
@given(
    steps=st.lists(
        st.tuples(st.none() | st.integers(1, 10**6), events, moments, decisions), max_size=6
    )
)
def test_json_lines_are_json_dumps_of_as_json(
    steps: list[tuple[int | None, Event, float, Decision]],
) -> None:
    render = DecisionLines(known=3)  # the decisions' texts kept, and forgotten past 3
    for line, event, at, decision in [*steps, *steps]:  # the same times again, and back
        step = Step(line, event, at, Verdict(decision, None))
        assert render(step) == json.dumps(step.as_json()) + "\n"
        assert len(render._decisions) <= 3
