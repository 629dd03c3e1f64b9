"""K. Start-up: `politely check rules` as a whole new process, against the interpreter's floor.

Why: `politely check` runs in editors, pre-commit hooks and CI, once a file
save or a commit, so a user waits for the whole process: interpreter start,
imports, the parser, the check. The issue's target is under 200 ms for the
repository's example site (`rules/`).

Each round runs three subprocesses, in an order that turns each round:
`python -c pass` (the interpreter's own start-up, the floor nothing can go
below), `python -m politely check rules` with the parser cache written by an
earlier run (every run after the first on a machine), and the same with an
empty cache folder of its own (`POLITELY_CACHE_DIR`), as the very first run
after installing, which analyses the grammar and writes the cache. Wall time
is timed around each subprocess; CPU time is the child's user + system time
(`RUSAGE_CHILDREN`).

The children run the same politely as this process and with compiled bytecode,
as an installed package has: `PYTHONDONTWRITEBYTECODE` is dropped and the
bytecode goes to a temporary `PYTHONPYCACHEPREFIX`, written by the warm-up
runs, so the source tree gets no `__pycache__`.
"""

from __future__ import annotations

import itertools
import os
import resource
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import politely
from harness import Sample, Table, Target, fmt_ns, fmt_ratio, interleaved
from politely.lark_cache import CACHE_DIR_VARIABLE

SITE = Path(__file__).resolve().parent.parent / "rules"
LIMIT_NS = 200e6


def _environment(scratch: Path) -> dict[str, str]:
    """The children's environment: this process's politely, bytecode compiled once."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    source = str(Path(politely.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([source, *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONPYCACHEPREFIX"] = str(scratch / "bytecode")
    env[CACHE_DIR_VARIABLE] = str(scratch / "cache")
    return env


def _child_cpu_ns() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (usage.ru_utime + usage.ru_stime) * 1e9


def run(quick: bool = False) -> Table:
    rounds, warmup = (3, 1) if quick else (12, 2)
    check = [sys.executable, "-m", "politely", "check", str(SITE)]
    cpu: dict[str, list[float]] = {}

    with tempfile.TemporaryDirectory(prefix="politely-bench-k-") as folder:
        scratch = Path(folder)
        env = _environment(scratch)
        empty = itertools.count()

        def spawn(
            name: str, command: list[str], extra: Callable[[], dict[str, str]] = dict
        ) -> Callable[[int], object]:
            def once(_round: int) -> None:
                before = _child_cpu_ns()
                subprocess.run(
                    command, env={**env, **extra()}, stdout=subprocess.DEVNULL, check=True
                )
                cpu.setdefault(name, []).append(_child_cpu_ns() - before)

            return once

        def empty_cache() -> dict[str, str]:
            return {CACHE_DIR_VARIABLE: str(scratch / f"empty-{next(empty)}")}

        shown = subprocess.run(check, env=env, capture_output=True, text=True, check=True)
        cases = {
            "floor": spawn("floor", [sys.executable, "-c", "pass"]),
            "cached": spawn("cached", check),
            "first": spawn("first", check, empty_cache),
        }
        samples = interleaved(cases, rounds=rounds, warmup=warmup)
        cache_files = sorted(p.name for p in (scratch / "cache").iterdir())

    for name in cpu:  # the warm-up runs are not timed
        cpu[name] = cpu[name][warmup:]
    floor = samples["floor"].median
    table = Table(
        "K",
        "Start-up: `python -m politely check rules` as a new process, vs `python -c pass`",
        ["process", "median", "p90", "CPU (median)", "vs the floor", "minus the floor"],
    )
    for name, label in [
        ("floor", "`python -c pass` (the interpreter's floor)"),
        ("cached", "**`politely check rules`**, parser cache written"),
        ("first", "`politely check rules`, first run: empty cache folder"),
    ]:
        sample = samples[name]
        table.add(
            label,
            fmt_ns(sample.median),
            fmt_ns(sample.p90),
            fmt_ns(Sample(cpu[name]).median),
            fmt_ratio(sample.median / floor),
            fmt_ns(sample.median - floor) if name != "floor" else "",
        )
    table.targets.append(
        Target(
            "politely check rules, new process, cache written",
            samples["cached"].median,
            LIMIT_NS,
            "ns",
        )
    )
    load = os.getloadavg()
    table.notes.append(
        f"{rounds} interleaved rounds after {warmup} warm-up rounds; the check's output: "
        f"{shown.stdout.strip()!r}; cache files: {', '.join(cache_files)}. Load average when "
        f"done: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}."
    )
    table.data = {
        "wall_ns": {name: sample.values for name, sample in samples.items()},
        "cpu_ns": cpu,
        "load_average": list(load),
    }
    return table
