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


def parse_duration(text: str) -> int | None:
    """Seconds in a duration such as `1h30m`, or None if it is not one."""
    if not _DURATION.fullmatch(text):
        return None
    return sum(int(count) * UNITS[unit] for count, unit in _PART.findall(text))


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
