"""The syntax tree of a rules file: frozen `msgspec.Struct`s, each with its source span.

The parser builds these from Lark's tree; nothing downstream ever sees a
`lark.Tree` or `lark.Token`. Spans are excluded from equality, so two programs
that say the same thing compare equal however they were laid out, which is
what the formatter's round-trip law needs:

    >>> from politely.parser import parse
    >>> written = parse("define a = page.dwell >= 90s").program
    >>> written == parse("define  a=page.dwell>=1m30s").program
    True

Structs rather than frozen dataclasses: msgspec makes a class in C, where
`dataclass` writes and compiles methods for each class (the largest single
cost of importing politely, paid by every `politely check`), and a Struct is
made faster, once per node the parser keeps. They are never tracked by the
garbage collector (`gc=False`): frozen and holding only immutable values, a
node can be part of no reference cycle, and a 10,000-rule site's million
nodes would otherwise be walked by every collection while they live (2.5 s
of collections in one load of that site). `Node` gives them what
dataclasses' `compare=False` gave: equality, hash and repr that leave the span
(and wording) out. Each is tagged with its class's name and encoded as an
array (`tag`, `array_like`), so a parse result encodes to MessagePack and
decodes back into the same classes (`politely.saved_parses`).
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any, ClassVar
from typing import Literal as TypingLiteral

import msgspec

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Span(msgspec.Struct, frozen=True, gc=False, array_like=True, order=True):
    """Where a node sits in its file: 1-based lines and columns, end exclusive.

    Never tracked by the garbage collector (`gc=False`), like the nodes: the
    parser makes one for every node and token it keeps, and a collection would
    otherwise walk each of a large site's spans, as it walks tuples, at least once.
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


class Node(msgspec.Struct, frozen=True, gc=False, tag=True, array_like=True):
    """A node: compared, hashed and shown by what it means, not by where it is
    written (its `span`) or how it is worded (the fields its class names in
    `wording`)."""

    wording: ClassVar[tuple[str, ...]] = ()

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        meaning = _MEANING[type(self)]
        return bool(meaning(self) == meaning(other))

    def __hash__(self) -> int:
        return hash(_MEANING[type(self)](self))

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={getattr(self, name)!r}" for name in self.__struct_fields__ if name != "span"
        )
        return f"{type(self).__qualname__}({shown})"


# The fields each kind of node is compared by (filled in at the end of the module).
_MEANING: dict[type[Node], Callable[[Node], Any]] = {}


# --- values ------------------------------------------------------------------


class Number(Node, frozen=True):
    value: int | float
    span: Span = NO_SPAN


class Percent(Node, frozen=True):
    """`50%`: the number 50, written so a reader sees a share."""

    value: int | float
    span: Span = NO_SPAN


class Duration(Node, frozen=True):
    """A whole number of seconds, written `1h30m`."""

    seconds: int
    span: Span = NO_SPAN


class Text(Node, frozen=True):
    """A string literal in a condition (already unescaped)."""

    value: str
    span: Span = NO_SPAN


class Boolean(Node, frozen=True):
    value: bool
    span: Span = NO_SPAN


Value = Number | Percent | Duration | Text | Boolean


# --- conditions --------------------------------------------------------------


class Field(Node, frozen=True):
    """A dotted field path such as `page.dwell` or `visitor.cart_value`."""

    path: tuple[str, ...]
    span: Span = NO_SPAN

    @property
    def name(self) -> str:
        return ".".join(self.path)


class Compare(Node, frozen=True):
    field: Field
    op: TypingLiteral["==", "!=", "<", "<=", ">", ">="]
    value: Value
    span: Span = NO_SPAN


class InList(Node, frozen=True):
    field: Field
    values: tuple[Value, ...]
    negated: bool = False
    span: Span = NO_SPAN


class Matches(Node, frozen=True):
    """`field matches "glob"`: the glob must match the whole string."""

    field: Field
    pattern: Text
    span: Span = NO_SPAN


class Contains(Node, frozen=True):
    field: Field
    text: Text
    span: Span = NO_SPAN


class Bare(Node, frozen=True):
    """A field standing alone, true only when its value is boolean true."""

    field: Field
    span: Span = NO_SPAN


class Ref(Node, frozen=True):
    """The name of a `define`."""

    name: str
    span: Span = NO_SPAN


class Not(Node, frozen=True):
    operand: Condition
    span: Span = NO_SPAN


class And(Node, frozen=True):
    """Two or more operands; nested `and`s are flattened by the parser."""

    operands: tuple[Condition, ...]
    span: Span = NO_SPAN


class Or(Node, frozen=True):
    """Two or more operands; nested `or`s are flattened by the parser."""

    operands: tuple[Condition, ...]
    span: Span = NO_SPAN


Test = Compare | InList | Matches | Contains | Bare
Condition = Test | Ref | Not | And | Or


# --- messages ----------------------------------------------------------------


class Slot(Node, frozen=True):
    """`{field}` or `{field or fallback}` inside a message."""

    field: Field
    fallback: str | None = None
    span: Span = NO_SPAN


class Message(Node, frozen=True):
    """One `say` variant: its template text (string escapes decoded, literal braces
    still doubled, so `{{x}}` and `{x}` differ) and its parts (str or Slot)."""

    text: str
    parts: tuple[str | Slot, ...] = ()
    wording: ClassVar[tuple[str, ...]] = ("parts",)
    span: Span = NO_SPAN


# --- schedules ---------------------------------------------------------------


class ScheduleWindow(Node, frozen=True):
    """Days (0 = Monday) and a local time range in minutes; end is exclusive.

    An end before the start crosses midnight: `22:00-02:00` on `fri` covers
    Friday 22:00 to Saturday 02:00.
    """

    days: frozenset[int]
    start: int
    end: int
    span: Span = NO_SPAN


class Schedule(Node, frozen=True):
    windows: tuple[ScheduleWindow, ...]
    zone: Text | None = None
    span: Span = NO_SPAN


# --- clauses -----------------------------------------------------------------


class Name(Node, frozen=True):
    """An identifier with its own span (rule names, event names)."""

    value: str
    span: Span = NO_SPAN


class On(Node, frozen=True):
    events: tuple[Name, ...]
    span: Span = NO_SPAN


class When(Node, frozen=True):
    condition: Condition
    span: Span = NO_SPAN


class Say(Node, frozen=True):
    messages: tuple[Message, ...]
    span: Span = NO_SPAN


class Priority(Node, frozen=True):
    value: Number
    span: Span = NO_SPAN


class Cooldown(Node, frozen=True):
    duration: Duration
    span: Span = NO_SPAN


WindowKind = TypingLiteral["session", "visitor", "duration"]


class Cap(Node, frozen=True):
    """`at most N [invitations] per WINDOW [sitewide]`."""

    count: Number
    window: WindowKind
    duration: Duration | None = None
    sitewide: bool = False
    says_invitations: bool = False
    wording: ClassVar[tuple[str, ...]] = ("says_invitations",)
    span: Span = NO_SPAN


class During(Node, frozen=True):
    schedule: Schedule
    span: Span = NO_SPAN


class Quiet(Node, frozen=True):
    duration: Duration
    after: TypingLiteral["dismiss", "chat"]
    span: Span = NO_SPAN


class Only(Node, frozen=True):
    condition: Condition
    span: Span = NO_SPAN


class Never(Node, frozen=True):
    condition: Condition
    span: Span = NO_SPAN


class SessionTimeout(Node, frozen=True):
    duration: Duration
    span: Span = NO_SPAN


Clause = (
    On | When | Say | Priority | Cooldown | Cap | During | Quiet | Only | Never | SessionTimeout
)
# Where each clause may stand, and how often: politely.clauses.


# --- items -------------------------------------------------------------------


class Define(Node, frozen=True):
    name: Name
    condition: Condition
    span: Span = NO_SPAN


class Policy(Node, frozen=True):
    clauses: tuple[Clause, ...]
    span: Span = NO_SPAN


class Rule(Node, frozen=True):
    name: Name
    clauses: tuple[Clause, ...]
    span: Span = NO_SPAN

    @property
    def when(self) -> When:
        """The rule's `when` clause: a rule that passed the check has exactly one."""
        return next(c for c in self.clauses if isinstance(c, When))


Item = Define | Policy | Rule


class Program(Node, frozen=True):
    """One parsed file."""

    items: tuple[Item, ...]
    span: Span = NO_SPAN


def _compared_by(kind: type[Node]) -> Callable[[Node], Any]:
    names = [name for name in kind.__struct_fields__ if name != "span" and name not in kind.wording]
    if not names:
        return lambda _node: ()
    return attrgetter(*names) if len(names) > 1 else lambda node: (getattr(node, names[0]),)


_MEANING.update((kind, _compared_by(kind)) for kind in Node.__subclasses__())
