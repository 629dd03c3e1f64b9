"""Text → syntax tree (`politely.nodes`), with diagnostics instead of exceptions.

`parse` never raises on bad input. A syntax error becomes a diagnostic with
what was expected in plain words, and parsing resumes at the next line that
starts with `rule`, `define` or `policy`, so one run reports every syntax
error of a file and the checker still checks every item that did parse.
Malformed durations, times, day ranges, string escapes and message templates
become diagnostics too, and parsing goes on.

Every file is parsed first in one loop (`politely.lalr`), from tables read
from the user's cache folder (`politely.fast_tables`), which needs no Lark; at
its first syntax error it gives up, and the file is parsed again the careful
way, with Lark's interactive parser, which reports the error and resumes. So
Lark is imported (and its parser loaded, `politely.lark_cache`) only for a file
with a syntax error, or to read the tables the first time.

    >>> result = parse("rule hi { when page.dwell >= 30 say \\"Hi\\" }")
    >>> result.program is not None, result.diagnostics
    (True, ())
    >>> broken = parse("rule a { when }\\nrule b { when page.dwell >= 30s say \\"Hi\\" }")
    >>> broken.program, [d.line for d in broken.diagnostics], len(broken.parsed.items)
    (None, [1], 1)
"""

from __future__ import annotations

import bisect
import re
import threading
from collections import OrderedDict
from collections.abc import Collection, Iterator
from copy import copy
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from politely import fast_tables, gcpause, resources, saved_parses
from politely import nodes as n
from politely.diagnostics import Diagnostic, token_span, tokens_span
from politely.digest import sha256
from politely.durations import HOW_TO_WRITE, format_duration, parse_duration, spelled_duration
from politely.lalr import FastParse, FastPathError, Token
from politely.lark_cache import cached_lark
from politely.limits import (
    DEPTH_HELP,
    FILE_HELP,
    MAX_DEPTH,
    MAX_DIGITS,
    MAX_DURATION,
    MAX_FILE_CHARS,
    MAX_SYNTAX_ERRORS,
)

if TYPE_CHECKING:
    from lark import Lark
    from lark import Token as LarkToken
    from lark.exceptions import UnexpectedInput
    from lark.lexer import TerminalDef
    from lark.parse_tree_builder import ParseTreeBuilder
    from lark.parsers.lalr_interactive_parser import InteractiveParser

    _Token = Token
else:
    # What the builder tells tokens from its own values by: Lark's tokens and the
    # fast path's (`politely.lalr.Token`) are both str, and nothing it builds is.
    _Token = str

_ItemT = TypeVar("_ItemT", n.Define, n.Policy, n.Rule)
_LARGEST = 10**MAX_DIGITS - 1  # what a number past the bound reads as, after its error
# Digits past which a duration's number alone exceeds MAX_DURATION in any unit.
_DURATION_DIGITS = len(str(MAX_DURATION))
# A number glued to a word (`30min`, `2days`, `1.5h`): the hint can spell it out.
_GLUED_UNIT = re.compile(r"(\d+(?:\.\d+)?)([a-zA-Z]+)")
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n"}
_MESSAGE_MARK = re.compile(r"[\\{}]")  # what a message's scan stops at
_SLOT = re.compile(
    r"\s*(?P<field>[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*)"
    r"(?:\s+or(?:\s+(?P<fallback>[^}]*?))?)?\s*"
)
_GROUP_DAYS = {
    "weekdays": frozenset(range(5)),
    "weekends": frozenset({5, 6}),
    "daily": frozenset(range(7)),
}


_NOTHING = n.Program(())


class ParseResult(msgspec.Struct, frozen=True):
    """A file's syntax tree and its diagnostics.

    `program` is None after a syntax error; `parsed` always holds every item
    that did parse, so the checker can check them while the syntax is being
    fixed. `broken_defines` names the defines that did not parse: a rule that
    uses one is not also told the name is undefined.
    """

    program: n.Program | None
    diagnostics: tuple[Diagnostic, ...]
    parsed: n.Program = _NOTHING
    broken_defines: frozenset[str] = frozenset()


@cache
def grammar_text() -> str:
    """The grammar: the package's copy in a wheel, `grammar/` in a source tree
    (`politely.resources`)."""
    return resources.grammar_text()


class _GluedWordError(Exception):
    """A keyword matched the start of a longer word (`dismissal`, `whenever`)."""

    def __init__(self, keyword: LarkToken, word: str) -> None:
        super().__init__(word)
        self.keyword = keyword
        self.word = word


class _WholeWords:
    """Lark post-lexer: a keyword must be a whole word.

    Where only keywords can stand, Lark's contextual lexer happily reads
    `sessions` as the keyword `session` followed by a name `s`; this turns
    that into one clear error about the word as written.
    """

    always_accept: tuple[str, ...] = ()

    def process(self, stream: Iterator[LarkToken]) -> Iterator[LarkToken]:
        previous: LarkToken | None = None
        for token in stream:
            if previous is not None and _glued(previous, token):
                raise _GluedWordError(previous, previous.value + token.value)
            previous = token
            yield token


def _glued(previous: Token | LarkToken, token: Token | LarkToken) -> bool:
    """Whether `token` goes on the word of the keyword `previous` (`session` + `s`)."""
    return (
        previous.type != "NAME"
        and previous.value.isalpha()
        and token.start_pos == previous.end_pos
        and (token.value[:1].isalnum() or token.value[:1] == "_")
    )


class _Grammar(msgspec.Struct, frozen=True):
    """Lark's LALR parser, built once and shared read-only: its parse table, and the
    recipe for the callbacks that run a builder inside it (no parse tree is ever
    built). Each parse makes its own `_Builder` and callbacks (`callbacks`), so
    parses share no mutable state and run in parallel threads without a lock."""

    lark: Lark
    tree_builder: ParseTreeBuilder

    def callbacks(self, builder: _Builder) -> dict[Any, Any]:
        """The reduce callbacks of one parse, calling into its own builder."""
        return self.tree_builder.create_callback(builder)  # type: ignore[no-untyped-call,no-any-return]

    def start(self, text: str, callbacks: dict[Any, Any]) -> InteractiveParser:
        """An interactive parser over `text` that runs `callbacks` on each reduce."""
        interactive = self.lark.parse_interactive(text)
        conf = copy(interactive.parser_state.parse_conf)  # as Lark's own `accepts` does
        conf.callbacks = callbacks
        interactive.parser_state.parse_conf = conf
        return interactive


def _options() -> dict[str, Any]:
    """The parser's options, for Lark and for naming the cache files made of them."""
    return {
        "parser": "lalr",
        "lexer": "contextual",
        "maybe_placeholders": True,
        "postlex": _WholeWords(),
    }


@cache
def _grammar() -> _Grammar:
    # Loaded from the user's cache folder after the first run (`politely.lark_cache`):
    # analysing the grammar takes longer than checking a site.
    from lark.parse_tree_builder import ParseTreeBuilder

    lark = cached_lark(grammar_text(), **_options())
    # Lark's own recipe for callbacks, with the options above (maybe_placeholders).
    tree_builder = lark._parse_tree_builder
    assert isinstance(tree_builder, ParseTreeBuilder)
    return _Grammar(lark, tree_builder)


@cache
def _fast() -> FastParse | None:
    """The same parser in one loop (`politely.lalr`), for files without syntax
    errors; None for a Lark whose parser `politely.lalr_tables` cannot read."""
    saved = fast_tables.load(grammar_text(), _options())
    if saved is not None:
        try:
            return FastParse(saved)
        except Exception:  # whole but unusable tables (see `_distrust_saved_tables`)
            pass
    try:  # reads Lark's insides and `re`'s parser: a surprise there means no fast path
        from politely.lalr_tables import tables_of

        tables = tables_of(_grammar().lark)
        fast = FastParse(tables) if tables is not None else None
    except Exception:
        return None
    if tables is not None:
        fast_tables.save(grammar_text(), _options(), tables)  # only tables that build
    return fast


def _distrust_saved_tables() -> None:
    """Forget the tables after the fast parse failed other than at a syntax error.

    The table file's checksum proves it is whole, not what wrote it: one made by
    hand or by a broken writer must mean parsing the careful way, never a crash.
    The file is removed, and the next parse reads the tables from Lark again.
    """
    fast_tables.discard(grammar_text(), _options())
    _fast.cache_clear()


def terminals() -> Collection[TerminalDef]:
    """The grammar's terminals, from the parser `parse` uses (no second parser to load)."""
    return _grammar().lark.terminals


@cache
def tree_parser() -> Lark:
    """A plain Lark parser producing trees, for tools (hypothesis' from_lark).

    Not cached across processes: from_lark reads the unanalysed grammar, which
    `Lark.save` leaves out; only tests use it."""
    from lark import Lark

    return Lark(grammar_text(), parser="lalr", lexer="contextual", maybe_placeholders=True)


BOM = "\ufeff"
_ITEM_TOKENS = frozenset({"RULE", "DEFINE", "POLICY"})
# Where parsing resumes after a syntax error: a line whose first word starts an item.
_ITEM_LINE = re.compile(r"^[ \t\f\r]*(rule|define|policy)(?![a-z0-9_])", re.M)


def parse(text: str, path: str = "<rules>") -> ParseResult:
    """Parse one file's text. Never raises for bad input.

    A byte-order mark at the start is dropped: editors on Windows write one,
    and the writer cannot see it. A file parsed before with the same path and
    text is not parsed again (`PARSED`): reloading a site reparses only the
    files that changed. A large file parsed by an earlier process is read back
    from the user's cache folder instead (`politely.saved_parses`).
    """
    text = text.removeprefix(BOM)
    if len(text) > MAX_FILE_CHARS:
        return ParseResult(None, (_too_big(text, path),))
    key = ParseCache.key(text, path)
    found = PARSED.get(key)
    if found is None:
        large = len(text) >= saved_parses.SAVE_FROM
        with gcpause.paused():  # the syntax tree is all live: nothing to collect
            found = saved_parses.load(key) if large else None
            if found is None:
                run = _Run(text, path, _fast())
                run.parse_all()
                found = run.result()
                if large:
                    saved_parses.save(key, found)
        PARSED.put(key, found, len(text))
    return found


def mark_used(text: str, path: str) -> None:
    """Mark a large file's saved parse used, as parsing it again would: a site
    whose check is read back (`politely.saved_checks`) parses none of its files,
    and their saved parses must not be the first to go while the site is in use."""
    text = text.removeprefix(BOM)
    if saved_parses.SAVE_FROM <= len(text) <= MAX_FILE_CHARS:
        saved_parses.touch(ParseCache.key(text, path))


class ParseCache:
    """Parse results by the digest of their file's path and text, least recently
    used first out, holding at most `max_chars` characters of files (the results
    are about that size again in syntax trees) and `max_files` files.

    Results are immutable (frozen trees, frozen diagnostics), so they are shared.
    The key is a SHA-256 digest: the cache does not keep the texts. Threads share
    it under a lock held only to look up and store, never while parsing.
    """

    def __init__(self, max_chars: int = 16_000_000, max_files: int = 1024) -> None:
        self.max_chars = max_chars
        self.max_files = max_files
        self._entries: OrderedDict[bytes, tuple[ParseResult, int]] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(text: str, path: str) -> bytes:
        digest = sha256(path.encode("utf-8", "surrogatepass"), more=len(text))
        digest.update(b"\0")
        digest.update(text.encode("utf-8", "surrogatepass"))
        return digest.digest()

    def get(self, key: bytes) -> ParseResult | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return found[0]

    def put(self, key: bytes, result: ParseResult, chars: int) -> None:
        if chars > self.max_chars:
            return
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = (result, chars)
            self._chars += chars
            while self._chars > self.max_chars or len(self._entries) > self.max_files:
                _, (_, size) = self._entries.popitem(last=False)
                self._chars -= size

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._chars = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._entries


# The one process-wide cache: the checker parses each file through `parse`.
PARSED = ParseCache()


def _too_big(text: str, path: str) -> Diagnostic:
    return Diagnostic.at(
        n.Span(1, 1, 1, 2, 0, 1),
        path,
        "file-too-big",
        f"this file has {len(text):,} characters; a rules file has at most {MAX_FILE_CHARS:,}",
        hints=[FILE_HELP],
    )


class _Run:
    """One parse of one file: in one run of `fast` if it has no syntax error; else
    item after item, resuming after each syntax error.

    Lark's interactive LALR parser is fed token by token. On a syntax error the
    item being written is dropped (with any diagnostic inside it: the syntax
    error is the one to fix first) and a fresh parser starts at the next line
    whose first word is `rule`, `define` or `policy`. Lark's parser is loaded
    only then (`_grammar`).
    """

    def __init__(self, text: str, path: str, fast: FastParse | None) -> None:
        self.fast = fast
        self.builder = _Builder(path)  # this parse's items and diagnostics
        self.callbacks: dict[Any, Any] | None = None  # the careful way's, made when needed
        self.text = text
        self.path = path
        self.lines = _LineStarts(text)
        self.syntax: list[Diagnostic] = []
        self.unreported: list[int] = []  # positions of syntax errors past the bound
        self.skipped: list[tuple[int, int]] = []  # [start, end) no item came from
        self.broken_defines: set[str] = set()

    def parse_all(self) -> None:
        if self._parse_fast():
            return
        start: int | None = 0
        while start is not None:
            start = self._parse_from(start)

    def _parse_fast(self) -> bool:
        """Parse the whole file in one run of `politely.lalr`; False, leaving no
        trace, if it has a syntax error (the careful way then reports it)."""
        if self.fast is None:
            return False
        builder = _Builder(self.path)
        try:
            self.fast.parse(self.text, builder, _glued)
        except FastPathError:
            return False
        except Exception:  # tables that cannot run: the builder, shared, is not to blame
            _distrust_saved_tables()  # (the careful way runs the builder again and would raise)
            return False
        self.builder = builder
        return True

    def _parse_from(self, start: int) -> int | None:
        """Parse from `start` to the end; after a syntax error, where to resume."""
        from lark.exceptions import UnexpectedInput

        grammar = _grammar()
        if self.callbacks is None:
            self.callbacks = grammar.callbacks(self.builder)
        interactive = grammar.start(self.text, self.callbacks)
        lexer = interactive.lexer_thread
        assert lexer.state is not None
        self.lines.seek(lexer.state.line_ctr, start)
        head: list[LarkToken] = []  # the current item's first two tokens
        try:
            _feed(interactive, head)
            return None
        except UnexpectedInput as error:
            if getattr(error, "interactive_parser", None) is None:
                error.interactive_parser = interactive
            at = _error_position(error, self.text)
            self._report(at, error)
        except _GluedWordError as glued:
            at = glued.keyword.start_pos or 0
            self._report(at, glued)
        return self._skip(interactive, head, at, start)

    def _report(self, at: int, error: UnexpectedInput | _GluedWordError) -> None:
        """Keep the first MAX_SYNTAX_ERRORS syntax errors; count the rest."""
        # Imported here: a file without syntax errors never needs the hints
        from politely.syntax_errors import glued_word_diagnostic, syntax_diagnostic

        if len(self.syntax) >= MAX_SYNTAX_ERRORS:
            self.unreported.append(at)
        elif isinstance(error, _GluedWordError):
            self.syntax.append(glued_word_diagnostic(error.keyword, error.word, self.path))
        else:
            self.syntax.append(syntax_diagnostic(error, self.text, self.path))

    def _skip(
        self, interactive: InteractiveParser, head: list[LarkToken], at: int, start: int
    ) -> int | None:
        """Drop the item the error is in, up to the next item; where that starts."""
        whole = _ends_an_item(interactive)
        if not whole and len(head) == 2 and head[0].type == "DEFINE" and head[1].type == "NAME":
            self.broken_defines.add(str(head[1]))
        resume = _next_item(self.text, at, start)
        broken_from = at if whole or not head else min(at, head[0].start_pos or 0)
        self.skipped.append((broken_from, len(self.text) if resume is None else resume))
        return resume

    def result(self) -> ParseResult:
        builder = self.builder
        starts = [start for start, _ in self.skipped]  # in order: the parse goes forward
        kept = [d for d in builder.diagnostics if not self._in_skipped(d, starts)]
        diagnostics = sorted([*self.syntax, *kept], key=lambda d: (d.line, d.column))
        if self.unreported:
            diagnostics.append(self._more(len(self.unreported), self.unreported[0]))
        items = tuple(builder.items)
        parsed = n.Program(items, _spanning(list(items)) if items else n.NO_SPAN)
        return ParseResult(
            None if self.syntax else parsed,
            tuple(diagnostics),
            parsed,
            frozenset(self.broken_defines),
        )

    def _in_skipped(self, diagnostic: Diagnostic, starts: list[int]) -> bool:
        """Whether the diagnostic is inside a part no item came from (`starts`: of
        `skipped`, in order; a search, not a scan: a file may skip thousands)."""
        position = self.lines.position(diagnostic.line, diagnostic.column)
        i = bisect.bisect_right(starts, position) - 1
        return i >= 0 and position < self.skipped[i][1]

    def _more(self, count: int, at: int) -> Diagnostic:
        line, column = self.lines.line_column(at)
        return Diagnostic.at(
            n.Span(line, column, line, column + 1, at, at + 1),
            self.path,
            "too-many-errors",
            f"and {count} more syntax error{'s' * (count != 1)} in this file",
            hints=[f"check reports the first {MAX_SYNTAX_ERRORS} of a file; fix those first"],
        )


class _LineStarts:
    """Where each line of a text starts, to move between positions and line:column."""

    def __init__(self, text: str) -> None:
        self.starts = [0, *(m.end() for m in re.finditer("\n", text))]

    def line_column(self, position: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.starts, position)
        return line, position - self.starts[line - 1] + 1

    def position(self, line: int, column: int) -> int:
        return self.starts[min(line, len(self.starts)) - 1] + column - 1

    def seek(self, counter: Any, position: int) -> None:
        """Move a Lark line counter to `position`, as if it had read the text before."""
        line, column = self.line_column(position)
        counter.char_pos = position
        counter.line = line
        counter.column = column
        counter.line_start_pos = position - column + 1


def _feed(interactive: InteractiveParser, head: list[LarkToken]) -> None:
    """Feed every token, then the end of the file; raises at a syntax error.

    `head` keeps the first two tokens of the item being read (`define NAME`).
    """
    state = interactive.parser_state
    last: LarkToken | None = None
    for token in interactive.lexer_thread.lex(state):  # type: ignore[no-untyped-call]
        if token.type in _ITEM_TOKENS:
            head[:] = [token]
        elif len(head) == 1:
            head.append(token)
        state.feed_token(token)
        last = token
    from lark import Token as LarkToken

    end = LarkToken.new_borrow_pos("$END", "", last) if last else LarkToken("$END", "", 0, 1, 1)
    state.feed_token(end, True)


def _error_position(error: UnexpectedInput, text: str) -> int:
    from lark.exceptions import UnexpectedToken

    if isinstance(error, UnexpectedToken):
        if error.token.type == "$END":
            return len(text)
        return error.token.start_pos or 0
    return error.pos_in_stream or 0


def _ends_an_item(interactive: InteractiveParser) -> bool:
    """Whether the tokens fed so far end with a whole item; if so, build it.

    The end of the file is fed to a copy: the copy builds the pending item
    (a rule whose `}` was read just before the error) into the builder.
    """
    from lark.exceptions import UnexpectedInput

    attempt = interactive.copy(deepcopy_values=False)  # type: ignore[no-untyped-call]
    try:
        attempt.feed_eof()
    except UnexpectedInput:
        return False
    return True


def _next_item(text: str, at: int, start: int) -> int | None:
    """The next item keyword starting a line at or after `at` (never `start` again)."""
    line_start = text.rfind("\n", 0, at) + 1
    for match in _ITEM_LINE.finditer(text, line_start):
        keyword = match.start(1)
        if keyword >= at and keyword > start:
            return keyword
    return None


# --- the builder: grammar rules → nodes ----------------------------------------------


class _Spanned(msgspec.Struct, frozen=True):
    """A value the builder passes up with its span (lists, windows, day sets)."""

    value: Any
    span: n.Span


def _span(child: Any) -> n.Span:
    return token_span(child) if isinstance(child, _Token) else child.span


def _spanning(children: list[Any]) -> n.Span:
    """From the first child's start to the last child's end (None children skipped).

    Reads a token's position directly (as `token_span` does) rather than making a
    span of it first: the parser calls this for every node it builds.
    """
    first, last = children[0], children[-1]
    if first is None or last is None:
        present = [c for c in children if c is not None]
        first, last = present[0], present[-1]
    if isinstance(first, _Token):
        line, column, start = first.line or 1, first.column or 1, first.start_pos or 0
    else:
        span = first.span
        line, column, start = span.line, span.column, span.start_pos
    if isinstance(last, _Token):
        end_line = last.end_line or last.line or 1
        end_column = last.end_column or last.column or 1
        end = last.end_pos or 0
    else:
        span = last.span
        end_line, end_column, end = span.end_line, span.end_column, span.end_pos
    return n.Span(line, column, end_line, end_column, start, end)


# `_spanning` for rules whose first and last children are known to be tokens or
# nodes (with `diagnostics.tokens_span`): the builder makes a span for every node,
# and most rules know theirs.
def _token_to_span(first: Token, last: n.Span) -> n.Span:
    return n.Span(
        first.line or 1,
        first.column or 1,
        last.end_line,
        last.end_column,
        first.start_pos or 0,
        last.end_pos,
    )


def _span_to_token(first: n.Span, last: Token) -> n.Span:
    return n.Span(
        first.line,
        first.column,
        last.end_line or last.line or 1,
        last.end_column or last.column or 1,
        first.start_pos,
        last.end_pos or 0,
    )


def _joined(first: n.Span, last: n.Span) -> n.Span:
    return n.Span(
        first.line, first.column, last.end_line, last.end_column, first.start_pos, last.end_pos
    )


def _number(text: str) -> int | float:
    return float(text) if "." in text else int(text)


def _too_long(duration: str) -> bool:
    """A duration whose numbers alone make it longer than any duration may be."""
    return any(len(run.lstrip("0")) > _DURATION_DIGITS for run in re.findall(r"\d+", duration))


def _shortened(text: str) -> str:
    """A number or duration as quoted in a message: a 500-digit one is cut short."""
    return text if len(text) <= 24 else f"{text[:10]}…{text[-10:]}"


def _too_many_digits(number: str) -> bool:
    """More digits before the point than MAX_DIGITS (checked before converting:
    Python refuses to convert a number of over 4,300 digits)."""
    return len(number.split(".")[0].lstrip("0")) > MAX_DIGITS


def _kept(children: list[Any], kind: str) -> list[Token]:
    return [c for c in children if isinstance(c, _Token) and c.type == kind]


class _Builder:
    """One method per grammar rule or alias; `__default__` refuses the rest.

    It runs inside the LALR parser, so each method gets its rule's children
    (nodes, and tokens, keywords included where the rule is marked `!`): Lark's
    tokens on the careful way, `politely.lalr.Token`s on the fast path, which
    hold the same. Not a `lark.Transformer`: Lark's parser only looks its methods
    up by name, and the fast path must not import Lark.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.diagnostics: list[Diagnostic] = []
        self.items: list[n.Item] = []  # every item built, in order, across syntax errors
        self._seconds: dict[str, int | None] = {}  # parse_duration's answers in this file
        # How many levels each `not`, `and` and `or` node made nests, and the kind of
        # node it is or stands for: by id, with the node (an id alone may be reused).
        self._levels: dict[int, tuple[n.Condition, int, type[n.Condition]]] = {}

    def _error(self, span: n.Span, code: str, message: str, *hints: str) -> None:
        self.diagnostics.append(Diagnostic.at(span, self.path, code, message, hints=hints))

    def __default__(self, data: Any, children: Any, meta: Any) -> Any:
        if str(data).startswith("_"):  # Lark's own helper rules for repetitions
            from lark import Tree  # (the careful way only: the fast path makes lists)

            return Tree(data, children)
        raise NotImplementedError(f"grammar rule {data!r} has no AST builder")

    # items
    def start(self, children: list[n.Item]) -> n.Program:
        span = _spanning(children) if children else n.NO_SPAN
        return n.Program(tuple(children), span)

    def define(self, children: list[Any]) -> n.Define:
        keyword, name, _, condition = children
        span = _token_to_span(keyword, condition.span)
        return self._item(n.Define(self._name(name), self._shallow(condition), span))

    def policy(self, children: list[Any]) -> n.Policy:
        span = tokens_span(children[0], children[-1])
        return self._item(n.Policy(tuple(children[2:-1]), span))

    def rule(self, children: list[Any]) -> n.Rule:
        span = tokens_span(children[0], children[-1])
        return self._item(n.Rule(self._name(children[1]), tuple(children[3:-1]), span))

    def _item(self, item: _ItemT) -> _ItemT:
        self.items.append(item)
        return item

    def _name(self, token: Token) -> n.Name:
        return n.Name(token.value, token_span(token))

    # clauses
    def on_clause(self, children: list[Any]) -> n.On:
        names = tuple([self._name(t) for t in children[1::2]])  # `on` NAME ("," NAME)*
        return n.On(names, tokens_span(children[0], children[-1]))

    def when_clause(self, children: list[Any]) -> n.When:
        keyword, condition = children
        return n.When(self._shallow(condition), _token_to_span(keyword, condition.span))

    def say_clause(self, children: list[Any]) -> n.Say:
        messages = tuple([self._message(t) for t in children[1::2]])  # `say` STRING ("or" STRING)*
        return n.Say(messages, tokens_span(children[0], children[-1]))

    def priority_clause(self, children: list[Any]) -> n.Priority:
        keyword, number = children
        return n.Priority(number, _token_to_span(keyword, number.span))

    def cooldown_clause(self, children: list[Any]) -> n.Cooldown:
        keyword, duration = children
        return n.Cooldown(self._duration(duration), tokens_span(keyword, duration))

    def cap_clause(self, children: list[Any]) -> n.Cap:
        count = children[2]
        invitations = children[3]
        window: _Spanned = children[5]
        sitewide = children[6]
        kind, duration = window.value
        if sitewide is None:
            span = _token_to_span(children[0], window.span)
        else:
            span = tokens_span(children[0], sitewide)
        return n.Cap(
            self._number(count, token_span(count)),
            kind,
            duration,
            sitewide=sitewide is not None,
            says_invitations=invitations is not None,
            span=span,
        )

    def per_session(self, children: list[Token]) -> _Spanned:
        return _Spanned(("session", None), token_span(children[0]))

    def per_visitor(self, children: list[Token]) -> _Spanned:
        return _Spanned(("visitor", None), token_span(children[0]))

    def per_duration(self, children: list[Token]) -> _Spanned:
        duration = self._duration(children[0])
        return _Spanned(("duration", duration), duration.span)

    def during_clause(self, children: list[Any]) -> n.During:
        keyword, schedule = children
        return n.During(schedule, _token_to_span(keyword, schedule.span))

    def quiet_clause(self, children: list[Any]) -> n.Quiet:
        after = str(children[3])
        return n.Quiet(self._duration(children[1]), after, _spanning(children))  # type: ignore[arg-type]

    def only_clause(self, children: list[Any]) -> n.Only:
        return n.Only(self._shallow(children[-1]), _spanning(children))

    def never_clause(self, children: list[Any]) -> n.Never:
        return n.Never(self._shallow(children[-1]), _spanning(children))

    def _shallow(self, condition: n.Condition) -> n.Condition:
        """The condition, if it nests at most MAX_DEPTH levels; else an error and the
        placeholder test `_nested` made instead of it, so nothing downstream walks
        a tree too deep to recurse on."""
        found = self._levels.get(id(condition))
        if found is None or found[0] is not condition or found[1] <= MAX_DEPTH:
            return condition
        self._error(
            condition.span,
            "too-deep",
            f"this condition nests {found[1]} levels deep; at most {MAX_DEPTH}",
            DEPTH_HELP,
        )
        return condition

    def _level(self, condition: n.Condition, merging: type[n.And | n.Or] | None) -> int:
        """The levels `condition` adds below a new node that holds it: its own, or one
        fewer when the new node takes its operands in (an `and` in a `merging` `and`)."""
        found = self._levels.get(id(condition))
        if found is None or found[0] is not condition:
            return 0  # a test, or a define's name
        return found[1] - 1 if found[2] is merging else found[1]

    def _nested(
        self, kind: type[n.Not | n.And | n.Or], parts: Any, span: n.Span, levels: int
    ) -> n.Condition:
        """A new `kind` node of `levels` levels, or past MAX_DEPTH a placeholder test
        standing for it: a tree is never built deeper than that, since freeing one
        recurses in C (200,000 `not`s in a row crashed the interpreter)."""
        if levels > MAX_DEPTH:
            node: n.Condition = n.Bare(n.Field(("visitor", "too_deep"), span), span)
        else:
            node = kind(parts, span)
        self._levels[id(node)] = (node, levels, kind)
        return node

    def timeout_clause(self, children: list[Any]) -> n.SessionTimeout:
        return n.SessionTimeout(self._duration(children[-1]), _spanning(children))

    # conditions
    def or_condition(self, children: list[n.Condition]) -> n.Condition:
        return self._joined(n.Or, children)

    def and_condition(self, children: list[n.Condition]) -> n.Condition:
        return self._joined(n.And, children)

    def _joined(self, kind: type[n.And | n.Or], children: list[n.Condition]) -> n.Condition:
        """`a and b and c` as one node of three operands (an `and` inside takes its
        operands in), or a placeholder if that nests past MAX_DEPTH."""
        operands: list[n.Condition] = []
        below = 0
        for child in children:
            if type(child) is kind:
                operands.extend(child.operands)
            else:
                operands.append(child)
            below = max(below, self._level(child, kind))
        span = _joined(children[0].span, children[-1].span)
        return self._nested(kind, tuple(operands), span, below + 1)

    def negation(self, children: list[Any]) -> n.Condition:
        keyword, operand = children
        span = _token_to_span(keyword, operand.span)
        return self._nested(n.Not, operand, span, self._level(operand, None) + 1)

    def compare(self, children: list[Any]) -> n.Compare:
        field, op, value = children
        return n.Compare(field, op.value, value, _joined(field.span, value.span))

    def in_list(self, children: list[Any]) -> n.InList:
        field, values = children
        return n.InList(field, values.value, False, _joined(field.span, values.span))

    def not_in_list(self, children: list[Any]) -> n.InList:
        field, values = children
        return n.InList(field, values.value, True, _joined(field.span, values.span))

    def matches(self, children: list[Any]) -> n.Matches:
        field, pattern = children
        return n.Matches(field, self._text(pattern), _span_to_token(field.span, pattern))

    def contains(self, children: list[Any]) -> n.Contains:
        field, text = children
        return n.Contains(field, self._text(text), _span_to_token(field.span, text))

    def bare(self, children: list[n.Field]) -> n.Bare | n.Ref:
        field = children[0]
        if len(field.path) == 1 and field.path[0] != "event":
            return n.Ref(field.path[0], field.span)
        return n.Bare(field, field.span)

    def field(self, children: list[Token]) -> n.Field:
        path = tuple([name.value for name in children])
        return n.Field(path, tokens_span(children[0], children[-1]))

    def values(self, children: list[Any]) -> _Spanned:
        values = tuple([c for c in children if c is not None and not isinstance(c, _Token)])
        return _Spanned(values, tokens_span(children[0], children[-1]))  # `[` … `]`

    # values
    def string(self, children: list[Token]) -> n.Text:
        return self._text(children[0])

    def positive(self, children: list[Token]) -> n.Number:
        return self._number(children[0], token_span(children[0]))

    def negative(self, children: list[Token]) -> n.Number:
        minus, digits = children
        number = self._number(digits, tokens_span(minus, digits))
        return n.Number(-number.value, number.span)

    def percent(self, children: list[Token]) -> n.Percent:
        token = children[0]
        number = self._number(token, token_span(token), token.value[:-1])
        return n.Percent(number.value, number.span)

    def duration(self, children: list[Token]) -> n.Duration:
        return self._duration(children[0])

    def true(self, children: list[Token]) -> n.Boolean:
        return n.Boolean(True, token_span(children[0]))

    def false(self, children: list[Token]) -> n.Boolean:
        return n.Boolean(False, token_span(children[0]))

    # schedules
    def schedule(self, children: list[Any]) -> n.Schedule:
        *windows, zone = children
        return n.Schedule(
            tuple(windows), self._text(zone) if zone is not None else None, _spanning(children)
        )

    def schedule_window(self, children: list[Any]) -> n.ScheduleWindow:
        days, start_token, end_token = children
        span = _spanning(children)
        start = self._time(start_token, allow_midnight_end=False)
        end = self._time(end_token, allow_midnight_end=True)
        if start is None or end is None:
            return n.ScheduleWindow(days.value, start or 0, end or 0, span)
        if start == end:
            self._error(
                span,
                "bad-schedule",
                f"the time range {start_token}-{end_token} is empty",
                "the end is exclusive: write a later end, or 00:00-24:00 for the whole day",
            )
        return n.ScheduleWindow(days.value, start, end, span)

    def days(self, children: list[_Spanned]) -> _Spanned:
        return _Spanned(frozenset().union(*(c.value for c in children)), _spanning(children))

    def single_day(self, children: list[Token]) -> _Spanned:
        word = str(children[0])
        days = _GROUP_DAYS.get(word) or frozenset({n.DAY_NAMES.index(word)})
        return _Spanned(days, _spanning(children))

    def day_range(self, children: list[Token]) -> _Spanned:
        first, last = (str(t) for t in children)
        span = _spanning(children)
        if first in _GROUP_DAYS or last in _GROUP_DAYS:
            self._error(
                span,
                "bad-schedule",
                f"`{first}-{last}` is not a day range",
                "a range joins two days, such as mon-fri; weekdays, weekends and daily stand alone",
            )
            return _Spanned(_GROUP_DAYS.get(first, frozenset()), span)
        a, b = n.DAY_NAMES.index(first), n.DAY_NAMES.index(last)
        return _Spanned(frozenset((a + i) % 7 for i in range((b - a) % 7 + 1)), span)

    # tokens with content to check
    def _number(self, token: Token, span: n.Span, digits: str | None = None) -> n.Number:
        """A number within MAX_DIGITS; past it, an error and the largest number."""
        text = token.value if digits is None else digits
        if len(text) <= MAX_DIGITS or not _too_many_digits(text):
            return n.Number(_number(text), span)
        self._error(
            span,
            "bad-number",
            f"`{_shortened(str(token))}` is too big",
            f"numbers have at most {MAX_DIGITS} digits before the decimal point",
        )
        return n.Number(_LARGEST, span)

    def _duration(self, token: Token) -> n.Duration:
        text = token.value
        span = token_span(token)
        seconds = self._seconds.get(text, -1)
        if seconds == -1:  # (a file writes the same few durations many times)
            seconds = self._seconds[text] = parse_duration(text)
        if seconds is not None and seconds <= MAX_DURATION:
            return n.Duration(seconds, span)
        if seconds is not None or _too_long(text):
            self._error(
                span,
                "bad-duration",
                f"`{_shortened(text)}` is longer than {format_duration(MAX_DURATION)}",
                f"durations are at most {format_duration(MAX_DURATION)} (about 10 years)",
            )
            return n.Duration(MAX_DURATION, span)
        glued = _GLUED_UNIT.fullmatch(text)
        fixed = spelled_duration(glued[1], glued[2]) if glued else None
        self._error(
            span,
            "bad-duration",
            f"`{text}` is not a duration",
            f"write {fixed}" if fixed is not None else HOW_TO_WRITE,
        )
        return n.Duration(0, span)

    def _time(self, token: Token, *, allow_midnight_end: bool) -> int | None:
        hours, minutes = (int(part) for part in str(token).split(":"))
        value = hours * 60 + minutes
        if minutes < 60 and (hours < 24 or (allow_midnight_end and value == 24 * 60)):
            return value
        self._error(
            token_span(token),
            "bad-schedule",
            f"`{token}` is not a time of day",
            "times are 24-hour HH:MM from 00:00 to 23:59 (24:00 may end a range)",
        )
        return None

    def _text(self, token: Token) -> n.Text:
        return n.Text(self._unescape(token, token.value[1:-1], 1), token_span(token))

    def _unescape(self, token: Token, raw: str, offset: int) -> str:
        """Decode `\\"`, `\\\\` and `\\n`; report any other escape at its column."""
        if "\\" not in raw:
            return raw
        out: list[str] = []
        i = 0
        while i < len(raw):
            char = raw[i]
            if char == "\\":
                escaped = raw[i + 1]
                if escaped in _ESCAPES:
                    out.append(_ESCAPES[escaped])
                else:
                    column = (token.column or 1) + offset + i
                    self._error(
                        n.Span(token.line or 1, column, token.line or 1, column + 2),
                        "bad-string",
                        f"unknown escape `\\{escaped}`",
                        'strings know three escapes: \\" for a quote, \\\\ for a backslash '
                        "and \\n for a new line",
                    )
                i += 2
                continue
            out.append(char)
            i += 1
        return "".join(out)

    def _message(self, token: Token) -> n.Message:
        """A `say` string: literal text and `{field or fallback}` slots.

        Scanned on the raw text, so every position reported is the column in
        the file; escapes are decoded per piece, braces `{{ }}` after that.
        """
        raw = token.value[1:-1]
        if raw and "{" not in raw and "\\" not in raw and "}" not in raw:  # most: plain text
            return n.Message(raw, (raw,), token_span(token))
        return self._scanned_message(token, raw)

    def _scanned_message(self, token: Token, raw: str) -> n.Message:
        """`_message` the long way, one mark (`\\`, `{`, `}`) at a time."""
        line, base = token.line or 1, (token.column or 1) + 1
        parts: list[str | n.Slot] = []
        run = 0  # where the current literal run starts in `raw`

        def flush(stop: int) -> None:
            if run < stop:
                text = self._unescape(token, raw[run:stop], 1 + run)
                parts.append(text.replace("{{", "{").replace("}}", "}"))

        i = 0
        while i < len(raw):
            char = raw[i]
            if char == "\\" or raw.startswith(("{{", "}}"), i):
                i += 2
            elif char == "{":
                close = raw.find("}", i)
                match = _SLOT.fullmatch(raw, i + 1, close) if close != -1 else None
                if match is None:
                    end = close + 1 if close != -1 else len(raw)
                    self._error(
                        n.Span(line, base + i, line, base + end),
                        "bad-template",
                        "a `{` in a message must hold a field, such as {visitor.name}"
                        if close != -1
                        else "this `{` is never closed",
                        "write {field} or {field or fallback}; write {{ for a literal brace",
                    )
                    i = end
                    continue
                flush(i)
                field_start = base + match.start("field")
                field = n.Field(
                    tuple(match["field"].split(".")),
                    n.Span(line, field_start, line, field_start + len(match["field"])),
                )
                fallback = match["fallback"]
                if fallback is not None:
                    fallback = self._unescape(token, fallback, 1 + match.start("fallback"))
                parts.append(
                    n.Slot(
                        field,
                        fallback.strip() if fallback is not None else None,
                        n.Span(line, base + i, line, base + close + 1),
                    )
                )
                i = run = close + 1
            elif char == "}":
                self._error(
                    n.Span(line, base + i, line, base + i + 1),
                    "bad-template",
                    "a lone `}` in a message",
                    "write }} for a literal brace",
                )
                i += 1
            else:  # plain text up to the next character that means something
                found = _MESSAGE_MARK.search(raw, i + 1)
                i = found.start() if found is not None else len(raw)
        flush(len(raw))
        return n.Message(template_source(parts), tuple(parts), token_span(token))


def _slot_source(slot: n.Slot) -> str:
    if slot.fallback is None:
        return "{" + slot.field.name + "}"
    return "{" + slot.field.name + " or " + slot.fallback + "}"


def template_source(parts: tuple[str | n.Slot, ...] | list[str | n.Slot]) -> str:
    """A message's parts as template text: slots as `{field}`, literal braces doubled."""
    return "".join(
        _slot_source(p) if isinstance(p, n.Slot) else p.replace("{", "{{").replace("}", "}}")
        for p in parts
    )


def escape_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
