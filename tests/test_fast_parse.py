"""The one-loop run of Lark's parser (`politely.lalr`) builds exactly what the careful,
token-by-token run builds, spans included, or gives up and leaves the careful run to
report the syntax error.

Syntax trees compare without their spans (`politely.nodes`), so these tests compare
every field of every node and diagnostic instead.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given

from politely import nodes as n
from politely import parser
from politely.lalr import FastParse
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
    """Everything a value holds, spans and positions included, as plain data."""
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
    run = parser._Run(msgspec.structs.replace(parser._grammar(), fast=None), text, path)
    run.parse_all()
    return run.result()


def both(text: str, path: str = "site.rules") -> tuple[bool, Any, Any]:
    """Whether the fast path took the text, and the two results."""
    run = parser._Run(parser._grammar(), text, path)
    took = run._parse_fast()
    if not took:
        run = parser._Run(parser._grammar(), text, path)
        run.parse_all()
    return took, exact(run.result()), exact(careful(text, path))


def test_the_grammar_has_a_fast_path() -> None:
    """Fails loudly if a Lark upgrade changes what `politely.lalr` reads."""
    assert FastParse.of(parser._grammar().lark) is not None


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
