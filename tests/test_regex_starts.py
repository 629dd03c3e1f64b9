"""`politely.regex_starts` never says a pattern cannot start with a character that one
of its matches starts with: checked against matches drawn from the patterns themselves
(hypothesis' `from_regex`), the grammar's terminals among them.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from politely import parser
from politely.regex_starts import first_atoms, first_characters, may_start_with
from test_language_properties import SETTINGS

# Patterns made to catch each way of reading too little: what may be empty before the
# first character, alternatives, groups, lookarounds, negated and category classes.
PATTERNS = [
    r"a*\s",
    r"(?:x?)+y",
    r"(?:b|c?)d",
    r"(?=\d)\w+",
    r"(?!a)[a-c]",
    r"\bz",
    r"[^a-z]+",
    r"[\d_]x",
    r"\D",
    r"\S\s",
    r"\W",
    r"(?:)?q",
    r"(?>\s*)t",
    r"u{0,3}v",
    r"u*?v",
    r"(?i:k)",
    r"(?a:\w)",
    r"[ \t\f\r\n]+",
    r"(a?)\1b",
    ".",
]
TERMINALS = [t.pattern.to_regexp() for t in parser.terminals()]


@SETTINGS
@given(st.data())
def test_every_match_starts_with_a_character_the_analysis_allows(data: st.DataObject) -> None:
    pattern = data.draw(st.sampled_from(PATTERNS + TERMINALS))
    matched = data.draw(st.from_regex(pattern, fullmatch=True))
    atoms = first_atoms(pattern, 0)
    if matched == "":
        assert atoms is None
        return
    assert may_start_with(atoms, matched[0])
    characters = first_characters(atoms)
    assert characters is None or matched[0] in characters


def test_a_pattern_is_read_past_what_may_be_empty() -> None:
    assert may_start_with(first_atoms(r"a*\s", 0), " ")
    assert may_start_with(first_atoms(r"(?:b|c?)d", 0), "d")
    assert not may_start_with(first_atoms(r"(?:b|c?)d", 0), "e")


def test_a_pattern_that_matches_the_empty_string_may_start_anywhere() -> None:
    assert first_atoms(r"a*", 0) is None
    assert may_start_with(first_atoms(r"a*", 0), "z")


@pytest.mark.parametrize(
    ("pattern", "flags"), [(r"(?i:k)", 0), ("k", re.IGNORECASE), (r"(a?)\1b", 0)]
)
def test_what_the_analysis_cannot_read_may_start_anywhere(pattern: str, flags: int) -> None:
    assert may_start_with(first_atoms(pattern, flags), "K")


def test_classes_are_read_as_re_reads_them() -> None:
    assert not may_start_with(first_atoms(r"\d+(\.\d+)?%", 0), " \t\f\r\n")
    assert may_start_with(first_atoms(r"\d", 0), "\u0663")  # an Arabic-Indic digit
    assert not may_start_with(first_atoms(r"(?a:\d)", 0), "\u0663")
    assert not may_start_with(first_atoms(r"[^a-z]", 0), "q")
    assert may_start_with(first_atoms(r"[^a-z]", 0), " ")


def test_first_characters_are_spelled_out_only_when_few() -> None:
    assert first_characters(first_atoms(r"[ \t]+|#", 0)) == frozenset(" \t#")
    assert first_characters(first_atoms(r"\s", 0)) is None
    assert first_characters(first_atoms(r"[^#]", 0)) is None
