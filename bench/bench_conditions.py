"""C, D, E. Condition matching: politely against hand-written Python, rule-engine and CEL.

Why: a rule language only earns its place if it costs no more than the
Python a programmer would write by hand, and its index must make large rule
sets cheap. Every implementation evaluates the same rules (workload.ConditionRule:
path prefix, dwell, page views, not blocked, agents online, time since the last
invitation, invitations this session) over the same stream of visitor contexts,
60% of them on a page under some rule's folder. Each implementation gets its
inputs pre-built: politely a (VisitorState, Event, AgentStatus) triple, the
others a dict (and CEL a `cel.Context`), so only evaluation is timed.

- C: `RuleSet.matching(state, event, agents, now)`: every rule, no index, one
  generated function, against calling each hand-written closure on the dict.
- D: `RuleSet.candidates(event, state, agents, now)`: the index (buckets by
  event and path prefix) against the scan of all closures at 200 rules; and
  candidates() at 10,000 rules against 20 rules. The index memoises its lookups
  of (event, path) → buckets; a second pair of rows uses a path that never
  repeats (a long tail of product pages), so every lookup misses the cache.
- E: the same 20 rules in rule-engine (`rule_engine.Rule.matches(dict)`) and
  CEL (`cel.compile(...).execute(cel.Context)`).

Results are checked before timing: every implementation must pick the same
rules for every context.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from typing import Any

from harness import Table, Target, fmt_ns, fmt_ratio, interleaved
from politely.checker import check_sources
from politely.compiler import compile_rules
from politely.ruleset import RuleSet
from workload import (
    NOW,
    cel_text,
    condition_rules,
    hand_written,
    politely_source,
    rule_engine_text,
    visits,
)

BLOCKED_NOTE = (
    "The closures, rule-engine and CEL also test `not blocked`; politely's rules have no "
    "such test because the engine stops blocked visitors before any rule is evaluated "
    "(docs/contract.md, section 3, step 2)."
)


class Workload:
    """n rules, compiled by politely and written by hand, and a stream of visits."""

    def __init__(self, n_rules: int, n_visits: int, *, unique_paths: bool = False) -> None:
        self.specs = condition_rules(n_rules)
        started = time.perf_counter()
        files = {  # a rules file holds at most a million characters: 1,000 rules a file
            f"bench{i // 1000:02}.rules": politely_source(self.specs[i : i + 1000])
            for i in range(0, len(self.specs), 1000)
        }
        self.ruleset: RuleSet = compile_rules(check_sources(files))
        self.compile_seconds = time.perf_counter() - started
        self.closures = [(spec.name, hand_written(spec)) for spec in self.specs]
        self.visits = visits(self.specs, n_visits, unique_paths=unique_paths)
        self.contexts = [v.context() for v in self.visits]
        self.inputs = [v.politely(NOW) for v in self.visits]

    def with_visits(self, count: int, *, unique_paths: bool) -> Workload:
        """The same rules (not compiled again) over another stream of visits."""
        other = copy.copy(self)
        other.visits = visits(self.specs, count, unique_paths=unique_paths)
        other.contexts = [v.context() for v in other.visits]
        other.inputs = [v.politely(NOW) for v in other.visits]
        return other

    def chunks(self, size: int) -> tuple[list[range], int]:
        spans = [
            range(i, min(i + size, len(self.visits))) for i in range(0, len(self.visits), size)
        ]
        return spans, size

    # the implementations, one call per context -------------------------------------------

    def scan(self, context: dict[str, Any]) -> list[str]:
        return [name for name, test in self.closures if test(context)]

    def check(self, *, indexed: bool) -> None:
        """Every context: politely's rules are the closures' rules."""
        rules = self.ruleset
        for i, (state, event, agents) in enumerate(self.inputs):
            if indexed:
                found = rules.candidates(event, state, agents, NOW)
            else:
                found = rules.matching(state, event, agents, NOW)
            expected = self.scan(self.contexts[i])
            if sorted(r.name for r in found) != sorted(expected):
                raise AssertionError(f"context {i}: politely {found} != closures {expected}")


def matching_case(w: Workload, chunks: Sequence[range]) -> Callable[[int], object]:
    matching, inputs = w.ruleset.matching, w.inputs

    def case(r: int) -> None:
        for i in chunks[r % len(chunks)]:
            s, e, a = inputs[i]
            matching(s, e, a, NOW)

    return case


def candidates_case(w: Workload, chunks: Sequence[range]) -> Callable[[int], object]:
    candidates, inputs = w.ruleset.candidates, w.inputs

    def case(r: int) -> None:
        for i in chunks[r % len(chunks)]:
            s, e, a = inputs[i]
            candidates(e, s, a, NOW)

    return case


def scan_case(w: Workload, chunks: Sequence[range]) -> Callable[[int], object]:
    closures, contexts = w.closures, w.contexts

    def case(r: int) -> None:
        for i in chunks[r % len(chunks)]:
            c = contexts[i]
            [name for name, test in closures if test(c)]

    return case


def match_rate(w: Workload) -> float:
    return sum(1 for c in w.contexts if w.scan(c)) / len(w.contexts)


# --- C -----------------------------------------------------------------------------------


def run_c(quick: bool = False) -> Table:
    n_visits, chunk, rounds = (400, 100, 40) if quick else (2000, 100, 400)
    table = Table(
        "C",
        "Conditions: `RuleSet.matching` (all rules, unindexed) vs hand-written closures",
        ["rules", "politely `matching` per context", "closures per context", "ratio", "p90 ratio"],
    )
    for n in (20, 200):
        w = Workload(n, n_visits)
        w.check(indexed=False)
        spans, size = w.chunks(chunk)
        s = interleaved(
            {"politely": matching_case(w, spans), "closures": scan_case(w, spans)},
            rounds=rounds,
            units=size,
        )
        ratio = s["politely"].median / s["closures"].median
        table.add(
            n,
            f"{fmt_ns(s['politely'].median)} (p90 {fmt_ns(s['politely'].p90)})",
            f"{fmt_ns(s['closures'].median)} (p90 {fmt_ns(s['closures'].p90)})",
            fmt_ratio(ratio),
            fmt_ratio(s["politely"].p90 / s["closures"].p90),
        )
        if n == 20:
            table.targets.append(Target("politely / closures at 20 rules", ratio, 1.0, "x"))
        table.data[str(n)] = {
            "politely_ns": s["politely"].values,
            "closures_ns": s["closures"].values,
            "match_rate": match_rate(w),
        }
    table.notes.append(
        f"{n_visits:,} contexts ({table.data['20']['match_rate']:.0%} match some rule at 20 "
        f"rules); {rounds} interleaved rounds of {chunk} contexts per implementation; "
        "per-context medians over rounds. " + BLOCKED_NOTE
    )
    return table


# --- D -----------------------------------------------------------------------------------


def run_d(quick: bool = False) -> Table:
    big = 1000 if quick else 10_000
    n_visits, chunk, rounds = (400, 100, 40) if quick else (2000, 100, 150)
    table = Table(
        "D",
        "Rule indexing: `RuleSet.candidates` (buckets by event and path prefix)",
        ["comparison", "politely", "baseline", "ratio"],
    )
    w200 = Workload(200, n_visits)
    w200.check(indexed=True)
    spans, size = w200.chunks(chunk)
    s = interleaved(
        {
            "candidates": candidates_case(w200, spans),
            "matching": matching_case(w200, spans),
            "closures": scan_case(w200, spans),
        },
        rounds=rounds,
        units=size,
    )
    indexed = s["candidates"].median / s["closures"].median
    table.add(
        "200 rules: `candidates` vs scan of all 200 closures",
        fmt_ns(s["candidates"].median),
        fmt_ns(s["closures"].median),
        fmt_ratio(indexed),
    )
    table.add(
        "200 rules: unindexed `matching` vs the same scan (for reference)",
        fmt_ns(s["matching"].median),
        fmt_ns(s["closures"].median),
        fmt_ratio(s["matching"].median / s["closures"].median),
    )
    table.targets.append(Target("candidates / closure scan at 200 rules", indexed, 0.3, "x"))

    started = time.perf_counter()
    w_big = Workload(big, n_visits)
    w20 = Workload(20, n_visits)
    w_big.check(indexed=True)
    w20.check(indexed=True)
    spans, size = w_big.chunks(chunk)
    warm = interleaved(
        {"big": candidates_case(w_big, spans), "20": candidates_case(w20, spans)},
        rounds=rounds,
        units=size,
    )
    scale = warm["big"].median / warm["20"].median
    table.add(
        f"`candidates` per event: {big:,} rules vs 20 rules (paths repeat: index cache hits)",
        f"{fmt_ns(warm['big'].median)} (p90 {fmt_ns(warm['big'].p90)})",
        f"{fmt_ns(warm['20'].median)} (p90 {fmt_ns(warm['20'].p90)})",
        fmt_ratio(scale),
    )
    table.targets.append(Target(f"candidates at {big:,} rules / at 20 rules", scale, 3.0, "x"))

    # Unique paths: more distinct (event, path) pairs than the index's memo holds.
    cold_visits = 6000 if quick else 12_000
    cold_big = w_big.with_visits(cold_visits, unique_paths=True)
    cold_20 = w20.with_visits(cold_visits, unique_paths=True)
    cold_chunks, size = cold_big.chunks(chunk)
    cold = interleaved(
        {
            "big": candidates_case(cold_big, cold_chunks),
            "20": candidates_case(cold_20, cold_chunks),
        },
        rounds=len(cold_chunks) * (1 if quick else 2),
        units=size,
        warmup=0,
    )
    table.add(
        f"`candidates` per event: {big:,} vs 20 rules, every path new (index cache misses)",
        f"{fmt_ns(cold['big'].median)} (p90 {fmt_ns(cold['big'].p90)})",
        f"{fmt_ns(cold['20'].median)} (p90 {fmt_ns(cold['20'].p90)})",
        fmt_ratio(cold["big"].median / cold["20"].median),
    )
    table.notes.append(
        f"Checking and compiling the {big:,}-rule set took {w_big.compile_seconds:.1f} s "
        f"(the whole {big:,}-rule part {time.perf_counter() - started:.0f} s). Both rule sets use "
        "the same shape: two rules per folder prefix, so an event on a rule's page tests about "
        "two rules whatever the size; what grows is the index. " + BLOCKED_NOTE
    )
    table.data = {
        "indexed_200": {k: v.values for k, v in s.items()},
        "scale_warm": {k: v.values for k, v in warm.items()},
        "scale_cold": {k: v.values for k, v in cold.items()},
    }
    return table


# --- E -----------------------------------------------------------------------------------


def run_e(quick: bool = False) -> Table:
    import cel
    import rule_engine

    n_visits, chunk, rounds = (100, 20, 5) if quick else (600, 20, 60)
    w = Workload(20, n_visits)
    w.check(indexed=False)
    engine_rules = [(spec.name, rule_engine.Rule(rule_engine_text(spec))) for spec in w.specs]
    cel_programs = [(spec.name, cel.compile(cel_text(spec))) for spec in w.specs]
    cel_contexts = [cel.Context(variables=c) for c in w.contexts]
    for i, c in enumerate(w.contexts):
        expected = w.scan(c)
        if [name for name, rule in engine_rules if rule.matches(c)] != expected:
            raise AssertionError(f"rule-engine disagrees on context {i}")
        if [name for name, p in cel_programs if p.execute(cel_contexts[i])] != expected:
            raise AssertionError(f"CEL disagrees on context {i}")
    spans, size = w.chunks(chunk)

    def rule_engine_case(r: int) -> None:
        for i in spans[r % len(spans)]:
            c = w.contexts[i]
            [name for name, rule in engine_rules if rule.matches(c)]

    def cel_case(r: int) -> None:
        for i in spans[r % len(spans)]:
            c = cel_contexts[i]
            [name for name, p in cel_programs if p.execute(c)]

    s = interleaved(
        {
            "politely": matching_case(w, spans),
            "closures": scan_case(w, spans),
            "cel": cel_case,
            "rule-engine": rule_engine_case,
        },
        rounds=rounds,
        units=size,
        warmup=1,
    )
    base = s["closures"].median
    table = Table(
        "E",
        "Conditions at 20 rules: politely vs rule-engine and CEL",
        ["implementation", "per context (median)", "p90", "vs closures", "vs politely"],
    )
    labels = {
        "politely": "politely `RuleSet.matching`",
        "closures": "hand-written closures",
        "cel": "CEL (`common-expression-language`, Rust)",
        "rule-engine": "`rule-engine`",
    }
    for key, label in labels.items():
        table.add(
            label,
            fmt_ns(s[key].median),
            fmt_ns(s[key].p90),
            fmt_ratio(s[key].median / base),
            fmt_ratio(s[key].median / s["politely"].median),
        )
    for other in ("rule-engine", "cel"):
        table.targets.append(
            Target(
                f"politely / {other}", s["politely"].median / s[other].median, 1.0, "x"
            )  # strictly faster is < 1; reported to two decimals
        )
    table.notes.append(
        f"{n_visits} contexts, {rounds} interleaved rounds of {chunk} contexts. CEL gets a "
        "`cel.Context` built once per context (building it is not timed); rule-engine gets the "
        "dict. " + BLOCKED_NOTE
    )
    table.data = {k: v.values for k, v in s.items()}
    return table
