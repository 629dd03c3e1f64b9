"""G. Memory per tracked visitor in the memory store.

Why: the memory store is the library's default and keeps every visitor seen in
the last 30 days (or longer) in process memory; a busy site tracks hundreds of
thousands. The issues' target: at most 835 B per visitor (issue 9; 1 KB before).

30,000 visitors each send a realistic couple of events through
`Engine.evaluate`: a page view with a URL no other visitor has (70% under a
rule's folder), 30% with attributes (plan, cart value, name), half with a
country, a fifth from an ad; then a tick a minute later, with a scroll depth
for some, which gets some of them an invitation from the realistic 20-rule
site of benchmark A. Events are built and dropped one visitor at a time, so
only what the engine keeps survives.

Measured with `tracemalloc`: traced memory after minus before, after a full
collection, divided by the number of visitors. The rule index's memo of
(event, path) → buckets also fills with those new paths; it belongs to the rule
set, not the store, and is bounded (4,096 entries), so it is cleared before the
"after" reading and its size is reported apart. The largest allocation sites
of the difference are listed to show where the bytes go.
"""

from __future__ import annotations

import gc
import random
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import politely
from bench_engine import compile_site
from harness import Table, Target
from politely.models import Event
from workload import NOW, OTHER_PAGES, prefixes


def visitor_events(i: int, rng: random.Random, folders: list[str]) -> list[Event]:
    t = NOW + i * 2.0  # 30 new visitors a minute: under the sitewide cap of 40
    if rng.random() < 0.7:
        url = f"{rng.choice(folders)}item-{i}"
    else:
        url = f"{rng.choice(OTHER_PAGES).rstrip('/')}/p-{i}"
    view: dict[str, object] = {"visitor": f"v-{i:06d}", "event": "page_view", "url": url}
    if rng.random() < 0.2:
        view["url"] = url + "?utm_source=ads&utm_medium=cpc"
    if rng.random() < 0.3:
        view["attributes"] = {
            "plan": rng.choice(("free", "pro", "enterprise")),
            "cart_value": rng.randrange(0, 300),
            "name": rng.choice(("Ada", "Linus", "Grace")),
        }
    if rng.random() < 0.5:
        view["country"] = rng.choice(("DE", "FR", "US", "GB"))
    view["referrer"] = rng.choice(("https://www.google.com/", "https://t.co/x", None))
    tick: dict[str, object] = {"visitor": view["visitor"], "event": "tick"}
    if rng.random() < 0.5:
        tick["scroll"] = rng.choice((30, 60, 90))
    return [
        Event.model_validate({**view, "at": datetime.fromtimestamp(t, UTC)}),
        Event.model_validate({**tick, "at": datetime.fromtimestamp(t + 60, UTC)}),
    ]


def run(quick: bool = False) -> Table:
    visitors = 2_000 if quick else 30_000
    ruleset = compile_site(20)
    folders = prefixes(10)
    # Warm up on a throwaway engine with the same rule set: code generated on
    # first use (recheck functions) is the rule set's, not the visitors'.
    warm = politely.Engine(ruleset)
    warm_rng = random.Random(5)
    for i in range(500):
        if i % 25 == 0:
            warm.set_agents(online=3, available=2, queue_wait=30, at=NOW + i * 2.0)
        for event in visitor_events(i, warm_rng, folders):
            warm.evaluate(event)
    del warm

    engine = politely.Engine(ruleset)
    rng = random.Random(3)
    invitations = 0
    gc.collect()
    tracemalloc.start(1)
    try:
        before = tracemalloc.get_traced_memory()[0]
        first = tracemalloc.take_snapshot()
        for i in range(visitors):
            if i % 25 == 0:  # renewed every 50 s of traffic: always fresh
                engine.set_agents(online=3, available=2, queue_wait=30, at=NOW + i * 2.0)
            for event in visitor_events(i, rng, folders):
                invitations += engine.evaluate(event).invitation is not None
        gc.collect()
        with_cache = tracemalloc.get_traced_memory()[0]
        # The rule set's memos (index lookups by page path): bounded, not per visitor.
        caches = ruleset.caches
        memos = (caches.buckets, caches.listening, caches.decisions)
        cache_entries = sum(len(memo) for memo in memos)
        for memo in memos:
            memo.clear()
        gc.collect()
        with_recent = tracemalloc.get_traced_memory()[0]
        # The engine's decoded states of recent visitors: bounded, not per visitor.
        recent = engine.clear_recent()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        last = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()

    assert len(engine.store) == visitors  # type: ignore[arg-type]
    per_visitor = (after - before) / visitors
    table = Table(
        "G",
        "Memory per tracked visitor (memory store, tracemalloc)",
        [
            "visitors",
            "store total",
            "bytes per visitor",
            "invited",
            "index cache (apart)",
            "recent states (apart)",
        ],
    )
    table.add(
        f"{visitors:,}",
        f"{(after - before) / 2**20:.1f} MiB",
        f"{per_visitor:,.0f} B",
        f"{invitations:,} ({invitations / visitors:.0%})",
        f"{cache_entries:,} entries, {(with_cache - with_recent) / 2**20:.1f} MiB",
        f"{recent:,} visitors, {(with_recent - after) / 2**20:.1f} MiB",
    )
    table.targets.append(Target("bytes per visitor", per_visitor, 835, "bytes"))
    top = _top_sites(last, first, visitors)
    table.notes.append(
        "Where the bytes go (allocation sites of the difference, bytes per visitor): "
        + "; ".join(f"`{site}` {size:,.0f} B" for site, size in top[:8])
    )
    table.data = {
        "visitors": visitors,
        "bytes": after - before,
        "bytes_per_visitor": per_visitor,
        "invitations": invitations,
        "index_cache_bytes": with_cache - after,
        "top_sites": top,
    }
    return table


def _top_sites(
    last: tracemalloc.Snapshot, first: tracemalloc.Snapshot, visitors: int
) -> list[tuple[str, float]]:
    out = []
    for stat in last.compare_to(first, "lineno")[:12]:
        frame = stat.traceback[0]
        where = f"{_short(frame.filename)}:{frame.lineno}"
        if where.startswith("bench/"):  # made by the "site", kept by the store
            where += " (event data kept in the state)"
        out.append((where, stat.size_diff / visitors))
    return out


def _short(filename: str) -> str:
    parts = Path(filename).parts
    for anchor in ("politely", "cachetools", "pydantic", "bench"):
        if anchor in parts:
            return "/".join(parts[len(parts) - parts[::-1].index(anchor) - 1 :])
    return Path(filename).name
