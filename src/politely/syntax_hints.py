"""Common mistakes at a syntax error, and what to write instead.

Each recogniser looks at the text where the parser stopped and, when it sees
its mistake, returns a `Hint`: a message, the fix, and the span to underline.
A hint never suggests a value that means something else: `24 hours` gets
`24h`, `per visit` gets `per session`, and a word is suggested only where it
fits (`and` only after a whole condition).

    >>> site = ErrorSite("cooldown 1 hour", 9, frozenset({"DURATION"}), frozenset(), None, "NUMBER")
    >>> spelled_duration(site)
    Hint(message='`1 hour` is not a duration', hints=('write 1h',), start=9, end=15)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from politely.durations import (
    HOW_TO_WRITE,
    UNFIXED_WORDS,
    UNIT_WORDS,
    UNITS,
    format_duration,
    parse_duration,
)
from politely.durations import spelled_duration as spelled

_NUMBER = r"\d+(?:\.\d+)?"
_NUMBER_THEN_WORD = re.compile(rf"({_NUMBER})[ \t]+([A-Za-z]+)\b")
# A number standing where a value goes (after a comparison, in a list), then blanks.
_VALUE_NUMBER_BEFORE = re.compile(rf"(?:==|!=|<=|>=|<|>|\[|,)[ \t]*({_NUMBER})[ \t]+$")
# The patterns searched for before an error start where a run of their first
# characters starts (`(?<!...)`): a match from inside a run implies one from its
# start, which a search finds first, so the answers are the same, and a long run
# is tried once instead of from each of its characters (quadratic on 20,000 digits).
_NUMBER_BEFORE = re.compile(rf"(?<!\d)({_NUMBER})[ \t]+$")
_DURATION_BEFORE = re.compile(r"(?<!\d)(\d+[a-zA-Z]+)[ \t]+$")
_DURATION_HERE = re.compile(r"\d+[a-zA-Z]+")
_WORD = re.compile(r"[A-Za-z]+")
_KEYWORD_BEFORE = re.compile(r"(?<![a-z])([a-z]+)[ \t]+$")
# A hyphenated name starts a word: not glued to a digit, `.` or `-` before it
# (`9cart-rescue` is no name to suggest), so a long run is tried from its start alone.
_HYPHENATED = re.compile(r"(?<![a-z0-9_.\-])[a-z_][a-z0-9_.]*(?:-[a-z0-9_]+)+")
_ZONE_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+)*")
_IN_BEFORE = re.compile(r"\bin[ \t]+$")
_CURLY_QUOTES = "“”„‟‘’‚‛«»‹›"
_PERCENT_WORDS = frozenset({"percent", "pct"})

# What other languages write for politely's comparisons and connectives:
# (what is written, what politely writes, the terminal that must fit there).
_LOOKALIKES = (
    ("=>", ">=", "COMPARATOR"),
    ("=<", "<=", "COMPARATOR"),
    ("=", "==", "COMPARATOR"),
    ("&&", "and", "AND"),
    ("&", "and", "AND"),
    ("||", "or", "OR"),
    ("|", "or", "OR"),
    ("!", "not", "NOT"),
)


@dataclass(frozen=True, slots=True)
class ErrorSite:
    """Where the parser stopped: the text, the position, what it would have taken.

    `accepts` are the terminals it would have taken, `words` the keywords
    among them; `clause` is the clause being written (`during`); `token` is
    the type of the token it could not take, or None when no token could
    even be read there (an unexpected character).
    """

    text: str
    at: int
    accepts: frozenset[str]
    words: frozenset[str]
    clause: str | None
    token: str | None

    @property
    def line_before(self) -> tuple[int, int]:
        """The bounds of the text of the line before `at`, for anchored searches."""
        return self.text.rfind("\n", 0, self.at) + 1, self.at


@dataclass(frozen=True, slots=True)
class Hint:
    message: str
    hints: tuple[str, ...]
    start: int
    end: int


def recognise(site: ErrorSite) -> Hint | None:
    """The first recogniser's hint for this site, or None."""
    for recogniser in RECOGNISERS:
        hint = recogniser(site)
        if hint is not None:
            return hint
    return None


def spelled_duration(site: ErrorSite) -> Hint | None:
    """`24 hours` where a duration goes, or `30 seconds` after a comparison: `24h`, `30s`."""
    if site.token == "NUMBER" and "DURATION" in site.accepts:
        found = _NUMBER_THEN_WORD.match(site.text, site.at)
        if found is None:
            return None
        number, word, start, end = found[1], found[2], found.start(), found.end()
    else:
        word_here = _WORD.match(site.text, site.at)
        before = _VALUE_NUMBER_BEFORE.search(site.text, *site.line_before)
        if word_here is None or before is None:
            return None
        number, word, start, end = before[1], word_here[0], before.start(1), word_here.end()
    if word.lower() in _PERCENT_WORDS and site.token != "NUMBER":
        return Hint(f"`{number} {word}` is not a percentage", (f"write {number}%",), start, end)
    return _duration_hint(f"{number} {word}", number, word, start, end)


def _duration_hint(written: str, number: str, word: str, start: int, end: int) -> Hint | None:
    message = f"`{written}` is not a duration"
    if word.lower() in UNFIXED_WORDS:
        return Hint(
            message, ("months and years have no fixed length: write days, such as 30d",), start, end
        )
    if word.lower() not in UNIT_WORDS:
        return None
    fixed = spelled(number, word)
    if fixed is None:
        return Hint(message, (HOW_TO_WRITE,), start, end)
    return Hint(message, (f"write {fixed}",), start, end)


def unit_without_number(site: ErrorSite) -> Hint | None:
    """`per day`, `cooldown hour`: a unit word where a duration goes; `per visit`."""
    if site.token != "NAME" or "DURATION" not in site.accepts:
        return None
    word = _WORD.match(site.text, site.at)
    if word is None:
        return None
    start, end, lower = word.start(), word.end(), word[0].lower()
    keyword = _KEYWORD_BEFORE.search(site.text, *site.line_before)
    written = f"{keyword[1]} " if keyword else ""
    if lower in ("visit", "visits") and "SESSION" in site.accepts:
        return Hint(f"`{word[0]}` is not a window", ("did you mean `per session`?",), start, end)
    if lower in UNFIXED_WORDS:
        return Hint(
            f"`{word[0]}` is not a duration",
            (f"months and years have no fixed length: write days, such as `{written}30d`",),
            start,
            end,
        )
    unit = UNIT_WORDS.get(lower)
    if unit is None or len(lower) == 1:
        return None
    fixed = format_duration(UNITS[unit])
    return Hint(f"`{word[0]}` is not a duration", (f"write `{written}{fixed}`",), start, end)


def spaced_duration(site: ErrorSite) -> Hint | None:
    """`1h 30m`: a duration written in two pieces."""
    if site.token != "DURATION":
        return None
    before = _DURATION_BEFORE.search(site.text, *site.line_before)
    here = _DURATION_HERE.match(site.text, site.at)
    if before is None or here is None or parse_duration(before[1] + here[0]) is None:
        return None
    return Hint(
        "a duration is written without spaces",
        (f"write {before[1]}{here[0]}",),
        before.start(1),
        here.end(),
    )


def spaced_percent(site: ErrorSite) -> Hint | None:
    """`50 %`: a percent sign away from its number."""
    if not site.text.startswith("%", site.at):
        return None
    before = _NUMBER_BEFORE.search(site.text, *site.line_before)
    if before is None:
        return None
    return Hint(
        "a percent sign goes right after its number",
        (f"write {before[1]}%",),
        before.start(1),
        site.at + 1,
    )


def lookalike_operator(site: ErrorSite) -> Hint | None:
    """`=`, `&&`, `||`, `!` where `==`, `and`, `or`, `not` would fit."""
    for written, meant, terminal in _LOOKALIKES:
        if not site.text.startswith(written, site.at) or terminal not in site.accepts:
            continue
        after = site.text[site.at + len(written) : site.at + len(written) + 1]
        if after == "=" or (written in ("&", "|") and after == written):
            return None  # `!=` and `==` are comparisons; `&&` is matched whole
        message = (
            f"`{written}` is not a comparison"
            if terminal == "COMPARATOR"
            else f"politely writes `{meant}`, not `{written}`"
        )
        return Hint(message, (f"did you mean `{meant}`?",), site.at, site.at + len(written))
    return None


def uppercase_keyword(site: ErrorSite) -> Hint | None:
    """`AND`, `Not`, `When`: a keyword that fits here, in capitals."""
    word = _WORD.match(site.text, site.at)
    if word is None or word[0].islower() or word[0].lower() not in site.words:
        return None
    lower = word[0].lower()
    return Hint(
        f"keywords are lowercase: `{lower}`, not `{word[0]}`",
        (f"did you mean `{lower}`?",),
        word.start(),
        word.end(),
    )


def quotes(site: ErrorSite) -> Hint | None:
    """Curly or single quotes around a text."""
    char = site.text[site.at : site.at + 1]
    if char and char in _CURLY_QUOTES:
        return Hint(
            f"`{char}` is a curly quote",
            ("replace the curly quotes with straight double quotes",),
            site.at,
            site.at + 1,
        )
    if char == "'":
        return Hint("`'` does not start a text", ("use double quotes",), site.at, site.at + 1)
    return None


def slash_comment(site: ErrorSite) -> Hint | None:
    """`//` or `/*` where a comment was meant."""
    written = site.text[site.at : site.at + 2]
    if written not in ("//", "/*"):
        return None
    return Hint(
        f"`{written}` does not start a comment", ("comments start with #",), site.at, site.at + 2
    )


def hyphenated_name(site: ErrorSite) -> Hint | None:
    """`cart-rescue`, `exit-intent`: a hyphen inside a name."""
    if not site.text.startswith("-", site.at) or "MINUS" in site.accepts:
        return None
    line_start = site.text.rfind("\n", 0, site.at) + 1
    line_end = site.text.find("\n", site.at)
    line_end = len(site.text) if line_end < 0 else line_end
    for found in _HYPHENATED.finditer(site.text, line_start, line_end):
        if found.start() < site.at < found.end():
            name = found[0]
            return Hint(
                f"`{name}` is not a name: names cannot contain `-`",
                (f"names use _: `{name.replace('-', '_')}`",),
                found.start(),
                found.end(),
            )
        if found.start() > site.at:
            break
    return None


def unquoted_zone(site: ErrorSite) -> Hint | None:
    """`in Europe/Paris`: a time zone without its double quotes."""
    if site.clause != "during" or "STRING" not in site.accepts:
        return None
    if _IN_BEFORE.search(site.text, *site.line_before) is None:
        return None
    zone = _ZONE_WORD.match(site.text, site.at)
    if zone is None:
        return None
    return Hint(
        "the time zone goes in double quotes",
        (f'put the zone in double quotes: in "{zone[0]}"',),
        zone.start(),
        zone.end(),
    )


RECOGNISERS: tuple[Callable[[ErrorSite], Hint | None], ...] = (
    spelled_duration,
    unit_without_number,
    spaced_duration,
    spaced_percent,
    lookalike_operator,
    uppercase_keyword,
    quotes,
    slash_comment,
    hyphenated_name,
    unquoted_zone,
)
