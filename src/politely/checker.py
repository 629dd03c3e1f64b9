"""Check a site's rule files: every error at once, then warnings about pestering.

    >>> result = check_sources({"site.rules": 'rule r { when page.dwell >= 30 say "Hi" }'})
    >>> [(d.code, d.line, d.column) for d in result.diagnostics]
    [('type-mismatch', 1, 15)]

Errors (docs/language.md, section 12) stop a rule set from running; warnings do not.
The codes are stable: tests, editors and the HTTP service rely on them, and
docs/language.md lists each with an example. Reading files is `sources.py`;
the pestering warnings are `pestering.py`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from difflib import get_close_matches
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple, assert_never

from politely import analysis, gcpause, loadcache, parallel_parse, parser, saved_checks, zones
from politely import nodes as n
from politely.clauses import CLAUSE_OF, CONDITION_CLAUSES
from politely.diagnostics import Diagnostic
from politely.fields import KNOWN_FIELDS, FieldSpec, lookup, near_miss
from politely.language import (
    BUILTIN_EVENTS,
    OUTCOME_EVENTS,
)
from politely.limits import DEPTH_HELP, MAX_DEFINE_CHAIN, MAX_DEPTH, MAX_TESTS
from politely.parser import parse
from politely.pestering import Site, pester
from politely.sources import first_bad_byte, read_sources, without_bom
from politely.sources import source_paths as source_paths  # the CLI lists files with it

# Possessive, and searched only up to a text's last `>`: each `<` is tried once,
# in time linear in the text (`"<a" * 60,000` took 11 s as `[^>]*>`).
_MARKUP = re.compile(r"<\s*+(?:/\s*+)?[a-zA-Z!][^>]*+>")
_GLOB_FOREIGN = re.compile(r"[\[\]^$\\|{}]")
_VALUE_TYPES = {
    n.Number: "number",
    n.Percent: "number",
    n.Duration: "duration",
    n.Text: "text",
    n.Boolean: "bool",
}
_TYPE_WORDS = {
    "number": "a number",
    "duration": "a duration",
    "text": "text",
    "bool": "true or false",
}


@dataclass(frozen=True)
class CheckResult:
    """A site's sources, their syntax trees and every diagnostic, in file order."""

    sources: Mapping[str, str]
    diagnostics: tuple[Diagnostic, ...]
    defines: Mapping[str, n.Define] = field(default_factory=dict)
    policy: n.Policy | None = None
    rules: tuple[tuple[str, n.Rule], ...] = ()
    # `loadcache.site_key` of the sources checked; set by `check_sources` only, so a
    # result made or changed by hand (`dataclasses.replace`) is never compiled from cache.
    key: bytes = field(default=b"", init=False, compare=False, repr=False)
    # Each rule's `when` written out (`analysis.Expander`), in the order of `rules`, when
    # the check found no error: the warnings needed them and the compiler reuses them.
    # Set by the checker only, like `key`, so a result changed by hand is expanded afresh.
    expanded: tuple[analysis.Expanded, ...] = field(
        default=(), init=False, compare=False, repr=False
    )

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.is_error)

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if not d.is_error)

    @property
    def ok(self) -> bool:
        return not self.errors


def check_path(path: str | Path) -> CheckResult:
    return check_sources(read_sources(path))


def check_sources(sources: Mapping[str, str]) -> CheckResult:
    """Parse and check every file of a site together (defines are site-wide).

    The same files (paths, order and texts) checked again give the same result,
    kept in `CHECKED` (`politely.loadcache`): reloading an unchanged site costs a hash.
    """
    key = loadcache.site_key(sources)
    found = CHECKED.get(key)
    if found is None:
        chars = sum(len(text) for text in sources.values())
        with gcpause.paused():  # the syntax trees are all live: nothing to collect
            found = _checked(key, sources, large=chars >= saved_checks.SAVE_FROM)
        object.__setattr__(found, "key", key)  # frozen: set once, before anyone sees it
        CHECKED.put(key, found, chars)
    return found


def _checked(key: bytes, sources: Mapping[str, str], *, large: bool) -> CheckResult:
    """The check of a site, read back when an earlier process saved it (a `large`
    site only, `politely.saved_checks`), else made, and then saved if large."""
    saved = saved_checks.load(key) if large else None
    if saved is not None:
        texts = without_bom(sources)
        result = CheckResult(texts, saved.diagnostics, saved.defines, saved.policy, saved.rules)
        if result.ok:  # as the checker did: each define written out once, shared by its uses
            defines = {name: d.condition for name, d in saved.defines.items()}
            expanded = analysis.expanded_rules(defines, saved.rules)
            object.__setattr__(result, "expanded", expanded)  # frozen: set before it is seen
        for path, text in texts.items():  # their parses were used: the last to be removed
            parser.mark_used(text, path)
        return result
    checker = _Checker(sources)
    result = checker.run()
    if large:
        saved_checks.save(
            key,
            saved_checks.SavedCheck(
                checker.zone_verdicts,
                result.diagnostics,
                dict(result.defines),
                result.policy,
                result.rules,
            ),
        )
    return result


class _Shape(NamedTuple):
    """What a condition is made of, as the checker's walk counts it."""

    operators: int  # `not`, `and` and `or` nodes
    tests: int
    refs: list[str]  # the defines it names, once per use


# The one process-wide cache of check results.
CHECKED: loadcache.SiteCache[CheckResult] = loadcache.SiteCache()


class _Checker:
    def __init__(self, sources: Mapping[str, str]) -> None:
        # Without the byte-order mark the parser drops, so carets line up.
        self.sources = without_bom(sources)
        self.diagnostics: list[Diagnostic] = []
        self.path = ""
        self.cyclic: set[str] = set()  # defines in a cycle: reported once, where defined
        self.broken_defines: set[str] = set()  # defines with a syntax error: already reported
        self.pending: list[Diagnostic] = []  # warnings, shown once there are no errors
        self.measures: dict[str, analysis.Measure] = {}  # defines within the bounds
        self.too_big: set[str] = set()  # defines past a bound: reported once, where defined
        # The defines some checked condition names: which are unused is a warning, and
        # the walk that checks each condition sees its references anyway.
        self.used: set[str] = set()
        # Message texts already checked with nothing to say: a text says its slots, so
        # the same text again (a site says the same in rule after rule) is not looked at.
        self.quiet_texts: set[str] = set()
        # What the zone database said of each zone a schedule names: a saved check
        # is reused only where the database says the same (`politely.saved_checks`).
        self.zone_verdicts: dict[str, zones.Verdict] = {}

    # reporting
    def error(self, span: n.Span, code: str, message: str, *hints: str) -> None:
        self.diagnostics.append(Diagnostic.at(span, self.path, code, message, hints=hints))

    def warn(self, span: n.Span, code: str, message: str, *hints: str) -> None:
        self.diagnostics.append(
            Diagnostic.at(span, self.path, code, message, severity="warning", hints=hints)
        )

    def warn_in(self, path: str, span: n.Span, code: str, message: str, *hints: str) -> None:
        self.path = path
        self.warn(span, code, message, *hints)

    def warn_later(self, span: n.Span, code: str, message: str, *hints: str) -> None:
        """A warning found while looking for errors: shown only if there are none."""
        self.pending.append(
            Diagnostic.at(span, self.path, code, message, severity="warning", hints=hints)
        )

    def run(self) -> CheckResult:
        parallel_parse.prefetch(self.sources)  # a large site's first start: every core
        programs: list[tuple[str, n.Program]] = []
        for path, text in self.sources.items():
            self.path = path
            bad = first_bad_byte(text)
            if bad is not None:
                self.error(bad, "bad-encoding", "this file is not UTF-8")
            result = parse(text, path)
            self.diagnostics.extend(result.diagnostics)
            programs.append((path, result.parsed))
            self.broken_defines |= result.broken_defines

        defines, define_paths, policy, policy_path, rules = self._collect(programs)
        self._check_defines(defines, define_paths)
        acyclic = {name: d.condition for name, d in defines.items()}
        for path, rule in rules:
            self.path = path
            self._check_rule(rule, acyclic)
        if policy is not None:
            self.path = policy_path
            self._check_policy(policy, acyclic)

        expanded: tuple[analysis.Expanded, ...] = ()
        if not any(d.is_error for d in self.diagnostics):
            self.diagnostics.extend(self.pending)
            expanded = analysis.expanded_rules(acyclic, rules)
            used = frozenset(self.used)
            site = Site(defines, define_paths, policy, policy_path, rules, expanded, used)
            pester(site, self.warn_in)
        place = {path: i for i, path in enumerate(self.sources)}  # files in site order
        diagnostics = tuple(sorted(self.diagnostics, key=lambda d: (place[d.path], d.line)))
        checked = CheckResult(self.sources, diagnostics, defines, policy, tuple(rules))
        object.__setattr__(checked, "expanded", expanded)  # frozen: set before anyone sees it
        return checked

    # structure
    def _collect(
        self, programs: list[tuple[str, n.Program]]
    ) -> tuple[dict[str, n.Define], dict[str, str], n.Policy | None, str, list[tuple[str, n.Rule]]]:
        defines: dict[str, n.Define] = {}
        define_paths: dict[str, str] = {}
        rules: list[tuple[str, n.Rule]] = []
        rule_places: dict[str, str] = {}
        policy: n.Policy | None = None
        policy_path = ""
        for path, program in programs:
            self.path = path
            for item in program.items:
                match item:
                    case n.Define():
                        name = item.name.value
                        if name in defines:
                            first = defines[name].name.span
                            self.error(
                                item.name.span,
                                "duplicate-define",
                                f"`{name}` is already defined",
                                f"first defined at {define_paths[name]}:"
                                f"{first.line}:{first.column}",
                            )
                            continue
                        if name == "event":
                            self.error(
                                item.name.span, "bad-name", "`event` is a field; pick another name"
                            )
                        defines[name] = item
                        define_paths[name] = path
                    case n.Rule():
                        name = item.name.value
                        if name in rule_places:
                            self.error(
                                item.name.span,
                                "duplicate-rule",
                                f"a rule named `{name}` already exists",
                                f"first defined at {rule_places[name]}",
                            )
                            continue
                        span = item.name.span
                        rule_places[name] = f"{path}:{span.line}:{span.column}"
                        rules.append((path, item))
                    case n.Policy() if policy is not None:
                        self.error(
                            n.keyword_span(item.span, "policy"),
                            "multiple-policies",
                            "a site has at most one policy",
                            f"the policy is at {policy_path}:"
                            f"{policy.span.line}:{policy.span.column}; "
                            "merge the clauses into it",
                        )
                    case n.Policy():
                        policy, policy_path = item, path
                    case _:
                        assert_never(item)
        return defines, define_paths, policy, policy_path, rules

    def _check_defines(self, defines: dict[str, n.Define], paths: dict[str, str]) -> None:
        for name, define in defines.items():
            self.path = paths[name]
            self._check_condition(define.condition, defines)
        order = self._check_cycles(defines, paths)
        self._check_define_sizes(order, defines, paths)

    def _check_cycles(self, defines: dict[str, n.Define], paths: dict[str, str]) -> list[str]:
        """Report each cycle once, where its first define is; drop the defines in one.

        Returns the other defines in dependency order (each after the defines it
        uses). Iterative, so a long chain of defines cannot exhaust the stack.
        """
        uses = {name: _define_refs(define.condition, defines) for name, define in defines.items()}
        state: dict[str, int] = {}  # 1 = on the trail, 2 = done
        order: list[str] = []
        reported: set[str] = set()
        for root in defines:
            if root in state:
                continue
            state[root], trail, pending = 1, [root], [iter(uses[root])]
            while pending:
                ref = next(pending[-1], None)
                if ref is None:
                    done = trail.pop()
                    pending.pop()
                    state[done] = 2
                    order.append(done)
                elif state.get(ref) == 1:
                    cycle = [*trail[trail.index(ref) :], ref]
                    if not reported & set(cycle):
                        reported.update(cycle)
                        self._cyclic(defines[ref], paths[ref], cycle)
                elif ref not in state:
                    state[ref] = 1
                    trail.append(ref)
                    pending.append(iter(uses[ref]))
        for name in reported:
            del defines[name]
        self.cyclic = reported
        return [name for name in order if name not in reported]

    def _cyclic(self, define: n.Define, path: str, cycle: list[str]) -> None:
        self.path = path
        self.error(
            define.name.span,
            "cyclic-define",
            f"`{cycle[0]}` refers to itself: {' → '.join(cycle)}",
            "a define may use other defines, but not itself",
        )

    def _check_define_sizes(
        self, order: list[str], defines: dict[str, n.Define], paths: dict[str, str]
    ) -> None:
        """Bound each define's chain of defines, and its size written out.

        In dependency order, so each define is measured from the measures of
        the defines it uses; one too big is reported once, where it crosses
        the bound, and not again where it is used.
        """
        chain: dict[str, tuple[int, str | None]] = {}  # length, and the define it goes on with
        for name in order:
            self.path = paths[name]
            define = defines[name]
            used = _define_refs(define.condition, defines)
            if any(u in self.too_big for u in used):
                self.too_big.add(name)
                continue
            longest = max(used, key=lambda u: chain[u][0], default=None)
            chain[name] = (1 + chain[longest][0] if longest else 1, longest)
            if chain[name][0] > MAX_DEFINE_CHAIN:
                self._too_long_a_chain(define, _trail(name, chain))
            else:
                self._bounded(define.condition, name)

    def _too_long_a_chain(self, define: n.Define, trail: list[str]) -> None:
        self.too_big.add(define.name.value)
        shown = trail if len(trail) <= 5 else [*trail[:2], "…", *trail[-2:]]
        self.error(
            define.name.span,
            "too-deep",
            f"`{trail[0]}` builds on defines {len(trail)} deep: {' → '.join(shown)}",
            f"a define may build on other defines at most {MAX_DEFINE_CHAIN} deep",
        )

    def _bounded(self, condition: n.Condition, define: str | None = None) -> None:
        """Report a condition too deep or too big with its defines written out.

        Records a define's measure for the conditions that use it. Skips a
        condition using a define already reported.
        """
        if self.too_big and any(r.name in self.too_big for r in analysis.refs(condition)):
            return
        size = analysis.measure(condition, self.measures)
        if size.depth > MAX_DEPTH:
            self.error(
                condition.span,
                "too-deep",
                f"{_written_out(condition)}this condition nests {size.depth} levels deep; "
                f"at most {MAX_DEPTH}",
                DEPTH_HELP,
            )
        elif size.tests > MAX_TESTS:
            self.error(
                condition.span,
                "too-complex",
                f"{_written_out(condition)}this condition has {size.tests:,} tests; "
                f"at most {MAX_TESTS:,}",
                "a define counts each time it is used: simplify the condition, or split it "
                "over several rules",
            )
        elif define is not None:
            self.measures[define] = size
            return
        if define is not None:
            self.too_big.add(define)

    def _check_rule(self, rule: n.Rule, defines: Mapping[str, n.Condition]) -> None:
        seen = self._check_clauses(rule.clauses, in_policy=False)
        if n.When not in seen:
            self.error(
                rule.name.span,
                "missing-when",
                f"rule `{rule.name.value}` has no `when` condition",
                "every rule says when to invite: when page.dwell >= 30s",
            )
        if n.Say not in seen:
            self.error(
                rule.name.span,
                "missing-say",
                f"rule `{rule.name.value}` has no `say` message",
                'every rule says what to say: say "Can I help?" or "Questions?"',
            )
        for clause in rule.clauses:
            match clause:
                case n.When():
                    shape = self._check_condition(clause.condition, defines)
                    if not self._surely_small(shape):
                        self._bounded(clause.condition)
                case n.Say():
                    self._check_messages(clause)
                case n.On():
                    self._check_events(clause)
                case n.Priority():
                    if not isinstance(clause.value.value, int):
                        self.error(clause.value.span, "bad-priority", "priority is a whole number")
                case n.Cooldown():
                    self._positive(clause.duration, "a cooldown")
                case n.Cap():
                    self._check_cap(clause, in_policy=False)
                case n.During():
                    self._check_schedule(clause.schedule)
                case n.Quiet() | n.Only() | n.Never() | n.SessionTimeout():
                    pass  # misplaced: reported by _check_clauses
                case _:
                    assert_never(clause)

    def _check_policy(self, policy: n.Policy, defines: Mapping[str, n.Condition]) -> None:
        self._check_clauses(policy.clauses, in_policy=True)
        quiet_seen: dict[str, n.Quiet] = {}
        for clause in policy.clauses:
            match clause:
                case n.Only() | n.Never():
                    self._check_condition(clause.condition, defines)
                    self._bounded(clause.condition)
                case n.Cap():
                    self._check_cap(clause, in_policy=True)
                case n.During():
                    self._check_schedule(clause.schedule)
                case n.Quiet():
                    self._positive(clause.duration, "a quiet period")
                    if clause.after in quiet_seen:
                        self.error(
                            clause.span,
                            "duplicate-clause",
                            f"the policy already has `quiet ... after {clause.after}`",
                        )
                    quiet_seen[clause.after] = clause
                case n.SessionTimeout():
                    self._positive(clause.duration, "a session timeout")
                case n.On() | n.When() | n.Say() | n.Priority() | n.Cooldown():
                    pass  # misplaced: reported by _check_clauses
                case _:
                    assert_never(clause)

    def _check_clauses(self, clauses: tuple[n.Clause, ...], *, in_policy: bool) -> set[type]:
        where = "policy" if in_policy else "rule"
        seen: set[type] = set()
        for clause in clauses:
            kind = type(clause)
            spec = CLAUSE_OF[kind]
            word = spec.keyword
            times = spec.times(in_policy)
            if times is None:
                other = "a rule" if in_policy else "the policy"
                self.error(
                    n.keyword_span(clause.span, word),
                    "misplaced-clause",
                    f"`{word}` does not belong in a {where}",
                    f"`{word}` belongs in {other}",
                )
            elif times == "once" and kind in seen:
                self.error(
                    n.keyword_span(clause.span, word),
                    "duplicate-clause",
                    f"this {where} already has a `{word}` clause",
                    "join the two with and/or, or keep one"
                    if kind in CONDITION_CLAUSES
                    else "keep one",
                )
            seen.add(kind)
        return seen

    # clauses
    def _check_events(self, clause: n.On) -> None:
        for event in clause.events:
            if event.value in OUTCOME_EVENTS:
                self.error(
                    event.span,
                    "outcome-event",
                    f"`{event.value}` is an outcome event: it never produces an invitation",
                    "outcome events are recorded; the policy's `quiet` clauses act on them",
                )
            elif event.value not in BUILTIN_EVENTS:
                guess = _builtin_event_like(event.value)
                if guess is not None:
                    self.warn(
                        event.span,
                        "unknown-event",
                        f"`{event.value}` is not a built-in event",
                        f"did you mean `{guess}`? Custom events are fine if your site sends them",
                    )

    def _check_cap(self, cap: n.Cap, *, in_policy: bool) -> None:
        count = cap.count.value
        if not isinstance(count, int) or count < 1:
            self.error(
                cap.count.span,
                "bad-cap",
                f"`at most {count}` needs a whole number of at least 1",
                "to turn a rule off, delete it or comment it out",
            )
        if cap.sitewide and not in_policy:
            self.error(
                cap.span,
                "misplaced-clause",
                "sitewide caps belong in the policy",
                "a rule's caps count one visitor's invitations",
            )
        if cap.sitewide and cap.window != "duration":
            self.error(
                cap.span,
                "bad-cap",
                f"a sitewide cap needs a time window, not `per {cap.window}`",
                "for example: at most 40 invitations per 1m sitewide",
            )
        if cap.duration is not None:
            self._positive(cap.duration, "a cap's window")

    def _positive(self, duration: n.Duration, what: str) -> None:
        if duration.seconds != 0:  # first: the search below is through every diagnostic
            return
        span = duration.span
        reported = any(  # a malformed duration reads as 0s; the parser said why
            d.path == self.path and (d.line, d.column) == (span.line, span.column)
            for d in self.diagnostics
        )
        if not reported:
            self.error(span, "bad-duration", f"{what} must be longer than 0s")

    def _check_schedule(self, schedule: n.Schedule) -> None:
        if schedule.zone is None:
            return
        zone, span = schedule.zone.value, schedule.zone.span
        verdict = self.zone_verdicts[zone] = zones.verdict(zone)
        if not verdict.valid:
            what = "an abbreviation, not" if verdict.abbreviation else "not"
            self.error(span, "unknown-zone", f'"{zone}" is {what} an IANA time zone', verdict.hint)
        elif verdict.unlike_city is not None:
            self.warn_later(
                span,
                "zone-abbreviation",
                f'"{zone}" is an abbreviation, and its clock differs from "{verdict.unlike_city}" '
                "for part of the year",
                verdict.hint,
            )

    def _check_messages(self, say: n.Say) -> None:
        for message in say.messages:
            if message.text not in self.quiet_texts:
                found = len(self.diagnostics) + len(self.pending)
                self._check_message(message)
                if len(self.diagnostics) + len(self.pending) == found:
                    self.quiet_texts.add(message.text)

    def _check_message(self, message: n.Message) -> None:
        if not message.text.strip():
            self.error(message.span, "empty-message", "this message is empty")
        if _MARKUP.search(message.text, 0, message.text.rfind(">") + 1):
            self.error(
                message.span,
                "markup-in-message",
                "messages are plain text: the site shows them as typed, tags included",
                "remove the tags",
            )
        for part in message.parts:
            if isinstance(part, n.Slot):
                self._field(part.field)

    # conditions
    def _check_condition(
        self, condition: n.Condition, defines: Mapping[str, n.Condition | n.Define]
    ) -> _Shape:
        """Check every test and reference of `condition`; what it is made of."""
        operators = tests = 0
        refs: list[str] = []
        for node in analysis.walk(condition):
            match node:  # the commonest first: every node of every rule
                case n.Compare():
                    tests += 1
                    self._check_compare(node)
                case n.Not() | n.And() | n.Or():
                    operators += 1  # walk lists their operands
                case n.Matches() | n.Contains():
                    tests += 1
                    spec = self._field(node.field)
                    if spec is not None and spec.type not in ("text", "any"):
                        word = "matches" if isinstance(node, n.Matches) else "contains"
                        self.error(
                            node.span,
                            "type-mismatch",
                            f"`{word}` needs text, but `{spec.name}` is {_TYPE_WORDS[spec.type]}",
                        )
                    if isinstance(node, n.Matches):
                        self._check_glob(node.pattern)
                case n.Ref():
                    refs.append(node.name)
                    self.used.add(node.name)
                    reported = node.name in self.cyclic or node.name in self.broken_defines
                    if node.name not in defines and not reported:
                        self._undefined(node, defines)
                case n.InList():
                    tests += 1
                    self._check_list(node)
                case n.Bare():
                    tests += 1
                    spec = self._field(node.field)
                    if spec is not None and spec.type not in ("bool", "any"):
                        example = {
                            "text": ' == "..."',
                            "number": " > 0",
                            "duration": " >= 30s",
                        }[spec.type]
                        self.error(
                            node.span,
                            "type-mismatch",
                            f"`{spec.name}` is {_TYPE_WORDS[spec.type]}, not true or false",
                            f"compare it, for example: {spec.name}{example}",
                        )
                case _:
                    assert_never(node)
        return _Shape(operators, tests, refs)

    def _surely_small(self, shape: _Shape) -> bool:
        """Whether `analysis.measure` is sure to find the condition within MAX_DEPTH
        and MAX_TESTS, so `_bounded` would say nothing: a rule's condition is then
        not walked again to measure it."""
        depth, tests = self._at_most(shape)
        return depth <= MAX_DEPTH and tests <= MAX_TESTS

    def _at_most(self, shape: _Shape) -> tuple[int, int]:
        """At least the depth `analysis.measure` finds, and exactly its tests.

        Each define used counts as `measure` counts it. The depth is at most one
        level for each `not`, `and` and `or` written, plus the deepest define used
        (the level a define may add under an operator not its own is its parent's).
        """
        tests, deepest = shape.tests, 0
        for name in shape.refs:
            size = self.measures.get(name, analysis.ONE_TEST)
            tests += size.tests
            deepest = max(deepest, size.depth)
        return shape.operators + deepest, tests

    def _undefined(self, ref: n.Ref, defines: Mapping[str, object]) -> None:
        names = list(defines)
        guesses = get_close_matches(ref.name, names, n=1, cutoff=0.6)
        fields = [f for f in KNOWN_FIELDS if f.split(".")[-1] == ref.name]
        fields += get_close_matches(ref.name, list(KNOWN_FIELDS), n=1, cutoff=0.6)
        hints = [f"did you mean `{g}`?" for g in (*guesses, *fields[:1])]
        self.error(
            ref.span,
            "undefined-define",
            f"`{ref.name}` is not defined",
            *(hints or ["define it first: define " + ref.name + " = ..."]),
        )

    def _field(self, field: n.Field) -> FieldSpec | None:
        found = lookup(field.path)
        if found.spec is not None:
            if found.spec.type == "any" and (known := near_miss(field.path)) is not None:
                self.warn_later(
                    field.span,
                    "near-miss-field",
                    f"`{field.name}` is not a built-in field",
                    f"did you mean `{known}`?",
                    "fields of your own are fine if your site sends them",
                )
            return found.spec
        hints = [f"did you mean `{s}`?" for s in found.suggestions[:1]]
        if found.problem == "unknown-namespace":
            message = f"unknown field `{field.name}`: there is no `{field.path[0]}`"
            if len(field.path) == 1:
                message = f"unknown field `{field.name}`"
        else:
            message = f"unknown field `{field.name}`"
        self.error(field.span, found.problem or "unknown-field", message, *hints)
        return None

    def _check_compare(self, compare: n.Compare) -> None:
        spec = self._field(compare.field)
        if spec is None:
            return
        value_type = _VALUE_TYPES[type(compare.value)]
        if compare.op in ("<", "<=", ">", ">=") and value_type in ("text", "bool"):
            self.error(
                compare.span,
                "type-mismatch",
                f"`{compare.op}` compares numbers and durations, not {_TYPE_WORDS[value_type]}",
                "use == or != for text and true/false",
            )
            return
        if spec.type == "any" or spec.type == value_type:
            return
        self._mismatch(compare.span, spec, compare.value)

    def _mismatch(self, span: n.Span, spec: FieldSpec, value: n.Value) -> None:
        wanted = _TYPE_WORDS[spec.type]
        if spec.type == "duration" and isinstance(value, n.Number | n.Percent):
            number = value.value
            shown = int(number) if float(number).is_integer() else number
            self.error(
                span,
                "type-mismatch",
                f"`{spec.name}` is a duration; write {shown}s, not {shown}",
                "durations need a unit: s, m, h, d or w",
            )
        elif spec.type == "number" and isinstance(value, n.Duration):
            self.error(
                span,
                "type-mismatch",
                f"`{spec.name}` is a number, not a duration",
                "drop the unit",
            )
        elif spec.type == "text":
            self.error(
                span,
                "type-mismatch",
                f"`{spec.name}` is text; put the value in double quotes",
            )
        else:
            self.error(span, "type-mismatch", f"`{spec.name}` is {wanted}")

    def _check_list(self, test: n.InList) -> None:
        spec = self._field(test.field)
        if not test.values:
            self.error(test.span, "bad-list", "this list is empty")
            return
        kinds = {_VALUE_TYPES[type(v)] for v in test.values}
        if len(kinds) > 1:
            self.error(test.span, "bad-list", "a list holds values of one kind")
            return
        if spec is None or spec.type == "any" or spec.type in kinds:
            return
        self._mismatch(test.span, spec, test.values[0])

    def _check_glob(self, pattern: n.Text) -> None:
        if not pattern.value:
            self.error(pattern.span, "bad-glob", "an empty glob matches only empty text")
        elif found := _GLOB_FOREIGN.search(pattern.value):
            self.error(
                pattern.span,
                "bad-glob",
                f"`{found.group()}` has no meaning in a glob",
                "globs know * (any run of characters) and ? (one character); "
                "for a literal match use == or contains",
            )

    # warnings


def _written_out(condition: n.Condition) -> str:
    """How a size error begins: whether it counts defines written out."""
    return "with its defines written out, " if any(analysis.refs(condition)) else ""


@lru_cache(maxsize=1024)
def _builtin_event_like(name: str) -> str | None:
    """The built-in event a custom event's name is close to (a site sends the same
    custom events in rule after rule)."""
    guess = get_close_matches(name, BUILTIN_EVENTS, n=1, cutoff=0.75)
    return guess[0] if guess else None


def _define_refs(condition: n.Condition, defines: Mapping[str, object]) -> list[str]:
    """The defines a condition uses, each once, in order of first use."""
    return list(dict.fromkeys(r.name for r in analysis.refs(condition) if r.name in defines))


def _trail(name: str, chain: Mapping[str, tuple[int, str | None]]) -> list[str]:
    """The longest chain of defines starting at `name`: `a` → `b` → `c`."""
    trail = [name]
    while (after := chain[trail[-1]][1]) is not None:
        trail.append(after)
    return trail
