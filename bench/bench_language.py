"""A. The language: parse, check and compile a generated site, cold and on reload.

Why: a site's rules are compiled when the service starts and whenever they are
reloaded, and `politely check` runs in editors and CI; the issue's targets are
under one second for 1,000 realistic rules (workload.site_source) and under
two seconds to reload an unchanged 10,000-rule site.

Stages are timed through the public functions: `politely.parser.parse` (text →
syntax tree), `politely.checker.check_sources` (which parses and then checks;
"check" below is its time minus the parse time of the same repetition), and
`politely.compiler.compile_rules` (checked tree → RuleSet). The total is what
`Engine.from_source` or a reload pays: check_sources + compile_rules.

Cold runs start with an empty parse cache (`politely.parser.PARSED`), as a new
process does; a reload runs again on the same, unchanged files, so every file
is answered by the cache. A 10,000-rule site does not fit one file (a file
holds at most a million characters): it is split into files of 1,000 rules
and one with the policy and defines. The process has built the LALR parser
before the first timed run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

from harness import Sample, Table, Target, fmt_ns, time_once
from politely.checker import check_sources
from politely.compiler import compile_rules
from politely.parser import PARSED, parse
from workload import site_source

RULES_PER_FILE = 1000


def site_files(n_rules: int) -> dict[str, str]:
    """The generated site as files: the policy and defines, then 1,000 rules a file."""
    head, *rules = site_source(n_rules).split("\nrule ")
    files = {"site/00-policy.rules": head}
    for k in range(0, len(rules), RULES_PER_FILE):
        chunk = rules[k : k + RULES_PER_FILE]
        files[f"site/{k // RULES_PER_FILE + 1:02}.rules"] = "".join(
            "rule " + r + "\n" for r in chunk
        )
    return files


def _load(sources: Mapping[str, str]) -> tuple[float, float, float]:
    """(check_sources, compile_rules, CPU time of both) in ns."""
    cpu = time.thread_time_ns()
    t0 = time.perf_counter_ns()
    result = check_sources(sources)
    t1 = time.perf_counter_ns()
    compile_rules(result)
    t2 = time.perf_counter_ns()
    return float(t1 - t0), float(t2 - t1), float(time.thread_time_ns() - cpu)


def _parse_all(sources: Mapping[str, str]) -> float:
    PARSED.clear()
    return time_once(lambda: [parse(text, path) for path, text in sources.items()])


def run(quick: bool = False) -> Table:
    small, large = (200, 500) if quick else (1000, 10_000)
    reps = {small: 2 if quick else 5, large: 1 if quick else 2}
    parse('rule warm { when page.dwell >= 1s say "up" }')  # builds the LALR parser

    table = Table(
        "A",
        f"Language: parse + check + compile of generated {small:,}- and {large:,}-rule sites",
        ["site, stage", "median", "p90", "CPU time (median)"],
    )
    data: dict[str, object] = {}
    for n_rules in (small, large):
        sources = site_files(n_rules)
        parse_ns, check_ns, compile_ns, cold, cold_cpu = [], [], [], [], []
        warm, warm_cpu, warm_compile = [], [], []
        for _ in range(reps[n_rules]):
            parse_ns.append(_parse_all(sources))
            PARSED.clear()
            c, k, busy = _load(sources)  # cold: every file parsed
            check_ns.append(max(0.0, c - parse_ns[-1]))
            compile_ns.append(k)
            cold.append(c + k)
            cold_cpu.append(busy)
            c, k, busy = _load(sources)  # reload, nothing changed: the cache answers
            warm.append(c + k)
            warm_cpu.append(busy)
            warm_compile.append(k)
        label = f"{n_rules:,} rules"
        for stage, sample, cpu in [
            ("parse (`parser.parse`, every file)", Sample(parse_ns), ""),
            ("check (`check_sources` minus its parse)", Sample(check_ns), ""),
            ("compile (`compile_rules`)", Sample(compile_ns), ""),
            ("**cold load** (`check_sources` + `compile_rules`)", Sample(cold), cold_cpu),
            ("**reload, unchanged** (parse cache answers)", Sample(warm), warm_cpu),
            ("  of which compile", Sample(warm_compile), ""),
        ]:
            cpu_text = fmt_ns(Sample(cpu).median) if cpu else ""
            table.add(f"{label}: {stage}", fmt_ns(sample.median), fmt_ns(sample.p90), cpu_text)
        data[str(n_rules)] = {
            "files": len(sources),
            "bytes": sum(len(t.encode()) for t in sources.values()),
            "parse_ns": parse_ns,
            "check_ns": check_ns,
            "compile_ns": compile_ns,
            "cold_ns": cold,
            "cold_cpu_ns": cold_cpu,
            "reload_ns": warm,
            "reload_cpu_ns": warm_cpu,
        }
        if n_rules == small:
            table.targets.append(
                Target(f"cold load, {n_rules:,} rules", Sample(cold).median, 1e9, "ns")
            )
        else:
            table.targets.append(
                Target(f"reload unchanged, {n_rules:,} rules", Sample(warm).median, 2e9, "ns")
            )
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    table.notes.append(
        f"Sites from workload.site_source split into files of {RULES_PER_FILE:,} rules; "
        f"{reps[small]} and {reps[large]} repetitions. Each repetition: a cold load after "
        "emptying the parse cache, then a reload of the same files. Buckets generate their "
        "functions on first use, so compile times leave that out (a first event pays for "
        "its buckets). The garbage collector stays on; parse and compile pause it "
        "(politely.gcpause). Targets are judged on wall time; the CPU column leaves out "
        "time spent waiting for a core (on a busy machine wall time is much larger). "
        f"Load average when done: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}."
    )
    data["load_average"] = list(load)
    table.data = data
    return table
