"""F. The whole engine: `Engine.evaluate` on the memory store, per event.

Why: this is what a site pays for every event it sends, everything included:
recording the event in the visitor's state, the policy, the index, the rules'
conditions and caps, the invitation, `recheck_in`, and the store's atomic
commit. The issue's target is a median of at most 25 µs per event at 20 rules.

The traffic (workload.traffic) is realistic: visitors arrive every 1.5 s of
simulated time and browse 1-6 pages, mostly under the rules' folders; ticks
come every 10-30 s while they read; 15% of pages bring a custom `add_to_cart`
event; some first page views carry attributes, a country or UTM tags. The
agent status is renewed before every batch, so it is always fresh. The rules
are the realistic site of benchmark A (workload.site_source) at 20 and 200
rules, with its policy.

Four engines run the same events: 20 and 200 rules, each fed pre-built
`politely.Event` objects or the JSON-shaped dicts a site sends (so pydantic's
validation cost shows). They run interleaved, a batch of events at a time,
each batch starting with a different engine. Every call is timed on its own
(`perf_counter_ns` around `engine.evaluate`); the garbage collector stays on,
as in production. Event times come from the events (`at`), as in simulations.
"""

from __future__ import annotations

import gc
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import politely
from harness import Sample, Table, Target, fmt_ns, percentile
from politely.checker import check_sources
from politely.compiler import compile_rules
from politely.models import Decision, Event
from politely.ruleset import RuleSet
from politely.stores import MemoryStore
from workload import site_source, traffic


@dataclass
class Config:
    label: str
    rules: int
    evaluate: Callable[[Any], Decision]
    items: list[Any]  # Event objects or dicts
    kinds: list[str]
    engine: politely.Engine | None = None  # None: the floor
    times: list[float] = field(default_factory=list)  # ns per event
    idle: list[bool] = field(default_factory=list)  # a tick the store had nothing to write for
    invitations: int = 0
    cpu_ns: int = 0  # thread CPU time over all batches, timer calls included


def compile_site(n_rules: int) -> RuleSet:
    return compile_rules(check_sources({"site.rules": site_source(n_rules)}))


def feed(engine: politely.Engine, items: list[Any], at: list[float]) -> int:
    """Evaluate untimed (warm-up); returns the number of invitations."""
    invited = 0
    for i, item in enumerate(items):
        if i % 250 == 0:
            engine.set_agents(online=3, available=2, queue_length=1, queue_wait=30, at=at[i])
        invited += engine.evaluate(item).invitation is not None
    return invited


def floor(ruleset: RuleSet, events: list[Event]) -> Callable[[Any], Decision]:
    """The mechanical floor of one decision in CPython, the issue's baseline:
    find the visitor's state in a dict, look up the index, call the generated
    bucket functions, return a prebuilt decision. Nothing is recorded, no cap
    or policy is checked, no recheck computed; the states are the ones the
    engine ends with, so the index sees the same page paths."""
    engine = politely.Engine(ruleset)
    at = [e.at.timestamp() for e in events if e.at is not None]
    feed(engine, events, at)
    states = {e.visitor: engine.visitor_state(e.visitor, at=at[-1]) for e in events}
    decision = ruleset.plain_decision(None, "available")
    buckets = ruleset.buckets

    def decide(event: Event) -> Decision:
        s = states[event.visitor]
        assert s is not None
        assert event.at is not None
        now = event.at.timestamp()
        for bucket in buckets(event.event, s.page_path):
            bucket.test(s, event, None, now)
        return decision

    return decide


def run(quick: bool = False) -> Table:
    n_events = 3000 if quick else 40_000
    batch = 250
    configs: list[Config] = []
    stamps: dict[int, list[float]] = {}
    for n in (20, 200):
        ruleset = compile_site(n)
        dicts = traffic(n, n_events)
        events = [Event.model_validate(d) for d in dicts]
        stamps[n] = [e.at.timestamp() for e in events if e.at is not None]
        kinds = [e.event for e in events]
        # Warm up on other visitors with the same rule set: generated code, caches.
        warm = traffic(n, 2000 if quick else 6000, seed=99)
        warm_at = [Event.model_validate(d).at.timestamp() for d in warm]  # type: ignore[union-attr]
        feed(politely.Engine(ruleset), warm, warm_at)
        feed(politely.Engine(ruleset), [Event.model_validate(d) for d in warm], warm_at)
        if n == 20:
            configs.append(Config("20 rules, the floor", n, floor(ruleset, events), events, kinds))
        for label, items in (("`Event` objects", events), ("dicts (validated)", dicts)):
            engine = politely.Engine(ruleset)
            configs.append(Config(f"{n} rules, {label}", n, engine.evaluate, items, kinds, engine))

    clock, thread_clock = time.perf_counter_ns, time.thread_time_ns

    gc.collect()
    gc.freeze()
    try:
        for b, start in enumerate(range(0, n_events, batch)):
            first = b % len(configs)
            for config in configs[first:] + configs[:first]:
                at = stamps[config.rules]
                if start >= len(at):
                    continue
                if config.engine is not None:
                    config.engine.set_agents(
                        online=3, available=2, queue_length=1, queue_wait=30, at=at[start]
                    )
                evaluate = config.evaluate
                out = config.times
                invited = 0
                cpu = thread_clock()
                idle = config.idle
                store = config.engine.store if config.engine is not None else None
                writes = store.writes if isinstance(store, MemoryStore) else 0
                for item in config.items[start : start + batch]:
                    t0 = clock()
                    decision = evaluate(item)
                    t1 = clock()
                    out.append(t1 - t0)
                    invited += decision.invitation is not None
                    if isinstance(store, MemoryStore):
                        idle.append(store.writes == writes and _name(item) == "tick")
                        writes = store.writes
                    else:
                        idle.append(_name(item) == "tick")
                config.cpu_ns += thread_clock() - cpu
                config.invitations += invited
    finally:
        gc.unfreeze()

    table = Table(
        "F",
        "Full `Engine.evaluate` on the memory store, per event, against the floor",
        [
            "rules",
            "input",
            "median",
            "× floor",
            "tick that changes nothing",
            "page view",
            "p90",
            "p99",
            "CPU per event (mean)",
            "events",
            "invitations",
        ],
    )
    floor_config = configs[0]
    floor_median = Sample([float(t) for t in floor_config.times]).median
    medians: dict[int, float] = {}
    for config in configs:
        sample = Sample([float(t) for t in config.times])
        by_kind = _by_kind(config)
        idle = Sample([float(t) for t, i in zip(config.times, config.idle, strict=True) if i])
        validation = ""
        if config.engine is not None and config.rules in medians:  # dicts follow Events
            validation = f" (+{fmt_ns(sample.median - medians[config.rules])})"
        if config.engine is not None:
            medians.setdefault(config.rules, sample.median)
        table.add(
            config.rules,
            config.label.split(", ", 1)[1],
            fmt_ns(sample.median) + validation,
            f"{sample.median / floor_median:.1f}x",
            f"{fmt_ns(idle.median)} ({idle.median / floor_median:.1f}x)" if idle.count else "-",
            fmt_ns(by_kind["page_view"]),
            fmt_ns(sample.p90),
            fmt_ns(percentile(sample.values, 99)),
            fmt_ns(config.cpu_ns / sample.count),
            f"{sample.count:,}",
            f"{config.invitations:,}",
        )
        table.data[config.label] = {
            "median_ns": sample.median,
            "ratio_to_floor": sample.median / floor_median,
            "idle_tick_median_ns": idle.median if idle.count else None,
            "p90_ns": sample.p90,
            "p99_ns": percentile(sample.values, 99),
            "by_kind_median_ns": by_kind,
            "invitations": config.invitations,
            "cpu_mean_ns": config.cpu_ns / sample.count,
        }
    main = configs[1]
    main_median = table.data[main.label]["median_ns"]
    idle_median = table.data[main.label]["idle_tick_median_ns"] or 0.0
    table.targets.append(
        Target(
            "median per event, 20 rules, `Event` objects, × the floor",
            main_median / floor_median,
            5.0,
            "x",
        )
    )
    table.targets.append(
        Target(
            "tick that changes nothing, 20 rules, × the floor", idle_median / floor_median, 3.0, "x"
        )
    )
    table.targets.append(
        Target("median per event, 20 rules, `Event` objects", main_median, 25_000, "ns")
    )
    mix = Counter(main.kinds)
    by_kind = table.data[main.label]["by_kind_median_ns"]
    visitors = len({e.visitor for e in main.items})
    idle_share = sum(main.idle) / len(main.idle)
    table.notes.append(
        f"{n_events:,} events from {visitors:,} visitors per engine: "
        + ", ".join(
            f"{kind} {count / len(main.kinds):.0%} (median {fmt_ns(by_kind[kind])})"
            for kind, count in mix.most_common()
        )
        + f" (medians for 20 rules, `Event` objects); {idle_share:.0%} of events are ticks "
        "that change nothing (no write to the store). "
        f"The floor ({fmt_ns(floor_median)}) is the issue's baseline, timed in the same "
        "batches: find the visitor's state in a dict, look up the rule index, call the "
        "generated bucket functions, return a prebuilt decision. "
        f"Batches of {batch}, interleaved; "
        "the timer's own cost (~50-100 ns) is included. A dict row's median shows in "
        "parentheses what validating the dict into an `Event` adds. CPU per event is the "
        "thread's CPU time over all batches divided by events: it leaves out time spent "
        "waiting for a core (but not, on a virtual machine, time the host takes away)."
    )
    return table


def _name(item: Any) -> str:
    return item.event if isinstance(item, Event) else item["event"]  # type: ignore[no-any-return]


def _by_kind(config: Config) -> dict[str, float]:
    grouped: dict[str, list[float]] = {}
    for kind, ns in zip(config.kinds, config.times, strict=False):
        grouped.setdefault(kind, []).append(float(ns))
    return {kind: Sample(values).median for kind, values in grouped.items()}
