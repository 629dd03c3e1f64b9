"""Forced interleavings for store tests: every racer loads before any commits.

`Racing(store, parties)` wraps any store; its first `parties` loads wait for
one another at a barrier, so all those events are evaluated on the same
snapshot and then commit in a race: the worst case for lost updates and
over-granted caps. Later loads (the engine's reloads after a conflict) pass.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from politely import Decision, Engine
from politely.caps import Cap
from politely.stores.base import Loaded, Store


class Racing:
    def __init__(self, store: Store, parties: int) -> None:
        self.store = store
        self.barrier = threading.Barrier(parties, timeout=30)
        self.waiting = parties
        self.lock = threading.Lock()

    def load(
        self,
        site: str,
        visitor: str,
        now: float,
        *,
        event_id: str | None = None,
        sitewide: Sequence[Cap] = (),
    ) -> Loaded:
        loaded = self.store.load(site, visitor, now, event_id=event_id, sitewide=sitewide)
        with self.lock:
            first_round = self.waiting > 0
            self.waiting -= 1
        if first_round:
            self.barrier.wait()
        return loaded

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def run_concurrently(engine: Engine, events: list[dict[str, Any]], workers: int) -> list[Decision]:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(engine.evaluate, events))


def invited(decisions: list[Decision]) -> int:
    return sum(d.invitation is not None for d in decisions)
