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
from dataclasses import dataclass, field
from typing import Any

import politely
from harness import Sample, Table, Target, fmt_ns, percentile
from politely.checker import check_sources
from politely.compiler import compile_rules
from politely.models import Event
from politely.ruleset import RuleSet
from workload import site_source, traffic


@dataclass
class Config:
    label: str
    rules: int
    engine: politely.Engine
    items: list[Any]  # Event objects or dicts
    kinds: list[str]
    times: list[float] = field(default_factory=list)  # ns per event
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
        configs.append(
            Config(f"{n} rules, `Event` objects", n, politely.Engine(ruleset), events, kinds)
        )
        configs.append(
            Config(f"{n} rules, dicts (validated)", n, politely.Engine(ruleset), dicts, kinds)
        )

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
                engine = config.engine
                engine.set_agents(
                    online=3, available=2, queue_length=1, queue_wait=30, at=at[start]
                )
                evaluate = engine.evaluate
                out = config.times
                invited = 0
                cpu = thread_clock()
                for item in config.items[start : start + batch]:
                    t0 = clock()
                    decision = evaluate(item)
                    t1 = clock()
                    out.append(t1 - t0)
                    invited += decision.invitation is not None
                config.cpu_ns += thread_clock() - cpu
                config.invitations += invited
    finally:
        gc.unfreeze()

    table = Table(
        "F",
        "Full `Engine.evaluate` on the memory store, per event",
        [
            "rules",
            "input",
            "median",
            "p90",
            "p99",
            "mean",
            "CPU per event (mean)",
            "events",
            "invitations",
        ],
    )
    medians: dict[int, float] = {}
    for config in configs:
        sample = Sample([float(t) for t in config.times])
        validation = ""
        if config.rules in medians:  # the dict row follows its Event row
            validation = f" (+{fmt_ns(sample.median - medians[config.rules])})"
        medians.setdefault(config.rules, sample.median)
        table.add(
            config.rules,
            config.label.split(", ", 1)[1],
            fmt_ns(sample.median) + validation,
            fmt_ns(sample.p90),
            fmt_ns(percentile(sample.values, 99)),
            fmt_ns(sum(sample.values) / sample.count),
            fmt_ns(config.cpu_ns / sample.count),
            f"{sample.count:,}",
            f"{config.invitations:,}",
        )
        table.data[config.label] = {
            "median_ns": sample.median,
            "p90_ns": sample.p90,
            "p99_ns": percentile(sample.values, 99),
            "by_kind_median_ns": _by_kind(config),
            "invitations": config.invitations,
            "cpu_mean_ns": config.cpu_ns / sample.count,
        }
    target = Sample([float(t) for t in configs[0].times]).median
    table.targets.append(
        Target("median per event, 20 rules, `Event` objects", target, 25_000, "ns")
    )
    mix = Counter(configs[0].kinds)
    by_kind = table.data[configs[0].label]["by_kind_median_ns"]
    visitors = len({e.visitor for e in configs[0].items})
    table.notes.append(
        f"{n_events:,} events from {visitors:,} visitors per engine: "
        + ", ".join(
            f"{kind} {count / len(configs[0].kinds):.0%} (median {fmt_ns(by_kind[kind])})"
            for kind, count in mix.most_common()
        )
        + f" (medians for 20 rules, `Event` objects). Batches of {batch}, interleaved; "
        "the timer's own cost (~50-100 ns) is included. A dict row's median shows in "
        "parentheses what validating the dict into an `Event` adds. CPU per event is the "
        "thread's CPU time over all batches divided by events: it leaves out time spent "
        "waiting for a core (but not, on a virtual machine, time the host takes away)."
    )
    return table


def _by_kind(config: Config) -> dict[str, float]:
    grouped: dict[str, list[float]] = {}
    for kind, ns in zip(config.kinds, config.times, strict=False):
        grouped.setdefault(kind, []).append(float(ns))
    return {kind: Sample(values).median for kind, values in grouped.items()}
