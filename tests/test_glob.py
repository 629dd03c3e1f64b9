"""Globs (docs/language.md) match the whole string: `*` is any run of
characters, `/` included, `?` is exactly one character, everything else is
literal and case-sensitive. Checked against a regular-expression oracle, and on
patterns that would make a backtracking matcher hang.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import examples
from politely.glob import compile_glob


def oracle(pattern: str, text: str) -> bool:
    """The meaning of a glob, spelled as a regular expression."""
    regex = "".join(
        ".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern
    )
    return re.fullmatch(regex, text, re.DOTALL) is not None


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("/pricing", "/pricing", True),
        ("/pricing", "/pricing/", False),
        ("/pricing", "/Pricing", False),
        ("/pricing*", "/pricing", True),
        ("/pricing*", "/pricing/teams/annual", True),  # `*` crosses `/`
        ("/pricing*", "/about/pricing", False),  # the whole string, not a part
        ("*pricing", "/en/pricing", True),
        ("*pricing", "/en/pricing/", False),
        ("*/checkout/*", "/shop/checkout/payment", True),
        ("/a?c", "/abc", True),
        ("/a?c", "/ac", False),  # `?` is exactly one character
        ("/a?c", "/abbc", False),
        ("/a?c", "/a/c", True),  # `?` matches `/` too
        ("???", "abc", True),
        ("???", "ab", False),
        ("?", "é", True),  # one character, not one byte
        ("?", "😀", True),
        ("*", "", True),
        ("*", "anything/at/all", True),
        ("**", "", True),
        ("", "", True),
        ("", "x", False),
        ("*.html", "/index.html", True),
        ("*.html", "/indexxhtml", False),  # `.` is literal
        ("/a+b", "/a+b", True),
        ("/a+b", "/aab", False),  # `+` is literal
        ("/x(1)", "/x(1)", True),
        ("/[ab]", "/[ab]", True),  # brackets are literal
        ("/[ab]", "/a", False),
        ("C:\\*", "C:\\temp", True),  # backslash is literal
        ("/PAGE*", "/page-1", False),  # case-sensitive
        ("/page*", "/PAGE-1", False),
        ("*a*b*", "xxaxxbxx", True),
        ("*a*b*", "xxbxxaxx", False),
        ("a*a", "a", False),  # the two `a`s cannot be the same character
        ("a*a", "aa", True),
        ("*?", "", False),
        ("*?", "x", True),
        ("?*?", "x", False),
        ("line*", "line\nbreak", True),  # `*` crosses newlines too
        # A middle segment's leading `?`s: its literal is looked for that many on.
        ("x*??b*", "xbcc", False),
        ("x*??b*", "xccb", True),
        ("x*??b*y", "xbyb", False),
        ("*???*", "ab", False),
        ("*???*", "abc", True),
    ],
)
def test_glob_semantics(pattern: str, text: str, matches: bool) -> None:
    assert compile_glob(pattern)(text) is matches
    assert oracle(pattern, text) is matches


# Small alphabets make matches likely; the literal ones include regex syntax.
_pattern_chars = st.sampled_from(
    ["a", "b", "/", "*", "?", ".", "\\", "[", "]", "+", "(", "\n", "é"]
)
_text_chars = st.sampled_from(["a", "b", "/", ".", "\\", "[", "\n", "é", "*", "?"])


@settings(max_examples=examples(400), deadline=None)
@given(st.text(_pattern_chars, max_size=10), st.text(_text_chars, max_size=14))
def test_glob_agrees_with_the_regex_oracle(pattern: str, text: str) -> None:
    assert compile_glob(pattern)(text) is oracle(pattern, text)


@settings(max_examples=examples(200), deadline=None)
@given(st.text(_pattern_chars, max_size=8), st.text(_text_chars, max_size=6))
def test_a_pattern_built_from_the_text_always_matches_it(prefix: str, text: str) -> None:
    """`prefix*` matches anything starting with a literal prefix, `*text` anything ending in it."""
    literal = prefix.replace("*", "").replace("?", "")
    assert compile_glob(literal + "*")(literal + text)
    plain = text.replace("*", "").replace("?", "")
    assert compile_glob("*" + plain)(prefix + plain)


@settings(max_examples=examples(200), deadline=None)
@given(st.text(_text_chars, max_size=12))
def test_a_glob_without_wildcards_is_plain_equality(text: str) -> None:
    literal = text.replace("*", "").replace("?", "")
    assert compile_glob(literal)(literal)
    assert not compile_glob(literal)(literal + "x")
    assert compile_glob("?" * len(text))(text)
    assert not compile_glob("?" * (len(text) + 1))(text)


# --- adversarial patterns: a backtracking matcher would take exponential time ---------
# These are not timed; with a backtracking matcher the suite would simply hang.


def test_many_stars_against_a_long_run_without_the_final_letter() -> None:
    assert compile_glob("*a*a*a*a*a*b")("a" * 2000) is False


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("*a*a*a*a*a*b", "a" * 2000, False),
        ("*a*a*a*a*a*b", "a" * 2000 + "b", True),
        ("a*" * 40 + "b", "a" * 5000, False),
        ("a*" * 40 + "b", "a" * 5000 + "b", True),
        ("*?*?*?*?*?*?*?*b", "x" * 3000, False),
        ("*a?a*a?a*a?a*b", "a" * 3000, False),
        ("*aa*aa*aa*aa*c", "ab" * 2000, False),
        ("?" * 3000, "a" * 2999, False),
        ("?" * 3000, "a" * 3000, True),
        ("*" * 500 + "x", "y" * 5000, False),
        ("*" + "ab*" * 200 + "c", "ab" * 3000, False),
        ("*" + "a?" * 50 + "b", "a" * 4000, False),
    ],
    ids=lambda value: value[:24] if isinstance(value, str) else str(value),
)
def test_adversarial_patterns_finish_with_the_right_answer(
    pattern: str, text: str, matches: bool
) -> None:
    assert compile_glob(pattern)(text) is matches


def test_a_compiled_glob_is_reusable_across_texts() -> None:
    match = compile_glob("/products/*/reviews?")
    assert [match(t) for t in ("/products/1/reviews", "/products/1/reviews2", "/products/")] == [
        False,
        True,
        False,
    ]


@pytest.mark.parametrize("pattern", ["/pricing*", "*.pdf", "*sale*", "/exact", "*", "**", "a*b"])
@pytest.mark.parametrize(
    "text", ["", "/pricing", "/pricing/teams", "x.pdf", "big sale now", "/exact", "ab"]
)
def test_inline_globs_mean_what_compiled_globs_mean(pattern: str, text: str) -> None:
    from politely.glob import inline

    expression = inline("text", pattern)
    if expression is not None:
        assert eval(expression, {"text": text}) == compile_glob(pattern)(text)
