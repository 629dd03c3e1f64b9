"""A large site's check, saved between processes: a restart on unchanged rules
reads its check back instead of checking the site again.

A service restarting, or a second `politely check` of the same site, would
otherwise read back every file's parse (`politely.saved_parses`) and check the
whole site again: on a 10,000-rule site, reading the parses back is a third of
that and the check the rest. A check is a function of the site's files (their
paths, order and texts: `politely.loadcache.site_key`) and of what the zone
database says of the zones its schedules name (`politely.zones.verdict`), so:

- once a site of at least `SAVE_FROM` characters is checked, its result (every
  diagnostic and the syntax trees) is saved with the zone verdicts it read,
  under the site's key;
- a later process checking the same files reads it back (each rule's `when`
  is written out again, each define once), unless its own zone database gives
  one of those zones another verdict (a tzdata update, another machine sharing
  the cache folder): then it checks the site again and saves that. The
  verdicts come first in the file, so a disagreement costs no decoding of the rest.

The files sit beside the saved parses and share everything with them: the
version folder (another politely reads none), the checksum, the write in one
step, and "never fails a load"; but they are bounded apart, at `MAX_SAVED`
sites, the least recently used removed first. The checksum finds damage, not
forgery: a file that passes it is taken as the checker's own output, as the
parser file in the same folder is loaded as code, so the cache folder must be
one only its user can write (`~/.cache/politely` is).
"""

from __future__ import annotations

from functools import cache
from typing import TypeVar

import msgspec

from politely import nodes as n
from politely import saved_parses, zones
from politely.diagnostics import Diagnostic

# Characters of a site: checking fewer costs about what reading its check back does
# (measured with its parses at hand: ~250 rules in 95,000 characters, 27 ms against
# 29 ms; 1,000 rules, 98 against 55 ms).
SAVE_FROM = 100_000
# Sites: a 10,000-rule site's check is about 12 MB. A service reloading edit after
# edit saves one per version; only the latest few are worth keeping.
MAX_SAVED = 8
_SUFFIX = ".check"  # MessagePack, as the saved parses, but bounded apart from them
_S = TypeVar("_S", bound=msgspec.Struct)


class SavedCheck(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A site's check result without its sources (the reader has them) or its
    expansions (each define written out once per use would make a define-heavy
    site's file, and its memory, many times larger: the reader expands again,
    sharing each body), and what the zone database said of each zone it named."""

    zone_verdicts: dict[str, zones.Verdict]
    diagnostics: tuple[Diagnostic, ...]
    defines: dict[str, n.Define]
    policy: n.Policy | None
    rules: tuple[tuple[str, n.Rule], ...]


class _Verdicts(msgspec.Struct, array_like=True):
    """A saved check's first field alone: read before the rest is decoded."""

    zone_verdicts: dict[str, zones.Verdict]


def load(key: bytes) -> SavedCheck | None:
    """The check saved under the site key `key`, or None when there is none, it
    cannot be read, or this machine's zone database disagrees with it (found
    before the rest of the file is decoded)."""
    data = saved_parses.read_bytes(key, _SUFFIX)
    if data is None:
        return None
    head = saved_parses.decode(_decoder(_Verdicts), data)
    if head is None:
        return None
    if any(zones.verdict(zone) != verdict for zone, verdict in head.zone_verdicts.items()):
        return None
    return saved_parses.decode(_decoder(SavedCheck), data)


def save(key: bytes, check: SavedCheck) -> None:
    saved_parses.write(key, _SUFFIX, check, MAX_SAVED)


@cache
def _decoder(shape: type[_S]) -> msgspec.msgpack.Decoder[_S]:
    return msgspec.msgpack.Decoder(shape)
