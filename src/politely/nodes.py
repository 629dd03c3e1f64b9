"""The syntax tree of a rules file: frozen dataclasses, each with its source span.

The parser builds these from Lark's tree; nothing downstream ever sees a
`lark.Tree` or `lark.Token`. Spans are excluded from equality, so two programs
that say the same thing compare equal however they were laid out, which is
what the formatter's round-trip law needs:

    >>> from politely.parser import parse
    >>> written = parse("define a = page.dwell >= 90s").program
    >>> written == parse("define  a=page.dwell>=1m30s").program
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as _field
from typing import Literal as TypingLiteral
from typing import NamedTuple

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Span(NamedTuple):
    """Where a node sits in its file: 1-based lines and columns, end exclusive.

    A named tuple rather than a frozen dataclass: the parser makes one for every
    node and token it keeps, and a tuple is made several times faster.
    """

    line: int
    column: int
    end_line: int
    end_column: int
    start_pos: int = 0
    end_pos: int = 0


NO_SPAN = Span(1, 1, 1, 1)


def keyword_span(span: Span, keyword: str) -> Span:
    """The span of a clause's leading keyword, for a short caret run."""
    length = len(keyword)
    return Span(
        span.line,
        span.column,
        span.line,
        span.column + length,
        span.start_pos,
        span.start_pos + length,
    )


# --- values ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Number:
    value: int | float
    span: Span = _field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Percent:
    """`50%`: the number 50, written so a reader sees a share."""

    value: int | float
    span: Span = _field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Duration:
    """A whole number of seconds, written `1h30m`."""

    seconds: int
    span: Span = _field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Text:
    """A string literal in a condition (already unescaped)."""

    value: str
    span: Span = _field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Boolean:
    value: bool
    span: Span = _field(default=NO_SPAN, compare=False, repr=False)


Value = Number | Percent | Duration | Text | Boolean


# --- conditions --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Field:
    """A dotted field path such as `page.dwell` or `visitor.cart_value`."""

    path: tuple[str, ...]
    span: Span = _field(default=NO_SPAN, compare=False, repr=False)

    @property
    def name(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True, slots=True)
class Compare:
    field: Field
    op: TypingLiteral["==", "!=", "<", "<=", ">", ">="]
    value: Value
    span: Span = _field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class InList:
    field: Field
    values: tuple[Value, ...]
    negated: bool = False
    span: Span = _field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Matches:
    """`field matches "glob"`: the glob must match the whole string."""

    field: Field
    pattern: Text
    span: Span = _field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Contains:
    field: Field
    text: Text
    span: Span = _field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Bare:
    """A field standing alone, true only when its value is boolean true."""

    field: Field
    span: Span = _field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Ref:
    """The name of a `define`."""

    name: str
    span: Span = _field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Not:
    operand: Condition
    span: Span = _field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class And:
    """Two or more operands; nested `and`s are flattened by the parser."""

    operands: tuple[Condition, ...]
    span: Span = _field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Or:
    """Two or more operands; nested `or`s are flattened by the parser."""

    operands: tuple[Condition, ...]
    span: Span = _field(default=NO_SPAN, compare=False, repr=False)


Test = Compare | InList | Matches | Contains | Bare
Condition = Test | Ref | Not | And | Or


# --- messages ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Slot:
    """`{field}` or `{field or fallback}` inside a message."""

    field: Field
    fallback: str | None = None
    span: Span = _field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Message:
    """One `say` variant: its template text (string escapes decoded, literal braces
    still doubled, so `{{x}}` and `{x}` differ) and its parts (str or Slot)."""

    text: str
    parts: tuple[str | Slot, ...] = _field(compare=False, default=())
    span: Span = _field(default=NO_SPAN, compare=False, repr=False)


# --- schedules ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScheduleWindow:
    """Days (0 = Monday) and a local time range in minutes; end is exclusive.

    An end before the start crosses midnight: `22:00-02:00` on `fri` covers
    Friday 22:00 to Saturday 02:00.
    """

    days: frozenset[int]
    start: int
    end: int
    span: Span = _field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Schedule:
    windows: tuple[ScheduleWindow, ...]
    zone: Text | None = None
    span: Span = _field(default=NO_SPAN, compare=False, repr=False)


# --- clauses -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Name:
    """An identifier with its own span (rule names, event names)."""

    value: str
    span: Span = _field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class On:
    events: tuple[Name, ...]
    span: Span = _field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class When:
    condition: Condition
    span: Span = _field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Say:
    messages: tuple[Message, ...]
    span: Span = _field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Priority:
    value: Number
    span: Span = _field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Cooldown:
    duration: Duration
    span: Span = _field(default=NO_SPAN, compare=False, repr=False)


WindowKind = TypingLiteral["session", "visitor", "duration"]


@dataclass(frozen=True, slots=True)
class Cap:
    """`at most N [invitations] per WINDOW [sitewide]`."""

    count: Number
    window: WindowKind
    duration: Duration | None = None
    sitewide: bool = False
    says_invitations: bool = _field(default=False, compare=False)  # wording only
    span: Span = _field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class During:
    schedule: Schedule
    span: Span = _field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Quiet:
    duration: Duration
    after: TypingLiteral["dismiss", "chat"]
    span: Span = _field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Only:
    condition: Condition
    span: Span = _field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Never:
    condition: Condition
    span: Span = _field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class SessionTimeout:
    duration: Duration
    span: Span = _field(default=NO_SPAN, compare=False, repr=False)


Clause = (
    On | When | Say | Priority | Cooldown | Cap | During | Quiet | Only | Never | SessionTimeout
)
# Where each clause may stand, and how often: politely.clauses.


# --- items -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Define:
    name: Name
    condition: Condition
    span: Span = _field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Policy:
    clauses: tuple[Clause, ...]
    span: Span = _field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Rule:
    name: Name
    clauses: tuple[Clause, ...]
    span: Span = _field(default=NO_SPAN, compare=False, repr=False)


Item = Define | Policy | Rule


@dataclass(frozen=True, slots=True)
class Program:
    """One parsed file."""

    items: tuple[Item, ...]
    span: Span = _field(default=NO_SPAN, compare=False, repr=False)
