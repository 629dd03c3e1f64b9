"""A large site's check, saved between processes: a restart on unchanged rules
reads its check back instead of checking the site again.

A service restarting, or a second `politely check` of the same site, would
otherwise read back every file's parse (`politely.saved_parses`) and check the
whole site again: on a 10,000-rule site, reading the parses back is a third of
that and the check the rest. A check is a function of the site's files (their
paths, order and texts: `politely.loadcache.site_key`) and of what the zone
database says of the zones its schedules name (`politely.zones.verdict`), so:

- once a site of at least `SAVE_FROM` characters is checked, its result (every
  diagnostic, the syntax trees, each rule's `when` written out) is saved with
  the zone verdicts it read, under the site's key;
- a later process checking the same files reads it back, unless its own zone
  database gives one of those zones another verdict (a tzdata update, another
  machine sharing the cache folder): then it checks the site again and saves
  that.

The files sit beside the saved parses and share everything with them: the
version folder (another politely reads none), the checksum, the write in one
step, and "never fails a load"; but they are bounded apart, at `MAX_SAVED`
sites, the least recently used removed first.
"""

from __future__ import annotations

from functools import cache

import msgspec

from politely import analysis, saved_parses, zones
from politely import nodes as n
from politely.diagnostics import Diagnostic

# Characters of a site: checking fewer costs about what reading its check back does
# (a 1,000-rule file of ~380,000 characters: a check of ~80 ms against ~35 ms).
SAVE_FROM = 100_000
# Sites: a 10,000-rule site's check is about 18 MB. A service reloading edit after
# edit saves one per version; only the latest few are worth keeping.
MAX_SAVED = 8
_SUFFIX = ".check"  # MessagePack, as the saved parses, but bounded apart from them


class SavedCheck(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A site's check result without its sources (the reader has them), and what the
    zone database said of each zone it named."""

    zone_verdicts: dict[str, zones.Verdict]
    diagnostics: tuple[Diagnostic, ...]
    defines: dict[str, n.Define]
    policy: n.Policy | None
    rules: tuple[tuple[str, n.Rule], ...]
    expanded: tuple[analysis.Expanded, ...]


def load(key: bytes) -> SavedCheck | None:
    """The check saved under the site key `key`, or None when there is none, it
    cannot be read, or this machine's zone database disagrees with it."""
    saved = saved_parses.read(key, _SUFFIX, _decoder())
    if saved is None:
        return None
    if any(zones.verdict(zone) != verdict for zone, verdict in saved.zone_verdicts.items()):
        return None
    return saved


def save(key: bytes, check: SavedCheck) -> None:
    saved_parses.write(key, _SUFFIX, check, MAX_SAVED)


@cache
def _decoder() -> msgspec.msgpack.Decoder[SavedCheck]:
    return msgspec.msgpack.Decoder(SavedCheck)
