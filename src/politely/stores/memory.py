"""The in-memory store: for tests, simulations and the library's default.

Visitors live in a `cachetools.TTLCache` on the engine's clock. Eviction means
forgetting: a visitor idle longer than the TTL comes back as a new visitor
(first visit, no attributes, no history). The engine sets the TTL to at least
every window, quiet period and session timeout of its rules and 30 days, so
no rolling cap, cooldown or quiet period can be broken by it; when a rule set
has a `per visitor` (lifetime) cap, visitors are never evicted by age. When
`maxsize` visitors are tracked, the least recently seen one is forgotten
early, whatever the rules: size the store above your active visitors, or use
a durable store. Blocks are never evicted.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from cachetools import Cache, TTLCache

from politely.caps import sitewide_allows
from politely.state import AgentStatus, Block, InvitationLog, Snapshot, VisitorState

if TYPE_CHECKING:
    from politely.evaluator import Count, Verdict

DEFAULT_TTL = 8 * 86400.0


def _system_clock() -> float:
    return time.time()  # looked up at call time, so freezegun can move it


class MemoryStore:
    def __init__(
        self,
        *,
        maxsize: int = 1_000_000,
        ttl: float | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.clock = clock or _system_clock
        self.ttl = ttl or DEFAULT_TTL
        self._visitors: TTLCache[str, VisitorState] = TTLCache(
            maxsize=maxsize, ttl=self.ttl, timer=self.clock
        )
        self._blocks: dict[str, Block] = {}
        self._agents: AgentStatus | None = None
        self._sitewide: list[float] = []
        self._stats: Counter[Count] = Counter()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._visitors)

    def load(self, visitor: str, now: float) -> Snapshot:
        block = self._blocks.get(visitor)
        if block is not None and not block.active(now):
            self._blocks.pop(visitor, None)
            block = None
        try:
            state: VisitorState | None = self._visitors[visitor]  # one expiry check, not two
        except KeyError:
            state = None
        return Snapshot(state, block, self._agents, self._sitewide)

    def commit(self, visitor: str, verdict: Verdict, now: float) -> Verdict:
        state = verdict.state
        if state is None:
            return verdict
        with self._lock:
            try:  # a peek at the latest state: no expiry check, no reordering
                current: VisitorState | None = Cache.__getitem__(self._visitors, visitor)
            except KeyError:
                current = None
            log = current.log if current is not None else state.log
            invitation = verdict.invitation
            if invitation is not None:
                allowed = all(c.allows(log, invitation.session, now) for c in verdict.caps)
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
        self._blocks[visitor] = block

    def unblock(self, visitor: str) -> bool:
        return self._blocks.pop(visitor, None) is not None

    def blocks(self, now: float) -> Mapping[str, Block]:
        return {v: b for v, b in self._blocks.items() if b.active(now)}

    def set_agents(self, status: AgentStatus) -> None:
        self._agents = status

    def count(self, counts: Iterable[Count]) -> None:
        with self._lock:
            self._stats.update(counts)

    def stats(self) -> Counter[Count]:
        return Counter(self._stats)

    def close(self) -> None:
        self._visitors.clear()
