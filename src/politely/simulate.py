"""Replay recorded traffic against rules: what would have fired, how often, and why not.

A traffic file is JSON Lines, one object a line, each with `at` (a file out of
time order is replayed sorted by `at`, see `TrafficFile`):

    {"at": "2026-01-05T10:00:00Z", "visitor": "v1", "event": "page_view", "url": "/pricing"}
    {"at": "2026-01-05T10:00:00Z", "agents": {"online": 3, "available": 1, "queue_wait": 20}}
    {"at": "2026-01-05T10:05:00Z", "block": {"visitor": "v9", "reason": "abuse"}}
    {"at": "2026-01-05T10:09:00Z", "unblock": "v9"}

Events are the event JSON of docs/contract.md. The simulation runs the real
engine on a clock that follows `at`, with a fresh in-memory store.
With `follow_ticks`, it also sends the ticks each decision asks for
(`recheck_in`), as the website snippet does, between a visitor's recorded
events: a visitor is assumed to stay until their last recorded event.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import math
import os
import re
import shutil
import stat
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO, NamedTuple, final

import msgspec
from pydantic import ValidationError

from politely.engine import Engine, describe_validation
from politely.errors import EventError, TrafficError
from politely.evaluator import Verdict
from politely.event_lines import EventLines
from politely.models import (
    EARLIEST,
    LATEST,
    AgentsUpdate,
    Decision,
    Event,
    Invitation,
    construct_event,
    to_instant,
    to_timestamp,
    unknown_key,
)
from politely.reasons import VISITOR_SUPPRESSIONS
from politely.ruleset import RuleSet
from politely.state import Block
from politely.stats import Stats


class Step(NamedTuple):
    """One evaluated event of the replay (a named tuple: one is made per event,
    three times faster than a frozen dataclass)."""

    line: int | None  # None for a tick the simulation sent itself
    event: Event
    at: float
    verdict: Verdict

    @property
    def decision(self) -> Decision:
        return self.verdict.decision

    def as_json(self) -> dict[str, Any]:
        data = self.decision.model_dump(mode="json")
        data["visitor"] = self.event.visitor
        data["event"] = self.event.event
        data["at"] = iso(self.at)
        return data


# `Step(...)` through NamedTuple's own `__new__`, a Python function, costs a frame
# an event; every field is given, so nothing is lost.
_new_step = tuple.__new__


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


_quote: Callable[[str], str] = json.encoder.encode_basestring_ascii


class DecisionLines:
    """`--json`'s lines: `json.dumps(step.as_json())` and a line break, for each step.

    Written out directly rather than through pydantic's `model_dump` and a dict:
    a decision's shape is fixed, and the strings go through the very function
    `json.dumps` quotes them with, so the text is the same byte for byte. A
    decision of any other shape (`degraded`, a visitor id the service issued)
    goes the long way. The last time's text is kept: steps come in time order.
    So is the text of each decision without an invitation (bounded): the engine
    shares those (frozen) between events, and most events get one.
    """

    def __init__(self, known: int = 1024) -> None:
        self._at = -math.inf
        self._at_text = ""
        self.known = known
        self._decisions: dict[int, tuple[Decision, str]] = {}  # id → the decision, its text

    def __call__(self, step: Step) -> str:
        decision = step.decision
        found = self._decisions.get(id(decision))  # (kept with it: no other has its id)
        shown = found[1] if found is not None else self._shown(decision)
        if shown is None:
            return json.dumps(step.as_json()) + "\n"
        at = step.at
        if at != self._at:
            self._at, self._at_text = at, _quote(iso(at))
        event = step.event
        return (
            f'{shown}"visitor": {_quote(event.visitor)}, "event": {_quote(event.event)}, '
            f'"at": {self._at_text}}}\n'
        )

    def _shown(self, decision: Decision) -> str | None:
        """The decision's part of its line; None for a decision of another shape."""
        invitation = decision.invitation
        recheck = decision.recheck_in
        chat = decision.chat
        ruleset = decision.ruleset
        if (
            decision.degraded is not False
            or decision.visitor is not None
            or not (recheck is None or type(recheck) is int)
            or type(chat) is not str
            or type(ruleset) is not str
            or not (invitation is None or _plain(invitation))
        ):
            return None
        if invitation is None:
            shown = "null"
        else:
            shown = (
                f'{{"id": {_quote(invitation.id)}, "rule": {_quote(invitation.rule)}, '
                f'"message": {_quote(invitation.message)}, "variant": {invitation.variant}}}'
            )
        text = (
            f'{{"invitation": {shown}, "recheck_in": {"null" if recheck is None else recheck}, '
            f'"chat": {_quote(chat)}, "ruleset": {_quote(ruleset)}, '
        )
        if invitation is None:  # (an invitation is the event's own: no other shares it)
            if len(self._decisions) >= self.known:
                self._decisions.clear()
            self._decisions[id(decision)] = (decision, text)
        return text


def _plain(invitation: Invitation) -> bool:
    """An invitation of the model's own shape, as the engine makes them."""
    return (
        type(invitation) is Invitation
        and type(invitation.id) is str
        and type(invitation.rule) is str
        and type(invitation.message) is str
        and type(invitation.variant) is int
    )


class SimulatedClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Summary:
    events: int = 0
    sent_ticks: int = 0
    visitors: set[str] = field(default_factory=set)
    sessions: int = 0
    first: float | None = None
    last: float | None = None
    per_visitor: Counter[str] = field(default_factory=Counter)
    # visitors not considered: reason (blocked, in_chat) → the visitors, and their events
    skipped_visitors: dict[str, set[str]] = field(default_factory=dict)
    skipped_events: Counter[str] = field(default_factory=Counter)

    def note(
        self, line: int | None, visitor: str, at: float, verdict: Verdict, new_session: bool
    ) -> None:
        """One step of the replay (`Step`'s fields, its visitor given apart: reading
        a pydantic attribute costs several times a plain one)."""
        if line is None:
            self.sent_ticks += 1
        else:
            self.events += 1
        self.visitors.add(visitor)
        if new_session:
            self.sessions += 1
        last = self.last
        if last is None or at > last:
            self.last = at
            if last is None:
                self.first = at
        elif self.first is not None and at < self.first:
            self.first = at
        if verdict.decision.invitation is not None:
            self.per_visitor[visitor] += 1
        if verdict.counts:
            for rule, _, what in verdict.counts:
                if rule is None and what in VISITOR_SUPPRESSIONS:
                    self.skipped_visitors.setdefault(what, set()).add(visitor)
                    self.skipped_events[what] += 1


@final
@dataclass(frozen=True, slots=True)
class _Control:
    """A traffic line that is not an event: agent status, a block, an unblock."""

    at: float
    agents: AgentsUpdate | None = None
    block: tuple[str, Block] | None = None
    unblock: str | None = None


class _Head(msgspec.Struct, gc=False):  # (decoded JSON holds no cycle to collect)
    """What the first read needs of a line: its time, and whose event it is."""

    at: Any = None
    visitor: Any = None
    event: Any = msgspec.UNSET


MAX_LINE = 1_000_000  # bytes in one traffic line: far above any real event
SORT_CHUNK = 50_000  # lines sorted in memory at once when a file is out of time order
CONTROL_KEYS = {
    "agents": {"at", "agents"},
    "block": {"at", "block"},
    "unblock": {"at", "unblock"},
}
LINE_NAMES = {"agents": "an agents line", "block": "a block line", "unblock": "an unblock line"}
BLOCK_KEYS = ("visitor", "reason", "until", "by")


class OutOfOrderError(Exception):
    """A traffic file read without a first read met a line earlier than one before
    it (`TrafficFile.first_out_of_order`): what was replayed is to be thrown away;
    iterating the file again replays it sorted."""


class TrafficFile:
    """A traffic file, iterated in time order.

    A file in time order is streamed line by line. A file out of order is
    replayed sorted by `at`, stably (lines with the same time keep their file
    order), in bounded memory: runs of `chunk` lines are sorted and spilled to
    temporary files, then merged. Line numbers are always the file's own.

    With `read_ahead` (the default), the file is read once ahead to learn its
    order and each visitor's last recorded time (for `follow_ticks`), and a
    line whose JSON or `at` is bad is found before anything is evaluated: what
    a caller that shows decisions as they come needs. Without it the file is
    read once: the stream raises `OutOfOrderError` at the first line earlier than
    one before, and the caller starts again (a summary, which shows nothing
    until the end, shows the same: the first read was 7% of its time, and a
    file out of order costs the part replayed before its first late line).

    A file that can be read only once (a pipe, `/dev/stdin`) is first copied to a
    temporary file, read from there (and removed with it): a sorted replay, and
    a read ahead, read it again. Messages name the path as given.

    A bad line raises `TrafficError("PATH:LINE: what")`.
    """

    def __init__(
        self, path: str | Path, *, chunk: int = SORT_CHUNK, read_ahead: bool = True
    ) -> None:
        self.path = str(path)  # as messages name it
        self._copy = _copy_if_read_once(self.path)
        self.file = self._copy.name if self._copy is not None else self.path  # what is read
        self.chunk = chunk
        self.read_ahead = read_ahead
        self.lines = 0  # lines that are not blank (known after the first read, or a sort)
        self.first_out_of_order: int | None = None  # the first line earlier than one before
        self.last_seen: dict[str, float] = {}  # visitor → the time of their last event
        self._reader = _Reader(self.path)
        self._reading: BinaryIO | None = None  # the file a stream is reading (for `progress`)
        self._size = 0  # and its size in bytes
        self._replayed = 0  # lines a sorted replay has given
        if read_ahead:
            self._read_ahead()

    def _read_ahead(self) -> None:
        head, quick = self._reader.head, self._reader.quick_head
        last_seen = self.last_seen
        latest = -math.inf  # the latest time so far
        for number, raw in _lines(self.file, self.path):
            found = quick(raw) if raw.isascii() else None
            if found is None:
                text = _text(raw, self.path, number)
                if not text.strip():
                    continue
                found = head(text, number)
            self.lines += 1
            at, visitor = found
            if at >= latest:
                latest = at
                if visitor is not None:  # the latest time so far is this visitor's latest
                    last_seen[visitor] = at
                continue
            if self.first_out_of_order is None:
                self.first_out_of_order = number
            if visitor is not None:
                last_seen[visitor] = max(last_seen.get(visitor, at), at)

    @property
    def in_order(self) -> bool:
        """In time order, as far as it is known (without `read_ahead`: until a stream
        met a line out of order)."""
        return self.first_out_of_order is None

    def progress(self) -> float:
        """How far through the file the current iteration is, from 0 to 1."""
        if not self.in_order:
            return self._replayed / self.lines if self.lines else 1.0
        reading = self._reading
        if reading is None or reading.closed:
            return 1.0
        return reading.tell() / self._size if self._size else 1.0

    def __iter__(self) -> Iterator[tuple[int, Event | _Control]]:
        if self.in_order:
            return self._stream()
        return self._replay_sorted()

    def _stream(self) -> Iterator[tuple[int, Event | _Control]]:
        parse, quick = self._reader.parse, self._reader.quick_event
        path = self.path
        check = not self.read_ahead
        latest = -math.inf  # (only when checking) the latest time so far
        instant: object = None  # and the `at` it was read from: events share them
        item: Event | _Control | None
        with open(self.file, "rb") as data:
            self._reading, self._size = data, os.fstat(data.fileno()).st_size
            for number, raw in _numbered(data, path):
                item = quick(raw) if raw.isascii() else None
                if item is None:
                    text = _text(raw, path, number)
                    if not text.strip():
                        continue
                    item = parse(text, number)
                if check and item.at is not instant:
                    instant = item.at
                    at = item.at if type(item) is _Control else _seconds(item)
                    if at < latest:
                        self.first_out_of_order = number
                        raise OutOfOrderError(number)
                    latest = at
                yield number, item

    def _replay_sorted(self) -> Iterator[tuple[int, Event | _Control]]:
        parse = self._reader.parse
        self._replayed = 0
        for _, number, text in self._sorted():
            self._replayed += 1
            yield number, parse(text, number)

    def _sorted(self) -> Iterator[tuple[float, int, str]]:
        """(at, line number, text) of every line, sorted by time, then line number."""
        head = self._reader.head
        with contextlib.ExitStack() as stack:
            runs: list[Iterator[tuple[float, int, str]]] = []
            run: list[tuple[float, int, str]] = []
            lines = 0
            for number, raw in _lines(self.file, self.path):
                text = _text(raw, self.path, number)
                if text.strip():
                    lines += 1
                    run.append((head(text, number)[0], number, text))
                    if len(run) >= self.chunk:
                        runs.append(_spill(sorted(run), stack))
                        run = []
            self.lines = lines
            run.sort()
            if not runs:
                yield from run
                return
            runs.append(iter(run))
            yield from heapq.merge(*runs)


def _seconds(event: Event) -> float:
    """The Unix seconds of a traffic event's `at` (every traffic line has one)."""
    assert event.at is not None
    return event.at.timestamp()


def _spill(
    run: list[tuple[float, int, str]], stack: contextlib.ExitStack
) -> Iterator[tuple[float, int, str]]:
    """A sorted run written to a temporary file, read back lazily."""
    spill = tempfile.TemporaryFile("w+", encoding="utf-8", newline="\n")  # noqa: SIM115
    stack.enter_context(spill)  # closed (and so removed) when the merge ends
    for at, number, text in run:
        spill.write(f"{at!r}\t{number}\t{text}\n")
    spill.seek(0)

    def read() -> Iterator[tuple[float, int, str]]:
        for record in spill:
            at, number, text = record.rstrip("\n").split("\t", 2)
            yield float(at), int(number), text

    return read()


def _lines(path: str, name: str | None = None) -> Iterator[tuple[int, bytes]]:
    """(number, bytes) of each line, its line break kept (`_text` decodes one);
    messages name the file `name` (the path itself unless given)."""
    with open(path, "rb") as data:
        yield from _numbered(data, name or path)


def _copy_if_read_once(path: str) -> IO[bytes] | None:
    """A temporary copy of a file that is not a regular file (a pipe, a terminal:
    it can be read only once), removed when closed or collected; None for a
    regular file. Copied in chunks: memory stays bounded whatever its size."""
    if stat.S_ISREG(os.stat(path).st_mode):
        return None
    copy = tempfile.NamedTemporaryFile(prefix="politely-traffic-", suffix=".jsonl")  # noqa: SIM115
    try:
        with open(path, "rb") as source:
            shutil.copyfileobj(source, copy)
        copy.flush()
    except BaseException:
        copy.close()
        raise
    return copy


def _numbered(data: BinaryIO, path: str) -> Iterator[tuple[int, bytes]]:
    """`_lines` of a file already open."""
    longest = MAX_LINE
    readline = data.readline
    number = 0
    while raw := readline(longest + 1):
        number += 1
        if len(raw) > longest:
            raise TrafficError(f"{path}:{number}: a line longer than {longest:,} bytes")
        yield number, raw


def _text(raw: bytes, path: str, number: int) -> str:
    """A line's text, without its line break, decoded from UTF-8 (a byte order
    mark may open the file)."""
    try:
        text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
    except UnicodeDecodeError as error:
        raise TrafficError(
            f"{path}:{number}: not UTF-8 (byte {error.start + 1} of the line); "
            "save the file as UTF-8"
        ) from None
    return text.rstrip("\r\n")


def read_traffic(path: str | Path) -> Iterator[tuple[int, Event | _Control]]:
    """Validated traffic lines in time order; a bad one raises `TrafficError("PATH:LINE: what")`."""
    return iter(TrafficFile(path))


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _json_object(text: str, where: str) -> dict[str, Any]:
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        raise TrafficError(f"{where}: not JSON: {error.msg} (column {error.colno})") from None
    except RecursionError:
        raise TrafficError(f"{where}: not a traffic line: JSON nested too deeply") from None
    except ValueError as error:  # NaN, or an integer of more than 4,300 digits
        reason = str(error)
        if "digits" in reason:
            reason = "a number with too many digits"
        raise TrafficError(f"{where}: not JSON: {reason}") from None
    if not isinstance(data, dict):
        raise TrafficError(f"{where}: a traffic line is a JSON object")
    return data


def _line_time(data: dict[str, Any], where: str) -> float:
    if data.get("at") is None:
        raise TrafficError(f"{where}: `at` is missing: every traffic line needs its time")
    try:
        return to_timestamp(data["at"], "at")
    except EventError as error:
        raise TrafficError(f"{where}: {error}") from None


FAST_LINE = 1000  # characters: see `_Reader`
_HEAD = msgspec.json.Decoder(type=_Head)


_UTC_SECOND = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


def utc_second(text: str) -> tuple[datetime, float] | None:
    """The time of `at` written as the examples write it, `2026-01-05T10:00:00Z`,
    as `to_instant` reads it, with its Unix seconds; None for any other text (or
    a time out of range).

    Read by the standard library: pydantic's reading of a time (`to_instant`)
    costs 2.4 µs, this 0.2 µs, and traffic brings a new second every few lines
    (the demo's: 2,704 in 25,000 events).
    """
    if _UTC_SECOND.fullmatch(text) is None:
        return None
    try:
        instant = datetime.fromisoformat(text)  # (`Z` gives the standard library's UTC)
    except ValueError:  # no such day or hour: to_instant says what is wrong
        return None
    seconds = instant.timestamp()
    return (instant, seconds) if EARLIEST <= seconds < LATEST else None


class _Reader:
    """Reads the lines of one traffic file exactly as `parse_traffic_line` does, faster.

    Three shortcuts, each falling back to `parse_traffic_line` (which says what
    is wrong) whenever it cannot decide:

    - msgspec parses the JSON. It reads a line as `json` does except that it
      refuses NaN, Infinity, numbers out of a float's range and lone surrogates
      (which `json` reads), and that it accepts nesting deep enough to exhaust
      `json`'s recursion and integers of more than 4,300 digits (which `json`
      refuses). A line of at most `FAST_LINE` characters can hold neither of
      the latter; the former fall back.
    - Each `at` is validated once: traffic repeats the same time on
      consecutive lines, and pydantic's reading of a time is the dearest step
      of a line. Events of the same `at` share its datetime (immutable), which
      also lets `Simulation.run` read its Unix seconds once. Bounded.
    - An event line is checked against `Event`'s rules by msgspec as it is
      decoded (`event_lines.py`) and the event built without pydantic.

    `quick_head` and `quick_event` read a line's bytes (ASCII: JSON reads them as
    text, with nothing to decode) and give None where `head` and `parse` would
    have more to say.
    """

    def __init__(self, path: str, known: int = 4096) -> None:
        self.path = path
        self.known = known
        self._instants: dict[object, tuple[datetime, float]] = {}
        self._events = EventLines()

    def instant(self, value: object) -> tuple[datetime, float] | None:
        """(datetime, Unix seconds) of a good `at` value, None for any other."""
        kind = type(value)
        key: object
        if kind is str:
            key = value
        elif kind is int or kind is float:
            key = (kind, value)  # 1, 1.0 and True are equal keys; their times may not be
        else:
            return None
        found = self._instants.get(key)  # most lines: a time seen just before
        if found is None:
            found = utc_second(value) if isinstance(value, str) else None
            if found is None:
                try:
                    instant = to_instant(value)
                except EventError:
                    return None
                found = (instant, instant.timestamp())
            if len(self._instants) >= self.known:
                self._instants.clear()
            self._instants[key] = found
        return found

    def quick_head(self, line: bytes | str) -> tuple[float, str | None] | None:
        """`head` of a line that is JSON as msgspec and json both read it, with a
        good `at`; None for any other."""
        if len(line) <= FAST_LINE:
            try:
                head = _HEAD.decode(line)
            except (msgspec.DecodeError, UnicodeEncodeError):  # a lone surrogate: json reads it
                return None
            at = self.instant(head.at)
            if at is not None:
                visitor = head.visitor
                is_event = head.event is not msgspec.UNSET and isinstance(visitor, str)
                return at[1], visitor if is_event else None
        return None

    def head(self, text: str, number: int) -> tuple[float, str | None]:
        """A line's time, and its visitor if it is an event line with a visitor id
        (the first read: a line whose JSON or `at` is bad raises `TrafficError`)."""
        found = self.quick_head(text)
        if found is not None:
            return found
        where = f"{self.path}:{number}"
        data = _json_object(text, where)
        time = _line_time(data, where)
        visitor = data.get("visitor")
        return time, visitor if "event" in data and isinstance(visitor, str) else None

    def quick_event(self, line: bytes | str) -> Event | None:
        """The event of a line that is an event as `parse` reads it, checked by
        msgspec alone; None for any other (a control line, a bad line)."""
        if len(line) <= FAST_LINE:
            fields = self._events.fields(line)
            if fields is not None:
                at = self.instant(fields.get("at"))
                if at is not None:
                    fields["at"] = at[0]
                    return construct_event(fields)
        return None

    def parse(self, text: str, number: int) -> Event | _Control:
        """`parse_traffic_line(text, "PATH:NUMBER")`."""
        event = self.quick_event(text)
        if event is not None:
            return event
        return parse_traffic_line(text, f"{self.path}:{number}")


def parse_traffic_line(text: str, where: str) -> Event | _Control:
    """One traffic line; a bad one raises `TrafficError("WHERE: what")`."""
    data = _json_object(text, where)
    at = _line_time(data, where)
    if "event" in data:
        try:
            return Event.model_validate(data)
        except ValidationError as error:
            raise TrafficError(f"{where}: {describe_validation(error)}") from None
    kind = next((k for k in CONTROL_KEYS if k in data), None)
    if kind is None:
        if "visitor" in data:
            raise TrafficError(
                f"{where}: `event` is missing: an event line names its event "
                '(such as "page_view" or "tick")'
            )
        extra = ", ".join(f"`{k}`" if k else "an empty key" for k in data if k != "at")
        raise TrafficError(
            f"{where}: expected an event (with `event`), `agents`, `block` or `unblock`"
            + (f"; found {extra}" if extra else "")
        )
    for key in data:
        if key not in CONTROL_KEYS[kind]:
            raise TrafficError(f"{where}: {unknown_key(key, CONTROL_KEYS[kind], LINE_NAMES[kind])}")
    try:
        if kind == "agents":
            return _Control(at, agents=_agents(data["agents"]))
        if kind == "block":
            return _Control(at, block=_block(data["block"], at))
        return _Control(at, unblock=_visitor(data["unblock"], "unblock"))
    except EventError as error:
        raise TrafficError(f"{where}: {error}") from None


def _agents(value: object) -> AgentsUpdate:
    if not isinstance(value, dict):
        raise EventError('agents: expected an object such as {"online": 2, "available": 1}')
    try:
        return AgentsUpdate.model_validate(value)
    except ValidationError as error:
        raise EventError(describe_validation(error, "agents", AgentsUpdate)) from None


def _block(value: object, at: float) -> tuple[str, Block]:
    if not isinstance(value, dict):
        raise EventError('block: expected an object such as {"visitor": "v9", "reason": "abuse"}')
    for key in value:
        if key not in BLOCK_KEYS:
            raise EventError(f"block.{unknown_key(key, BLOCK_KEYS, 'a block')}")
    if "visitor" not in value:
        raise EventError('block.visitor: missing; a block says whom: {"visitor": ...}')
    visitor = _visitor(value["visitor"], "block.visitor")
    reason = value.get("reason", "")
    if not isinstance(reason, str):
        raise EventError("block.reason: expected text")
    by = value.get("by")
    if by is not None and not isinstance(by, str):
        raise EventError("block.by: expected text")
    until = value.get("until")
    expiry = None if until is None else to_timestamp(until, "block.until")
    return visitor, Block(reason, expiry, at, by)


def _visitor(value: object, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise EventError(f"{name}: expected a visitor id (non-empty text), got {_json_type(value)}")
    return value


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    return {str: "empty text", int: "a number", float: "a number", list: "a list"}.get(
        type(value), "an object"
    )


class Simulation:
    def __init__(
        self,
        rules: RuleSet,
        *,
        agents: AgentsUpdate | None = None,
        follow_ticks: bool = False,
        recheck: bool = True,
    ) -> None:
        """`recheck=False`: decisions without recheck_in, for a summary (which never
        shows it): the engine skips finding it (but for an event with an id, whose
        decision the store remembers for a retry). Following ticks needs it."""
        self.clock = SimulatedClock()
        self.engine = Engine(rules, clock=self.clock)
        self.constant_agents = agents
        self.follow_ticks = follow_ticks
        self.recheck = recheck or follow_ticks
        self.summary = Summary()
        self._sessions: dict[str, str | None] = {}

    @property
    def rules(self) -> RuleSet:
        return self.engine.rules

    def run(
        self,
        traffic: Iterable[tuple[int, Event | _Control]],
        last_seen: dict[str, float] | None = None,
        on_step: Callable[[Step, Any], None] | None = None,
        source: str = "traffic",
    ) -> Iterator[Step]:
        """Evaluate every line; `on_step(step, snapshot)` sees the state before each one.

        An event the engine refuses (attributes over a bound) raises
        `TrafficError("SOURCE:LINE: what")`."""
        pending: list[tuple[float, int, str]] = []  # (time, order, visitor) of ticks to send
        wanted: dict[str, float] = {}
        order = 0
        instant: datetime | None = None  # events of one `at` often share its datetime
        at = 0.0
        follow = self.follow_ticks and last_seen is not None
        for number, item in traffic:
            if type(item) is _Control:  # (isinstance of a pydantic model is dearer)
                control, event, at = item, None, item.at
            else:
                control, event = None, item
                if item.at is not instant or instant is None:
                    instant = item.at
                    assert instant is not None
                    at = instant.timestamp()
            while pending and pending[0][0] < at:
                tick_at, _, visitor = heapq.heappop(pending)
                if wanted.get(visitor) != tick_at:
                    continue
                del wanted[visitor]
                tick = Event(visitor=visitor, event="tick")
                step = self._evaluate(None, tick, tick_at, on_step)
                yield step
                order = self._schedule(step, last_seen, pending, wanted, order)
            if control is not None:
                self._control(control)
                continue
            assert event is not None
            if wanted:
                wanted.pop(event.visitor, None)
            try:
                step = self._evaluate(number, event, at, on_step)
            except EventError as error:
                raise TrafficError(f"{source}:{number}: {error}") from None
            yield step
            if follow:
                order = self._schedule(step, last_seen, pending, wanted, order)

    def _schedule(
        self,
        step: Step,
        last_seen: dict[str, float] | None,
        pending: list[tuple[float, int, str]],
        wanted: dict[str, float],
        order: int,
    ) -> int:
        recheck = step.decision.recheck_in
        if not self.follow_ticks or recheck is None or last_seen is None:
            return order
        visitor = step.event.visitor
        tick_at = step.at + recheck
        if tick_at >= last_seen.get(visitor, step.at):
            return order
        wanted[visitor] = tick_at
        heapq.heappush(pending, (tick_at, order, visitor))
        return order + 1

    def _control(self, item: _Control) -> None:
        self.clock.now = item.at
        if item.agents is not None:
            self.engine.set_agents(**item.agents.model_dump(), at=item.at)
        if item.block is not None:
            self.engine.store.block(self.engine.site, *item.block)
        if item.unblock is not None:
            self.engine.unblock(item.unblock)

    def _evaluate(
        self,
        line: int | None,
        event: Event,
        at: float,
        on_step: Callable[[Step, Any], None] | None,
    ) -> Step:
        self.clock.now = at
        engine = self.engine
        if self.constant_agents is not None:
            engine.set_agents(**self.constant_agents.model_dump(), at=at)
        snapshot, verdict = engine.decide(event, at, recheck=self.recheck)
        step = _new_step(Step, (line, event, at, verdict))
        if on_step is not None:
            on_step(step, snapshot)
        state = verdict.state
        visitor = event.visitor
        new = False
        if state is not None:
            session = state.session
            sessions = self._sessions
            if sessions.get(visitor, False) != session:  # (no visitor's session is False)
                sessions[visitor] = session
                new = session is not None
        self.summary.note(line, visitor, at, verdict, new)
        return step

    def stats(self) -> Stats:
        return self.engine.stats()


def last_seen_times(path: str | Path) -> dict[str, float]:
    """Each visitor's last recorded event time (a first pass for `follow_ticks`)."""
    return TrafficFile(path).last_seen


# --- the report ------------------------------------------------------------------------


LABEL = 28  # the narrowest label column; wider when a rule name or variant needs it
COLUMNS = (  # heading, narrowest width
    ("shown", 7),
    ("per 1,000 sessions", 20),
    ("accepted", 10),
    ("dismissed", 11),
    ("acceptance", 12),
)


def render_summary(summary: Summary, stats: Stats) -> str:
    lines: list[str] = []
    if summary.first is not None and summary.last is not None:
        span = f"from {iso(summary.first)} to {iso(summary.last)}"
    else:
        span = "no events"
    ticks = (
        f" (and {_count(summary.sent_ticks, 'tick')} sent as asked)" if summary.sent_ticks else ""
    )
    lines.append(
        f"{_count(summary.events, 'event')}{ticks} from {_count(len(summary.visitors), 'visitor')} "
        f"in {_count(summary.sessions, 'session')}, {span}"
    )
    lines.append("")
    per_1000 = 1000 / summary.sessions if summary.sessions else 0.0
    rows: list[tuple[int, str, list[str]]] = []  # (indent, label, cells)
    total = accepted_total = dismissed_total = 0
    for rule in stats.rules:
        total += rule.shown
        accepted_total += rule.accepted
        dismissed_total += rule.dismissed
        rows.append(
            (2, rule.rule, _cells(rule.shown, rule.shown * per_1000, rule.accepted, rule.dismissed))
        )
        if len(rule.variants) > 1:
            width = _distinguishing_width([v.message for v in rule.variants])
            for variant in rule.variants:
                label = f"variant {variant.variant}: {_short(variant.message, width)}"
                cells = _cells(
                    variant.shown, variant.shown * per_1000, variant.accepted, variant.dismissed
                )
                rows.append((4, label, cells))
    rows.append((2, "total", _cells(total, total * per_1000, accepted_total, dismissed_total)))
    label_width = max([LABEL, *(indent + len(label) + 1 for indent, label, _ in rows)])
    widths = [
        max([width, len(name) + 2, *(len(cells[i]) + 2 for _, _, cells in rows)])
        for i, (name, width) in enumerate(COLUMNS)
    ]
    header = f"{'invitations':<{label_width}}" + "".join(
        f"{name:>{width}}" for (name, _), width in zip(COLUMNS, widths, strict=True)
    )
    lines.append(header)
    for indent, label, cells in rows:
        lines.append(
            f"{' ' * indent}{label:<{label_width - indent}}"
            + "".join(f"{cell:>{width}}" for cell, width in zip(cells, widths, strict=True))
        )
    lines.append("")
    if summary.per_visitor:
        visitor, most = summary.per_visitor.most_common(1)[0]
        lines.append(f"most invitations to one visitor: {most} (visitor {visitor})")
    else:
        lines.append("most invitations to one visitor: 0")
    held = [(r.rule, r.suppressed) for r in stats.rules if r.suppressed]
    if held:
        lines.append("")
        lines.append("held back (the rule's condition held, but):")
        name_width = max([26, *(len(name) + 2 for name, _ in held)])
        for name, reasons in held:
            text = ", ".join(f"{reason} {count:,}" for reason, count in reasons.items())
            lines.append(f"  {name:<{name_width}}{text}")
    if summary.skipped_events:
        parts = []
        for reason in VISITOR_SUPPRESSIONS:
            events = summary.skipped_events.get(reason, 0)
            if events:
                visitors = len(summary.skipped_visitors.get(reason, ()))
                parts.append(f"{reason} {_count(visitors, 'visitor')} ({_count(events, 'event')})")
        lines.append(f"visitors not considered: {', '.join(parts)}")
    return "\n".join(lines)


def _cells(shown: int, per: float, accepted: int, dismissed: int) -> list[str]:
    rate = f"{accepted / shown:.1%}" if shown and (accepted or dismissed) else "-"
    return [
        f"{shown:,}",
        f"{per:.1f}",
        f"{accepted:,}" if shown else "-",
        f"{dismissed:,}" if shown else "-",
        rate,
    ]


def _distinguishing_width(messages: list[str], shortest: int = 12, widest: int = 60) -> int:
    """How many characters of each message to show so that no two look the same
    (at least `shortest`, at most `widest`: past that the variant number tells them apart)."""
    width = shortest
    while width < widest:
        shown = [_short(m, width) for m in messages]
        if len(set(shown)) == len(shown):
            break
        width += 4
    return min(width, widest)


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
