"""Run every politely benchmark, print markdown tables, write bench/results/latest.json.

    python bench/run.py            # the full run (a few minutes)
    python bench/run.py --quick    # a smoke run of about a minute: proves the scripts work
    python bench/run.py --only C,D # some of them

What each benchmark measures and why is in bench/README.md and in each
module's docstring. This script only orders them, times them, and reports the
machine they ran on: the numbers mean nothing without it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # `python bench/run.py` puts bench/ first; imports elsewhere may not
    sys.path.insert(0, str(HERE))

import bench_conditions  # noqa: E402
import bench_engine  # noqa: E402
import bench_glob  # noqa: E402
import bench_language  # noqa: E402
import bench_memory  # noqa: E402
import bench_pauses  # noqa: E402
import bench_service  # noqa: E402
import bench_simulate  # noqa: E402
import bench_startup  # noqa: E402
import bench_stores  # noqa: E402
from harness import Table, machine  # noqa: E402

BENCHMARKS: dict[str, Callable[[bool], Table]] = {
    "A": bench_language.run,
    "B": bench_glob.run,
    "C": bench_conditions.run_c,
    "D": bench_conditions.run_d,
    "E": bench_conditions.run_e,
    "F": bench_engine.run,
    "H": bench_stores.run_h,
    "I": bench_stores.run_i,
    "J": bench_service.run,
    "K": bench_startup.run,
    "L": bench_simulate.run,
    "M": bench_pauses.run,  # in a new interpreter of its own
    "G": bench_memory.run,  # last: tracemalloc slows everything it watches
}
RESULTS = HERE / "results" / "latest.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few repetitions")
    parser.add_argument("--only", help="comma-separated benchmark letters, e.g. C,D")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON")
    args = parser.parse_args(argv)
    chosen = [k.strip().upper() for k in args.only.split(",")] if args.only else list(BENCHMARKS)
    unknown = [k for k in chosen if k not in BENCHMARKS]
    if unknown:
        parser.error(
            f"unknown benchmark(s) {', '.join(unknown)}; choose from {''.join(BENCHMARKS)}"
        )

    started = time.perf_counter()
    when = datetime.now(UTC)
    about = machine()
    print(
        "# politely benchmarks"
        + (" (quick: reduced sizes, targets indicative only)" if args.quick else "")
    )
    print()
    print(f"- date: {when:%Y-%m-%d %H:%M UTC}")
    print(f"- machine: {about['cpu']}, {about['cores']} cores ({about['platform']})")
    print(f"- Python: {about['python']}; politely {about['politely']}")
    print(f"- load average at start (1, 5, 15 min): {_load()}")
    print()
    sys.stdout.flush()

    tables: list[Table] = []
    for key in chosen:
        t0 = time.perf_counter()
        table = BENCHMARKS[key](args.quick)
        table.seconds = time.perf_counter() - t0
        tables.append(table)
        print(table.markdown())
        print()
        sys.stdout.flush()

    runtime = time.perf_counter() - started
    summary = [target for table in tables for target in table.targets]
    print("## Targets")
    print()
    print("| benchmark | target | met |")
    print("| --- | --- | --- |")
    for table in tables:
        for target in table.targets:
            print(f"| {table.key} | {target.describe()} | {'yes' if target.met else '**NO**'} |")
    print()
    met = sum(t.met for t in summary)
    print(f"{met} of {len(summary)} targets met; total runtime {runtime:.0f} s.")
    print(f"Load average at the end (1, 5, 15 min): {_load()}.")

    args.output.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "date": when.isoformat(),
        "quick": args.quick,
        "machine": about,
        "runtime_s": round(runtime, 1),
        "load_average_end": _load(),
        "targets_met": met,
        "targets": len(summary),
        "benchmarks": [table.as_json() for table in tables],
    }
    args.output.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"JSON: {args.output}")
    return 0


def _load() -> str:
    """Other work on the machine: on a 2-core box a load near 2 doubles wall times."""
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


if __name__ == "__main__":
    raise SystemExit(main())
