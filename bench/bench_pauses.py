"""M. The worst `Engine.evaluate` call with a million visitors in the memory store.

Why: a service on the memory store holds every visitor of the last 30 days in
its process. Python's collector now and then walks every object it tracks; if
each visitor were a few tracked objects, one full collection over a million of
them takes more than a second, and lands inside some request. The issue's
target: no call over 50 ms.

The store is filled with `visitors` visitors through its own `commit` (each a
profile encoded from a state with a page, as a page view leaves it), not through
the engine, so that filling a million takes seconds. Then F's traffic at 20
rules runs through `Engine.evaluate` on that store, each call timed, with the
collector on at its default thresholds, as in production; a `gc.callbacks` hook
records every collection and how long it took. Also timed: three explicit full
collections (`gc.collect()`) after the run, the longest a collection can be.

It runs in a new interpreter: what other benchmarks leave in the process (the
parsed 10,000-rule sites of A, kept by the parse and check caches) would be
walked too. (A service holding a site that large freezes it once loaded:
`politely serve` calls `gc.freeze()` after loading its sites, docs/service.md.)
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import politely
from bench_engine import compile_site, feed
from harness import Sample, Table, Target, fmt_ns, percentile
from politely.codec import encode_profile
from politely.models import Event
from politely.state import VisitorState
from politely.stores import MemoryStore
from politely.stores.base import Write
from workload import NOW, traffic


def fill(store: MemoryStore, visitors: int) -> None:
    s = VisitorState()
    s.session, s.visits, s.pageviews = "~1", 1, 1
    for i in range(visitors):
        at = NOW - 86400 + i * 0.05
        s.page_url = s.page_path = f"/products/item-{i}"
        s.session_start = s.last_activity = s.page_start = at
        write = Write(0, at, encode_profile(s), 30 * 86400, None, None, (), ())
        store.commit("default", f"stored-{i:07d}", write)


def run(quick: bool = False) -> Table:
    """Measure in a new interpreter: what other benchmarks leave in this process
    (A's parsed 10,000-rule sites, in the parse and check caches) would be
    walked by its collections too, and its memory would be a forked child's."""
    child = subprocess.run(
        [sys.executable, __file__, "--quick" if quick else "--full"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parent,
    )
    return table_of(json.loads(child.stdout.splitlines()[-1]))


def measure(quick: bool) -> dict[str, Any]:
    visitors = 100_000 if quick else 1_000_000
    n_events = 3_000 if quick else 30_000
    ruleset = compile_site(20)
    # The benchmark's own input first, frozen: a collection never walks it (as in F).
    events = [Event.model_validate(d) for d in traffic(20, n_events)]
    stamps = [e.at.timestamp() for e in events if e.at is not None]
    feed(politely.Engine(ruleset), events[:500], stamps[:500])  # generated code, caches
    gc.collect()
    gc.freeze()
    store = MemoryStore(maxsize=visitors + 100_000)
    started = time.perf_counter()
    fill(store, visitors)
    filled_in = time.perf_counter() - started
    engine = politely.Engine(ruleset, store=store)

    collections: list[tuple[int, int]] = []  # (generation, ns)
    began: list[int] = [0]

    def watch(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            began[0] = time.perf_counter_ns()
        else:
            collections.append((info["generation"], time.perf_counter_ns() - began[0]))

    clock = time.perf_counter_ns
    times: list[float] = []
    gc.collect()  # what filling left behind, as a long-running process would have
    gc.callbacks.append(watch)
    try:
        for i, event in enumerate(events):
            if i % 250 == 0:
                engine.set_agents(online=3, available=2, queue_wait=30, at=stamps[i])
            t0 = clock()
            engine.evaluate(event)
            times.append(float(clock() - t0))
    finally:
        gc.callbacks.remove(watch)
    full: list[float] = []
    for _ in range(3):
        t0 = clock()
        gc.collect()
        full.append(float(clock() - t0))
    return {
        "visitors": len(store),
        "times": times,
        "collections": collections,
        "full_collection_ns": full,
        "tracked": len(gc.get_objects()),
        "filled_in_s": filled_in,
    }


def table_of(found: dict[str, Any]) -> Table:
    times: list[float] = found["times"]
    collections = [tuple(c) for c in found["collections"]]
    full: list[float] = found["full_collection_ns"]
    filled_in: float = found["filled_in_s"]
    sample = Sample(times)
    worst = max(times)
    by_generation = {g: [ns for gen, ns in collections if gen == g] for g in (0, 1, 2)}
    table = Table(
        "M",
        "The worst `Engine.evaluate` call with many visitors in the memory store",
        [
            "visitors",
            "events",
            "median",
            "p99",
            "worst call",
            "collections during the run (gen 0 / 1 / 2)",
            "longest gen 2 collection",
            "explicit full collection",
        ],
    )
    longest_full = max(by_generation[2], default=0)
    table.add(
        f"{found['visitors']:,}",
        f"{len(times):,}",
        fmt_ns(sample.median),
        fmt_ns(percentile(times, 99)),
        fmt_ns(worst),
        " / ".join(str(len(by_generation[g])) for g in (0, 1, 2)),
        fmt_ns(longest_full) if by_generation[2] else "none",
        fmt_ns(min(full)) + f" (objects it walks: {found['tracked']:,})",
    )
    table.data = {
        "visitors": found["visitors"],
        "worst_ns": worst,
        "median_ns": sample.median,
        "collections": collections,
        "full_collection_ns": full,
        "filled_in_s": filled_in,
    }
    table.targets.append(Target("worst evaluate call", worst, 50_000_000, "ns"))
    table.targets.append(
        Target("a full collection (the longest pause it can cause)", min(full), 50_000_000, "ns")
    )
    table.notes.append(
        f"Measured in a new interpreter; the benchmark's events are built and frozen "
        f"(`gc.freeze`) first, as F does. Filled through the store's commit in "
        f"{filled_in:.1f} s. A visitor is a plain "
        "tuple of bytes and numbers, which the collector stops tracking, so a full "
        "collection walks the store's one dict, not a million objects; the engine's "
        "decoded states of recent visitors are bounded (10,000)."
    )
    return table


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1:] == ["--quick"])))
