"""L. `politely simulate`: events per second over a day of the demo site's traffic.

Why: a marketer replays a site's recorded traffic (often a few hundred thousand
lines) against new rules before publishing them; the issue's target is at least
50,000 events/s with the summary and 30,000 events/s with `--json`, with memory
bounded by the number of visitors, not by the file's length.

The rules are the example site in rules/ (the demo's). The traffic
(workload.demo_traffic) is 25,000 events from a pool of 5,000 visitors who
come back in new sessions, about a fifth page views, most of the rest ticks,
some scrolls, exit intents, checkout errors and invitation outcomes, and an
agents line every simulated minute; written as JSON Lines into a temporary
folder.

Measured, all on that one file:

- the floor: reading the file and `json.loads` of every line, nothing else;
- the CLI's `main(["simulate", RULES, TRAFFIC])` in this process, summary and
  `--json` (to /dev/null), interleaved, a few rounds, medians;
- one measurement pass of the summary with `Engine.decide` wrapped in a timer:
  the engine's share against everything around it (reading, parsing and
  validating lines, building events, the bookkeeping, the report); the timer's
  own cost (~0.2 µs an event) falls on both sides;
- the summary again with `Engine.decide` answering from a recording of that
  pass: everything around the engine alone, free of the timer and of the
  engine's effect on caches (the target's figure);
- `politely simulate` in a process of its own: the whole process, start-up and
  compiling the rules included;
- that process's peak RSS (VmHWM, as it reports it) on files of 20,000 and
  80,000 events over the same 500 visitors: bounded by visitors, it hardly grows.
  (A pool of 2,000 compared different things: the shorter file ends with 825 of
  them in the store, the longer with 1,720, so its growth was visitors'.)
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import politely
from harness import Sample, Table, Target, fmt_ns, fmt_ratio, interleaved, time_once
from politely.cli import main
from politely.engine import Engine
from workload import demo_traffic

RULES = Path(__file__).resolve().parent.parent / "rules"
# The memory rows: a pool small enough that both files hold all of it by the end
# (with 2,000, the 20,000-event file ends with 825 in the store, the other 1,720).
MEMORY_VISITORS = 500


def write_traffic(path: Path, n_events: int, visitors: int, seed: int = 5) -> int:
    """The demo traffic as JSON Lines; returns the number of lines (events and agents)."""
    lines = 0
    with path.open("w", encoding="utf-8") as out:
        for item in demo_traffic(n_events, visitors, seed):
            out.write(json.dumps(item) + "\n")
            lines += 1
    return lines


def read_floor(path: Path) -> None:
    """What reading the file costs at the least: every line through `json.loads`."""
    with path.open("rb") as data:
        for text in data:
            json.loads(text)


def simulate_in_process(path: Path, *options: str) -> Callable[[int], object]:
    def run(_: int) -> None:
        with open(os.devnull, "w", encoding="utf-8") as sink, contextlib.redirect_stdout(sink):
            code = main(["simulate", str(RULES), str(path), *options])
        assert code == 0, code

    return run


@contextlib.contextmanager
def decide_timed(answers: list[Any]) -> Iterator[list[int]]:
    """`Engine.decide` wrapped in a timer while inside; yields [nanoseconds, calls].
    Every answer is appended to `answers`."""
    spent = [0, 0]
    original = Engine.decide
    clock = time.perf_counter_ns

    def timed(self: Engine, event: Any, now: float, **options: Any) -> Any:
        t0 = clock()
        try:
            answer = original(self, event, now, **options)
        finally:
            spent[0] += clock() - t0
            spent[1] += 1
        answers.append(answer)
        return answer

    Engine.decide = timed  # type: ignore[method-assign]
    try:
        yield spent
    finally:
        Engine.decide = original  # type: ignore[method-assign]


@contextlib.contextmanager
def decide_replayed(answers: list[Any]) -> Iterator[None]:
    """`Engine.decide` answering from a recording of the same run: what is left
    is everything the simulation does around the engine."""
    original = Engine.decide
    replay = iter(answers)
    Engine.decide = lambda self, event, now, **options: next(replay)  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        Engine.decide = original  # type: ignore[method-assign]


# The child reports its own peak: its rusage would count the pages of the (large)
# benchmark process it was forked from, which Linux carries over `exec`.
PEAK = """
import sys
from politely.cli import main
code = main(["simulate", *sys.argv[1:]])
try:
    with open("/proc/self/status", encoding="ascii") as status:
        peak = next(int(s.split()[1]) * 1024 for s in status if s.startswith("VmHWM:"))
except OSError:
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(peak, file=sys.stderr)
sys.exit(code)
"""


def subprocess_run(path: Path, *options: str) -> tuple[float, int]:
    """(wall seconds, peak RSS in bytes) of `politely simulate` in a process of its own."""
    source = str(Path(politely.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([source, os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-c", PEAK, str(RULES), str(path), *options]
    t0 = time.perf_counter()
    child = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - t0
    assert child.returncode == 0, child.stderr
    return seconds, int(child.stderr.split()[-1])


def run(quick: bool = False) -> Table:
    n_events = 5_000 if quick else 25_000
    rounds = 1 if quick else 2
    sizes = (2_000, 8_000) if quick else (20_000, 80_000)
    table = Table(
        "L",
        "`politely simulate` on the demo site: events per second",
        ["what", "per event (median)", "events/s", "vs reading the file"],
    )
    with tempfile.TemporaryDirectory(prefix="politely-bench-l-") as folder:
        traffic = Path(folder) / "traffic.jsonl"
        lines = write_traffic(traffic, n_events, visitors=max(100, n_events // 20))
        cases = {
            "floor": lambda _: read_floor(traffic),
            "summary": simulate_in_process(traffic),
            "json": simulate_in_process(traffic, "--json"),
        }
        samples = interleaved(cases, rounds=rounds, units=n_events, warmup=1, collect=True)
        floor = samples["floor"].median

        answers: list[Any] = []
        with decide_timed(answers) as spent:
            t0 = time.perf_counter_ns()
            simulate_in_process(traffic)(0)
            total = time.perf_counter_ns() - t0
        inside = spent[0] / n_events
        outside = (total - spent[0]) / n_events
        around: list[float] = []
        summary = simulate_in_process(traffic)
        for _ in range(rounds):
            with decide_replayed(answers):
                around.append(time_once(lambda: summary(0)) / n_events)
        del answers

        whole_seconds, _ = subprocess_run(traffic)
        whole = whole_seconds * 1e9 / n_events

        memory: list[tuple[int, float, int]] = []  # (events, seconds, peak RSS)
        visitors = MEMORY_VISITORS if not quick else 100
        for size in sizes:
            path = Path(folder) / f"traffic-{size}.jsonl"
            write_traffic(path, size, visitors=visitors, seed=9)
            seconds, rss = subprocess_run(path)
            memory.append((size, seconds, rss))
            path.unlink()

    def show(label: str, ns: float) -> None:
        table.add(label, fmt_ns(ns), f"{1e9 / ns:,.0f}", fmt_ratio(ns / floor))

    show("reading the file: `json.loads` of every line (the floor)", floor)
    show("`main(['simulate', ...])`, summary", samples["summary"].median)
    show("`main(['simulate', ..., '--json'])` to /dev/null", samples["json"].median)
    show("  of the summary: inside `Engine.decide` (timed pass)", inside)
    show("  of the summary: everything else (timed pass)", outside)
    replayed = Sample(around).median
    show("  everything else, `Engine.decide` answering from a recording", replayed)
    show("`politely simulate` in a process of its own (whole process, summary)", whole)
    for size, seconds, rss in memory:
        table.add(
            f"own process, {size:,} events over the same {visitors:,} visitors: "
            f"peak RSS {rss / 2**20:.0f} MiB",
            fmt_ns(seconds * 1e9 / size),
            f"{size / seconds:,.0f}",
            "",
        )
    summary_ns = samples["summary"].median
    json_ns = samples["json"].median
    table.targets.append(Target("summary: time per event (50,000/s)", summary_ns, 20_000, "ns"))
    table.targets.append(Target("--json: time per event (30,000/s)", json_ns, 1e9 / 30_000, "ns"))
    table.targets.append(
        Target("around Engine.decide (answers replayed), per event", replayed, 5_000, "ns")
    )
    growth = memory[1][2] / memory[0][2]
    table.targets.append(
        Target(f"peak RSS, {sizes[1]:,} events / {sizes[0]:,} events", growth, 1.1, "x")
    )
    share = inside / (inside + outside)
    table.notes.append(
        f"{n_events:,} events ({lines:,} lines with the agents lines) from "
        f"{max(100, n_events // 20):,} visitors; {rounds} interleaved round(s), medians, "
        f"the collector on. `Engine.decide` takes {share:.0%} of the summary's time "
        f"({fmt_ns(inside)} of {fmt_ns(inside + outside)} an event in the timed pass)."
    )
    table.data = {
        "events": n_events,
        "lines": lines,
        "floor_ns": floor,
        "summary_ns": samples["summary"].values,
        "json_ns": samples["json"].values,
        "decide_ns": inside,
        "outside_ns": outside,
        "replayed_ns": around,
        "subprocess_ns": whole,
        "memory": [{"events": s, "seconds": t, "peak_rss": r} for s, t, r in memory],
    }
    return table
