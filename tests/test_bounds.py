"""The language's bounds (docs/language.md, section 12): whatever check accepts, the engine runs.

Durations, numbers, nesting, chains of defines, the size of a condition and
of a file are bounded; past a bound `politely check` reports a located error
with the bound in its help, and `politely fmt` refuses instead of crashing.
Below every bound, the engine loads the rules and evaluates events.
"""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import suppress
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import examples
from politely import Engine, parser
from politely import nodes as n
from politely.checker import check_sources
from politely.diagnostics import Diagnostic
from politely.durations import DAY
from politely.errors import FormatError
from politely.formatter import format_source
from politely.lark_cache import CACHE_DIR_VARIABLE
from politely.limits import MAX_DEFINE_CHAIN, MAX_DEPTH, MAX_DURATION, MAX_FILE_CHARS
from politely.parser import parse
from test_fast_analysis import depth_plainly

ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}

AGENTS = "policy {\n    only when agents.available > 0\n}\n"
OK = "page.dwell >= 30s"


def errors(source: str) -> list[Diagnostic]:
    return list(check_sources({"site.rules": source}).errors)


def the_error(source: str) -> Diagnostic:
    found = errors(source)
    assert len(found) == 1, [(d.code, d.message) for d in found]
    return found[0]


def runs(source: str) -> None:
    """The engine loads the rules and evaluates a page view, ticks and a late visit."""
    engine = Engine.from_source(source)
    engine.set_agents(online=2, available=1, queue_length=0, queue_wait=10, at=0)
    engine.evaluate({"visitor": "v", "event": "page_view", "url": "/", "at": 0})
    engine.evaluate({"visitor": "v", "event": "tick", "at": 1})
    engine.evaluate({"visitor": "v", "event": "invitation_dismissed", "at": 2})
    engine.evaluate({"visitor": "v", "event": "page_view", "url": "/pricing", "at": 1_767_607_200})
    engine.evaluate({"visitor": "v", "event": "tick", "at": 1_767_607_201})


def nested(levels: int, test: str = OK) -> str:
    """A condition `levels` deep: `not`, `and` and `or` in turn around `test`."""
    condition = test
    for level in range(levels):
        wrap = ("not ({})", "({}) and visitor.vip", "({}) or agents.available > 0")[level % 3]
        condition = wrap.format(condition)
    return condition


def chain(length: int, op: str = "and") -> str:
    """`length` defines, each building on the next."""
    lines = [f"define d{i} = d{i + 1} {op} page.dwell >= {i + 1}s\n" for i in range(length - 1)]
    return "".join(lines) + f"define d{length - 1} = {OK}\n"


# --- each bound: the error at its place, and the engine at the bound ---------------------

BOUND_ERRORS = [
    # (source, code, line, column, message, help)
    (
        AGENTS + f'rule r {{\n    when {OK}\n    say "x"\n    cooldown 99999999999w\n}}\n',
        "bad-duration",
        7,
        14,
        "`99999999999w` is longer than 3650d",
        "durations are at most 3650d (about 10 years)",
    ),
    (
        "policy {\n    quiet 99999999d after dismiss\n}\n",
        "bad-duration",
        2,
        11,
        "`99999999d` is longer than 3650d",
        "durations are at most 3650d (about 10 years)",
    ),
    (
        AGENTS + 'rule r {\n    when page.dwell >= 521429w\n    say "x"\n}\n',
        "bad-duration",
        5,
        24,
        "`521429w` is longer than 3650d",
        "durations are at most 3650d (about 10 years)",
    ),
    (
        AGENTS + f'rule r {{\n    when page.dwell >= 1{"0" * 400}s\n    say "x"\n}}\n',
        "bad-duration",
        5,
        24,
        "`1000000000…000000000s` is longer than 3650d",
        "durations are at most 3650d (about 10 years)",
    ),
    (
        AGENTS + f'rule r {{\n    when visitor.seats >= {"9" * 5000}\n    say "x"\n}}\n',
        "bad-number",
        5,
        27,
        "`9999999999…9999999999` is too big",
        "numbers have at most 15 digits before the decimal point",
    ),
    (
        AGENTS + f'rule r {{\n    priority 1{"0" * 15}\n    when {OK}\n    say "x"\n}}\n',
        "bad-number",
        5,
        14,
        "`1000000000000000` is too big",
        "numbers have at most 15 digits before the decimal point",
    ),
    (
        AGENTS + f'rule r {{\n    when {"not " * 250}visitor.vip\n    say "x"\n}}\n',
        "too-deep",
        5,
        10,
        "this condition nests 250 levels deep; at most 32",
        "conditions nest at most 32 levels: each `not`, and each `and` or `or` inside another, "
        "is one level",
    ),
    (
        AGENTS + f'rule r {{\n    when {nested(200)}\n    say "x"\n}}\n',
        "too-deep",
        5,
        11,  # the outermost `or`, inside the parentheses opening the condition
        "this condition nests 200 levels deep; at most 32",
        "conditions nest at most 32 levels: each `not`, and each `and` or `or` inside another, "
        "is one level",
    ),
    (
        AGENTS + chain(900) + 'rule r {\n    when d0\n    say "x"\n}\n',
        "too-deep",
        3 + 900 - MAX_DEFINE_CHAIN,
        8,
        "`d867` builds on defines 33 deep: d867 → d868 → … → d898 → d899",
        "a define may build on other defines at most 32 deep",
    ),
    (
        AGENTS
        + "".join(f"define n{i} = not n{i + 1}\n" for i in range(20))
        + f"define n20 = {nested(20)}\n"
        + 'rule r {\n    when n0\n    say "x"\n}\n',
        "too-deep",
        11,  # n7: n20 nests 20 levels, and each define on the way adds a `not`
        13,
        "with its defines written out, this condition nests 33 levels deep; at most 32",
        "conditions nest at most 32 levels: each `not`, and each `and` or `or` inside another, "
        "is one level",
    ),
    (
        AGENTS
        + "".join(f"define t{i} = t{i + 1} or t{i + 1}\n" for i in range(12))
        + f"define t12 = {OK}\n"
        + 'rule r {\n    when t0\n    say "x"\n}\n',
        "too-complex",
        6,  # t2: 2**10 tests
        13,
        "with its defines written out, this condition has 1,024 tests; at most 1,000",
        "a define counts each time it is used: simplify the condition, or split it over "
        "several rules",
    ),
]


@pytest.mark.parametrize(
    ("source", "code", "line", "column", "message", "help_"),
    BOUND_ERRORS,
    ids=[f"{row[1]}-{i}" for i, row in enumerate(BOUND_ERRORS)],
)
def test_past_a_bound_check_reports_a_located_error_with_the_bound(
    source: str, code: str, line: int, column: int, message: str, help_: str
) -> None:
    diagnostic = the_error(source)
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == (code, line, column)
    assert (diagnostic.message, diagnostic.hints) == (message, (help_,))


@pytest.mark.parametrize(
    ("source", "message"),
    [(row[0], row[4]) for row in BOUND_ERRORS],
    ids=[f"{row[1]}-{i}" for i, row in enumerate(BOUND_ERRORS)],
)
def test_fmt_refuses_past_a_bound_in_its_file_instead_of_crashing(
    source: str, message: str
) -> None:
    """The formatter formats one file on its own: a chain of defines, or a condition
    too big once its defines are written out, is the site's problem, not the file's."""
    if "defines" in message:
        assert format_source(source)
    else:
        with pytest.raises(FormatError) as refused:
            format_source(source)
        assert refused.value.diagnostic.message == message


@pytest.mark.parametrize(
    "source",
    [
        AGENTS + f'rule r {{\n    when {OK}\n    say "x"\n    cooldown 3650d\n}}\n',
        "policy {\n    quiet 3650d after dismiss\n    quiet 3650d after chat\n"
        "    session timeout 3650d\n    at most 1 invitation per 3650d sitewide\n"
        "    only when agents.available > 0\n}\n"
        'rule r {\n    when page.dwell >= 3650d or queue.wait < 3650d\n    say "x"\n'
        '    during weekdays 09:00-17:00 in "Pacific/Kiritimati"\n    at most 1 per 3650d\n}\n',
        AGENTS + f"rule r {{\n    priority {'9' * 15}\n    when visitor.seats >= -{'9' * 15}.5\n"
        '    say "x"\n}\n',
        AGENTS + f'rule r {{\n    when {nested(MAX_DEPTH)}\n    say "x"\n}}\n',
        "policy {\n"
        f"    only when {nested(MAX_DEPTH, 'agents.available > 0')}\n"
        f"    never when {nested(MAX_DEPTH, 'session.duration >= 1h')}\n}}\n"
        f'rule r {{\n    when {nested(MAX_DEPTH, "invitations.last >= 1h")}\n    say "x"\n}}\n',
        AGENTS + chain(MAX_DEFINE_CHAIN) + 'rule r {\n    when d0\n    say "x"\n}\n',
        AGENTS + chain(MAX_DEFINE_CHAIN, "or") + 'rule r {\n    when d0 and d0\n    say "x"\n}\n',
        AGENTS
        + "".join(f"define t{i} = t{i + 1} or t{i + 1}\n" for i in range(9))
        + f"define t9 = {OK}\n"
        + 'rule r {\n    when t0\n    say "x"\n}\n',
    ],
    ids=["duration", "durations", "numbers", "depth", "depth-policy", "chain", "chain-or", "tests"],
)
def test_at_each_bound_the_rules_check_and_run(source: str) -> None:
    assert errors(source) == []
    runs(source)


def test_a_file_past_the_size_bound_is_not_parsed() -> None:
    (diagnostic,) = check_sources({"site.rules": " " * (MAX_FILE_CHARS + 1)}).diagnostics
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("file-too-big", 1, 1)
    assert diagnostic.hints == ("split the rules over several .rules files in the same folder",)


def test_a_define_past_a_bound_is_reported_once_not_in_each_rule_using_it() -> None:
    rules = "".join(f'rule r{i} {{\n    when d0\n    say "x"\n}}\n' for i in range(5))
    assert [d.code for d in errors(AGENTS + chain(40) + rules)] == ["too-deep"]


def test_a_malformed_duration_glued_to_a_word_gets_its_spelling() -> None:
    diagnostic = the_error(AGENTS + 'rule r {\n    when page.dwell >= 30min\n    say "x"\n}\n')
    assert (diagnostic.code, diagnostic.hints) == ("bad-duration", ("write 30m",))
    diagnostic = the_error(AGENTS + 'rule r {\n    when page.dwell >= 1.5h\n    say "x"\n}\n')
    assert (diagnostic.code, diagnostic.hints) == ("bad-duration", ("write 1h30m",))


# --- the property: whatever check accepts, the engine runs --------------------------------

# Mostly durations check accepts, some at the bound, a few far past it.
_SECONDS = st.one_of(
    st.integers(1, 100_000),
    st.integers(1, 100_000),
    st.integers(1, 100_000),
    st.integers(MAX_DURATION - 2 * DAY, MAX_DURATION + DAY),
    st.integers(10**9, 10**30),
)
_DURATION = st.builds(
    lambda seconds, unit: f"{seconds // {'s': 1, 'm': 60, 'h': 3600, 'd': DAY}[unit]}{unit}",
    _SECONDS,
    st.sampled_from("smhd"),
)
_NUMBER = st.one_of(
    st.integers(-1000, 1000).map(str),
    st.integers(-1000, 1000).map(str),
    st.integers(10**14, 10**16).map(str),
    st.builds(lambda a, b: f"{a}.{b}", st.integers(0, 10**16), st.integers(0, 99)),
)
_TEST = st.one_of(
    st.builds("page.dwell >= {}".format, _DURATION),
    st.builds("queue.wait < {}".format, _DURATION),
    st.builds("invitations.last >= {}".format, _DURATION),
    st.builds("session.duration > {}".format, _DURATION),
    st.builds("page.scroll >= {}%".format, _NUMBER.map(lambda number: number.lstrip("-"))),
    st.builds("visitor.seats >= {}".format, _NUMBER),
    st.builds("agents.available > {}".format, _NUMBER),
    st.builds("invitations.today < {}".format, _NUMBER),
    st.just('page.path matches "/pricing*"'),
    st.just('event == "exit_intent"'),
    st.just("visitor.vip"),
)
_ZONE = st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Pacific/Kiritimati", "EST"])


_COUNT = st.one_of(st.integers(0, 5), st.integers(10**14, 10**16)).map(str)


@st.composite
def _condition(draw: st.DrawFn, refs: tuple[str, ...] = (), deep: bool = True) -> str:
    """A condition a few levels deep or around MAX_DEPTH, maybe using defines."""
    leaves = st.sampled_from(refs) | _TEST if refs else _TEST
    condition = draw(leaves)
    levels = st.integers(MAX_DEPTH - 2, MAX_DEPTH + 2) if deep else st.nothing()
    for _ in range(draw(st.integers(0, 3) | levels)):
        op = draw(st.sampled_from(["not ({})", "({}) and {}", "({}) or {}"]))
        condition = op.format(condition, draw(leaves))
    return condition


@st.composite
def _site(draw: st.DrawFn) -> str:
    defines = draw(st.integers(0, 3) | st.integers(MAX_DEFINE_CHAIN - 1, MAX_DEFINE_CHAIN + 1))
    lines = []
    for i in range(defines):
        refs = (f"d{i + 1}",) if i + 1 < defines else ()
        lines.append(f"define d{i} = {draw(_condition(refs, deep=defines < 4))}\n")
    refs = ("d0",) if defines else ()
    policy = ["    only when agents.available > 0\n"]
    if draw(st.booleans()):
        after = draw(st.sampled_from(["dismiss", "chat"]))
        policy.append(f"    quiet {draw(_DURATION)} after {after}\n")
    if draw(st.booleans()):
        policy.append(f"    session timeout {draw(_DURATION)}\n")
    if draw(st.booleans()):
        policy.append(f"    at most {draw(_COUNT)} invitations per {draw(_DURATION)} sitewide\n")
    if draw(st.booleans()):
        policy.append(f"    never when {draw(_condition(refs))}\n")
    if draw(st.booleans()):
        policy.append(f'    during daily 08:00-20:00 in "{draw(_ZONE)}"\n')
    lines.append("policy {\n" + "".join(policy) + "}\n")
    for r in range(draw(st.integers(1, 3))):
        clauses = [f"    when {draw(_condition(refs))}\n", '    say "Hi"\n']
        if draw(st.booleans()):
            clauses.append(f"    cooldown {draw(_DURATION)}\n")
        if draw(st.booleans()):
            clauses.append(f"    at most {draw(_COUNT)} per {draw(_DURATION)}\n")
        if draw(st.booleans()):
            clauses.append(f"    priority {draw(_NUMBER)}\n")
        if draw(st.booleans()):
            clauses.append(f'    during weekdays 09:00-17:00 in "{draw(_ZONE)}"\n')
        if draw(st.booleans()):
            clauses.append("    on tick, exit_intent\n")
        lines.append(f"rule r{r} {{\n" + "".join(clauses) + "}\n")
    return "".join(lines)


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_site())
def test_whatever_check_accepts_the_engine_runs(source: str) -> None:
    result = check_sources({"site.rules": source})
    if result.ok:
        runs(source)
    else:
        bounded = {
            "bad-duration",
            "bad-number",
            "too-deep",
            "too-complex",
            "bad-cap",
            "bad-priority",
        }
        assert {d.code for d in result.errors} <= bounded, [d.message for d in result.errors]
    with suppress(FormatError):  # fmt formats it or refuses; it never crashes
        format_source(source)


def _alternating(levels: int) -> str:
    """A condition `levels` deep of `and` and `or` in turn, without a `not`."""
    condition = OK
    for level in range(levels):
        wrap = ("({}) and visitor.vip", "({}) or agents.available > 0")[level % 2]
        condition = wrap.format(condition)
    return condition


@pytest.mark.parametrize("way", ["fast-parse", "careful-parse"])
@pytest.mark.parametrize(
    "condition",
    [
        lambda levels: "not " * levels + "visitor.vip",
        _alternating,
        lambda levels: nested(levels),
    ],
    ids=["not", "and-or", "not-and-or"],
)
def test_the_depth_bound_is_exact_for_each_operator(
    condition: object, way: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parser counts each kind of level (`not`, `and`, `or`) as it makes the node,
    on the fast path and the careful one (Lark's parser, what a file with a syntax
    error gets). (The parser's own diagnostics: the checker measures again, defines
    written out.)"""
    assert callable(condition)
    if way == "careful-parse":  # no fast path: every file goes through Lark's parser
        monkeypatch.setattr(parser, "_fast", lambda: None)
    rule = 'rule r {{\n    when {}\n    say "x"\n}}\n'
    path = f"{way}.rules"  # the parse cache keys on the path: no answer from the other way
    assert parse(AGENTS + rule.format(condition(MAX_DEPTH)), path).diagnostics == ()
    deep = parse(AGENTS + rule.format(condition(MAX_DEPTH + 1)), path).diagnostics
    assert [d.code for d in deep] == ["too-deep"]
    assert f"nests {MAX_DEPTH + 1} levels deep" in deep[0].message


_LEVEL = st.tuples(st.sampled_from(["not", "and", "or"]), st.booleans(), st.integers(1, 2))


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(_LEVEL, max_size=2 * MAX_DEPTH), st.booleans())
def test_the_parser_counts_levels_as_a_walk_of_the_whole_tree_would(
    levels: list[tuple[str, bool, int]], careful: bool
) -> None:
    """The parser never builds a condition past the bound: it counts each new node's
    levels from its operands' as it makes it (an `and` taking in the operands of an
    `and` inside), and stops at the bound with a placeholder. What it reports is
    what a walk of the whole tree, flattened as the parser flattens, finds: the
    same levels, the same verdict."""
    text, whole = OK, n.Compare(n.Field(("page", "dwell")), ">=", n.Duration(30))
    for kind, inner_first, siblings in levels:
        if kind == "not":
            text, whole = f"not ({text})", n.Not(whole)
            continue
        tests = [f"visitor.v{k}" for k in range(siblings)]
        words = [f"({text})", *tests] if inner_first else [*tests, f"({text})"]
        text = f" {kind} ".join(words)
        join = n.And if kind == "and" else n.Or
        others = [n.Bare(n.Field(("visitor", f"v{k}"))) for k in range(siblings)]
        inner = list(whole.operands) if isinstance(whole, join) else [whole]  # taken in
        whole = join(tuple(inner + others if inner_first else others + inner))
    expected = depth_plainly(whole)
    with pytest.MonkeyPatch.context() as patch:
        if careful:
            patch.setattr(parser, "_fast", lambda: None)
        result = parse(f'rule r {{\n    when {text}\n    say "x"\n}}\n', f"{careful}.rules")
    deep = [d.message for d in result.diagnostics if d.code == "too-deep"]
    if expected > MAX_DEPTH:
        assert deep == [f"this condition nests {expected} levels deep; at most {MAX_DEPTH}"]
    else:
        assert deep == []
        assert result.program is not None
        (rule,) = result.program.items
        assert isinstance(rule, n.Rule)
        assert depth_plainly(rule.when.condition) == expected


def test_a_condition_nested_far_past_the_bound_is_refused_without_a_crash(
    tmp_path: Path,
) -> None:
    """200,000 `not`s in a row (800,000 characters, within a file's bound), or
    100,000 parentheses each opening a `not`: a tree that deep, built and then let
    go, crashed the interpreter (freeing it recurses in C). The parser never builds
    one past the bound. A new process: a crash here would take the test run down."""
    script = (
        "import sys; from politely.parser import parse\n"
        "for when in ('not ' * 200_000 + 'page.dwell >= 1s', 'not (' * 100_000 + 'visitor.vip'"
        " + ')' * 100_000):\n"
        "    result = parse('rule r {\\n when ' + when + '\\n say \"x\"\\n}\\n')\n"
        "    print([d.message for d in result.diagnostics])\n"
    )
    env = {**ENV, CACHE_DIR_VARIABLE: str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == [
        f"['this condition nests {levels:,} levels deep; at most {MAX_DEPTH}']".replace(",", "")
        for levels in (200_000, 100_000)
    ]


def test_many_operators_side_by_side_are_not_too_deep() -> None:
    """Operators beyond the bound in count but not in depth: let be."""
    flat = " and ".join(f"not visitor.flag{i}" for i in range(3 * MAX_DEPTH))
    defines = "".join(f"define d{i} = {flat}\n" for i in range(3))
    source = AGENTS + defines + 'rule r {\n    when d0 and d2\n    say "x"\n}\n'
    assert parse(source).diagnostics == ()
    assert errors(source) == []


def test_fmt_refuses_to_lay_a_file_out_past_the_file_bound() -> None:
    """Compact rules under the bound that the canonical layout would take over it:
    fmt refuses, saying so, rather than write a file check would refuse."""
    rule = 'rule r{k}{{when page.dwell>=1s say "x"}}\n'
    source = AGENTS + "".join(rule.format(k=k) for k in range(22_000))
    assert len(source) <= MAX_FILE_CHARS
    assert check_sources({"site.rules": source}).ok
    with pytest.raises(FormatError) as refused:
        format_source(source, "site.rules")
    assert refused.value.diagnostic.code == "file-too-big"
    assert "formatted, this file would have" in refused.value.diagnostic.message
