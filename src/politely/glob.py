"""Glob matching without backtracking: `*` is any run of characters, `?` one character.

A glob is split at its stars into literal segments; the first must start the
text, the last must end it, and each middle one is found leftmost after the
previous one. Greedy leftmost placement is always right for star-separated
segments, and nothing is ever retried, so `*a*a*a*a*a*b` against 2,000
characters costs a few `str.find` calls instead of the exponential
backtracking of a regular expression: linear in the text.

A middle segment holding `?` is found by a regular expression without
quantifiers, after the `?`s it starts with (they only shift where it begins,
so `*???b*` searches for `b` three characters on); one with `?` between
literals (`a??b`) costs up to its own length at each place its first literal
occurs, so at most the segment's length times the text's.

    >>> compile_glob("/pricing*")("/pricing/teams")
    True
    >>> compile_glob("*a*a*a*a*a*b")("a" * 2000)
    False
"""

from __future__ import annotations

import re
from collections.abc import Callable


def compile_glob(pattern: str) -> Callable[[str], bool]:
    if "*" not in pattern and "?" not in pattern:
        return pattern.__eq__
    segments = pattern.split("*")
    if "?" not in pattern:
        return _literal_segments(segments)
    return _wildcard_segments(segments)


def inline(variable: str, pattern: str) -> str | None:
    """A Python expression testing `variable` against a simple glob, or None.

    Generated conditions test the common shapes (`/pricing*`, `*.pdf`,
    `*sale*`, no wildcard) with a string method instead of a function call.

        >>> inline("path", "/pricing*")
        "path.startswith('/pricing')"
    """
    if "?" in pattern:
        return None
    stars = pattern.count("*")
    if stars == 0:
        return f"{variable} == {pattern!r}"
    if stars == 1 and pattern.endswith("*"):
        return f"{variable}.startswith({pattern[:-1]!r})"
    if stars == 1 and pattern.startswith("*"):
        return f"{variable}.endswith({pattern[1:]!r})"
    if stars == 2 and pattern.startswith("*") and pattern.endswith("*"):
        return f"{pattern[1:-1]!r} in {variable}"
    return None


def _literal_segments(segments: list[str]) -> Callable[[str], bool]:
    head, *middle, tail = segments
    least = len(head) + len(tail) + sum(map(len, middle))

    def match(text: str) -> bool:
        if len(text) < least or not text.startswith(head) or not text.endswith(tail):
            return False
        position, end = len(head), len(text) - len(tail)
        for segment in middle:
            found = text.find(segment, position, end)
            if found < 0:
                return False
            position = found + len(segment)
        return True

    return match


def _wildcard_segments(segments: list[str]) -> Callable[[str], bool]:
    """Segments with `?`: each becomes a regular expression without quantifiers."""
    compiled = [_segment(s) for s in segments]
    lengths = [len(s) for s in segments]
    if len(segments) == 1:
        return lambda text: compiled[0].fullmatch(text) is not None
    head, *_, tail = compiled
    # Each middle segment as (the `?`s it starts with, the rest, its whole length).
    middle = [
        (len(s) - len(s.lstrip("?")), _segment(s.lstrip("?")), len(s)) for s in segments[1:-1]
    ]
    head_len, tail_len = lengths[0], lengths[-1]
    least = sum(lengths)

    def match(text: str) -> bool:
        if len(text) < least:
            return False
        end = len(text) - tail_len
        if head.match(text) is None or tail.fullmatch(text, end) is None:
            return False
        position = head_len
        for skipped, rest, length in middle:
            found = rest.search(text, position + skipped, end)
            if found is None:
                return False
            position = found.start() - skipped + length
        return True

    return match


def _segment(segment: str) -> re.Pattern[str]:
    return re.compile("".join("." if c == "?" else re.escape(c) for c in segment), re.DOTALL)
