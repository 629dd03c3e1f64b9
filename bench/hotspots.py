"""Profile the work behind benchmark A (compile) or F (evaluate), to see where time goes.

    python bench/hotspots.py F            # Engine.evaluate over F's traffic, 20 rules
    python bench/hotspots.py F --rules 200
    python bench/hotspots.py A            # check_sources + compile_rules, 1,000 rules

Uses pyinstrument when it is installed (a call tree, little overhead), else
cProfile sorted by own time. It measures exactly the workloads of
bench_language.py and bench_engine.py, warmed up the same way, without the
benchmark's interleaving and per-call timers.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import politely
from bench_engine import compile_site, feed
from politely.checker import check_sources
from politely.compiler import compile_rules
from politely.models import Event
from workload import site_source, traffic


def engine_work(n_rules: int, n_events: int) -> Callable[[], object]:
    ruleset = compile_site(n_rules)
    warm = [Event.model_validate(d) for d in traffic(n_rules, 6000, seed=99)]
    feed(politely.Engine(ruleset), warm, [e.at.timestamp() for e in warm])  # type: ignore[union-attr]
    events = [Event.model_validate(d) for d in traffic(n_rules, n_events)]
    at = [e.at.timestamp() for e in events]  # type: ignore[union-attr]
    engine = politely.Engine(ruleset)
    return lambda: feed(engine, events, at)


def language_work(n_rules: int) -> Callable[[], object]:
    sources = {"site.rules": site_source(n_rules)}
    compile_rules(check_sources(sources))  # builds the LALR parser

    def work() -> None:
        for _ in range(3):
            compile_rules(check_sources(sources))

    return work


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark", choices=["A", "F"])
    parser.add_argument("--rules", type=int, help="rule count (A: 1000, F: 20)")
    parser.add_argument("--events", type=int, default=40_000, help="F: events to evaluate")
    args = parser.parse_args(argv)
    if args.benchmark == "F":
        work = engine_work(args.rules or 20, args.events)
    else:
        work = language_work(args.rules or 1000)
    try:
        from pyinstrument import Profiler
    except ImportError:
        profile = cProfile.Profile()
        profile.runcall(work)
        pstats.Stats(profile).sort_stats("tottime").print_stats(30)
        return 0
    profiler = Profiler(interval=0.0002)
    profiler.start()
    work()
    profiler.stop()
    print(profiler.output_text(unicode=False, color=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
