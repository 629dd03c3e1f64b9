"""The in-memory store: for tests, simulations and the library's default.

Visitors live in a `cachetools.TTLCache` aged by the `now` the engine passes
in (one clock: the engine's). Eviction means forgetting: a visitor idle
longer than the TTL comes back as a new visitor (first visit, no attributes,
no history). The TTL is 30 days by default and never less than the rule set's
`retention` (every window, quiet period and timeout it uses; forever when a
cap counts a visitor's invitations ever), which the engine asks for with
`retain_for`, so eviction by age can break no cap, cooldown or quiet period.
When `maxsize` visitors are tracked, the least recently seen one is forgotten
early, whatever the rules: size the store above your active visitors, or use
a durable store. Blocks are never evicted.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from cachetools import TTLCache

from politely.caps import sitewide_allows, visitor_allows
from politely.state import AgentStatus, Block, InvitationLog, Snapshot, VisitorState

if TYPE_CHECKING:
    from politely.evaluator import Count, Verdict

DEFAULT_TTL = 30 * 86400.0  # long enough to recognise most returning visitors


class MemoryStore:
    def __init__(self, *, maxsize: int = 1_000_000, ttl: float = DEFAULT_TTL) -> None:
        self.maxsize = maxsize
        self.ttl = ttl
        self._now = 0.0  # the time of the operation under way: the cache's timer
        self._visitors: TTLCache[str, VisitorState] = self._cache(ttl)
        self._blocks: dict[str, Block] = {}
        self._agents: AgentStatus | None = None
        self._sitewide: list[float] = []
        self._stats: Counter[Count] = Counter()
        self._lock = threading.Lock()  # cachetools caches are not thread-safe

    def _cache(self, ttl: float) -> TTLCache[str, VisitorState]:
        return TTLCache(maxsize=self.maxsize, ttl=ttl, timer=lambda: self._now)

    def __len__(self) -> int:
        return len(self._visitors)

    def retain_for(self, seconds: float) -> None:
        """Keep idle visitors at least this long (the rule set's retention)."""
        with self._lock:
            if seconds <= self.ttl:
                return
            self.ttl = seconds
            longer = self._cache(seconds)
            longer.update(self._visitors)
            self._visitors = longer

    def load(self, visitor: str, now: float) -> Snapshot:
        with self._lock:
            self._now = now
            block = self._blocks.get(visitor)
            if block is not None and not block.active(now):
                del self._blocks[visitor]
                block = None
            state = self._visitors.get(visitor)
        return Snapshot(state, block, self._agents, self._sitewide)

    def commit(self, visitor: str, verdict: Verdict, now: float) -> Verdict:
        from politely.evaluator import replayed

        state = verdict.state
        if state is None or not verdict.changed:
            return verdict
        with self._lock:
            self._now = now
            current = self._visitors.get(visitor)  # expired entries are gone here too
            if verdict.event_id is not None and current is not None:
                first = replayed(current, verdict.event_id, now)
                if first is not None:  # a retry raced its original: the first one won
                    return verdict.replay(first)
            log = current.log if current is not None else state.log
            invitation = verdict.invitation
            if invitation is not None:
                allowed = visitor_allows(verdict.caps, log, invitation.session, now)
                if allowed and verdict.sitewide:
                    allowed = sitewide_allows(verdict.sitewide, self._sitewide, now)
                if allowed:
                    # Copy on write: snapshots handed out earlier keep their history.
                    log = log.copy() if log is not None else InvitationLog()
                    log.record(invitation, verdict.keep_for)
                    if verdict.sitewide:
                        self._record_sitewide(now, verdict.keep_sitewide_for)
                else:
                    verdict = verdict.refused()
            state.log = log
            self._visitors[visitor] = state
        return verdict

    def _record_sitewide(self, now: float, keep_for: float) -> None:
        # A new list each time: snapshots handed out earlier stay as they were.
        horizon = now - keep_for
        self._sitewide = [t for t in self._sitewide if t > horizon] + [now]

    def block(self, visitor: str, block: Block) -> None:
        with self._lock:
            self._blocks[visitor] = block

    def unblock(self, visitor: str) -> bool:
        with self._lock:
            return self._blocks.pop(visitor, None) is not None

    def blocks(self, now: float) -> Mapping[str, Block]:
        with self._lock:
            return {v: b for v, b in self._blocks.items() if b.active(now)}

    def set_agents(self, status: AgentStatus) -> None:
        self._agents = status

    def count(self, counts: Iterable[Count]) -> None:
        with self._lock:
            self._stats.update(counts)

    def stats(self) -> Counter[Count]:
        with self._lock:
            return Counter(self._stats)

    def close(self) -> None:
        with self._lock:
            self._visitors.clear()
