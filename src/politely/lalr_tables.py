"""`politely.lalr`'s tables, read from a Lark LALR parser with the contextual lexer.

Done once per grammar, Lark version and version of the code that reads the
tables: `politely.fast_tables` saves what this makes in the user's cache
folder, so a later process runs the fast path without importing Lark. What
is read is Lark's own: each parser
state's lexer (its patterns in its order, its keywords), the bulk scan (the
basic lexer's alternation), the parse table, and the tree builder's recipe
for each rule. A parser built otherwise than this module knows (another Lark
version) has no tables: files are then parsed the careful way only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from lark import Lark
from lark.lexer import BasicLexer, ContextualLexer, PatternStr, TerminalDef, UnlessCallback
from lark.parse_tree_builder import (
    ChildFilterLALR,
    ChildFilterLALR_NoPlaceholders,
    ExpandSingleChild,
    ParseTreeBuilder,
)
from lark.parsers.lalr_analysis import Shift

from politely.lalr import SCAN_END, FastTables, Reduce, StateLexer
from politely.regex_starts import first_atoms, first_characters, may_start_with

# The bulk scan's last alternative: any one character, so `finditer` never skips
# text no terminal matches (its matches are then back to back, and the state's
# lexer, trying the position again, finds the error).
_ANY = "fast_any_character"


class _UnknownParserError(ValueError):
    """Lark's parser is not built as this module expects."""


def _require(condition: bool) -> None:
    if not condition:
        raise _UnknownParserError


def tables_of(lark: Lark) -> FastTables | None:
    """The fast path's tables of a Lark LALR parser with the contextual lexer; None
    when its parts are not what this module knows how to read (another Lark version)."""
    try:
        contextual = lark.parser.lexer.lexer  # behind the post-lexer
        table = lark.parser.parser._parse_table
        _require(isinstance(contextual, ContextualLexer))
        root = contextual.root_lexer
        _require(isinstance(root, BasicLexer))
        (root_pattern,) = root.scanner._mres
        index_of: dict[int, int] = {}  # by the id of a Lark lexer: its index in `lexers`
        lexers: list[StateLexer] = []
        for lexer in contextual.lexers.values():
            _require(isinstance(lexer, BasicLexer))
            _require(lexer.ignore_types == root.ignore_types)
            if id(lexer) not in index_of:
                index_of[id(lexer)] = len(lexers)
                lexers.append(_flatten(lexer, root.scanner.terminals, root_pattern.flags))
        count = len(table.states)
        _require(set(table.states) == set(range(count)) == set(contextual.lexers))
        lexer_of = tuple(index_of[id(contextual.lexers[s])] for s in range(count))
        recipes = _recipes(lark._parse_tree_builder)
        numbers: dict[Any, int] = {}
        actions: list[dict[str, int]] = []
        gotos: list[dict[str, int]] = []
        for state in range(count):
            actions.append({})
            gotos.append({})
            for symbol, (action, arg) in table.states[state].items():
                if action is Shift:  # on a terminal; on a rule name, a goto
                    actions[state][str(symbol)] = arg
                    gotos[state][str(symbol)] = arg
                else:
                    actions[state][str(symbol)] = ~numbers.setdefault(arg, len(numbers))
        rules = tuple(
            (len(rule.expansion), str(rule.origin.name), recipes[rule]) for rule in numbers
        )
        (start,) = table.start_states.values()
        (end,) = table.end_states.values()
        newlines = frozenset(root.newline_types).union(
            *(lexer.newline_types for lexer in contextual.lexers.values())
        )
        skipped = frozenset(
            kind
            for kind in root.ignore_types
            if kind in newlines and all(lexer.agrees.get(kind) == frozenset() for lexer in lexers)
        )
        return FastTables(
            _scan(root_pattern, root.scanner.terminals, skipped),
            frozenset(root.ignore_types),
            skipped | {SCAN_END},
            newlines,
            tuple(lexers),
            lexer_of,
            tuple(actions),
            tuple(gotos),
            rules,
            start,
            end,
        )
    except (AttributeError, KeyError, ValueError):  # _UnknownParserError, or a shape
        return None


def _scan(
    alternation: re.Pattern[str], terminals: Sequence[TerminalDef], skipped: frozenset[str]
) -> tuple[str, int]:
    """The bulk scan: the basic lexer's alternation, then any one character, then the
    end of the text; and before that, the skipped kinds' text it may pass over in the
    same step (`_skippable`): a third of a file's matches are white space. (The end
    of the text makes white space there one match, not one try from each character.)"""
    flags = alternation.flags
    passed = "|".join(f"(?:{t.pattern.to_regexp()})" for t in _skippable(terminals, skipped, flags))
    prefix = f"(?:{passed})*+" if passed else ""
    any_last = f"(?P<{_ANY}>[\\s\\S])|(?P<{SCAN_END}>\\Z)"
    return f"{prefix}(?:{alternation.pattern}|{any_last})", flags


def _skippable(
    terminals: Sequence[TerminalDef], skipped: frozenset[str], flags: int
) -> list[TerminalDef]:
    """The skipped kinds the scan may pass over before a match, in the scan's order.

    Passing over a kind's text is what the alternation would do (make a match of
    that kind, skipped) where no alternative it tries first, other than those
    passed over, can start with a character the kind's matches start with: the
    alternation then tries the same pattern at the same place.
    """
    passed: list[TerminalDef] = []
    for k, terminal in enumerate(terminals):
        if terminal.name not in skipped:
            continue
        characters = first_characters(first_atoms(terminal.pattern.to_regexp(), flags))
        if characters is not None and not any(
            may_start_with(first_atoms(before.pattern.to_regexp(), flags), characters)
            for before in terminals[:k]
            if before not in passed
        ):
            passed.append(terminal)
    return passed


def _flatten(lexer: BasicLexer, bulk: Sequence[TerminalDef], flags: int) -> StateLexer:
    """One state's lexer; `bulk` is the bulk scan's alternatives, in order."""
    order = {t.name: i for i, t in enumerate(bulk)}
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
    # A bulk match of kind K stands if K is one of this lexer's alternatives and
    # each alternative this lexer tries before K was tried before K by the bulk
    # scan too (so it did not match here), or is a keyword the bulk scan leaves
    # to NAME, which cannot match unless the text starts with its first letter.
    agrees: dict[str, frozenset[str]] = {}
    terminals = scanner.terminals
    for k, terminal in enumerate(terminals):
        kind = terminal.name
        if kind not in order:
            continue
        unless: set[str] = set()
        for before in terminals[:k]:
            if before.name in order and order[before.name] < order[kind]:
                continue
            pattern = before.pattern
            if before.name in order or not isinstance(pattern, PatternStr) or pattern.flags:
                break
            unless.add(pattern.value[:1])
        else:
            agrees[kind] = frozenset(unless)
    _require(all(pattern.flags == flags for pattern in scanner._mres))
    patterns = tuple((pattern.pattern, pattern.flags) for pattern in scanner._mres)
    return StateLexer(patterns, keywords, agrees, _words(terminals, bulk, order, flags))


def _words(
    terminals: Sequence[TerminalDef],
    bulk: Sequence[TerminalDef],
    order: Mapping[str, int],
    flags: int,
) -> dict[str, dict[str, str]]:
    """The keywords this lexer makes of a bulk match that reads exactly their text,
    by the match's kind: `when`, read as a NAME where only keywords stand.

    The lexer makes the keyword K of that text there where no alternative it tries
    before K can match there: one the bulk scan tried before the match's kind (it
    failed), another word that is neither the start of the text nor starts with it,
    or a pattern that cannot start with the text's first character.
    """
    _require(not flags & re.IGNORECASE)  # words below are compared exactly
    words: dict[str, dict[str, str]] = {}
    for k, terminal in enumerate(terminals):
        pattern = terminal.pattern
        if terminal.name in order or not isinstance(pattern, PatternStr) or pattern.flags:
            continue
        word = pattern.value
        for kind in bulk:
            rank = order[kind.name]
            if re.fullmatch(kind.pattern.to_regexp(), word, flags) and not any(
                _may_match(before, word, order.get(before.name, rank) < rank, flags)
                for before in terminals[:k]
            ):
                words.setdefault(kind.name, {}).setdefault(word, terminal.name)
    return words


def _may_match(terminal: TerminalDef, word: str, tried: bool, flags: int) -> bool:
    """Whether `terminal` may match where the text starts with `word` (and the bulk
    scan's alternative read exactly `word`); `tried`: that scan tried it there first."""
    if tried:
        return False
    pattern = terminal.pattern
    if isinstance(pattern, PatternStr) and not pattern.flags:
        return word.startswith(pattern.value) or pattern.value.startswith(word)
    return may_start_with(first_atoms(pattern.to_regexp(), flags), word[:1])


def _recipes(tree_builder: ParseTreeBuilder) -> dict[Any, Reduce]:
    """Lark's tree builder's recipe for each rule, as `Reduce`s."""
    _require(not tree_builder.propagate_positions and not tree_builder.ambiguous)
    recipes: dict[Any, Reduce] = {}
    for rule, chain in tree_builder.rule_builders:
        include: tuple[tuple[int, bool, int], ...] | None = None
        append_none, expand1 = 0, False
        for wrapper in chain:
            if wrapper is ExpandSingleChild:
                expand1 = True
            elif isinstance(wrapper, partial) and wrapper.func is ChildFilterLALR:
                steps, append_none = wrapper.args
                include = tuple((i, bool(splice), nones) for i, splice, nones in steps)
            elif isinstance(wrapper, partial) and wrapper.func is ChildFilterLALR_NoPlaceholders:
                (steps,) = wrapper.args
                include = tuple((i, bool(splice), 0) for i, splice in steps)
            else:
                raise _UnknownParserError
        _require(not rule.options.template_source)
        name = str(rule.alias or rule.origin.name)
        recipes[rule] = Reduce(name, include, append_none, expand1)
    return recipes
