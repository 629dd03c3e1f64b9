"""A. The language: parse, check and compile a generated site, cold and on reload.

Why: a site's rules are compiled when the service starts and whenever they are
reloaded, and `politely check` runs in editors and CI; the issues' targets: a
1,000-rule site (workload.site_source) loads in under a second, a 10,000-rule
site in under three seconds cold (two, issue 10 hopes) with a peak RSS under
300 MiB, and reloads unchanged in under a second.

Stages are timed through the public functions: `politely.parser.parse` (text →
syntax tree), `politely.checker.check_sources` (which parses and then checks), and
`politely.compiler.compile_rules` (checked tree → RuleSet), one after another
with the caches emptied: check is then `check_sources` with every file in the
parse cache. A load is what `Engine.from_path`, `politely check` or a service's
reload pays: parse + check + compile.

- **cold, new process**: a fresh interpreter runs `check_path` + `compile_rules`
  on the site's folder (written to a temporary folder) with a cache folder of
  its own (`POLITELY_CACHE_DIR`) that holds only the LALR parser, as on a
  machine where politely has run before: no file of the site has been parsed,
  so every one is parsed (and saved, `politely.saved_parses`) inside the time.
  Its peak RSS (`ru_maxrss`) is the memory figure. Imports are timed apart.
- **restart, new process**: the same again on the cache folder the cold
  process left: the site's check is read back (`politely.saved_checks`), as a
  service restarting on unchanged rules or a second `politely check` does;
  only the compile is done again.
- **first load in this process**: the three stages after emptying the parse
  and check caches (`parser.PARSED`, `checker.CHECKED`), the parser already built.
- **reload, unchanged**: the same files again while the rule set of the first
  load is in use, as a service reloads while serving: the check cache answers
  and `compile_rules` hands back the running rule set.
- **reload, one byte changed**: one rule file gains a newline; that file is
  parsed again, the whole site checked and compiled again.

A 10,000-rule site does not fit one file (a file holds at most a million
characters): it is split into files of 1,000 rules and one with the policy and
defines.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import politely
from harness import Sample, Table, Target, fmt_ns
from politely import checker
from politely.checker import check_sources
from politely.compiler import COMPILED, compile_rules
from politely.lark_cache import CACHE_DIR_VARIABLE
from politely.parser import PARSED, parse
from politely.ruleset import RuleSet
from workload import site_source

RULES_PER_FILE = 1000
_PACKAGE_ROOT = str(Path(politely.__file__).resolve().parents[1])  # the child imports this politely
MIB = 1024 * 1024

# Run by a fresh interpreter: one cold load of the folder in argv[1], as JSON.
_COLD = """
import json, resource, sys, time
t0, c0 = time.perf_counter_ns(), time.process_time_ns()
from politely.checker import check_path
from politely.compiler import compile_rules
t1, c1 = time.perf_counter_ns(), time.process_time_ns()
rules = compile_rules(check_path(sys.argv[1]))
t2, c2 = time.perf_counter_ns(), time.process_time_ns()
print(json.dumps({
    "import_ns": t1 - t0, "load_ns": t2 - t1, "load_cpu_ns": c2 - c1,
    "rules": len(rules.rules),
    "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
}))
"""


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


def _load(sources: Mapping[str, str]) -> tuple[RuleSet, float, float, float]:
    """The rule set, and check_sources, compile_rules and CPU time of both in ns."""
    cpu = time.thread_time_ns()
    t0 = time.perf_counter_ns()
    result = check_sources(sources)
    t1 = time.perf_counter_ns()
    rules = compile_rules(result)
    t2 = time.perf_counter_ns()
    return rules, float(t1 - t0), float(t2 - t1), float(time.thread_time_ns() - cpu)


def _stages(sources: Mapping[str, str]) -> tuple[RuleSet, float, float, float, float]:
    """A first load stage by stage: the rule set, parse, check, compile and CPU in ns.

    The parse runs first on its own, so `check_sources` finds every file in the
    parse cache and its time is the check alone.
    """
    cpu = time.thread_time_ns()
    t0 = time.perf_counter_ns()
    for path, text in sources.items():
        parse(text, path)
    t1 = time.perf_counter_ns()
    result = check_sources(sources)
    t2 = time.perf_counter_ns()
    rules = compile_rules(result)
    t3 = time.perf_counter_ns()
    busy = float(time.thread_time_ns() - cpu)
    return rules, float(t1 - t0), float(t2 - t1), float(t3 - t2), busy


def _forget() -> None:
    """Empty every cache a load consults, the saved parses included (this process's
    cache folder is a temporary one, `run`), as a first start does."""
    PARSED.clear()
    checker.CHECKED.clear()
    COMPILED.clear()
    shutil.rmtree(Path(os.environ[CACHE_DIR_VARIABLE], "parses"), ignore_errors=True)


def _child_env(cache: Path) -> dict[str, str]:
    return {
        **os.environ,
        CACHE_DIR_VARIABLE: str(cache),
        "PYTHONPATH": _PACKAGE_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }


def _parser_only(folder: Path) -> Path:
    """A cache folder holding only the LALR parser, written by a process of its own."""
    cache = folder / "parser-only"
    warm = "from politely.parser import parse; parse('rule w { when page.dwell >= 1s say \"up\" }')"
    subprocess.run([sys.executable, "-c", warm], check=True, env=_child_env(cache))
    return cache


def _cold_and_restart(
    sources: Mapping[str, str], n_rules: int, parser_only: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A cold load of the site in a fresh interpreter (its files and a copy of the
    parser-only cache folder in a temporary folder), then a restart on what it saved."""
    with tempfile.TemporaryDirectory(prefix="politely-bench-a-") as folder:
        site = Path(folder, "site")
        site.mkdir()
        for path, text in sources.items():
            Path(site, Path(path).name).write_text(text, encoding="utf-8")
        cache = Path(folder, "cache")
        shutil.copytree(parser_only, cache)
        cold, restart = (_child_load(site, n_rules, cache) for _ in range(2))
    return cold, restart


def _child_load(site: Path, n_rules: int, cache: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _COLD, str(site)],
        capture_output=True,
        text=True,
        check=True,
        env=_child_env(cache),
    )
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["rules"] == n_rules, found
    return found


def run(quick: bool = False) -> Table:
    with tempfile.TemporaryDirectory(prefix="politely-bench-a-cache-") as scratch:
        previous = os.environ.get(CACHE_DIR_VARIABLE)
        os.environ[CACHE_DIR_VARIABLE] = str(Path(scratch, "this-process"))
        try:
            return _run(quick, _parser_only(Path(scratch)))
        finally:
            if previous is None:
                del os.environ[CACHE_DIR_VARIABLE]
            else:
                os.environ[CACHE_DIR_VARIABLE] = previous


def _run(quick: bool, parser_only: Path) -> Table:
    small, large = (200, 500) if quick else (1000, 10_000)
    reps = {small: 2 if quick else 5, large: 1}
    cold_reps = {small: 1 if quick else 3, large: 1}
    parse('rule warm { when page.dwell >= 1s say "up" }')  # builds the LALR parser

    table = Table(
        "A",
        f"Language: parse + check + compile of generated {small:,}- and {large:,}-rule sites",
        ["site, stage", "median", "p90", "CPU time (median)"],
    )
    data: dict[str, object] = {}
    for n_rules in (small, large):
        sources = site_files(n_rules)
        last = list(sources)[-1]
        edited = {**sources, last: sources[last] + "\n"}
        pairs = [
            _cold_and_restart(sources, n_rules, parser_only) for _ in range(cold_reps[n_rules])
        ]
        cold = [c for c, _ in pairs]
        restart = Sample([float(r["load_ns"]) for _, r in pairs])
        restart_cpu = Sample([float(r["load_cpu_ns"]) for _, r in pairs])
        parse_ns, check_ns, compile_ns, first, first_cpu = [], [], [], [], []
        warm, warm_cpu, changed, changed_cpu = [], [], [], []
        for _ in range(reps[n_rules]):
            _forget()
            rules, p, c, k, busy = _stages(sources)  # every file parsed, checked, compiled
            parse_ns.append(p)
            check_ns.append(c)
            compile_ns.append(k)
            first.append(p + c + k)
            first_cpu.append(busy)
            again, c, k, busy = _load(sources)  # unchanged while `rules` is in use
            assert again is rules
            warm.append(c + k)
            warm_cpu.append(busy)
            other, c, k, busy = _load(edited)  # one file parsed again, all checked again
            assert other is not rules
            changed.append(c + k)
            changed_cpu.append(busy)
            del rules, again, other
        cold_ns = Sample([float(c["load_ns"]) for c in cold])
        cold_cpu = Sample([float(c["load_cpu_ns"]) for c in cold])
        import_ns = Sample([float(c["import_ns"]) for c in cold])
        rss = max(c["max_rss_bytes"] for c in cold)
        label = f"{n_rules:,} rules"
        rows: list[tuple[str, Sample, list[float] | str]] = [
            ("parse (`parser.parse`, every file)", Sample(parse_ns), ""),
            ("check (`check_sources`, the parse cache answering)", Sample(check_ns), ""),
            ("compile (`compile_rules`)", Sample(compile_ns), ""),
            (
                "**cold load, new process** (`check_path` + `compile_rules`)",
                cold_ns,
                cold_cpu.values,
            ),
            ("  imports of that process, apart", import_ns, ""),
            (
                "**restart, new process** (the same, the check saved by the cold one read back)",
                restart,
                restart_cpu.values,
            ),
            ("first load in a running process (the three above)", Sample(first), first_cpu),
            ("**reload, unchanged** (rule set in use)", Sample(warm), warm_cpu),
            ("reload, one byte of one file changed", Sample(changed), changed_cpu),
        ]
        for stage, sample, cpu in rows:
            cpu_text = fmt_ns(Sample(cpu).median) if cpu else ""
            table.add(f"{label}: {stage}", fmt_ns(sample.median), fmt_ns(sample.p90), cpu_text)
        table.add(f"{label}: **peak RSS** of the cold process", f"{rss / MIB:.0f} MiB", "", "")
        data[str(n_rules)] = {
            "files": len(sources),
            "bytes": sum(len(t.encode()) for t in sources.values()),
            "parse_ns": parse_ns,
            "check_ns": check_ns,
            "compile_ns": compile_ns,
            "cold": cold,
            "restart": [r for _, r in pairs],
            "first_ns": first,
            "first_cpu_ns": first_cpu,
            "reload_ns": warm,
            "reload_cpu_ns": warm_cpu,
            "changed_ns": changed,
            "changed_cpu_ns": changed_cpu,
        }
        if n_rules == small:
            table.targets.append(Target(f"cold load, {label}", cold_ns.median, 1e9, "ns"))
        else:
            table.targets += [
                Target(f"cold load, {label}", cold_ns.median, 3e9, "ns"),
                Target(f"reload unchanged, {label}", Sample(warm).median, 1e9, "ns"),
                Target(f"peak RSS, {label}", round(rss / MIB, 1), 300, "MiB"),
            ]
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    table.notes.append(
        f"Sites from workload.site_source split into files of {RULES_PER_FILE:,} rules. "
        f"Cold: {cold_reps[small]} and {cold_reps[large]} new processes, each loading the "
        "site's folder once with a cache folder holding only the LALR parser, so every "
        "file is parsed (and saved) inside the time; imports are timed apart. Restart: "
        "one more process on the folder each cold one left, the site's check read back "
        "(politely.saved_checks). In this process (its own empty cache folder), "
        f"{reps[small]} and {reps[large]} repetitions of: a "
        "first load stage by stage with every cache emptied (the parse of every file, "
        "then `check_sources`, which the parse cache answers, then `compile_rules`), a "
        "reload of the same files "
        "while that rule set is in use (a service reloads while serving), and a reload "
        "with a newline added to the last file. Buckets generate their functions on "
        "first use, so compile times leave that out (a first event pays for its "
        "buckets). The garbage collector stays on; parse and compile pause it "
        "(politely.gcpause). Targets are judged on wall time; the CPU column (the "
        "process's for cold loads, the thread's otherwise) leaves out time spent waiting "
        "for a core (on a busy machine wall time is much larger). "
        f"Load average when done: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}."
    )
    data["load_average"] = list(load)
    table.data = data
    return table
