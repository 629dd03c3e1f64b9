"""Timing, statistics and reporting shared by every benchmark.

Why it is built this way: the benchmark machine is small, shared and noisy, so

- every measurement uses `time.perf_counter_ns` and many repetitions, and the
  tables report medians (robust to the odd descheduling) and p90 (how bad the
  noise or the slow path gets);
- compared implementations run *interleaved* in one process: round r runs every
  implementation once, starting with a different one each round, so a burst of
  noise from a neighbour hits all of them alike instead of the one that happened
  to run during it;
- every implementation is warmed up first (lazily generated code, caches,
  branch predictors, CPU frequency), and the collector is frozen after setup so
  the inputs built for a benchmark are not traversed again and again.

Nothing here asserts on a time: a `Table` reports and marks each target met or
not. `run.py` prints the tables as markdown and writes them as JSON.

    >>> sample = Sample([3.0, 1.0, 2.0])
    >>> sample.median, sample.p90
    (2.0, 3.0)
"""

from __future__ import annotations

import gc
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Sample:
    """Measurements of one thing, in one unit (usually nanoseconds per operation)."""

    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def p90(self) -> float:
        return percentile(self.values, 90)

    @property
    def count(self) -> int:
        return len(self.values)


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile: a value that was actually measured."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


@contextmanager
def quiet_gc() -> Iterator[None]:
    """Collect, freeze what setup built, and keep the collector out of the timings."""
    gc.collect()
    gc.freeze()
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        gc.unfreeze()


def interleaved(
    cases: Mapping[str, Callable[[int], object]],
    *,
    rounds: int,
    units: int = 1,
    warmup: int = 3,
    collect: bool = False,
) -> dict[str, Sample]:
    """Time each case `rounds` times, alternating between them.

    `cases[name](r)` does round r's work (a case may use r to pick the chunk of
    its input); `units` is how many operations one call performs, so samples
    are nanoseconds per operation. Round r starts with case r mod len(cases).
    With `collect` the garbage collector stays on (the realistic setting for
    code that allocates); otherwise it is off while timing, as in `timeit`.
    """
    names = list(cases)
    for r in range(warmup):
        for name in names:
            cases[name](r)
    samples: dict[str, list[float]] = {name: [] for name in names}
    clock = time.perf_counter_ns
    with _gc_mode(collect):
        for r in range(rounds):
            start_at = r % len(names)
            for name in names[start_at:] + names[:start_at]:
                case = cases[name]
                t0 = clock()
                case(r)
                t1 = clock()
                samples[name].append((t1 - t0) / units)
    return {name: Sample(values) for name, values in samples.items()}


@contextmanager
def _gc_mode(collect: bool) -> Iterator[None]:
    if collect:
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
    else:
        with quiet_gc():
            yield


def time_once(call: Callable[[], object]) -> float:
    """Nanoseconds for one call."""
    t0 = time.perf_counter_ns()
    call()
    return float(time.perf_counter_ns() - t0)


# --- formatting ----------------------------------------------------------------------


def fmt_ns(ns: float) -> str:
    """A duration in the unit that reads best: ns, µs, ms or s."""
    if math.isinf(ns):
        return "∞"
    if ns < 1_000:
        return f"{ns:.0f} ns"
    if ns < 1_000_000:
        return f"{ns / 1_000:.2f} µs"
    if ns < 1_000_000_000:
        return f"{ns / 1_000_000:.1f} ms"
    return f"{ns / 1_000_000_000:.2f} s"


def fmt_ratio(ratio: float) -> str:
    return f"{ratio:.2f}x" if ratio < 100 else f"{ratio:.0f}x"


# --- results -------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A goal from an issue: `value` must be at most `limit` (both in `unit`)."""

    name: str
    value: float
    limit: float
    unit: str

    @property
    def met(self) -> bool:
        return self.value <= self.limit

    def describe(self) -> str:
        return f"{self.name}: {self._show(self.value)} (target ≤ {self._show(self.limit)})"

    def _show(self, number: float) -> str:
        if self.unit == "ns":
            return fmt_ns(number)
        if self.unit == "x":
            return fmt_ratio(number)
        if self.unit == "bytes":
            return f"{number:,.0f} B"
        return f"{number:g} {self.unit}"

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "limit": self.limit,
            "unit": self.unit,
            "met": self.met,
        }


@dataclass
class Table:
    """One benchmark's result: a markdown table, its targets and notes."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # raw numbers for the JSON
    seconds: float = 0.0  # how long the benchmark took to run

    def add(self, *cells: object) -> None:
        self.rows.append([str(cell) for cell in cells])

    def markdown(self) -> str:
        lines = [f"### {self.key}. {self.title}", ""]
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("|" + "|".join(" --- " for _ in self.columns) + "|")
        lines.extend("| " + " | ".join(row) + " |" for row in self.rows)
        if self.targets:
            lines.append("")
            lines.append("| target | measured | limit | met |")
            lines.append("| --- | --- | --- | --- |")
            for target in self.targets:
                lines.append(
                    f"| {target.name} | {target._show(target.value)} | "
                    f"≤ {target._show(target.limit)} | {'yes' if target.met else '**NO**'} |"
                )
        for note in self.notes:
            lines.append("")
            lines.append(note)
        lines.append("")
        lines.append(f"_(ran in {self.seconds:.1f} s)_")
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "columns": self.columns,
            "rows": self.rows,
            "targets": [t.as_json() for t in self.targets],
            "notes": self.notes,
            "data": self.data,
            "seconds": round(self.seconds, 3),
        }


# --- the machine -----------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the numbers were measured on: they mean little without it."""
    import politely

    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "politely": politely.__version__,
        "platform": platform.platform(),
        "executable": sys.executable,
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
