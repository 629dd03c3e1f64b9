"""One canonical layout for rules files, comments kept where they were.

`format_source(format_source(x)) == format_source(x)`, and the formatted text
parses to the same syntax tree as the original (spans aside).

    >>> print(format_source('rule hi{when page.dwell>=90s say "Hi"}  # greet'), end="")
    rule hi {
        when page.dwell >= 1m30s
        say "Hi"
    }  # greet

Layout: one item after another with a blank line between them (consecutive
defines keep the writer's grouping), four-space indentation, one clause per
line, message variants lined up under `say`, a condition longer than the line
broken at its top-level `and`/`or`. Durations are written largest unit first
(`90m` becomes `1h30m`), days as `weekdays`, `mon-fri` or `mon,wed`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import assert_never

from politely import nodes as n
from politely.clauses import CLAUSE_OF
from politely.diagnostics import Diagnostic, source_lines_of
from politely.durations import format_duration
from politely.errors import FormatError
from politely.limits import FILE_HELP, MAX_FILE_CHARS
from politely.parser import BOM, escape_text, parse

LINE_LENGTH = 88
INDENT = "    "


def format_number(value: int | float) -> str:
    if isinstance(value, int):
        return str(value)
    text = repr(value)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text


def format_value(value: n.Value) -> str:
    match value:
        case n.Duration():
            return format_duration(value.seconds)
        case n.Percent():
            return format_number(value.value) + "%"
        case n.Text():
            return quote(value.value)
        case n.Boolean():
            return "true" if value.value else "false"
        case n.Number():
            return format_number(value.value)
        case _:
            assert_never(value)


def quote(text: str) -> str:
    return f'"{escape_text(text)}"'


_PRECEDENCE = {n.Or: 1, n.And: 2, n.Not: 3}


def format_condition(condition: n.Condition, parent: int = 0) -> str:
    """A condition on one line, with parentheses where they are needed.

    An `and` inside an `or` is always parenthesised: `(a and b) or c` reads
    unambiguously to someone who never learnt the precedence rules.
    """
    match condition:
        case n.Or() | n.And():
            word = " or " if isinstance(condition, n.Or) else " and "
            own = _PRECEDENCE[type(condition)]
            text = word.join(format_condition(o, own) for o in condition.operands)
            return f"({text})" if parent >= 1 and parent != own else text
        case n.Not():
            return "not " + format_condition(condition.operand, 3)
        case n.Ref():
            return condition.name
        case n.Compare() | n.InList() | n.Matches() | n.Contains() | n.Bare():
            return format_test(condition)
        case _:
            assert_never(condition)


def format_test(test: n.Test) -> str:
    name = test.field.name
    match test:
        case n.Compare():
            return f"{name} {test.op} {format_value(test.value)}"
        case n.InList():
            values = ", ".join(format_value(v) for v in test.values)
            return f"{name} {'not in' if test.negated else 'in'} [{values}]"
        case n.Matches():
            return f"{name} matches {quote(test.pattern.value)}"
        case n.Contains():
            return f"{name} contains {quote(test.text.value)}"
        case n.Bare():
            return name
        case _:
            assert_never(test)


def format_days(days: frozenset[int]) -> str:
    if days == frozenset(range(7)):
        return "daily"
    if days == frozenset(range(5)):
        return "weekdays"
    if days == frozenset({5, 6}):
        return "weekends"
    parts: list[str] = []
    ordered = sorted(days)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        first, last = n.DAY_NAMES[ordered[i]], n.DAY_NAMES[ordered[j]]
        if j - i >= 2:
            parts.append(f"{first}-{last}")
        else:
            parts.extend(n.DAY_NAMES[d] for d in ordered[i : j + 1])
        i = j + 1
    return ",".join(parts)


def _time(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def format_schedule(schedule: n.Schedule) -> str:
    windows = ", ".join(
        f"{format_days(w.days)} {_time(w.start)}-{_time(w.end)}" for w in schedule.windows
    )
    return windows + (f" in {quote(schedule.zone.value)}" if schedule.zone else "")


# --- layout --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Comment:
    line: int
    text: str
    own_line: bool


@dataclass
class _Unit:
    """One output line and the source lines it came from."""

    text: str
    depth: int
    start: int
    end: int
    item: bool = False  # starts a top-level item
    continues: bool = False  # continues the line above (`or "..."`, `and ...`)
    leading: list[_Comment] = field(default_factory=list)
    trailing: list[_Comment] = field(default_factory=list)


def scan_comments(text: str) -> list[_Comment]:
    """Every `#` comment outside a string (strings never span lines)."""
    comments = []
    for number, line in enumerate(source_lines_of(text), start=1):
        in_string = escaped = False
        for i, char in enumerate(line):
            if in_string:
                if escaped:
                    escaped = False
                elif char == "\\":
                    escaped = True
                elif char == '"':
                    in_string = False
            elif char == '"':
                in_string = True
            elif char == "#":
                comments.append(_Comment(number, line[i:].rstrip(), not line[:i].strip()))
                break
    return comments


def format_source(text: str, path: str = "<rules>") -> str:
    """The canonical layout of a file; raises FormatError when it does not parse.

    A byte-order mark at the start is dropped, as the parser drops it.
    """
    text = text.removeprefix(BOM)
    result = parse(text, path)
    errors = [d for d in result.diagnostics if d.is_error]
    if result.program is None or errors:
        # A malformed duration or string parses to a placeholder: writing it
        # back would silently change the rule's meaning.
        raise FormatError(errors[0])
    source_lines = source_lines_of(text)
    units = _layout(result.program)
    _attach(units, scan_comments(text), len(source_lines) + 1)
    formatted = _render(units, source_lines)
    if len(formatted) > MAX_FILE_CHARS:  # laid out, it would be a file check refuses
        span = n.Span(1, 1, 1, 2, 0, 1)
        raise FormatError(
            Diagnostic.at(
                span,
                path,
                "file-too-big",
                f"formatted, this file would have {len(formatted):,} characters; "
                f"a rules file has at most {MAX_FILE_CHARS:,}",
                hints=[FILE_HELP],
            )
        )
    return formatted


def _layout(program: n.Program) -> list[_Unit]:
    units: list[_Unit] = []
    for item in program.items:
        first = len(units)
        span = item.span
        match item:
            case n.Define():
                prefix = f"define {item.name.value} = "
                _condition_units(units, prefix, item.condition, 0, span.line)
                units[-1].end = max(units[-1].end, span.end_line)
            case n.Policy() | n.Rule():
                head = "policy {" if isinstance(item, n.Policy) else f"rule {item.name.value} {{"
                units.append(_Unit(head, 0, span.line, span.line))
                for clause in item.clauses:
                    _clause_units(units, clause, isinstance(item, n.Policy))
                units.append(_Unit("}", 0, span.end_line, span.end_line, continues=True))
            case _:
                assert_never(item)
        units[first].item = True
    return units


def _clause_units(units: list[_Unit], clause: n.Clause, in_policy: bool) -> None:
    line, end = clause.span.line, clause.span.end_line
    match clause:
        case n.Say():
            for i, message in enumerate(clause.messages):
                units.append(
                    _Unit(
                        (CLAUSE_OF[n.Say].keyword + " " if i == 0 else " or ")
                        + quote(message.text),
                        1,
                        line if i == 0 else message.span.line,
                        message.span.end_line,
                        continues=i > 0,
                    )
                )
        case n.When() | n.Only() | n.Never():
            keyword = CLAUSE_OF[type(clause)].keyword + " "
            _condition_units(units, keyword, clause.condition, 1, line)
            units[-1].end = max(units[-1].end, end)
        case (
            n.On()
            | n.Priority()
            | n.Cooldown()
            | n.Cap()
            | n.During()
            | n.Quiet()
            | n.SessionTimeout()
        ):
            units.append(_Unit(_clause_text(clause, in_policy), 1, line, end))
        case _:
            assert_never(clause)


def _clause_text(clause: n.Clause, in_policy: bool) -> str:
    """A one-line clause after its keyword (`say` and the conditions lay out apart)."""
    match clause:
        case n.On(events=events):
            body = ", ".join(e.value for e in events)
        case n.Priority(value=value):
            body = format_number(value.value)
        case n.Cooldown(duration=duration) | n.SessionTimeout(duration=duration):
            body = format_duration(duration.seconds)
        case n.Cap():
            count = clause.count.value
            word = ""
            if in_policy or clause.sitewide:
                word = " invitation" if count == 1 else " invitations"
            if clause.duration is not None:
                window = format_duration(clause.duration.seconds)
            else:
                window = clause.window
            sitewide = " sitewide" if clause.sitewide else ""
            body = f"{format_number(count)}{word} per {window}{sitewide}"
        case n.During(schedule=schedule):
            body = format_schedule(schedule)
        case n.Quiet():
            body = f"{format_duration(clause.duration.seconds)} after {clause.after}"
        case n.When() | n.Only() | n.Never() | n.Say():
            raise TypeError(f"{type(clause).__name__} lays out on its own")
        case _:
            assert_never(clause)
    return f"{CLAUSE_OF[type(clause)].keyword} {body}"


def _condition_units(
    units: list[_Unit], prefix: str, condition: n.Condition, depth: int, line: int
) -> None:
    """`prefix condition` on one line, or broken at the top-level operator if too long."""
    single = prefix + format_condition(condition)
    if len(INDENT * depth + single) <= LINE_LENGTH or not isinstance(condition, n.And | n.Or):
        units.append(_Unit(single, depth, line, condition.span.end_line))
        return
    word = "or" if isinstance(condition, n.Or) else "and"
    own = _PRECEDENCE[type(condition)]
    pad = " " * (len(prefix) - len(word) - 1)
    for i, operand in enumerate(condition.operands):
        units.append(
            _Unit(
                (prefix if i == 0 else f"{pad}{word} ") + format_condition(operand, own),
                depth,
                line if i == 0 else operand.span.line,
                operand.span.end_line,
                continues=i > 0,
            )
        )


def _attach(units: list[_Unit], comments: list[_Comment], end_of_file: int) -> None:
    """Give each comment to the line it sat on, or to the line it stood above."""
    tail: list[_Comment] = []
    for comment in comments:
        if not comment.own_line:
            owner = next((u for u in reversed(units) if u.start <= comment.line), None)
            if owner is not None:
                owner.trailing.append(comment)
                continue
        inside = next((u for u in units if u.start < comment.line <= u.end), None)
        target = inside or next((u for u in units if u.start > comment.line), None)
        (target.leading if target is not None else tail).append(comment)
    if tail:
        units.append(_Unit("", 0, end_of_file, end_of_file, item=True, leading=tail))


def _blank_before(line: int, source_lines: list[str]) -> bool:
    return 2 <= line <= len(source_lines) + 1 and not source_lines[line - 2].strip()


def _render(units: list[_Unit], source_lines: list[str]) -> str:
    out: list[str] = []
    previous: _Unit | None = None
    for unit in units:
        first_line = min([unit.start, *(c.line for c in unit.leading)])
        # A blank line counts only before a unit that starts a new source line:
        # a rule written on one line has no blank lines inside.
        blank_in_source = _blank_before(first_line, source_lines) and (
            previous is None or first_line > previous.end
        )
        if previous is not None:
            grouped_defines = previous.text.startswith("define ") and unit.text.startswith(
                "define "
            )
            if (unit.item and not grouped_defines and unit.text) or (
                blank_in_source and not unit.continues and not previous.text.endswith("{")
            ):
                out.append("")
        comment_indent = INDENT * max(unit.depth, 1 if unit.text == "}" else 0)
        trailing = list(unit.trailing)
        for i, comment in enumerate(unit.leading):
            if i and _blank_before(comment.line, source_lines):
                out.append("")
            out.append(comment_indent + comment.text)
        for comment in trailing[:-1]:
            out.append(comment_indent + comment.text)
        if unit.leading and unit.text and _blank_before(unit.start, source_lines):
            out.append("")
        if unit.text:
            line = INDENT * unit.depth + unit.text
            if trailing:
                line += "  " + trailing[-1].text
            out.append(line)
        previous = unit
    while out and not out[-1]:
        out.pop()
    return "\n".join(out) + "\n" if out else ""
