"""Durations as rule writers write them: `45s`, `90m`, `1h30m`, `7d`.

>>> parse_duration("1h30m"), format_duration(5400)
(5400, '1h30m')
"""

from __future__ import annotations

import re

DAY = 86400
UNITS = {"w": 7 * DAY, "d": DAY, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(?:\d+[wdhms])+")
_PART = re.compile(r"(\d+)([wdhms])")
# Weeks are read but not written: `per 7d` and `per 14d` read better than `per 1w`.
_WRITTEN = (("d", DAY), ("h", 3600), ("m", 60), ("s", 1))
# Units as words, so a hint for `24 hours` can say `24h` (never `24s`).
UNIT_WORDS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), "s"),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), "m"),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), "h"),
    **dict.fromkeys(("d", "day", "days"), "d"),
    **dict.fromkeys(("w", "week", "weeks"), "w"),
}
# Words for spans of time that have no fixed length in seconds.
UNFIXED_WORDS = frozenset({"month", "months", "year", "years"})
# How to write a duration, for the hint when nothing more exact can be said.
HOW_TO_WRITE = "durations are whole numbers with a unit s, m, h, d or w, such as 45s, 90m or 1h30m"
# Digits a duration's number may have before it is certainly too long to read.
_MAX_DIGITS = 20


def parse_duration(text: str) -> int | None:
    """Seconds in a duration such as `1h30m`, or None if it is not one.

    A number of more than 20 digits is not read (Python refuses to convert
    one of over 4,300): such a duration is None too.
    """
    if not _DURATION.fullmatch(text):
        return None
    parts = _PART.findall(text)
    if any(len(count.lstrip("0")) > _MAX_DIGITS for count, _ in parts):
        return None
    return sum(int(count) * UNITS[unit] for count, unit in parts)


def spelled_duration(number: str, word: str) -> str | None:
    """`24` and `hours` as politely writes them, `24h`; None if that is not exact.

    The writer's number is kept (`24h`, not `1d`); a decimal is converted
    only when it makes whole seconds (`1.5 hours` is `1h30m`).

    >>> spelled_duration("24", "hours"), spelled_duration("1.5", "hour")
    ('24h', '1h30m')
    >>> spelled_duration("2", "parsecs") is None
    True
    """
    unit = UNIT_WORDS.get(word.lower())
    if unit is None or len(number) > _MAX_DIGITS:
        return None
    if number.isdigit():
        return f"{int(number)}{unit}"
    from fractions import Fraction  # only for a hint: not imported by every check

    seconds = Fraction(number) * UNITS[unit]
    return format_duration(int(seconds)) if seconds.denominator == 1 and seconds else None


def format_duration(seconds: int) -> str:
    """Largest unit first: 5400 is `1h30m`, 0 is `0s`."""
    if seconds == 0:
        return "0s"
    out = []
    for unit, size in _WRITTEN:
        count, seconds = divmod(seconds, size)
        if count:
            out.append(f"{count}{unit}")
    return "".join(out)
