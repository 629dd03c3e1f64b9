"""The in-memory store: for tests, simulations and the library's default.

One lock makes every operation atomic. Visitors live in a bounded table in
write order (`_Visitors`), each with its own expiry: the time of its last write
plus the `keep_for` the engine asks (the site's retention, never less than
its rules need), so an event stamped far in the future or the past (trusted
library time) never expires anybody else. An expired visitor comes back new
(first visit, no attributes, no history). When `maxsize` visitors are
tracked, the one written longest ago is forgotten early, whatever the rules:
each such eviction is counted (`evictions`) and logged. Size the store above
your active visitors, or use a durable store. Blocks are never evicted.

Profiles and histories are kept as the encoded bytes the seam carries, in one
MessagePack blob per visitor under a text key: compact (under 600 bytes a
visitor), and never tracked by the garbage collector, so no collection grows
with the visitors held.
"""

from __future__ import annotations

import logging
import threading
from array import array
from bisect import bisect_right, insort
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from politely.caps import Cap, sitewide_usage
from politely.state import AgentStatus, Block, Count, SitewideUsage
from politely.stores.base import Loaded, Outcome, Write
from politely.stores.contract import admit, remember, replay

log = logging.getLogger("politely.store")


# A visitor as the store reads it: (version, profile, history, remembered event
# ids, expiry). Kept as one MessagePack blob under a text key: a dict of only
# text and bytes is never tracked by the garbage collector (inserting a tuple,
# tracked when made, would make the collector walk the whole dict again), so
# a million visitors add nothing to any collection.
_Visitor = tuple[int, bytes | None, bytes | None, dict[str, tuple[float, bytes]] | None, float]
_NOBODY: _Visitor = (0, None, None, None, 0.0)  # never stored: the state of a new visitor
_pack = msgspec.msgpack.Encoder().encode
_unpack: Callable[[bytes], Any] = msgspec.msgpack.Decoder(tuple).decode  # a _Visitor, as stored


def _key(site: str, visitor: str) -> str:
    """One text for the pair (the site's length first: no two pairs share a key)."""
    return f"{len(site)}:{site}{visitor}"


@dataclass
class _Site:
    prefix: str  # its visitors' keys: `_key(site, "")` and the visitor
    blocks: dict[str, Block] = field(default_factory=dict)
    agents: AgentStatus | None = None
    # Invitation times, sorted: C doubles side by side, not float objects spread
    # over the heap, so the search every event makes stays in a few cache lines.
    sitewide: array[float] = field(default_factory=lambda: array("d"))
    stats: Counter[Count] = field(default_factory=Counter)


class _Visitors:
    """Visitors by key, least recently written first, at most `maxsize`.

    A plain dict of blobs in write order: a write moves the visitor to the end
    (a read, a tick that changes nothing, does not), and the first one is the
    one written longest ago, the first to go when the store is full. Why not
    an LRU cache (cachetools' LRUCache, an OrderedDict): the collector walks
    those whole (75 ms at a million visitors), and moving on every read would
    make the dict re-pack itself four times as often. Evictions are counted
    and logged at the 1st, 2nd, 4th...
    """

    __slots__ = ("_entries", "evictions", "maxsize")

    def __init__(self, maxsize: int) -> None:
        self._entries: dict[str, bytes] = {}
        self.maxsize = maxsize
        self.evictions = 0

    def get(self, key: str, now: float) -> _Visitor:
        """The visitor under `key` at `now`; an expired one is dropped and reads as new."""
        blob = self._entries.get(key)
        if blob is None:
            return _NOBODY
        found = _unpack(blob)
        if found[4] <= now:  # expired
            del self._entries[key]
            return _NOBODY
        if found[3] is not None:  # remembered event ids, stored as (id, at, decision)
            version, profile, history, seen, expires = found
            seen = {event_id: (at, decision) for event_id, at, decision in seen}
            found = version, profile, history, seen, expires
        visitor: _Visitor = found
        return visitor

    def put(self, key: str, visitor: _Visitor) -> None:
        version, profile, history, seen, expires = visitor
        remembered = None
        if seen:
            remembered = [(event_id, at, decision) for event_id, (at, decision) in seen.items()]
        entries = self._entries
        entries.pop(key, None)
        entries[key] = _pack((version, profile, history, remembered, expires))
        if len(entries) > self.maxsize:
            del entries[next(iter(entries))]
            self.evictions += 1
            if self.evictions & (self.evictions - 1) == 0:  # 1, 2, 4, 8...: loud, not a flood
                log.warning(
                    "memory store full (maxsize %d): %d visitors forgotten early so far",
                    self.maxsize,
                    self.evictions,
                )

    def pop(self, key: str) -> bool:
        return self._entries.pop(key, None) is not None

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class MemoryStore:
    def __init__(self, *, maxsize: int = 1_000_000) -> None:
        self.maxsize = maxsize
        self._visitors = _Visitors(maxsize=maxsize)
        self._sites: dict[str, _Site] = {}
        self._writes = 0  # versions come from one counter: a forgotten visitor never reuses one
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._visitors)

    @property
    def writes(self) -> int:
        """Commits applied so far (a tick that changed nothing made none)."""
        return self._writes

    @property
    def evictions(self) -> int:
        return self._visitors.evictions

    def _site(self, site: str) -> _Site:
        found = self._sites.get(site)
        if found is None:
            found = self._sites[site] = _Site(_key(site, ""))
        return found

    def load(
        self,
        site: str,
        visitor: str,
        now: float,
        *,
        event_id: str | None = None,
        sitewide: Sequence[Cap] = (),
    ) -> Loaded:
        lock = self._lock
        lock.acquire()  # not `with`: on every event, and `with` takes twice as long
        try:
            s = self._sites.get(site) or self._site(site)
            found = self._visitors.get(s.prefix + visitor, now)
            block = s.blocks.get(visitor) if s.blocks else None
            if block is not None and not block.active(now):
                del s.blocks[visitor]
                block = None
            times = s.sitewide
            usage: tuple[SitewideUsage, ...] = ()
            if len(sitewide) == 1:  # the usual sitewide cap: no list to build
                usage = (sitewide_usage(sitewide[0], times, now),)
            elif sitewide:
                usage = tuple([sitewide_usage(cap, times, now) for cap in sitewide])
        finally:
            lock.release()
        version, profile, history, seen, _ = found
        remembered = replay(seen, event_id) if event_id is not None else None
        return Loaded(version, profile, history, block, s.agents, usage, remembered)

    def commit(self, site: str, visitor: str, write: Write) -> Outcome:
        with self._lock:
            s = self._site(site)
            key = s.prefix + visitor
            version, profile, history, seen, expires = self._visitors.get(key, write.at)
            if version != write.version:
                return Outcome.CONFLICT
            outcome = Outcome.APPLIED
            claim = write.claim
            if claim is not None:
                admitted = admit(history, claim)
                if admitted is not None and not all(
                    sitewide_usage(cap, s.sitewide, write.at).used < cap.limit
                    for cap in claim.sitewide
                ):
                    admitted = None
                if admitted is None:
                    outcome = Outcome.REFUSED
                else:
                    history = admitted
                    if claim.sitewide:
                        _record_sitewide(s.sitewide, write.at, claim.keep_sitewide_for)
            entry = write.remember
            if entry is not None:
                refused = outcome is Outcome.REFUSED and entry.refused is not None
                seen = remember(seen, entry, entry.refused if refused else entry.decision)  # type: ignore[arg-type]
            if write.profile is not None:
                profile = write.profile
            expires = max(expires, write.at + write.keep_for)
            self._writes += 1
            self._visitors.put(key, (self._writes, profile, history, seen, expires))
            s.stats.update(write.refused_counts if outcome is Outcome.REFUSED else write.counts)
        return outcome

    def count(self, site: str, counts: Iterable[Count]) -> None:
        with self._lock:
            self._site(site).stats.update(counts)

    def forget(self, site: str, visitor: str) -> bool:
        with self._lock:
            found = self._visitors.pop(_key(site, visitor))
            block = self._site(site).blocks.pop(visitor, None)
        return found or block is not None

    def block(self, site: str, visitor: str, block: Block) -> None:
        with self._lock:
            self._site(site).blocks[visitor] = block

    def unblock(self, site: str, visitor: str) -> bool:
        with self._lock:
            return self._site(site).blocks.pop(visitor, None) is not None

    def blocks(self, site: str, now: float) -> Mapping[str, Block]:
        with self._lock:
            return {v: b for v, b in self._site(site).blocks.items() if b.active(now)}

    def set_agents(self, site: str, status: AgentStatus) -> None:
        with self._lock:
            self._site(site).agents = status

    def stats(self, site: str) -> Counter[Count]:
        with self._lock:
            return Counter(self._site(site).stats)

    def ping(self) -> None:
        return None

    def close(self) -> None:
        with self._lock:
            self._visitors.clear()

    def __repr__(self) -> str:
        return f"MemoryStore(maxsize={self.maxsize}, visitors={len(self)})"


def _record_sitewide(times: array[float], at: float, keep_for: float) -> None:
    insort(times, at)
    old = bisect_right(times, at - keep_for)
    if old > 64:  # trim in batches: deleting an array's head is linear
        del times[:old]
