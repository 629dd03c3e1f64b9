"""A faster run of Lark's own LALR parser, for files without a syntax error.

Lark's interactive parser (what `politely.parser` feeds token by token, so it
can resume after a syntax error) spends most of a parse in per-token Python
overhead, not in its regular expressions or its table. `FastParse` runs the
very same machine in one tight loop:

- **Lexing** is Lark's contextual lexer, done in bulk. One `finditer` of the
  basic lexer's alternation (every terminal, in Lark's order) walks the whole
  file in C, passing over white space and comments before each match where
  that is provably what the alternation would make of them
  (`politely.regex_starts` reads which characters each terminal can start
  with). A match stands as it is where the current parser state's own lexer
  would make the same match: where its kind is one of the state's alternatives
  and every alternative the state's lexer tries before it was tried, and
  failed, before it in the bulk scan (`StateLexer.agrees`); a keyword the bulk
  scan reads as a NAME (`when`) stands as the keyword where no alternative the
  state's lexer tries first can match there (`StateLexer.words`). Elsewhere
  the position is lexed again with the state's own patterns, as Lark does.
  Then the state's keyword-or-name rule, as Lark's.
- **Parsing** is Lark's parse table, with plain keys.
- **Building** calls the builder's methods with exactly the children Lark's
  tree builder gives them (`Reduce`, read from Lark's own recipe: which
  children a rule keeps, where `[x]` puts a None, which single-child rules
  pass their child up), without Lark's chain of wrappers around each call.

So when it succeeds, the builder has received exactly the calls it receives
from Lark's parser on that text (tests/test_fast_parse.py proves it, call by
call and token by token).

It does not report errors: at the first token Lark would refuse (no pattern
matches, no action in the table, a keyword glued to a word) it gives up, and
the caller parses the file again the careful way, which does report them.

It runs without Lark: its tables (`FastTables`) are plain data, read from Lark's
parser once (`politely.lalr_tables`) and then from the user's cache folder
(`politely.fast_tables`), and its tokens are its own (`Token`, what Lark's
hold). Importing Lark and loading its parser take longer than checking a
small site, and a file without a syntax error needs neither.
"""

from __future__ import annotations

import re
import sys
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping
from functools import cache, partial
from operator import itemgetter
from typing import Any

import msgspec


class FastPathError(Exception):
    """The text has a syntax error somewhere: parse it the careful way."""


class Token(str):
    """A token as Lark's `Token` hands it to the builder: its text (the str and
    `value`), its kind (`type`) and where it stands, with Lark's meanings (lines
    and columns from 1, end column and end position past the last character)."""

    __slots__ = (
        "column",
        "end_column",
        "end_line",
        "end_pos",
        "line",
        "start_pos",
        "type",
        "value",
    )
    type: str
    value: str
    start_pos: int
    line: int
    column: int
    end_line: int
    end_column: int
    end_pos: int

    def __repr__(self) -> str:
        return f"Token({self.type!r}, {self.value!r})"


_NEWLINE = re.compile("\n")
# The bulk scan's match at the end of the text (where the white space it passes
# over before a match runs to the end): skipped, as white space is.
SCAN_END = "fast_end_of_text"
_NO_WORDS: Mapping[str, str] = {}


class StateLexer(msgspec.Struct, frozen=True):
    """What Lark's lexer of one parser state knows, flattened for the loop."""

    patterns: tuple[tuple[str, int], ...]  # alternations (source, flags), tried in order
    keywords: Mapping[str, Mapping[str, str]]  # terminal → its text → keyword terminal
    # The kinds of the bulk scan's matches this lexer makes too, unless the match
    # starts with one of the characters given.
    agrees: Mapping[str, frozenset[str]]
    # By the kind of a bulk match: texts this lexer makes a keyword of, as it
    # stands (`when`, a NAME to the bulk scan), and the keyword's kind.
    words: Mapping[str, Mapping[str, str]]


class Reduce(msgspec.Struct, frozen=True):
    """How Lark's tree builder hands one rule's children to the builder.

    `include` is Lark's child filter, `(index, splice, Nones before it)`, with
    `append_none` Nones after (None when the rule keeps its children as they
    are); `expand1` passes a single kept child up (`?rule`). A rule the builder
    has no method for and whose name starts with `_` (Lark's helpers for
    repetitions) is a list of its kept children, which its parent splices in:
    what Lark's parent does with the helper's Tree.
    """

    name: str  # the builder's method: alias, or rule name
    include: tuple[tuple[int, bool, int], ...] | None
    append_none: int
    expand1: bool

    def passes_up(self, size: int) -> bool:
        """Whether the reduce hands its one child up unchanged (`?rule: x`)."""
        return self.expand1 and self.include is None and size == 1

    def _keeps_one(self) -> bool:
        """Whether the filter keeps exactly one child, and no None."""
        include = self.include
        return (
            include is not None
            and len(include) == 1
            and include[0][1:] == (False, 0)
            and not self.append_none
        )

    def function(self, builder: Any) -> Callable[[list[Any]], Any]:
        """The reduce's callback: the kept children → the builder's value."""
        visitors = sys.modules.get("lark.visitors")  # (a builder of Lark's classes loaded it)
        if visitors is not None and isinstance(builder, visitors.Transformer_InPlace):
            raise FastPathError  # Lark hands such a builder trees, not children
        method = getattr(builder, self.name, None)
        if method is None:
            if self.name.startswith("_"):
                method = _as_list
            else:  # the builder says what it thinks of a rule it does not know
                method = partial(_default, builder.__default__, self.name)
        elif getattr(method, "visit_wrapper", None) is not None:
            raise FastPathError  # v_args: Lark wraps the call
        if self.expand1 and self.include is not None and self._keeps_one():
            return itemgetter(self.include[0][0])  # one child kept, always: passed up
        if self.include is None and not self.expand1:
            return method  # (`_as_list` of the children: the list as it is)
        return _filtering(self.include, self.append_none, self.expand1)(method)


def _as_list(children: list[Any]) -> list[Any]:
    return children


def _default(default: Callable[..., Any], name: str, children: list[Any]) -> Any:
    return default(name, children, None)


@cache
def _filtering(
    include: tuple[tuple[int, bool, int], ...] | None, append_none: int, expand1: bool
) -> Callable[[Callable[[list[Any]], Any]], Callable[[list[Any]], Any]]:
    """Lark's child filter (and `?rule`'s pass-up) for one shape of recipe, as one
    generated function: given the builder's method, the reduce's callback.

    Lark's filter walks its recipe at every reduce; written out, a reduce costs one
    call. The kept list is built as Lark builds it: where the first child kept is a
    repetition's list (`__x: __x "," NAME`, growing on the left), that very list is
    extended, so a long repetition is not copied at each step.
    """
    lines = ["def make(method):", "    def reduce(children):"]
    if include is None:
        kept = "children"
    else:
        # The first kept is a list (a rule may keep no child: only Nones, or nothing).
        in_place = bool(include) and include[0][1] and not include[0][2]
        items: list[str] = []
        for index, splice, nones in include[1:] if in_place else include:
            items.extend(["None"] * nones)
            items.append(f"*children[{index}]" if splice else f"children[{index}]")
        items.extend(["None"] * append_none)
        if not in_place:
            lines.append(f"        kept = [{', '.join(items)}]")
        else:
            lines.append(f"        kept = children[{include[0][0]}]")
            if items:
                lines.append(f"        kept += [{', '.join(items)}]")
        kept = "kept"
    if expand1:
        lines.append(f"        return {kept}[0] if len({kept}) == 1 else method({kept})")
    else:
        lines.append(f"        return method({kept})")
    lines.append("    return reduce")
    namespace: dict[str, Any] = {}
    exec("\n".join(lines), namespace)  # the recipe's integers only: no text of a user
    make: Callable[[Callable[[list[Any]], Any]], Callable[[list[Any]], Any]] = namespace["make"]
    return make


class FastTables(msgspec.Struct, frozen=True):
    """One grammar's lexers by parser state and its parse table, as plain data
    (what `politely.fast_tables` saves and reads back).

    The table is Lark's, with plain keys and values: `actions[state]`:
    terminal → the next state (a shift) or `~n` (a reduce by rule number n);
    `gotos[state]`: rule name → next state. Lark's own keys (rule objects,
    tokens) hash and compare in Python, which costs more than the rest of a
    step. States are list indices. Patterns are (source, flags), compiled by
    `FastParse`.
    """

    # The basic lexer's alternation, any character and the end of the text last,
    # each match after any skipped text it passes over (a match's own text is its
    # kind's group).
    scan: tuple[str, int]
    ignore: frozenset[str]
    # Ignored kinds every state's lexer makes from the bulk scan's match, and
    # whose lines Lark counts, and SCAN_END: the loop skips them without a look.
    skipped: frozenset[str]
    newlines: frozenset[str]  # the kinds whose new lines Lark counts
    lexers: tuple[StateLexer, ...]  # each one once (states share them)
    lexer_of: tuple[int, ...]  # by state: its lexer's index in `lexers`
    actions: tuple[Mapping[str, int], ...]
    gotos: tuple[Mapping[str, int], ...]
    rules: tuple[tuple[int, str, Reduce], ...]  # by number: size, name, reduce
    start_state: int
    end_state: int


class FastParse:
    """`FastTables` ready to run; shared read-only (threads may parse at once).

    The bulk scan is compiled at once; a state's own patterns the first time a
    parse needs them: compiling them all costs more than parsing a small site,
    and most files need fewer than half.
    """

    __slots__ = ("_lexers", "_patterns", "_scan", "tables")

    def __init__(self, tables: FastTables) -> None:
        self.tables = tables
        self._scan = re.compile(*tables.scan)
        self._lexers = tuple(tables.lexers[index] for index in tables.lexer_of)
        # By state: its lexer's compiled patterns, once a parse has needed them.
        self._patterns: list[tuple[re.Pattern[str], ...] | None] = [None] * len(self._lexers)

    def _compiled(self, state: int) -> tuple[re.Pattern[str], ...]:
        """The patterns of `state`'s lexer, compiled (two threads may both compile
        them: the same patterns either way)."""
        patterns = tuple(_compile(*source) for source in self._lexers[state].patterns)
        self._patterns[state] = patterns
        return patterns

    def _lexed_again(self, state: int, text: str, at: int) -> re.Match[str]:
        """The match `state`'s own lexer makes at `at`, as Lark's; FastPathError if none."""
        for pattern in self._patterns[state] or self._compiled(state):
            again = pattern.match(text, at)
            if again is not None:
                return again
        raise FastPathError

    def parse(self, text: str, builder: Any, glued: Callable[[Token, Token], bool]) -> None:
        """Run the parser over `text`, calling `builder`'s methods on each reduce as
        Lark's tree builder does. `glued(previous, token)` is the post-lexer's test.
        Raises FastPathError."""
        tables, lexers = self.tables, self._lexers
        actions, gotos = tables.actions, tables.gotos
        ignore, skipped, newlines = tables.ignore, tables.skipped, tables.newlines
        end_state = tables.end_state
        # Per rule number: its size, its name, and its callback; None for a rule
        # that hands its one child up unchanged (only the state moves).
        reduces = [
            (size, name, None if how.passes_up(size) else how.function(builder))
            for size, name, how in tables.rules
        ]
        new_token = str.__new__
        # Lines and columns from where each line starts, as Lark's line counter
        # gives them as long as every new line is in a token of a kind it counts
        # them in (`newlines`); the rest, checked, are left to the careful way.
        starts = [0, *(m.end() for m in _NEWLINE.finditer(text)), len(text) + 1]
        line, line_start, next_start = 1, 0, starts[1]  # (the last start: past the end)
        state = tables.start_state
        state_stack: list[int] = [state]
        value_stack: list[Any] = []
        previous: Token | None = None
        previous_end = -1
        matches: Iterator[re.Match[str]] | None = self._scan.finditer(text)
        while matches is not None:
            resync = False
            for match in matches:
                kind = match.lastgroup
                if kind in skipped:
                    continue
                start_pos, end_pos = match.span(kind)  # type: ignore[arg-type]
                value = match.group(kind)  # type: ignore[arg-type]  # (not what it passed over)
                lexer = lexers[state]
                unless = lexer.agrees.get(kind)  # type: ignore[arg-type]
                if unless is None or text[start_pos] in unless:  # not as the bulk scan made it
                    word = lexer.words.get(kind, _NO_WORDS).get(value)  # type: ignore[arg-type]
                    if word is not None:
                        kind = word  # a keyword of the state's, as it stands
                    else:
                        again = self._lexed_again(state, text, start_pos)
                        kind, value = again.lastgroup, again.group()
                        if again.end() != end_pos:
                            end_pos = again.end()
                            resync = True  # the bulk scan goes on from this token's end
                while start_pos >= next_start:  # the token is on a later line
                    line += 1
                    line_start, next_start = next_start, starts[line]
                column = start_pos - line_start + 1
                if "\n" not in value:
                    end_line, end_column = line, column + len(value)
                elif kind in newlines:
                    end_line = bisect_right(starts, end_pos)
                    end_column = end_pos - starts[end_line - 1] + 1
                else:
                    raise FastPathError  # a new line Lark would not count
                if kind in ignore:
                    if resync:
                        break
                    continue
                keywords = lexer.keywords.get(kind)  # type: ignore[arg-type]
                if keywords is not None:
                    kind = keywords.get(value, kind)
                # A token as Lark's, made without a constructor: a third of the cost.
                token = new_token(Token, value)
                token.type = kind  # type: ignore[assignment]
                token.value = value
                token.start_pos = start_pos
                token.line = line
                token.column = column
                token.end_line = end_line
                token.end_column = end_column
                token.end_pos = end_pos
                if previous_end == start_pos and glued(previous, token):  # type: ignore[arg-type]
                    raise FastPathError  # (`glued` needs the two to touch: most are apart)
                action = actions[state].get(kind)  # type: ignore[arg-type]
                while action is not None and action < 0:  # reduce by rule ~action
                    size, name, function = reduces[~action]
                    if function is None:  # one child, passed up: only the state moves
                        state = state_stack[-1] = gotos[state_stack[-2]][name]
                    elif size == 1:  # one child, replaced in place
                        value_stack[-1] = function([value_stack[-1]])
                        state = state_stack[-1] = gotos[state_stack[-2]][name]
                    else:
                        if size:
                            children = value_stack[-size:]
                            del state_stack[-size:]
                            del value_stack[-size:]
                        else:
                            children = []
                        value_stack.append(function(children))
                        state = gotos[state_stack[-1]][name]
                        state_stack.append(state)
                    action = actions[state].get(kind)  # type: ignore[arg-type]
                if action is None:
                    raise FastPathError
                state = action  # a shift
                state_stack.append(state)
                value_stack.append(token)
                previous, previous_end = token, end_pos
                if resync:
                    break
            matches = self._scan.finditer(text, end_pos) if resync else None
        while state != end_state:  # the end of the file: reduce what is left
            action = actions[state].get("$END")
            if action is None or action >= 0:
                raise FastPathError
            size, name, function = reduces[~action]
            if function is None:
                state = state_stack[-1] = gotos[state_stack[-2]][name]
                continue
            if size:
                children = value_stack[-size:]
                del state_stack[-size:]
                del value_stack[-size:]
            else:
                children = []
            value_stack.append(function(children))
            state = gotos[state_stack[-1]][name]
            state_stack.append(state)


@cache
def _compile(source: str, flags: int) -> re.Pattern[str]:
    """A state lexer's pattern, compiled once for every state that shares it."""
    return re.compile(source, flags)
