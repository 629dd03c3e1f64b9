"""2 processes x 8 threads hammer Redis at the instant a rule becomes eligible.

The worker processes start once per test and run every trial (a new visitor,
or new visitors, each) in lockstep: all 16 threads wait at one barrier, then
evaluate together. On a single Redis and on the Cluster the cap is granted
exactly: 1 invitation per visitor, N sitewide. The same harness against a
deliberately naive read-then-write store over-grants, so it can fail.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from typing import Any

import pytest

from politely import Engine
from politely.stores.base import Outcome, Write
from politely.stores.contract import admit
from politely.stores.redis import RedisStore, open_redis, visitor_key
from redis_servers import redis_store_factory

ALWAYS = 'rule r { on page_view when session.pageviews >= 1 say "Hi" }\n'
SITEWIDE = "policy { at most 3 invitations per 1m sitewide }\n" + ALWAYS
PROCESSES, THREADS, TRIALS = 2, 8, 20
T = 1_800_000_000.0
RACE_GAP = 0.005  # seconds the broken store waits between its read and its write


class NaiveRedisStore(RedisStore):
    """Broken on purpose: reads, decides in Python, writes with a plain HSET:
    no version check, no cap check at write time. The gap between its read and
    its write is widened by a short sleep, so the race the test needs happens
    even on a loaded machine."""

    def commit(self, site: str, visitor: str, write: Write) -> Outcome:
        loaded = self.load(site, visitor, write.at)
        time.sleep(RACE_GAP)
        client = self.client()
        fields: dict[str, Any] = {"v": loaded.version + 1, "x": repr(write.at + 86400)}
        if write.claim is not None:
            history = admit(loaded.history, write.claim)
            if history is None:
                return Outcome.REFUSED
            fields["h"] = history
        if write.profile is not None:
            fields["p"] = write.profile
        client.hset(visitor_key(site, visitor), mapping=fields)
        return Outcome.APPLIED


def worker(url: str, naive: bool, source: str, same_visitor: bool, barrier: Any, out: Any) -> None:
    store: RedisStore = open_redis(url)
    if naive:
        store = NaiveRedisStore(store._connect, cluster=store.cluster)
    engine = Engine.from_source(source, store=store)
    name = multiprocessing.current_process().name
    invited = [0] * TRIALS
    lock = threading.Lock()

    def hammer(thread: int) -> None:
        for trial in range(TRIALS):
            visitor = f"t{trial}" if same_visitor else f"t{trial}-{name}-{thread}"
            barrier.wait()
            decision = engine.evaluate(
                {"visitor": visitor, "event": "page_view", "url": "/", "at": T + trial * 120}
            )
            if decision.invitation is not None:
                with lock:
                    invited[trial] += 1
            elif decision.degraded:
                with lock:
                    invited[trial] += 1000  # visible: a degraded decision is not a pass

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(invited)
    store.close()


def hammer(url: str, *, source: str, same_visitor: bool, naive: bool = False) -> list[int]:
    """Invitations granted per trial, summed over both processes."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES * THREADS, timeout=60)
    out = ctx.Queue()
    processes = [
        ctx.Process(target=worker, args=(url, naive, source, same_visitor, barrier, out))
        for _ in range(PROCESSES)
    ]
    for p in processes:
        p.start()
    results = [out.get(timeout=120) for _ in processes]
    for p in processes:
        p.join(timeout=30)
    return [sum(trial) for trial in zip(*results, strict=True)]


def _url(kind: str) -> str:
    store = redis_store_factory(kind)  # flushed
    store.close()
    from redis_servers import server_url

    return server_url(kind) + ("&" if "?" in server_url(kind) else "?") + "timeout=2"


@pytest.mark.parametrize("kind", ["redis", "redis+cluster"])
def test_16_racers_on_one_visitor_get_exactly_one_invitation(kind: str) -> None:
    assert hammer(_url(kind), source=ALWAYS, same_visitor=True) == [1] * TRIALS


@pytest.mark.parametrize("kind", ["redis", "redis+cluster"])
def test_16_racing_visitors_get_exactly_the_sitewide_cap(kind: str) -> None:
    assert hammer(_url(kind), source=SITEWIDE, same_visitor=False) == [3] * TRIALS


def test_the_harness_catches_a_naive_read_then_write_store() -> None:
    granted = hammer(_url("redis"), source=ALWAYS, same_visitor=True, naive=True)
    assert max(granted) > 1, granted  # an over-grant: the test above can fail
