"""Profile the work behind benchmark A (compile), F (evaluate) or L (simulate).

    python bench/hotspots.py F            # Engine.evaluate over F's traffic, 20 rules
    python bench/hotspots.py F --rules 200
    python bench/hotspots.py A            # check_sources + compile_rules, 1,000 rules
    python bench/hotspots.py L            # politely simulate rules/ on L's traffic
    python bench/hotspots.py L --json     # the same with --json (to /dev/null)

Uses pyinstrument when it is installed (a call tree, little overhead), else
cProfile sorted by own time. It measures exactly the workloads of
bench_language.py and bench_engine.py, warmed up the same way, without the
benchmark's interleaving and per-call timers.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import politely
from bench_engine import compile_site, feed
from bench_simulate import simulate_in_process, write_traffic
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


def simulate_work(n_events: int, folder: Path, *options: str) -> Callable[[], object]:
    traffic = folder / "traffic.jsonl"
    write_traffic(traffic, n_events, visitors=max(100, n_events // 20))
    run = simulate_in_process(traffic, *options)
    run(0)  # warm: the grammar's parser, the rules' generated code
    return lambda: run(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark", choices=["A", "F", "L"])
    parser.add_argument("--rules", type=int, help="rule count (A: 1000, F: 20)")
    parser.add_argument("--events", type=int, help="F, L: events (40,000; 100,000)")
    parser.add_argument("--json", action="store_true", help="L: simulate with --json")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="politely-hotspots-"))
    try:
        return _profile(args, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _profile(args: argparse.Namespace, folder: Path) -> int:
    if args.benchmark == "F":
        work = engine_work(args.rules or 20, args.events or 40_000)
    elif args.benchmark == "L":
        work = simulate_work(args.events or 100_000, folder, *(["--json"] * args.json))
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
