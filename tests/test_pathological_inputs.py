"""Inputs within every bound that took quadratic time or memory per character get
the same answers in linear time and memory.

A hunt for inputs that hang or crash politely found: the syntax hints' patterns
rescanning a long run of digits or letters from each of its characters (a
20,000-digit number before a `%`: 15 s); the markup check doing the same over
`"<a" * 60,000` (11 s); the parser filtering each diagnostic against every part
it skipped after syntax errors (13 s for 20,000 of them); and the string
literal's pattern keeping state for each character (450 MB for a one-million-
character message). Each fix is held against the way it replaced (kept here as
the oracle) on generated input, and the large inputs themselves are checked.
"""

from __future__ import annotations

import re
import tracemalloc
from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import examples
from politely import checker, parser, syntax_hints
from politely.checker import check_sources
from politely.diagnostics import Diagnostic
from politely.resources import grammar_text

_NUMBER = r"\d+(?:\.\d+)?"
# The patterns as they were.
OLD_HINTS = {
    "_NUMBER_BEFORE": re.compile(rf"({_NUMBER})[ \t]+$"),
    "_DURATION_BEFORE": re.compile(r"(\d+[a-zA-Z]+)[ \t]+$"),
    "_KEYWORD_BEFORE": re.compile(r"([a-z]+)[ \t]+$"),
}
OLD_HYPHENATED = re.compile(r"[a-z_][a-z0-9_.]*(?:-[a-z0-9_]+)+")
OLD_MARKUP = re.compile(r"<\s*/?\s*[a-zA-Z!][^>]*>")
OLD_STRING = re.compile(r'"([^"\\\n]|\\.)*"')

_texts = st.text(alphabet="0123456789.abzAZ_- \t\n", max_size=40)


def spans(found: re.Match[str] | None) -> Any:
    return None if found is None else (found.span(), found.groups())


@settings(max_examples=examples(600), deadline=None)
@given(_texts, st.integers(0, 40), st.integers(0, 40))
def test_the_hints_look_behind_them_as_before(text: str, line: int, end: int) -> None:
    """A match from inside a run of the pattern's first characters implies one from
    the run's start, which a search finds first: the look-behind only spares the
    search the starts that would lose. (The hints search from a line's start, where
    nothing before can be part of a run.)"""
    line_starts = [0, *(i + 1 for i, c in enumerate(text) if c == "\n")]
    start = line_starts[line % len(line_starts)]
    for name, old in OLD_HINTS.items():
        new: re.Pattern[str] = getattr(syntax_hints, name)
        assert spans(new.search(text, start, end)) == spans(old.search(text, start, end)), name


@settings(max_examples=examples(600), deadline=None)
@given(_texts)
def test_a_hyphenated_name_is_found_where_it_starts_a_word(text: str) -> None:
    """The same names as before, but for a name glued to a digit, `.` or `-` before
    it (`9cart-rescue`, `0.b-c`), which is no name to suggest. (The old way never
    started a name right after a letter or `_`: it would have started before.)"""
    old = [m.span() for m in OLD_HYPHENATED.finditer(text)]
    new = [m.span() for m in syntax_hints._HYPHENATED.finditer(text)]
    assert new == [(a, b) for a, b in old if a == 0 or text[a - 1] not in "0123456789.-"]


_markup_texts = st.text(alphabet="<>/ \ta!b", max_size=30)


@settings(max_examples=examples(600), deadline=None)
@given(_markup_texts)
def test_markup_is_found_as_before(text: str) -> None:
    found = checker._MARKUP.search(text, 0, text.rfind(">") + 1)
    assert spans(found) == spans(OLD_MARKUP.search(text))


@settings(max_examples=examples(600), deadline=None)
@given(st.text(alphabet='"\\\nab', max_size=30), st.integers(0, 30))
def test_the_string_pattern_matches_as_before(text: str, at: int) -> None:
    (pattern,) = re.findall(r"^STRING: /(.*)/$", grammar_text(), re.M)
    new = re.compile(pattern)
    assert OLD_STRING.pattern != pattern
    old_match, new_match = OLD_STRING.match(text, at), new.match(text, at)
    assert (old_match and old_match.span()) == (new_match and new_match.span())


def test_a_long_message_is_parsed_in_memory_linear_in_its_length() -> None:
    """The old pattern kept some 160 bytes a character (a 300,000-character message:
    50 MB); the unrolled one keeps none."""
    text = 'rule r { when page.dwell >= 1s say "' + "a" * 300_000 + '" }'
    tracemalloc.start()
    try:
        result = parser._Run(text, "long.rules", parser._fast())
        result.parse_all()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.syntax == []
    assert peak < 40 * len(text), peak  # copies of the text, not a state per character


def test_the_large_inputs_get_their_answers() -> None:
    digits = "1" * 20_000
    site = {
        "a.rules": f'rule r {{\n  when page.dwell >= 1s\n  say "x"\n  cooldown {digits}h 30m\n}}\n',
        "b.rules": 'rule s { when page.dwell >= 1s say "' + "<a" * 60_000 + '>" }\n',
        "c.rules": "rule " + "a" * 20_000 + '-b { when page.dwell >= 1s say "x" }\n',
    }
    found = {(d.path, d.code): d for d in check_sources(site).diagnostics}
    assert found["b.rules", "markup-in-message"]
    assert any(h.startswith("names use _:") for h in found["c.rules", "syntax"].hints)
    assert ("a.rules", "syntax") in found


@settings(max_examples=examples(300), deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(1, 5)), max_size=8),
    st.lists(st.integers(0, 60), max_size=10),
)
def test_a_diagnostic_is_dropped_exactly_where_an_item_was_skipped(
    gaps: list[tuple[int, int]], positions: list[int]
) -> None:
    """Skipped parts come in file order (the parse goes forward): a search among
    them says what a look at each said."""
    skipped, at = [], 0
    for gap, length in gaps:
        skipped.append((at + gap, at + gap + length))
        at += gap + length
    run = SimpleNamespace(skipped=skipped, lines=SimpleNamespace(position=lambda line, _: line))
    starts = [start for start, _ in skipped]
    for position in positions:
        diagnostic = Diagnostic("x", "x", "a.rules", position, 1, position, 2)
        inside = any(start <= position < end for start, end in skipped)
        assert parser._Run._in_skipped(run, diagnostic, starts) is inside  # type: ignore[arg-type]
