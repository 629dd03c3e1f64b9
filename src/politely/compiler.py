"""Checked syntax tree → `RuleSet`: generated Python for every condition, compiled once.

Conditions become Python source (`politely.codegen`). The policy's gates and
the message getters are compiled together, once per rule set; each bucket of
the index (`politely.ruleset`) generates and compiles its function on its
first test, and the tick-set functions behind `recheck_in` are generated per
rule on first use: loading a large site pays only for what events use.

    >>> from politely.checker import check_sources
    >>> site = {"a.rules": 'rule r { when page.dwell >= 5s say "Hi" }'}
    >>> rules = compile_rules(check_sources(site))
    >>> [r.name for r in rules.rules], sorted(rules.rules[0].time_dependent)
    (['r'], ['page.dwell'])
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, assert_never

from politely import analysis, gcpause, loadcache
from politely import nodes as n
from politely.caps import Cap
from politely.checker import CheckResult
from politely.codegen import Condition, Generator, Window, reads_agents
from politely.durations import DAY
from politely.errors import RulesError
from politely.fields import KNOWN_FIELDS, TIME_FIELDS
from politely.formatter import format_schedule
from politely.language import (
    DEFAULT_QUIET_AFTER_CHAT,
    DEFAULT_QUIET_AFTER_DISMISS,
    DEFAULT_SESSION_TIMEOUT,
    cap_of,
    events_of,
    visitor_caps,
)
from politely.ruleset import (
    Bucket,
    CompiledMessage,
    CompiledPolicy,
    CompiledRule,
    EventIndex,
    RuleSet,
    Slot,
)
from politely.schedule import CompiledSchedule


def compile_rules(result: CheckResult) -> RuleSet:
    """Compile a checked site; raises RulesError if the check found errors.

    While a rule set compiled from the same files is in use, it is the answer
    (`COMPILED`, `politely.loadcache`): rule sets are immutable.
    """
    if not result.ok:
        raise RulesError(result.diagnostics, result.sources)
    found = COMPILED.get(result.key) if result.key else None
    if found is None:
        with gcpause.paused():  # what compiling allocates stays alive, in the rule set
            found = _Compiler(result).build()
        if result.key:
            COMPILED.put(result.key, found)
    return found


# Rule sets in use, by the key of the check they were compiled from.
COMPILED: loadcache.LiveCache[RuleSet] = loadcache.LiveCache()


@dataclass
class _RuleParts:
    rule: n.Rule
    path: str
    order: int
    condition: n.Condition
    events: tuple[str, ...]
    priority: int
    reads: frozenset[str]  # the fields the condition reads
    say: n.Say
    during: n.During | None
    caps: tuple[Cap, ...]  # its per-visitor caps (sitewide caps are the policy's)


class _Compiler:
    def __init__(self, result: CheckResult) -> None:
        self.result = result
        self.defines = {name: d.condition for name, d in result.defines.items()}
        self.hash = ruleset_hash(result.sources)
        self.generator = Generator(f"rules {self.hash}")
        # Schedules written the same way are one object in a rule set, so their
        # days are computed once (politely.schedule); never shared across rule sets.
        self.schedules: dict[tuple[object, ...], CompiledSchedule] = {}
        # Messages by their text, which says all a compiled message holds (its slots'
        # fields and fallbacks): rules that say the same are given one, compiled once.
        self.messages: dict[str, CompiledMessage] = {}

    def build(self) -> RuleSet:
        written = self.result.rules
        expanded = self.result.expanded
        if not expanded:  # a result not from the checker: expanded afresh
            expanded = analysis.expanded_rules(self.defines, written)
        parts = [
            self._parts(i, path, rule, whole)
            for i, ((path, rule), whole) in enumerate(zip(written, expanded, strict=True))
        ]
        ranked = sorted(parts, key=lambda p: (-p.priority, p.order))
        rank_of = {p.order: i for i, p in enumerate(ranked)}

        # buckets: (events, prefix) -> members, in priority order
        groups: dict[tuple[tuple[str, ...], str | None], list[_RuleParts]] = {}
        for p in ranked:
            prefixes = analysis.path_prefixes(p.condition)
            events = tuple(sorted(set(p.events)))
            for prefix in sorted(prefixes) if prefixes is not None else [None]:
                groups.setdefault((events, prefix), []).append(p)
        policy_conditions = self._policy_conditions()
        policy_names = {
            kind: self.generator.condition(f"policy_{kind}", condition)
            for kind, condition in policy_conditions.items()
        }
        window_names = {
            kind: self.generator.window(f"policy_{kind}_window", condition)
            for kind, condition in policy_conditions.items()
        }
        for kind, condition in policy_conditions.items():
            if reads_agents(condition):  # "only" should hold, "never" should not
                window_names[f"{kind}_free"] = self.generator.window(
                    f"policy_{kind}_free_window",
                    condition,
                    optimistic_agents=True,
                    positive=kind == "only",
                )
        getter_names = self._getters(parts, policy_conditions)

        namespace = self.generator.run()
        policy = self._policy(
            {kind: namespace[name] for kind, name in policy_names.items()},
            {kind: namespace[name] for kind, name in window_names.items()},
            policy_conditions,
        )
        compiled: dict[int, CompiledRule] = {}
        for p in parts:
            compiled[p.order] = CompiledRule(
                name=p.rule.name.value,
                order=p.order,
                rank=rank_of[p.order],
                priority=p.priority,
                events=frozenset(p.events),
                caps=p.caps,
                schedule=self._schedule(p.during),
                messages=self._messages(p.say, namespace, getter_names),
                condition=p.condition,
                time_dependent=p.reads & TIME_FIELDS,
            )
        rules = tuple(compiled[p.order] for p in parts)
        by_rank = tuple(compiled[p.order] for p in ranked)
        windows_used = [c.window for c in (*policy.caps, *(cap for r in rules for cap in r.caps))]
        keep = max([w for w in windows_used if isinstance(w, int)] + [0])
        if "invitations.today" in getter_names:  # read by a condition or a message
            keep = max(keep, DAY)
        buckets = {  # each generates and compiles its function on first use
            key: Bucket(
                tuple(by_rank[rank_of[m.order]] for m in members), f"rules {self.hash} bucket {i}"
            )
            for i, (key, members) in enumerate(groups.items())
        }
        return RuleSet(
            rules=rules,
            by_rank=by_rank,
            policy=policy,
            hash=self.hash,
            sources=MappingProxyType(dict(self.result.sources)),
            keep_invitations_for=keep,
            retention=_retention(policy, rules, keep),
            keep_sitewide_for=max([int(c.window) for c in policy.sitewide] + [0]),
            index=_index(buckets),
            getters={name: namespace[fn] for name, fn in getter_names.items()},
        )

    def _parts(
        self, order: int, path: str, rule: n.Rule, expanded: analysis.Expanded
    ) -> _RuleParts:
        """A checked rule's parts, its clauses read in one pass (a checked rule has
        at most one of each clause but its caps): not one pass for each question."""
        name = rule.name.value
        priority: int | float = 0
        on: n.On | None = None
        say: n.Say | None = None
        during: n.During | None = None
        caps: list[Cap] = []
        for clause in rule.clauses:
            match clause:
                case n.When():
                    pass  # written out already: `expanded`
                case n.Say():
                    say = clause
                case n.Priority():
                    priority = clause.value.value
                case n.On():
                    on = clause
                case n.Cooldown() | n.Cap():
                    cap = cap_of(clause, name)
                    if cap is not None:
                        caps.append(cap)
                case n.During():
                    during = clause
                case n.Quiet() | n.Only() | n.Never() | n.SessionTimeout():
                    pass  # the policy's: the checker refuses them here
                case _:
                    assert_never(clause)
        assert say is not None, "the checker requires a `say`"
        condition, reads, events = expanded.condition, expanded.reads, events_of(on)
        return _RuleParts(
            rule, path, order, condition, events, int(priority), reads, say, during, tuple(caps)
        )

    def _policy_conditions(self) -> dict[str, n.Condition]:
        policy = self.result.policy
        conditions: dict[str, n.Condition] = {}
        for clause in policy.clauses if policy is not None else ():
            match clause:
                case n.Only():
                    conditions["only"] = analysis.expand(clause.condition, self.defines)
                case n.Never():
                    conditions["never"] = analysis.expand(clause.condition, self.defines)
                case n.Cap() | n.During() | n.Quiet() | n.SessionTimeout():
                    pass  # compiled by _policy
                case n.On() | n.When() | n.Say() | n.Priority() | n.Cooldown():
                    pass  # rules only: the checker refuses them here
                case _:
                    assert_never(clause)
        return conditions

    def _policy(
        self,
        functions: dict[str, Condition],
        windows: dict[str, Window],
        conditions: dict[str, n.Condition],
    ) -> CompiledPolicy:
        policy = self.result.policy
        clauses = policy.clauses if policy is not None else ()
        caps = tuple(visitor_caps(policy))
        sitewide = tuple(
            Cap(int(c.count.value), c.duration.seconds)
            for c in clauses
            if isinstance(c, n.Cap) and c.sitewide and c.duration is not None
        )
        quiet = {c.after: c.duration.seconds for c in clauses if isinstance(c, n.Quiet)}
        timeout = next(
            (c.duration.seconds for c in clauses if isinstance(c, n.SessionTimeout)),
            DEFAULT_SESSION_TIMEOUT,
        )
        return CompiledPolicy(
            caps=caps,
            sitewide=sitewide,
            quiet_after_dismiss=quiet.get("dismiss", DEFAULT_QUIET_AFTER_DISMISS),
            quiet_after_chat=quiet.get("chat", DEFAULT_QUIET_AFTER_CHAT),
            session_timeout=timeout,
            schedule=self._schedule(next((c for c in clauses if isinstance(c, n.During)), None)),
            only=functions.get("only"),
            never=functions.get("never"),
            only_window=windows.get("only"),
            never_window=windows.get("never"),
            only_free_window=windows.get("only_free", windows.get("only")),
            never_free_window=windows.get("never_free", windows.get("never")),
            reads_agents=any(reads_agents(c) for c in conditions.values()),
            only_condition=conditions.get("only"),
            never_condition=conditions.get("never"),
        )

    def _schedule(self, during: n.During | None) -> CompiledSchedule | None:
        if during is None:
            return None
        schedule = CompiledSchedule.from_node(during.schedule, format_schedule(during.schedule))
        key = (schedule.windows, schedule.zone_name, schedule.text)
        return self.schedules.setdefault(key, schedule)

    def _getters(
        self, parts: list[_RuleParts], policy_conditions: dict[str, n.Condition]
    ) -> dict[str, str]:
        """One generated getter per field any condition or message reads."""
        names: set[str] = set()
        for p in parts:
            names.update(p.reads)
        for condition in policy_conditions.values():
            names.update(analysis.fields_read(condition))
        texts: set[str] = set()  # a message's text says its slots: each read once
        for p in parts:
            for message in p.say.messages:
                if message.text not in texts:
                    texts.add(message.text)
                    names.update(s.field.name for s in message.parts if isinstance(s, n.Slot))
        return {
            name: self.generator.getter(f"get_{i}", name) for i, name in enumerate(sorted(names))
        }

    def _messages(
        self, say: n.Say, namespace: dict[str, Any], getters: dict[str, str]
    ) -> tuple[CompiledMessage, ...]:
        messages = []
        for message in say.messages:
            compiled = self.messages.get(message.text)
            if compiled is None:
                parts: list[str | Slot] = []
                for part in message.parts:
                    if isinstance(part, n.Slot):
                        name = part.field.name
                        duration = name in KNOWN_FIELDS and KNOWN_FIELDS[name].type == "duration"
                        parts.append(Slot(namespace[getters[name]], part.fallback or "", duration))
                    else:
                        parts.append(part)
                compiled = self.messages[message.text] = CompiledMessage(message.text, tuple(parts))
            messages.append(compiled)
        return tuple(messages)


def _retention(policy: CompiledPolicy, rules: tuple[CompiledRule, ...], keep: int) -> float:
    """Every window, quiet period and timeout; forever when a cap counts ever."""
    caps = [*policy.caps, *(cap for rule in rules for cap in rule.caps)]
    if any(cap.window == "visitor" for cap in caps):
        return math.inf
    return float(
        max(keep, policy.quiet_after_dismiss, policy.quiet_after_chat, policy.session_timeout)
    )


def _index(buckets: dict[tuple[tuple[str, ...], str | None], Bucket]) -> dict[str, EventIndex]:
    """event name → its buckets without a path prefix, and by prefix.

    Rules with other event sets may share a prefix (`on tick` next to the
    default `page_view, tick`): a prefix then holds several buckets.
    """
    free: dict[str, list[Bucket]] = {}
    by_prefix: dict[str, dict[str, list[Bucket]]] = {}
    for (events, prefix), bucket in buckets.items():
        for event in events:
            if prefix is None:
                free.setdefault(event, []).append(bucket)
            else:
                by_prefix.setdefault(event, {}).setdefault(prefix, []).append(bucket)
    return {
        event: EventIndex(
            tuple(free.get(event, ())),
            tuple(sorted({len(p) for p in by_prefix.get(event, {})})),
            {p: tuple(b) for p, b in by_prefix.get(event, {}).items()},
        )
        for event in {*free, *by_prefix}
    }


def ruleset_hash(sources: Mapping[str, str]) -> str:
    """A short hash of a site's files (names without folders, and texts)."""
    digest = hashlib.sha256()
    for path in sorted(sources, key=lambda p: Path(p).name):
        digest.update(Path(path).name.encode() + b"\0" + sources[path].encode() + b"\0")
    return digest.hexdigest()[:16]
