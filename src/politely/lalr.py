"""A faster run of Lark's own LALR parser, for files without a syntax error.

Lark's interactive parser (what `politely.parser` feeds token by token, so it
can resume after a syntax error) spends most of a parse in per-token Python
overhead, not in its regular expressions or its table. `FastParse` runs the
very same machine in one tight loop: Lark's contextual lexer's own compiled
patterns per parser state (the same alternatives in the same order, the same
keyword-or-name rule), Lark's parse table, and the reduce callbacks the caller
gives (the same builder). So when it succeeds, it has made exactly the calls
Lark's parser makes on that text.

It does not report errors: at the first token Lark would refuse (no pattern
matches, no action in the table, a keyword glued to a word) it gives up, and
the caller parses the file again the careful way, which does report them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgspec
from lark import Lark, Token
from lark.lexer import BasicLexer, ContextualLexer, PatternStr, UnlessCallback
from lark.parsers.lalr_analysis import Shift


class FastPathError(Exception):
    """The text has a syntax error somewhere: parse it the careful way."""


class _UnknownParserError(ValueError):
    """Lark's parser is not built as this module expects."""


def _require(condition: bool) -> None:
    if not condition:
        raise _UnknownParserError


class _StateLexer(msgspec.Struct, frozen=True):
    """What Lark's lexer of one parser state knows, flattened for the loop."""

    patterns: tuple[Any, ...]  # compiled alternations, tried in order
    ignore: frozenset[str]
    newlines: frozenset[str]
    keywords: Mapping[str, Mapping[str, str]]  # terminal → its text → keyword terminal


_SHIFT = -1  # an action's first item: a shift, or the size of the rule it reduces


class FastParse(msgspec.Struct, frozen=True):
    """One grammar's lexers by parser state and its parse table; shared read-only.

    The table is Lark's, with plain keys: state → terminal or rule name →
    (_SHIFT, next state, None) or (rule size, rule number, rule name). Lark's
    own keys (rule objects, tokens) hash and compare in Python, which costs
    more than the rest of a step.
    """

    lexers: Mapping[int, _StateLexer]
    actions: Mapping[int, Mapping[str, tuple[int, int, str | None]]]
    rules: tuple[Any, ...]  # Lark's rules by number: the keys of its callbacks
    start_state: int
    end_state: int

    @classmethod
    def of(cls, lark: Lark) -> FastParse | None:
        """The fast path of a Lark LALR parser with the contextual lexer; None when
        its parts are not what this module knows how to run (another Lark version)."""
        try:
            contextual = lark.parser.lexer.lexer  # behind the post-lexer
            table = lark.parser.parser._parse_table
            _require(isinstance(contextual, ContextualLexer))
            flat: dict[int, _StateLexer] = {}
            by_lexer: dict[int, _StateLexer] = {}
            for state, lexer in contextual.lexers.items():
                _require(isinstance(lexer, BasicLexer))
                if id(lexer) not in by_lexer:
                    by_lexer[id(lexer)] = _flatten(lexer)
                flat[state] = by_lexer[id(lexer)]
            rules: dict[Any, int] = {}
            actions: dict[int, dict[str, tuple[int, int, str | None]]] = {}
            for state, row in table.states.items():
                actions[state] = {}
                for symbol, (action, arg) in row.items():
                    if action is Shift:
                        actions[state][str(symbol)] = (_SHIFT, arg, None)
                    else:
                        number = rules.setdefault(arg, len(rules))
                        actions[state][str(symbol)] = (
                            len(arg.expansion),
                            number,
                            str(arg.origin.name),
                        )
            (start,) = table.start_states.values()
            (end,) = table.end_states.values()
            return cls(flat, actions, tuple(rules), start, end)
        except (AttributeError, ValueError):  # _UnknownParserError, or too many start states
            return None

    def parse(
        self,
        text: str,
        callbacks: Mapping[Any, Callable[[Any], Any]],
        glued: Callable[[Token, Token], bool],
    ) -> None:
        """Run the parser over `text`, calling `callbacks` on each reduce as Lark
        does. `glued(previous, token)` is the post-lexer's test. Raises FastPathError."""
        actions, lexers = self.actions, self.lexers
        reduce_with = [callbacks[rule] for rule in self.rules]
        if any(isinstance(key, str) for key in callbacks):
            raise FastPathError  # callbacks on tokens: not what Lark's tree builder makes
        end_state = self.end_state
        state_stack: list[int] = [self.start_state]
        value_stack: list[Any] = []
        pos, line, line_start, end = 0, 1, 0, len(text)
        previous: Token | None = None

        def feed(token: Token, is_end: bool) -> None:
            kind = token.type
            while True:
                found = actions[state_stack[-1]].get(kind)
                if found is None:
                    raise FastPathError
                size, arg, origin = found
                if size == _SHIFT:
                    state_stack.append(arg)
                    value_stack.append(token)
                    return
                if size:
                    children = value_stack[-size:]
                    del state_stack[-size:]
                    del value_stack[-size:]
                else:
                    children = []
                value = reduce_with[arg](children)
                new_state = actions[state_stack[-1]][origin][1]  # type: ignore[index]
                state_stack.append(new_state)
                value_stack.append(value)
                if is_end and new_state == end_state:
                    return

        while pos < end:
            lexer = lexers[state_stack[-1]]
            match = None
            for pattern in lexer.patterns:
                match = pattern.match(text, pos, end)
                if match is not None:
                    break
            if match is None:
                raise FastPathError
            value, kind = match.group(0), match.lastgroup
            assert kind is not None
            start_pos, start_line, column = pos, line, pos - line_start + 1
            if kind in lexer.newlines:
                newlines = value.count("\n")
                if newlines:
                    line += newlines
                    line_start = pos + value.rindex("\n") + 1
            pos += len(value)
            if kind in lexer.ignore:
                continue
            keywords = lexer.keywords.get(kind)
            if keywords is not None:
                kind = keywords.get(value, kind)
            token = Token(
                kind, value, start_pos, start_line, column, line, pos - line_start + 1, pos
            )
            if previous is not None and previous.end_pos == start_pos and glued(previous, token):
                raise FastPathError  # (`glued` needs the two to touch: most are apart)
            feed(token, False)
            previous = token
        last = previous
        eof = Token.new_borrow_pos("$END", "", last) if last else Token("$END", "", 0, 1, 1)
        feed(eof, True)


def _flatten(lexer: BasicLexer) -> _StateLexer:
    scanner = lexer.scanner  # builds the lexer's patterns and its keyword callbacks
    keywords: dict[str, dict[str, str]] = {}
    for kind, callback in lexer.callback.items():
        if not isinstance(callback, UnlessCallback):  # Lark's keyword-or-name rule, only
            raise _UnknownParserError
        words: dict[str, str] = {}
        for terminal in callback.scanner.terminals:
            _require(isinstance(terminal.pattern, PatternStr))
            _require(not terminal.pattern.flags)
            words.setdefault(terminal.pattern.value, terminal.name)
        keywords[kind] = words
    ignore, newlines = frozenset(lexer.ignore_types), frozenset(lexer.newline_types)
    return _StateLexer(tuple(scanner._mres), ignore, newlines, keywords)
