"""Worker processes for test_sqlite_processes.py, and two deliberately broken stores.

`hammer` runs in spawned processes: its threads meet at a barrier shared by
every thread of every process, then all send one event at the same instant.
Run as a script (`python sqlite_workers.py crash PATH VARIANT PREFIX`), it
serves events forever and prints each invitation it returns, until killed.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any

import politely
from politely.caps import Cap
from politely.stores import Store
from politely.stores.base import Outcome, Write
from politely.stores.contract import admit
from politely.stores.sqlite import SQLiteStore, _count

T0 = 1_800_000_000.0
DAY = 86400.0
VISITOR_CAP = 3
SITEWIDE_CAP = 5
RACE_GAP = 0.005  # seconds a broken store waits between its read and its write
VISITOR_RULES = (
    f"policy {{ at most {VISITOR_CAP} invitations per 1h }}\n"
    f'rule r {{ when page.dwell >= 20s say "Hi" at most {VISITOR_CAP} per session }}\n'
)
SITEWIDE_RULES = (
    f"policy {{ at most {SITEWIDE_CAP} invitations per 1m sitewide }}\n"
    'rule r { when page.dwell >= 20s say "Hi" }\n'
)
CRASH_RULES = 'rule r { on page_view when session.pageviews >= 1 say "Hi" }\n'  # 1 per 10m


class ReadThenWrite(SQLiteStore):
    """Broken on purpose: checks the claim in one transaction and writes in another,
    trusting what it read (and ignoring the version it was evaluated on).

    The gap between the two is widened by a short sleep: the test of this store
    needs the race to happen, and on a loaded machine racers that meet at the
    barrier can still run one after another through a gap of microseconds."""

    def commit(self, site: str, visitor: str, write: Write) -> Outcome:
        claim = write.claim
        if claim is not None:
            with self._transaction(write=False) as conn:
                row = conn.execute(
                    "SELECT history FROM visitors WHERE site = ? AND visitor = ?", (site, visitor)
                ).fetchone()
                allowed = admit(row[0] if row else None, claim) is not None and all(
                    _count(conn, site, cap, write.at) < cap.limit for cap in claim.sitewide
                )
            # Write what was decided: no cap left to check (or one that refuses).
            time.sleep(RACE_GAP)
            caps = () if allowed else (Cap(0, 1),)
            sitewide = tuple(Cap(10**9, cap.window) for cap in claim.sitewide)
            claim = claim._replace(caps=caps, sitewide=sitewide)
        with self._transaction(write=True) as conn:
            row = conn.execute(
                "SELECT version FROM visitors WHERE site = ? AND visitor = ? AND expires > ?",
                (site, visitor, write.at),
            ).fetchone()
            current = row[0] if row else 0
            return self._apply(conn, site, visitor, write._replace(version=current, claim=claim))


class Buffered(SQLiteStore):
    """Broken on purpose: answers before its writes are durable (it commits every 50)."""

    EVERY = 50

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._one: sqlite3.Connection | None = None
        self._lock = threading.RLock()
        self._pending = 0
        super().__init__(*args, **kwargs)

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._one is None:
                self._one = self._connect()
            yield self._one

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        with self._connection() as conn:
            if not conn.in_transaction:
                conn.execute("BEGIN IMMEDIATE")
            yield conn
            self._pending += 1
            if self._pending % self.EVERY == 0:
                conn.execute("COMMIT")


def open_variant(variant: str, path: str) -> Store:
    if variant == "sqlite":
        return politely.open_store(f"sqlite:///{path}")
    if variant == "read-then-write":
        return ReadThenWrite(path)
    if variant == "buffered":
        return Buffered(path)
    raise ValueError(variant)


# --- many threads in several processes, one instant -----------------------------------------------


def hammer(
    variant: str,
    path: str,
    scenario: str,
    role: int,
    threads: int,
    trials: int,
    barrier: Barrier,
    results: Queue[tuple[int, int, int]],
) -> None:
    """For each trial, every thread of every process sends one tick at the instant
    the rule becomes eligible; each process reports (role, trial, invitations)."""
    store = open_variant(variant, path)
    rules = VISITOR_RULES if scenario == "visitor" else SITEWIDE_RULES
    engine = politely.Engine.from_source(rules, store=store)
    engine.set_agents(online=1, available=1, at=T0)
    granted = [[0] * trials for _ in range(threads)]

    def run(thread: int) -> None:
        for trial in range(trials):
            at = T0 + trial * DAY
            if scenario == "visitor":
                visitor = f"t{trial}"
                if role == 0 and thread == 0:  # one page view, before anyone ticks
                    engine.evaluate({"visitor": visitor, "event": "page_view", "url": "/",
                                     "at": at})  # fmt: skip
            else:
                visitor = f"t{trial}-p{role}-{thread}"
                engine.evaluate({"visitor": visitor, "event": "page_view", "url": "/", "at": at})
            barrier.wait(timeout=120)
            decision = engine.evaluate({"visitor": visitor, "event": "tick", "at": at + 20})
            assert not decision.degraded, decision
            granted[thread][trial] += decision.invitation is not None

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    for trial in range(trials):
        results.put((role, trial, sum(g[trial] for g in granted)))
    store.close()


# --- serve until killed -------------------------------------------------------------------------


def serve(path: str, variant: str, prefix: str, threads: int = 4) -> None:
    """Every thread sends page views of new visitors; each invitation is printed
    (`visitor invitation-id`) and flushed only after `evaluate` returned it."""
    engine = politely.Engine.from_source(CRASH_RULES, store=open_variant(variant, path))
    printing = threading.Lock()

    def run(thread: int) -> None:
        for i in range(10**9):
            visitor = f"{prefix}-{thread}-{i}"
            event = {"visitor": visitor, "event": "page_view", "url": "/", "at": T0}
            decision = engine.evaluate(event)
            if decision.invitation is not None:
                with printing:
                    print(visitor, decision.invitation.id, flush=True)

    workers = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(threads)]
    print("ready", flush=True)
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


if __name__ == "__main__":
    _, command, *args = sys.argv
    assert command == "crash"
    serve(*args)
