"""Reloading an unchanged site costs a hash: its check and its compile are kept.

Checking and compiling are pure functions of a site's files (their paths, their
order and their texts), so:

- `check_sources` keeps its results by the SHA-256 of those (`site_key`) in a
  least-recently-used cache bounded by the characters of the
  sites it holds (`politely.checker.CHECKED`);
- `compile_rules` hands back the rule set it compiled from a check of the same
  key while that rule set is still in use (`politely.compiler.COMPILED`, a
  weak map: it keeps no rule set alive). A service reloading unchanged files while serving them gets
  its running rule set back, with the bucket functions it already generated.

A changed byte, a renamed file or another order of files is another key, so it
is checked and compiled again (each file it shares with the old site still
comes from the parse cache, `politely.parser.PARSED`).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from typing import Generic, TypeVar

from cachetools import LRUCache

from politely.digest import sha256

_V = TypeVar("_V")
ENTRY_CHARS = 16_384  # what an entry counts for besides its texts: a bound on tiny sites


def site_key(sources: Mapping[str, str]) -> bytes:
    """The digest of every file's path and text, in order."""
    digest = sha256(more=sum(len(path) + len(text) for path, text in sources.items()))
    for path, text in sources.items():
        for part in (path, text):
            encoded = part.encode("utf-8", "surrogatepass")
            digest.update(len(encoded).to_bytes(8, "little"))
            digest.update(encoded)
    return digest.digest()


class SiteCache(Generic[_V]):
    """Values by site key, least recently used first out, holding at most
    `max_chars` characters of sites (each entry counts its texts and ENTRY_CHARS).
    Threads share it under a lock held only to look up and store."""

    def __init__(self, max_chars: int = 16_000_000) -> None:
        self._entries: LRUCache[bytes, tuple[_V, int]] = LRUCache(
            maxsize=max_chars, getsizeof=lambda entry: entry[1]
        )
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: bytes) -> _V | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self.misses += 1
                return None
            self.hits += 1
            return found[0]

    def put(self, key: bytes, value: _V, chars: int) -> None:
        size = chars + ENTRY_CHARS
        with self._lock:
            if size <= self._entries.maxsize:
                self._entries[key] = (value, size)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def chars(self) -> int:
        """The characters the entries count for, at most the bound."""
        return int(self._entries.currsize)


class LiveCache(Generic[_V]):
    """Values by site key while something else holds them (a weak map)."""

    def __init__(self) -> None:
        self._entries: weakref.WeakValueDictionary[bytes, _V] = weakref.WeakValueDictionary()

    def get(self, key: bytes) -> _V | None:
        return self._entries.get(key)

    def put(self, key: bytes, value: _V) -> None:
        self._entries[key] = value

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
