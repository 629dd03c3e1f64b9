"""Time zones as people write them, and the IANA names they mean.

Marketers write `"CEST"`, `"Paris"` or `"Europe/Berln"`; a schedule needs an
IANA name such as `"Europe/Paris"`. Every suggestion here is a real IANA zone
of the database politely runs on, found by what the text means, never by
spelling alone: `"CEST"` is an abbreviation the Central European zones use in
summer, so it gets those zones, never `"EST"` (US Eastern time) for looking
alike.

    >>> suggest("CEST")
    'write a city zone such as "Europe/Berlin" or "Europe/Paris"'
    >>> suggest("Paris")
    'did you mean "Europe/Paris"?'
"""

from __future__ import annotations

from contextlib import suppress
from datetime import UTC, datetime
from difflib import get_close_matches
from functools import cache, lru_cache
from pathlib import Path
from zoneinfo import TZPATH, ZoneInfo, ZoneInfoNotFoundError, available_timezones

import msgspec

# The areas of the database's canonical "Area/City" names; the rest are
# legacy aliases (`EST`, `US/Eastern`) that are never suggested.
_AREAS = frozenset(
    {
        "Africa",
        "America",
        "Antarctica",
        "Arctic",
        "Asia",
        "Atlantic",
        "Australia",
        "Europe",
        "Indian",
        "Pacific",
    }
)
# When several zones use one abbreviation, these come first, in this order
# (`CST`: Chicago before Shanghai); the others follow alphabetically.
_WELL_KNOWN = (
    "Europe/Berlin",
    "Europe/Paris",
    "Europe/London",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Vancouver",
    "America/Phoenix",
    "America/Anchorage",
    "Pacific/Honolulu",
    "America/Halifax",
    "America/St_Johns",
    "America/Toronto",
    "America/Mexico_City",
    "Asia/Kolkata",
    "Europe/Dublin",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Asia/Seoul",
    "Asia/Hong_Kong",
    "Asia/Jerusalem",
    "Europe/Athens",
    "Europe/Helsinki",
    "Europe/Lisbon",
    "Europe/Moscow",
    "Africa/Johannesburg",
    "Africa/Lagos",
    "Africa/Nairobi",
    "Australia/Sydney",
    "Australia/Melbourne",
    "Australia/Brisbane",
    "Australia/Adelaide",
    "Australia/Perth",
    "Pacific/Auckland",
)
# Instants at which to read the abbreviations in use: a winter and a summer day.
_SAMPLES = (
    datetime(2025, 1, 15, 12, tzinfo=UTC),
    datetime(2025, 7, 15, 12, tzinfo=UTC),
)


@lru_cache(maxsize=1024)  # every rule of a site may name the same zone
def valid_zone(name: str) -> bool:
    """Whether `name` is a zone of the database (never a path outside it)."""
    if not name or name != name.strip() or name.startswith("/") or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


@cache
def canonical_zones() -> tuple[str, ...]:
    """The database's "Area/City" zones, sorted."""
    return tuple(sorted(z for z in available_timezones() if z.split("/")[0] in _AREAS))


@cache
def _abbreviations() -> dict[str, tuple[str, ...]]:
    """Each alphabetic abbreviation in use (`CEST`) and the zones that use it."""
    users: dict[str, dict[str, None]] = {}  # ordered sets
    for zone in canonical_zones():
        info = ZoneInfo(zone)
        for instant in _SAMPLES:
            abbreviation = instant.astimezone(info).tzname()
            if abbreviation and abbreviation.isalpha():
                users.setdefault(abbreviation.upper(), {})[zone] = None
    return {abbreviation: _ranked(list(zones)) for abbreviation, zones in users.items()}


def _ranked(zones: list[str]) -> tuple[str, ...]:
    """Well-known zones first; failing those, the zones of the database's country
    table (`zone.tab`: no legacy aliases such as `Europe/Belfast`); then the rest."""
    known = [z for z in _WELL_KNOWN if z in zones]
    if known:
        return tuple(known)
    listed = _country_zones()
    return tuple(sorted(zones, key=lambda z: (z not in listed, z)))


@cache
def _country_zones() -> frozenset[str]:
    """The zones of the database's `zone.tab`, or none if it cannot be read."""
    places = [Path(p) / "zone.tab" for p in TZPATH]
    with suppress(ModuleNotFoundError):  # the tzdata package, when the system has none
        from importlib.resources import files  # here: slow to import, rarely needed

        places.append(Path(str(files("tzdata").joinpath("zoneinfo", "zone.tab"))))
    for place in places:
        try:
            text = place.read_text(encoding="utf-8")
        except OSError:
            continue
        rows = (line.split("\t") for line in text.splitlines() if not line.startswith("#"))
        return frozenset(row[2] for row in rows if len(row) >= 3)
    return frozenset()


def abbreviation_zones(name: str) -> tuple[str, ...]:
    """The zones using `name` as an abbreviation (`CET` → Berlin, Paris, ...)."""
    if not name.isalpha():
        return ()
    return _abbreviations().get(name.upper(), ())


def unlike_its_cities(name: str) -> str | None:
    """For a valid zone named like an abbreviation, the first city zone using that
    abbreviation whose clock differs from it in winter or summer, else None.

    `"EST"` keeps UTC-5 all year while New York moves its clocks in summer;
    `"CET"` keeps the same clock as Berlin, so it is fine as written.
    """
    cities = abbreviation_zones(name)
    if not cities:
        return None
    zone, city = ZoneInfo(name), ZoneInfo(cities[0])
    same = all(t.astimezone(zone).utcoffset() == t.astimezone(city).utcoffset() for t in _SAMPLES)
    return None if same else cities[0]


@cache
def _by_lowercase() -> dict[str, str]:
    return {zone.lower(): zone for zone in available_timezones()}


@cache
def _cities() -> dict[str, tuple[str, ...]]:
    """Each city, in lowercase with spaces for `_`, and its zones (`new york`)."""
    cities: dict[str, list[str]] = {}
    for zone in canonical_zones():
        city = zone.rsplit("/", 1)[-1].replace("_", " ").lower()
        cities.setdefault(city, []).append(zone)
    return {city: tuple(zones) for city, zones in cities.items()}


def _such_as(zones: tuple[str, ...]) -> str:
    return " or ".join(f'"{zone}"' for zone in zones[:2])


def suggest(name: str) -> str:
    """The help for a zone name that is not in the database."""
    if zones := abbreviation_zones(name):
        return f"write a city zone such as {_such_as(zones)}"
    if (same := _by_lowercase().get(name.lower())) is not None:
        return f'did you mean "{same}"?'
    if "/" not in name:
        city = name.replace("_", " ").strip().lower()
        cities = _cities()
        if city in cities:
            return f"did you mean {_such_as(cities[city])}?"
        close = get_close_matches(city, list(cities), n=1, cutoff=0.8)
        if close:
            return f"did you mean {_such_as(cities[close[0]])}?"
    close = get_close_matches(name, canonical_zones(), n=1, cutoff=0.8)
    if close:
        return f'did you mean "{close[0]}"?'
    return 'write an "Area/City" zone such as "Europe/Berlin"'


class Verdict(msgspec.Struct, frozen=True, array_like=True):
    """All a check reads from the zone database about a zone a schedule names.

    A check is a function of the site's files and of these: a check saved on
    one machine (`politely.saved_checks`) is reused only where the database
    gives every zone it named the same verdict.
    """

    valid: bool
    abbreviation: bool  # named like an abbreviation in use (`"CEST"`)
    unlike_city: str | None  # a valid zone whose clock differs from this city's (`"EST"`)
    hint: str  # the help shown with the error or warning, "" when there is none


@lru_cache(maxsize=1024)  # every rule of a site may name the same zone
def verdict(name: str) -> Verdict:
    """What a check says of the zone `name`: unknown, fine, or unlike its cities."""
    if not valid_zone(name):
        return Verdict(False, bool(abbreviation_zones(name)), None, suggest(name))
    city = unlike_its_cities(name)
    return Verdict(True, False, city, "" if city is None else suggest(name))
