"""B. Globs: politely's linear-time matcher against regular expressions.

Why: marketers write `page.path matches "..."` and URLs come from visitors, so
a pattern with many stars against a long URL must not stall the engine. The
issue's example is `*a*a*a*a*a*b` against a 2,000-character URL of `a`s.

Three matchers are compared on the same text:

- politely: `politely.glob.compile_glob` (literal segments found left to right
  with `str.find`, never retried);
- `re` of `fnmatch.translate(pattern)`, the standard library's translation.
  Since Python 3.9 it wraps each star in an atomic group, so it no longer
  backtracks catastrophically; it is measured at 2,000 characters like politely;
- the naive translation (`*` → `.*`, `?` → `.`), what a hand-rolled
  glob-to-regex does and what fnmatch produced before 3.9. Its time grows
  polynomially with a degree of about the number of stars, so it runs in a
  child process on growing inputs (8, 12, 16, ... characters) and stops at
  the first size over a time budget; a child that goes silent is killed, so
  nothing can hang. Its time at 2,000 characters is extrapolated from the
  last two sizes.

Run as `python bench/bench_glob.py --child PATTERN UNIT BUDGET_NS` it is that
child: it prints one JSON line per input size.
"""

from __future__ import annotations

import fnmatch
import json
import math
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness import Sample, Table, fmt_ns, interleaved
from politely.glob import compile_glob

SIZES = (8, 12, 16, 20, 24, 32, 48, 64, 96, 128, 256, 512, 1000, 2000)
LENGTH = 2000


@dataclass(frozen=True)
class Case:
    pattern: str
    unit: str  # the text is `unit` repeated to the length, then `tail`
    tail: str = ""
    about: str = ""

    def text(self, length: int) -> str:
        body = max(0, length - len(self.tail))
        return (self.unit * (body // len(self.unit) + 1))[:body] + self.tail


CASES = (
    Case("*a*a*a*a*a*b", "a", about="the issue's pattern"),
    Case("*a*a*a*a*a*b*", "a", about="no literal tail to reject on"),
    Case("*ab*ab*ab*ab*ac*", "ab", about="two-letter segments"),
    Case("*/*/*/*/*/*/x*", "/", about="slashes, as in deep URLs"),
    Case("*a?a?a?a?b*", "a", about="`?` inside segments"),
    Case("/docs/*/api/*.html", "/docs/" + "v2/", tail="/api/index.html", about="a real glob"),
)


def naive_regex(pattern: str) -> str:
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern) + r"\Z"


# --- the child: times one regex on growing inputs ------------------------------------


def child(regex: str, unit: str, tail: str, budget_ns: float) -> None:
    case = Case("", unit, tail)
    match = re.compile(regex, re.DOTALL).match
    for size in SIZES:
        text = case.text(size)
        times: list[float] = []
        spent = 0.0
        while len(times) < 7 and (spent < budget_ns or not times):
            t0 = time.perf_counter_ns()
            match(text)
            elapsed = float(time.perf_counter_ns() - t0)
            times.append(elapsed)
            spent += elapsed
        ns = Sample(times).median
        print(json.dumps({"size": size, "ns": ns}), flush=True)
        if ns > budget_ns:
            return


def grow(regex: str, case: Case, budget_ns: float, hang_s: float) -> list[tuple[int, float]]:
    """(size, median ns) per size, until the budget is passed or the child hangs."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child"]
    command += [regex, case.unit, case.tail, str(budget_ns)]
    child_process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert child_process.stdout is not None
        for line in child_process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    found: list[tuple[int, float]] = []
    try:
        while True:
            try:
                line = lines.get(timeout=hang_s)
            except queue.Empty:  # silent for too long: a match is stuck
                found.append((-1, math.inf))
                break
            if line is None:
                break
            item = json.loads(line)
            found.append((int(item["size"]), float(item["ns"])))
    finally:
        child_process.kill()
        child_process.wait()
    return found


def extrapolate(points: list[tuple[int, float]], size: int) -> float | None:
    """Time at `size`, growing as a power of the length fitted (least squares,
    log-log) to the last three measured sizes. The naive regex's time is a
    polynomial whose degree shows fully only at large sizes, so this
    underestimates."""
    measured = [(s, ns) for s, ns in points if s > 0 and ns > 0]
    if len(measured) < 2:
        return None
    last_size, last_ns = measured[-1]
    if last_size >= size:
        return last_ns
    xs = [math.log(s) for s, _ in measured[-3:]]
    ys = [math.log(ns) for _, ns in measured[-3:]]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )
    return last_ns * (size / last_size) ** max(1.0, slope)


def show_growth(points: list[tuple[int, float]]) -> str:
    parts = [f"{s}: {fmt_ns(ns)}" for s, ns in points if s > 0]
    if points and points[-1][0] < 0:
        parts.append("then hung (killed)")
    return " · ".join(parts)


def show_long(ns: float | None) -> str:
    if ns is None:
        return "n/a"
    seconds = ns / 1e9
    if seconds < 3600:
        return fmt_ns(ns)
    days = seconds / 86400
    if days < 2:
        return f"~{seconds / 3600:.0f} hours"
    years = days / 365.25
    if years < 2:
        return f"~{days:.0f} days"
    if years < 1000:
        return f"~{years:.0f} years"
    return f"~10^{math.log10(years):.0f} years"


# --- the benchmark ----------------------------------------------------------------------


def run(quick: bool = False) -> Table:
    budget_ns = 2e7 if quick else 2e8  # stop a regex at the first size over this
    hang_s = 5.0 if quick else 15.0
    rounds = 50 if quick else 400
    cases = CASES[:2] if quick else CASES
    table = Table(
        "B",
        f"Globs: politely vs `re`, text of {LENGTH:,} characters",
        [
            "pattern",
            "text",
            "politely (median)",
            "politely at 200 chars",
            "`re` of `fnmatch.translate`",
            "naive `re` (`*`→`.*`): median by text length",
            f"naive `re` at {LENGTH:,} (extrapolated, a lower bound)",
        ],
    )
    data: list[dict[str, object]] = []
    for case in cases:
        long_text, short_text = case.text(LENGTH), case.text(200)
        glob = compile_glob(case.pattern)
        translated = re.compile(fnmatch.translate(case.pattern)).match
        assert glob(long_text) == (translated(long_text) is not None), case.pattern
        timed: dict[str, Callable[[int], object]] = {
            "politely": lambda _r, g=glob, t=long_text: g(t),
            "politely 200": lambda _r, g=glob, t=short_text: g(t),
        }
        fn_points = grow(fnmatch.translate(case.pattern), case, budget_ns, hang_s)
        fn_at_length = dict(fn_points).get(LENGTH)
        if fn_at_length is not None:  # safe at full length: time it alongside politely
            timed["fnmatch"] = lambda _r, m=translated, t=long_text: m(t)
        samples = interleaved(timed, rounds=rounds, warmup=20)
        naive_points = grow(naive_regex(case.pattern), case, budget_ns, hang_s)
        naive_long = extrapolate(naive_points, LENGTH)
        fnmatch_cell = (
            fmt_ns(samples["fnmatch"].median)
            if "fnmatch" in samples
            else f"over budget: {show_growth(fn_points)}"
        )
        table.add(
            f"`{case.pattern}`",
            f"{case.about}; `{long_text[:12]}…`",
            fmt_ns(samples["politely"].median),
            fmt_ns(samples["politely 200"].median),
            fnmatch_cell,
            show_growth(naive_points),
            show_long(naive_long),
        )
        data.append(
            {
                "pattern": case.pattern,
                "politely_ns": samples["politely"].values,
                "politely_200_ns": samples["politely 200"].values,
                "fnmatch_ns": samples["fnmatch"].values if "fnmatch" in samples else fn_points,
                "naive_growth": naive_points,
                "naive_extrapolated_ns": naive_long,
            }
        )
    table.notes.append(
        "Times are per match (one call on the whole text). politely and fnmatch's `re` are "
        f"timed interleaved, {rounds} rounds each. The naive regex runs in a child process, "
        f"stopped at the first size whose median exceeds {fmt_ns(budget_ns)} and killed if "
        f"silent for {hang_s:.0f} s. On this Python ({sys.version.split()[0]}), "
        "`fnmatch.translate` emits atomic groups, so the standard library is safe too; the "
        "exponential blow-up the issue describes is the naive translation's."
    )
    table.data = {"cases": data}
    return table


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]))
    else:
        print(run(quick="--quick" in sys.argv).markdown())
