"""The one-loop run of Lark's parser (`politely.lalr`) builds exactly what the careful,
token-by-token run builds, spans included, or gives up and leaves the careful run to
report the syntax error.

Syntax trees compare without their spans (`politely.nodes`), so these tests compare
every field of every node and diagnostic instead; and, one level down, every call the
builder receives: the same methods in the same order with the same children, each
token's kind, text and positions included (which is what proves the bulk lexing
lexes as Lark's contextual lexer, and the reduces hand children as Lark's tree
builder). The fast path runs from tables read from Lark's parser once
(`politely.lalr_tables`) and from the cache folder after that
(`politely.fast_tables`): both are proved to be the same tables.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lark import Lark, Token, Transformer, Tree

from politely import nodes as n
from politely import parser
from politely.lalr import FastParse
from politely.lalr_tables import tables_of
from test_language_properties import (
    EXAMPLES,
    GRAMMAR_SETTINGS,
    SETTINGS,
    _arbitrary_text,
    mutated_examples,
    programs,
)

SITE = "define engaged = session.pageviews >= 3 and page.dwell >= 20s\n" + "".join(
    f"rule r{i} {{\n  priority {i}\n  on page_view, tick\n"
    f'  when page.path matches "/p{i}/*" and engaged\n'
    f'   and (visitor.plan != "x" or not visitor.returning) and page.dwell >= {i}s\n'
    f'  say "Hi {{visitor.name or there}}!" or "Need a hand?"  # two variants\n'
    f"  cooldown {1 + i}h\n  at most 1 per session\n  during weekdays 08:00-20:00\n}}\n"
    for i in range(40)
)


def exact(value: Any) -> Any:
    """Everything a value holds, spans and positions included, as plain data (a
    token kept in a tree would show: the two ways make tokens of different classes)."""
    if isinstance(value, str) and type(value) is not str:
        return (type(value).__module__, value)
    if isinstance(value, n.Node):
        return (
            type(value).__name__,
            *(exact(getattr(value, name)) for name in value.__struct_fields__),
        )
    if isinstance(value, tuple | list):
        return tuple(exact(v) for v in value)
    return value


def careful(text: str, path: str = "site.rules") -> parser.ParseResult:
    """The parse without the fast path: Lark's interactive parser, token by token."""
    run = parser._Run(text, path, None)
    run.parse_all()
    return run.result()


def both(text: str, path: str = "site.rules") -> tuple[bool, Any, Any]:
    """Whether the fast path took the text, and the two results."""
    run = parser._Run(text, path, parser._fast())
    took = run._parse_fast()
    if not took:
        run = parser._Run(text, path, parser._fast())
        run.parse_all()
    return took, exact(run.result()), exact(careful(text, path))


def built() -> FastParse:
    """The fast path, its tables read from Lark's parser in this process."""
    tables = tables_of(parser._grammar().lark)
    assert tables is not None
    return FastParse(tables)


# The builder's grammar callbacks: every rule name and alias it has a method for.
CALLBACKS = frozenset(
    name
    for rule in parser._grammar().lark.rules
    for name in (str(rule.alias or rule.origin.name),)
    if hasattr(parser._Builder, name)
)


def _child(child: Any) -> Any:
    if isinstance(child, str):  # Lark's Token, or the fast path's (`politely.lalr.Token`)
        return ("token", child.type, child.value, child.start_pos, child.line, child.column)
    assert not isinstance(child, Tree), "a Lark helper tree reached the builder"
    return exact(child)


def _token_ends(child: Any) -> Any:
    if isinstance(child, str):
        return (child.end_line, child.end_column, child.end_pos)
    return None


class _Recording(parser._Builder):
    """The builder, noting each grammar callback it receives and its children."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.calls: list[tuple[str, Any]] = []

    def __getattribute__(self, name: str) -> Any:
        found = super().__getattribute__(name)
        if name not in CALLBACKS:
            return found
        calls = super().__getattribute__("calls")

        def record(children: list[Any]) -> Any:
            calls.append((name, [_child(c) for c in children], [_token_ends(c) for c in children]))
            return found(children)

        return record


def calls(text: str, fast_parse: FastParse | None = None) -> tuple[list[Any], list[Any]]:
    """The calls the builder receives from the fast path (its tables read from Lark's
    parser, unless given), and from Lark's parser."""
    fast = _Recording("site.rules")
    (fast_parse or built()).parse(text, fast, parser._glued)
    run = parser._Run(text, "site.rules", None)
    slow = run.builder = _Recording("site.rules")
    run.parse_all()
    assert not run.syntax
    return fast.calls, slow.calls


# Words that are keywords in some states and names in others, and keywords glued to
# what follows: where the bulk scan's match differs from the state's lexer's.
KEYWORDS_AND_NAMES = [
    'rule rule { when visitor.visitor and session.session > 1 say "Hi" }',
    'rule r { when page.when == "x" and visitor.say and event.on say "Hi" }',
    'rule on { on page_view, rule, define, say, when\n say "Hi" }',
    'rule r { when visitor.sun and visitor.weekdays or visitor.daily say "Hi" }',
    'define session = visitor.per and visitor.most\nrule r { when session say "x" }',
    'rule r { at most 2 invitations per visitor sitewide say "Hi" }',
    'rule r { at most 2 invitation per 3h say "Hi" cooldown 1h }',
    'rule r { during mon-fri 09:00-17:00, sat 10:00-12:00 in "Europe/Paris" say "x" }',
    'rule r { when visitor.x in [1, -2, 3%, 4s, true, false, "y",] say "Hi" }',
    'rule r { when not(visitor.a)and(visitor.b)or visitor.c not in [] say"x"or"y"}',
    "policy { quiet 2h after dismiss session timeout 30m }\n# a comment\n",
    'rule r { when visitor.invitations >= 1 and visitor.sitewide say "Hi" }',
    'rule r { only when visitor.only never when visitor.never say "Hi" }',
    'rule r {\n\twhen page.dwell>=30s\r\n\tsay "a \\"b\\" {visitor.name}"\n}',
]


def test_the_grammar_has_a_fast_path() -> None:
    """Fails loudly if a Lark upgrade changes what `politely.lalr_tables` reads."""
    assert tables_of(parser._grammar().lark) is not None
    assert parser._fast() is not None


def test_a_generated_site_is_parsed_by_the_fast_path_exactly() -> None:
    took, fast, slow = both(SITE)
    assert took
    assert fast == slow


@pytest.mark.parametrize("text", EXAMPLES)
def test_the_example_files_are_parsed_by_the_fast_path_exactly(text: str) -> None:
    took, fast, slow = both(text)
    assert took
    assert fast == slow


@pytest.mark.parametrize(
    "text",
    [
        'rule r { when page.dwell >= 5zz say "Hi" }',  # a diagnostic from the builder
        'rule r { when page.dwell >= 30s say "Hi {visitor.name or you}! {{x}} \\q" }',
        "policy { quiet 1.5h after dismiss }",
        "",
        "# only a comment",
    ],
)
def test_builder_diagnostics_come_the_same_from_the_fast_path(text: str) -> None:
    took, fast, slow = both(text)
    assert took
    assert fast == slow


@pytest.mark.parametrize(
    "text",
    [
        'rule r { when page.dwell >= 30s say "Hi" ',  # the end comes too soon
        'rule r { when page.dwell >= 30s say "Hi" }\nrule s { when }\n',
        'rule r { at most 1 per sessions say "Hi" }',  # a keyword glued to a word
        'rule r { when page.dwell >= 30s say "Hi }',  # no closing quote
        'rule r { when page.dwell >= 30s say "Hi" } @',
    ],
)
def test_a_syntax_error_is_left_to_the_careful_parse(text: str) -> None:
    took, fast, slow = both(text)
    assert not took
    assert fast == slow
    assert any(d.code == "syntax" for d in parser.parse(text).diagnostics)


@GRAMMAR_SETTINGS
@given(programs)
def test_programs_of_the_grammar_are_parsed_the_same(text: str) -> None:
    took, fast, slow = both(text)
    assert took
    assert fast == slow


@SETTINGS
@given(mutated_examples())
def test_mutated_examples_are_parsed_the_same(text: str) -> None:
    _, fast, slow = both(text)
    assert fast == slow


@SETTINGS
@given(_arbitrary_text)
def test_arbitrary_text_is_parsed_the_same(text: str) -> None:
    _, fast, slow = both(text)
    assert fast == slow


@pytest.mark.parametrize("text", [SITE, *EXAMPLES, *KEYWORDS_AND_NAMES])
def test_the_builder_receives_the_same_calls_from_the_fast_path(text: str) -> None:
    fast, slow = calls(text)
    assert fast == slow
    assert fast  # (a text that built nothing would prove nothing)


@pytest.mark.parametrize("text", KEYWORDS_AND_NAMES)
def test_keywords_and_names_are_parsed_by_the_fast_path_exactly(text: str) -> None:
    took, fast, slow = both(text)
    assert took
    assert fast == slow


@GRAMMAR_SETTINGS
@given(programs)
def test_programs_of_the_grammar_make_the_same_builder_calls(text: str) -> None:
    fast, slow = calls(text)
    assert fast == slow


# --- the builder's shortcuts build what the long way builds ---------------------------

# What a STRING token holds between its quotes (the grammar's STRING): a body ending
# in a lone backslash is none, and the builder may assume there is none.
_STRING_HOLDS = re.compile(r'([^"\\\n]|\\.)*')
_STRING_BODY = st.text(
    alphabet=st.sampled_from(list('ab {}.\\\\"x_ ')) | st.characters(codec="utf-8"),
    max_size=30,
).filter(lambda body: _STRING_HOLDS.fullmatch(body) is not None)


@SETTINGS
@given(_STRING_BODY, st.integers(1, 5), st.integers(1, 40))
def test_a_message_without_marks_is_built_as_the_scan_builds_it(
    body: str, line: int, column: int
) -> None:
    literal = '"' + body + '"'
    token = Token("STRING", literal, 0, line, column, line, column + len(literal), len(literal))
    short, long = parser._Builder("f"), parser._Builder("f")
    assert exact(short._message(token)) == exact(long._scanned_message(token, body))
    assert exact(short.diagnostics) == exact(long.diagnostics)


DURATIONS = ["30s", "3s", "1h30m", "1h", "5zz", "1.5h", "9" * 30 + "s", "0s", "30s"]


def test_durations_read_again_in_one_file_are_the_same_durations() -> None:
    builder = parser._Builder("f")
    for k, text in enumerate(DURATIONS * 2):
        token = Token("DURATION", text, 10 * k, k + 1, 3, k + 1, 3 + len(text), 10 * k + len(text))
        fresh = parser._Builder("f")
        assert exact(builder._duration(token)) == exact(fresh._duration(token))
        if fresh.diagnostics:
            assert exact(builder.diagnostics[-1]) == exact(fresh.diagnostics[-1])


# --- the bulk scan against a grammar made to trip it -----------------------------------

# After `go`, only `ab` and A can stand: `ab` is a keyword of that state, which the
# bulk scan does not know (elsewhere it is left to NAME), and it comes before A in
# the state's order. In `go ab1`, NAME does not match `ab` (a digit follows), so the
# bulk scan's match is A, `a`; the state's lexer makes `ab`.
TRAP = r"""
start: "go" pair | NAME
pair: "ab" DIGIT -> whole
    | A "b" DIGIT -> split
A: /a/
DIGIT: /[0-9]/
NAME: /[a-z]+(?![a-z0-9])/
%ignore " "
"""


class _Unchanged:
    """A post-lexer that changes nothing (the fast path reads Lark's lexer behind one)."""

    always_accept: tuple[str, ...] = ()

    def process(self, stream: Any) -> Any:
        return stream


class _Recorder(Transformer[Token, Any]):
    """Records each call of its rules, with the children as the builder got them."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Any] = []

    def start(self, children: list[Any]) -> None:
        self.calls.append(("start", children))


def _recording(*rules: str) -> type[_Recorder]:
    """A `_Recorder` for these rules: each returns its own name."""

    def recorded(rule: str) -> Callable[[_Recorder, list[Any]], str]:
        def method(self: _Recorder, children: list[Any]) -> str:
            self.calls.append((rule, [_child(c) for c in children]))
            return rule

        return method

    return type("Recorder", (_Recorder,), {rule: recorded(rule) for rule in rules})


_Pairs = _recording("whole", "split")


def _both_ways(
    grammar: str, text: str, recorder: type[_Recorder], **options: Any
) -> tuple[list[Any], list[Any]]:
    """The calls a recorder gets from the fast path and from Lark's own parser."""
    options = {"parser": "lalr", "lexer": "contextual", "postlex": _Unchanged(), **options}
    lark_builder = recorder()
    Lark(grammar, **options, transformer=lark_builder).parse(text)
    fast_builder = recorder()
    tables = tables_of(Lark(grammar, **options))
    assert tables is not None
    FastParse(tables).parse(text, fast_builder, lambda previous, token: False)
    return fast_builder.calls, lark_builder.calls


def test_a_keyword_the_bulk_scan_does_not_know_is_lexed_as_the_state_lexes_it() -> None:
    fast, lark = _both_ways(TRAP, "go ab1", _Pairs)
    assert fast == lark
    assert fast[0][0] == "whole"


# `item: "x" [NAME]` without its NAME keeps no child but the None of the missing NAME
# (Lark's filter: no child to include, one None after), and `mark: "y"` keeps nothing.
KEEPS_NONE = r"""
start: (item | mark)+
item: "x" [NAME]
mark: "y"
NAME: /[a-z]+/
%ignore " "
"""


_Items = _recording("item", "mark")


def test_a_rule_that_keeps_no_child_gets_its_nones_or_nothing() -> None:
    fast, lark = _both_ways(KEEPS_NONE, "x ab x y", _Items, maybe_placeholders=True)
    assert fast == lark
    assert ("item", [None]) in fast
    assert ("mark", []) in fast


# PADDED, tried before WS by every lexer, starts with the spaces WS matches: the bulk
# scan must not pass over white space before a match, or `  x` becomes a NAME.
PADDED_TRAP = r"""
start: item+
item: PADDED -> padded
    | NAME -> name
PADDED.2: / +x/
NAME: /[a-z]+/
%import common.WS
%ignore WS
"""

_Padded = _recording("padded", "name")


def test_white_space_an_earlier_terminal_can_start_with_is_not_passed_over() -> None:
    fast, lark = _both_ways(PADDED_TRAP, "a  x b\n x", _Padded)
    assert fast == lark
    assert [name for name, _ in fast] == ["name", "padded", "name", "name", "start"]


def test_the_bulk_scan_passes_over_white_space_and_comments() -> None:
    """A third of a file's matches are white space: the scan passes over it (and over
    comments) before a match, and a file's matches are then only its tokens."""
    scan = re.compile(*built().tables.scan)
    kinds = [match.lastgroup for match in scan.finditer(SITE)]
    assert "WS" not in kinds
    assert "COMMENT" not in kinds
    assert kinds[-1] == "fast_end_of_text"


# After `go`, BANG (`ab!`) comes before the keyword `ab` in the state's order, and the
# bulk scan reads `ab` as a NAME before it tries BANG: the keyword may not stand as
# the bulk scan read it, and the state's lexer makes BANG of `ab!`.
BANG_TRAP = r"""
start: "go" item | NAME
item: BANG -> bang
    | "ab" NAME -> keyword
BANG: /ab!/
NAME: /[a-z]+/
%ignore " "
"""

_Bangs = _recording("bang", "keyword")


@pytest.mark.parametrize("text", ["go ab!", "go ab cd"])
def test_a_keyword_an_earlier_pattern_may_match_is_lexed_again(text: str) -> None:
    fast, lark = _both_ways(BANG_TRAP, text, _Bangs)
    assert fast == lark


def test_keywords_the_bulk_scan_reads_as_names_stand_without_lexing_again() -> None:
    """`when`, `say` and the others are NAMEs to the bulk scan; where the state's lexer
    provably makes the keyword of them, no state's own patterns are needed. (Not `on`,
    where `only` comes first: the bulk scan's NAME does not prove `ly` does not follow.)"""
    fast = built()
    text = SITE.replace("  on page_view, tick\n", "")
    fast.parse(text, parser._Builder("site.rules"), parser._glued)
    assert fast._patterns == [None] * len(fast._patterns)
    fast.parse(SITE, parser._Builder("site.rules"), parser._glued)
    assert fast._patterns != [None] * len(fast._patterns)
