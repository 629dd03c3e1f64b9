"""Every diagnostic the parser and checker emit: code, severity, line, column and the
words a marketer reads (docs/language.md, section 12), the renderer's
`path:line:col: error[code]: message` with a caret run, and `to_dict`.

Each table row is one way to trigger one code; the source is the whole site, so
a row also proves the problem is reported once, without cascading errors.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from politely.checker import check_path, check_sources
from politely.diagnostics import Diagnostic, render, render_all, summary
from politely.parser import parse, tree_parser

RULES = Path(__file__).resolve().parent.parent / "rules"

# A policy that looks at agents, so a clean rule draws no `no-agent-check` warning.
AGENTS = "policy { only when agents.available > 0 }\n"
OK = "page.dwell >= 30s"


def diagnose(source: str, path: str = "site.rules") -> tuple[Diagnostic, ...]:
    return check_sources({path: source}).diagnostics


def the_one(source: str) -> Diagnostic:
    """The single diagnostic of a one-file site."""
    diagnostics = diagnose(source)
    assert len(diagnostics) == 1, [(d.code, d.message) for d in diagnostics]
    return diagnostics[0]


def found_in(phrase: str, diagnostic: Diagnostic) -> bool:
    return phrase in diagnostic.message or any(phrase in hint for hint in diagnostic.hints)


# --- errors: one row per way to trigger a code ---------------------------------------


def extra(clauses: str) -> str:
    """A clean rule with more clauses; they start at column 41."""
    return f'rule r {{ when {OK} say "x" {clauses} }}'


def when(condition: str) -> str:
    """A rule with this condition; it starts at column 15."""
    return f'rule r {{ when {condition} say "x" }}'


def say(messages: str) -> str:
    """A rule saying these messages; they start at column 37."""
    return f"rule r {{ when {OK} say {messages} }}"


TWO_RULES = f'rule r {{ when {OK} say "x" }}\nrule r {{ when {OK} say "y" }}'

ERRORS = [
    # parser: syntax
    ("syntax", f'rule r {{ when {OK} "Hi" }}', 1, 33, "expected `say` after the condition"),
    ("syntax", f'rule r {{ cooldown 30 when {OK} say "x" }}', 1, 19, "write 30s"),
    ("syntax", f"{when(OK)}\nrule s {{ wen {OK} }}", 2, 10, "did you mean `when`?"),
    ("syntax", f'rule r {{ when {OK} say "x"', 1, 40, "is a `}` missing?"),
    ("syntax", 'rule r { when a == "x }', 1, 20, 'add the closing `"`'),
    ("syntax", "rule r { when a @ b }", 1, 17, "unexpected character `@`"),
    ("syntax", when("page.dwell 30s"), 1, 26, "expected a comparison"),
    # parser: values read loosely, then checked
    ("bad-duration", extra("cooldown 1.5h"), 1, 50, "`1.5h`"),
    ("bad-duration", extra("cooldown 30x"), 1, 50, "`30x`"),
    ("bad-duration", when("page.dwell >= 3q"), 1, 29, "45s, 90m or 1h30m"),
    ("bad-duration", extra("cooldown 0s"), 1, 50, "longer than 0s"),
    ("bad-duration", "policy { quiet 0m after chat }", 1, 16, "longer than 0s"),
    ("bad-duration", "policy { session timeout 0s }", 1, 26, "longer than 0s"),
    ("bad-duration", extra("at most 1 per 0d"), 1, 55, "longer than 0s"),
    ("bad-schedule", extra("during mon 10:00-10:00"), 1, 48, "is empty"),
    ("bad-schedule", extra("during mon 09:00-24:01"), 1, 58, "`24:01`"),
    ("bad-schedule", extra("during mon 09:60-10:00"), 1, 52, "`09:60`"),
    ("bad-schedule", extra("during weekdays-fri 09:00-10:00"), 1, 48, "mon-fri"),
    ("bad-string", say('"a\\tb"'), 1, 39, "unknown escape `\\t`"),
    ("bad-string", when('page.title == "\\d"'), 1, 30, "unknown escape `\\d`"),
    ("bad-template", say('"Hi {"'), 1, 41, "never closed"),
    ("bad-template", say('"Hi {1}"'), 1, 41, "must hold a field"),
    ("bad-template", say('"Hi {}"'), 1, 41, "must hold a field"),
    ("bad-template", say('"a } b"'), 1, 40, "write }}"),
    # checker: structure
    ("duplicate-define", f"define a = {OK}\ndefine a = {OK}", 2, 8, "site.rules:1:8"),
    ("bad-name", f"define event = {OK}", 1, 8, "`event` is a field"),
    ("duplicate-rule", TWO_RULES, 2, 6, "site.rules:1:6"),
    ("multiple-policies", "policy { quiet 1d after chat }\npolicy { }", 2, 1, "at most one policy"),
    ("cyclic-define", f"define a = b\ndefine b = a\n{when('a')}", 1, 8, "a → b → a"),
    ("cyclic-define", f"define a = a and {OK}\n{when('a')}", 1, 8, "a → a"),
    ("undefined-define", when("nope"), 1, 15, "define it first"),
    ("undefined-define", f"define engaged = {OK}\n{when('engagd')}", 2, 15, "`engaged`?"),
    ("undefined-define", when("dwell"), 1, 15, "did you mean `page.dwell`?"),
    ("missing-when", 'rule r { say "x" }', 1, 6, "no `when`"),
    ("missing-say", f"rule r {{ when {OK} }}", 1, 6, "no `say`"),
    ("misplaced-clause", extra("quiet 1d after chat"), 1, 41, "`quiet` belongs in the policy"),
    ("misplaced-clause", extra("only when visitor.vip"), 1, 41, "belongs in the policy"),
    ("misplaced-clause", extra("session timeout 1h"), 1, 41, "belongs in the policy"),
    ("misplaced-clause", "policy { on tick }", 1, 10, "`on` belongs in a rule"),
    ("misplaced-clause", f"policy {{ when {OK} }}", 1, 10, "`when` belongs in a rule"),
    ("misplaced-clause", "policy { cooldown 1h }", 1, 10, "belongs in a rule"),
    ("misplaced-clause", extra("at most 5 per 1m sitewide"), 1, 41, "sitewide caps"),
    ("duplicate-clause", extra("when page.scroll > 5"), 1, 41, "join the two with and/or"),
    ("duplicate-clause", extra('say "y"'), 1, 41, "already has a `say`"),
    ("duplicate-clause", extra("on tick on page_view"), 1, 49, "already has a `on`"),
    ("duplicate-clause", extra("priority 1 priority 2"), 1, 52, "keep one"),
    ("duplicate-clause", "policy { quiet 1d after chat quiet 2d after chat }", 1, 30, "after chat"),
    ("duplicate-clause", "policy { session timeout 1h session timeout 2h }", 1, 29, "keep one"),
    ("outcome-event", extra("on chat_started"), 1, 44, "outcome event"),
    ("outcome-event", extra("on tick, invitation_dismissed"), 1, 50, "`invitation_dismissed`"),
    ("bad-cap", extra("at most 0 per session"), 1, 49, "at least 1"),
    ("bad-cap", extra("at most 1.5 per session"), 1, 49, "whole number"),
    ("bad-cap", "policy { at most 5 invitations per session sitewide }", 1, 10, "a time window"),
    ("bad-priority", extra("priority 1.5"), 1, 50, "whole number"),
    (
        "unknown-zone",
        extra('during daily 09:00-17:00 in "Europe/Berln"'),
        1,
        69,
        '"Europe/Berlin"?',
    ),
    ("unknown-zone", extra('during daily 09:00-17:00 in "Nowhere"'), 1, 69, '"Area/City"'),
    ("unknown-zone", extra('during daily 09:00-17:00 in "../etc/zone"'), 1, 69, "IANA"),
    ("empty-message", say('""'), 1, 37, "empty"),
    ("empty-message", say('"x" or "   "'), 1, 44, "empty"),
    ("markup-in-message", say('"<b>Hi</b>"'), 1, 37, "plain text"),
    ("markup-in-message", say("\"Hi <a href='/x'>here</a>\""), 1, 37, "plain text"),
    # checker: fields and types
    ("unknown-field", when("page.dwel >= 30s"), 1, 15, "did you mean `page.dwell`?"),
    ("unknown-field", when("session.page_views > 2"), 1, 15, "`session.pageviews`?"),
    ("unknown-field", say('"Hi {page.titel}"'), 1, 42, "did you mean `page.title`?"),
    ("unknown-namespace", when('pge.path == "/"'), 1, 15, "did you mean `page.path`?"),
    ("unknown-namespace", when('visitors.plan == "pro"'), 1, 15, "`visitor.plan`?"),
    ("unknown-namespace", say('"{nope.x}"'), 1, 39, "`nope`"),
    ("type-mismatch", when("page.dwell >= 30"), 1, 15, "write 30s"),
    ("type-mismatch", when("queue.wait < 2"), 1, 15, "write 2s"),
    ("type-mismatch", when("page.dwell in [30, 60]"), 1, 15, "write 30s"),
    ("type-mismatch", when("session.pageviews >= 30s"), 1, 15, "not a duration"),
    ("type-mismatch", when("page.path == 3"), 1, 15, "double quotes"),
    ("type-mismatch", when('page.path >= "/a"'), 1, 15, "use == or !="),
    ("type-mismatch", when("page.path"), 1, 15, "not true or false"),
    ("type-mismatch", when('page.scroll matches "5*"'), 1, 15, "`matches` needs text"),
    ("type-mismatch", when('page.dwell contains "5"'), 1, 15, "`contains` needs text"),
    ("type-mismatch", f"define d = page.dwell >= 30\n{when('d')}", 1, 12, "write 30s"),
    ("bad-list", when("page.path in []"), 1, 15, "empty"),
    ("bad-list", when('page.path in ["a", 1]'), 1, 15, "one kind"),
    ("bad-glob", when('page.path matches ""'), 1, 33, "empty glob"),
    ("bad-glob", when('page.path matches "/a[bc]"'), 1, 33, "`[`"),
    ("bad-glob", when('page.path matches "^/a$"'), 1, 33, "`^`"),
    # bounds
    ("file-too-big", "#" * 1_000_001, 1, 1, "at most 1,000,000"),
    ("bad-duration", extra("cooldown 3651d"), 1, 50, "at most 3650d"),
    ("bad-number", when("visitor.seats >= 1" + "0" * 15), 1, 32, "at most 15 digits"),
    ("too-deep", when("not " * 33 + "visitor.vip"), 1, 15, "at most 32 levels"),
    (
        "too-deep",
        "".join(f"define d{i} = d{i + 1}\n" for i in range(33))
        + f"define d33 = {OK}\n"
        + when("d0"),
        2,
        8,
        "at most 32 deep",
    ),
    (
        "too-complex",
        "".join(f"define t{i} = t{i + 1} or t{i + 1}\n" for i in range(10))
        + f"define t10 = {OK}\n"
        + when("t0"),
        1,
        13,
        "at most 1,000",
    ),
]


@pytest.mark.parametrize(
    ("code", "source", "line", "column", "phrase"),
    ERRORS,
    ids=[f"{row[0]}-{i}" for i, row in enumerate(ERRORS)],
)
def test_each_error_is_reported_once_with_its_code_place_and_words(
    code: str, source: str, line: int, column: int, phrase: str
) -> None:
    diagnostic = the_one(source)
    assert (diagnostic.code, diagnostic.severity) == (code, "error")
    assert (diagnostic.line, diagnostic.column) == (line, column)
    assert found_in(phrase, diagnostic), (diagnostic.message, diagnostic.hints)
    assert diagnostic.path == "site.rules"


# Codes whose trigger cannot be a one-diagnostic row, and the test that covers each.
TESTED_ELSEWHERE = {
    "bad-encoding": "test_a_file_that_is_not_utf8_is_reported_at_its_first_bad_line",
    "too-many-errors": "test_recovery.py: test_past_fifty_syntax_errors_the_rest_are_counted",
}


def test_every_code_the_parser_and_checker_emit_has_a_row() -> None:
    """A new code in the parser or checker modules needs a row in one of the tables."""
    src = Path(__file__).resolve().parent.parent / "src" / "politely"
    modules = ("parser.py", "checker.py", "pestering.py", "sources.py", "syntax_errors.py")
    text = "\n".join((src / m).read_text(encoding="utf-8") for m in modules)
    emitted = set(re.findall(r'"([a-z]+(?:-[a-z]+)+)"', text)) | {"syntax"}
    covered = {row[0] for row in [*ERRORS, *WARNINGS]} | set(TESTED_ELSEWHERE)
    assert emitted - covered == set()


def test_an_invalid_time_is_reported_without_a_second_error_for_its_range() -> None:
    """`25:00-26:00` has two bad times; the range is not also "empty"."""
    diagnostics = diagnose(f'rule r {{ when {OK} say "x" during mon 25:00-26:00 }}')
    assert [(d.code, d.column) for d in diagnostics] == [("bad-schedule", 52), ("bad-schedule", 58)]
    assert not any("empty" in d.message for d in diagnostics)


@pytest.mark.parametrize(
    "message",
    [
        '"Hi {visitor.name} \\q"',
        '"\\q {visitor.name}"',
        '"{{x}} \\q"',
        '"\\q {{x}}"',
        '"a}} \\q {{b"',
        '"\\q }}"',
    ],
)
def test_a_bad_escape_is_underlined_exactly_whatever_surrounds_it(message: str) -> None:
    source = say(message)
    diagnostic = the_one(source)
    assert diagnostic.code == "bad-string"
    assert source[diagnostic.column - 1 : diagnostic.end_column - 1] == "\\q"


def test_a_file_that_is_not_utf8_is_reported_at_its_first_bad_line(tmp_path: Path) -> None:
    rules = tmp_path / "site.rules"
    rules.write_bytes(
        AGENTS.encode() + b"# caf\xe9 menu\n" + f'rule r {{ when {OK} say "x" }}\n'.encode()
    )
    (diagnostic,) = check_path(rules).diagnostics
    assert (diagnostic.code, diagnostic.severity) == ("bad-encoding", "error")
    assert (diagnostic.line, diagnostic.column) == (2, 1)
    assert "UTF-8" in diagnostic.message


# --- warnings --------------------------------------------------------------------------

CONTRADICTION = "page.dwell >= 30s and page.dwell < 10s"
NEVER_POLICY = "policy { only when agents.available > 0 never when page.scroll > 100 }\n"
STRICT_POLICY = "policy { only when agents.available > 0 at most 1 invitation per 1h }\n"

WARNINGS = [
    ("never-holds", AGENTS + when(CONTRADICTION), 2, 15, "never hold"),
    (
        "never-holds",
        AGENTS + when(f'{OK} and visitor.plan == "a" and visitor.plan == "b"'),
        2,
        15,
        "never",
    ),
    ("never-holds", AGENTS + when(f"{OK} and page.scroll > 100"), 2, 37, "never hold"),
    ("never-holds", AGENTS + when(f"{OK} and page.scroll > 100.5%"), 2, 37, "never hold"),
    ("never-holds", NEVER_POLICY + when(OK), 1, 52, "never"),
    ("fires-on-load", AGENTS + when('page.path == "/"'), 2, 6, "page.dwell >= 20s"),
    ("fires-on-load", AGENTS + when("page.dwell >= 0s"), 2, 6, "the instant a page loads"),
    ("fires-on-load", AGENTS + when(f"{OK} or visitor.vip"), 2, 6, "the instant a page loads"),
    (
        "cap-no-effect",
        AGENTS + extra("at most 5 per session"),
        2,
        41,
        "at most 3 invitations per session",
    ),
    ("cap-no-effect", STRICT_POLICY + extra("cooldown 10m"), 2, 41, "at most 1 invitation per 1h"),
    ("unused-define", f"{AGENTS}define unused = {OK}\n{when(OK)}", 2, 8, "`unused` is never used"),
    ("no-agent-check", when(OK), 1, 6, "agents.available > 0"),
    ("no-agent-check", f"policy {{ quiet 1d after chat }}\n{when(OK)}", 1, 1, "availability"),
    ("unknown-event", AGENTS + extra("on page_veiw"), 2, 44, "did you mean `page_view`?"),
    ("near-miss-field", AGENTS + when(f"visitor.retuning and {OK}"), 2, 15, "`visitor.returning`?"),
    ("near-miss-field", AGENTS + say('"{event.nam}"'), 2, 39, "did you mean `event`?"),
    ("zone-abbreviation", AGENTS + extra('during daily 09:00-17:00 in "EST"'), 2, 69, "New_York"),
]


@pytest.mark.parametrize(
    ("code", "source", "line", "column", "phrase"),
    WARNINGS,
    ids=[f"{row[0]}-{i}" for i, row in enumerate(WARNINGS)],
)
def test_each_warning_is_reported_once_with_its_code_place_and_words(
    code: str, source: str, line: int, column: int, phrase: str
) -> None:
    diagnostic = the_one(source)
    assert (diagnostic.code, diagnostic.severity) == (code, "warning")
    assert (diagnostic.line, diagnostic.column) == (line, column)
    assert found_in(phrase, diagnostic), (diagnostic.message, diagnostic.hints)


@pytest.mark.parametrize(
    "when",
    [
        "page.dwell >= 20s",
        "page.dwell > 0s",
        "session.pageviews >= 2",
        "page.scroll >= 50%",
        'event == "exit_intent"',
        'event in ["exit_intent"]',
        'page.dwell >= 1s or (page.scroll > 10 and page.path == "/")',
    ],
)
def test_a_rule_that_waits_for_the_visitor_draws_no_warning(when: str) -> None:
    assert diagnose(AGENTS + f'rule r {{ when {when} say "x" }}') == ()


def test_a_rule_that_listens_only_to_its_own_event_may_fire_at_once() -> None:
    assert diagnose(AGENTS + 'rule r { on exit_intent when visitor.vip say "x" }') == ()


@pytest.mark.parametrize(
    "field", ["agents.online", "agents.available", "queue.length", "queue.wait"]
)
def test_any_rule_reading_agent_or_queue_fields_silences_no_agent_check(field: str) -> None:
    value = "2m" if field == "queue.wait" else "0"
    source = f'rule r {{ when {OK} and {field} > {value} say "x" }}'
    assert [d.code for d in diagnose(source)] == []


def test_warnings_do_not_fail_a_site() -> None:
    result = check_sources({"site.rules": f'rule r {{ when {OK} say "x" }}'})
    assert result.ok
    assert [d.code for d in result.warnings] == ["no-agent-check"]
    assert result.errors == ()


# --- the words of syntax errors ----------------------------------------------------------

BROKEN = [
    f'rule r {{ when {OK} "Hi" }}',
    f'rule r {{ cooldown 30 when {OK} say "x" }}',
    f'rule r {{ when {OK} say "x" at most 1 per 30 }}',
    "policy { quiet 1 after chat }",
    "policy { session timeout 30 }",
    f'rule r {{ when {OK} say "x"',
    "rule { }",
    'rule r { when page.dwell >= say "x" }',
    "rule r when",
    f"rule r {{ wen {OK} }}",
    f'rule r {{ when {OK} say "x" at most per session }}',
    "policy { quiet 1d after lunch }",
    'rule r { when (page.dwell >= 30s say "x" }',
    f'rule r {{ when {OK} say "x" during mon 9 }}',
    f'rule r {{ when {OK} say "x" during mon 09:00 }}',
    f'rule r {{ when {OK} say "x" during mon 09:00-10:00 in }}',
    f'rule r {{ when {OK} say "x" during 09:00-10:00 }}',
    "define = a",
    'rule r { when a == "x }',
    "rule r { when a @ b }",
    "rule R { }",
    "rule r { on }",
    f'rule r {{ when {OK} say "x" }} }}',
    'rule r { when page.path in ["a" "b"] say "x" }',
    f"define a = {OK} say",
    f"define a = {OK} )",
    "policy { at most 2 invitations per }",
    f"rule r {{ when {OK} say x }}",
    f'rule r {{ when {OK} say "x" or }}',
    f'rule r {{ when {OK} say "x" priority }}',
    'rule r { when page. >= 30s say "x" }',
    'rule r { when not say "x" }',
    f'rule r {{ when {OK} and say "x" }}',
    'rule r { when visitor.x in [1,, 2] say "x" }',
    'rule r { when page.dwell == true false say "x" }',
    f'rule r {{ when {OK} say "x" session 30m }}',
    f'rule r {{ when {OK} say "x" at 3 }}',
    'rule r { when 3 > page.dwell say "x" }',
    'rule r { say "a" when }',
    "policy { only page.dwell > 3s }",
    'rule r { when visitor.plan = "pro" say "x" }',
    'rule r { when visitor.plan == pro say "x" }',
    "polcy { }",
    "rule r { when a say 'x' }",
    "rule r { when a\tsay \x00 }",
    "{",
    "}",
    "define",
    "define a",
    "define a =",
]


def _terminal_names() -> set[str]:
    lark = tree_parser()
    terminals, _, ignored = lark.grammar.compile(lark.options.start, ())
    return {t.name for t in terminals} | set(ignored) | {"$END"}


TERMINALS = _terminal_names()
# Terminal names that are also English words the messages may quote in backticks.
WORD_TERMINALS = {
    t
    for t in TERMINALS
    if t.lower()
    in {
        "invitations", "sitewide",
        "define", "policy", "rule", "on", "when", "or", "say", "priority", "cooldown", "at",
        "most", "per", "during", "quiet", "after", "only", "never", "session", "timeout",
        "visitor", "and", "not", "in", "matches", "contains", "true", "false",
    }
}  # fmt: skip


def leaked_terminal_names(text: str) -> list[str]:
    """Lark terminal names in a message: `NAME`, `RBRACE`, `$END`, `__ANON_0`, or a
    lowercased `rbrace` quoted as if the user could type it."""
    found = [t for t in TERMINALS if re.search(rf"(?<![\w$]){re.escape(t)}(?!\w)", text)]
    found += [
        t
        for t in TERMINALS - WORD_TERMINALS
        if f"`{t.lower()}`" in text and t not in ("COMMA", "DOT", "MINUS", "EQUAL")
    ]
    if "__ANON" in text or "Token(" in text or "Tree(" in text:
        found.append(text)
    return found


@pytest.mark.parametrize(
    ("message", "leaks"),
    [
        ("expected RBRACE", True),
        ("unexpected token Token('NAME', 'x')", True),
        ("the file ends: expected $END", True),
        ("expected one of: COMPARATOR, IN", True),
        ("expected `lbrace` or `name`", True),
        ("expected `{` in rule `r`, found `when`", False),
        ('expected a quoted text such as "Hi" or `true`', False),
    ],
)
def test_the_terminal_name_detector_itself_tells_leaks_from_words(
    message: str, leaks: bool
) -> None:
    assert bool(leaked_terminal_names(message)) is leaks


@pytest.mark.parametrize("source", BROKEN)
def test_syntax_errors_speak_words_never_lark_terminal_names(source: str) -> None:
    result = parse(source)
    assert result.program is None
    (diagnostic,) = result.diagnostics
    assert diagnostic.code == "syntax"
    for text in (diagnostic.message, *diagnostic.hints):
        assert leaked_terminal_names(text) == [], text


def test_syntax_errors_of_mutated_example_files_speak_words() -> None:
    """Delete each word of each example file in turn: every syntax error reads well."""
    leaks: list[tuple[str, str]] = []
    for path in sorted(RULES.glob("*.rules")):
        words = path.read_text(encoding="utf-8").split(" ")
        for i in range(len(words)):
            result = parse(" ".join(words[:i] + words[i + 1 :]))
            for d in result.diagnostics:
                if d.code == "syntax":
                    leaks += [(d.message, t) for t in leaked_terminal_names(d.message)]
    assert leaks == []


@pytest.mark.parametrize(
    ("source", "column"),
    [
        (f'rule r {{ when {OK} say "x" cooldown 30 }}', 50),
        (f'rule r {{ when {OK} say "x" at most 1 per 30 }}', 55),
        ("policy { quiet 30 after chat }", 16),
        ("policy { session timeout 30 }", 26),
    ],
)
def test_a_bare_number_where_a_duration_belongs_says_durations_need_a_unit(
    source: str, column: int
) -> None:
    diagnostic = the_one(source)
    assert diagnostic.code == "syntax"
    assert diagnostic.message == "durations need a unit: write 30s"
    assert (diagnostic.line, diagnostic.column) == (1, column)


@pytest.mark.parametrize(
    "source",
    [
        f'rule r {{ when {OK} "Hi" }}',
        f'rule r {{ when {OK} and page.scroll > 5\n    "Hi" }}',
        'rule r { when not visitor.vip "Hi" }',
    ],
)
def test_a_message_right_after_the_condition_says_expected_say(source: str) -> None:
    diagnostic = the_one(source)
    assert diagnostic.code == "syntax"
    assert diagnostic.message == "expected `say` after the condition"


def test_a_clause_keyword_missing_its_second_word_says_which_word() -> None:
    """`only page.dwell > 3s` lacks `when`: the error names `when`, not `page`."""
    diagnostic = the_one("policy { only page.dwell > 3s }")
    assert diagnostic.code == "syntax"
    assert "`when`" in diagnostic.message


def test_an_unknown_item_keyword_suggests_the_close_one() -> None:
    diagnostic = the_one("polcy { }")
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("syntax", 1, 1)
    assert "did you mean `policy`?" in diagnostic.hints


def test_a_file_ending_early_points_just_after_the_last_thing_written() -> None:
    """Not at the empty line after the final newline: the caret goes where `}` is missing."""
    diagnostic = the_one(f'rule r {{\n    when {OK}\n    say "x"\n\n')
    assert diagnostic.code == "syntax"
    assert (diagnostic.line, diagnostic.column) == (3, 12)
    assert "rule `r`" in diagnostic.message


def test_an_unterminated_text_is_underlined_to_the_end_of_its_line() -> None:
    diagnostic = the_one('rule r {\n    say "open\n}\n')
    assert diagnostic.code == "syntax"
    assert (diagnostic.line, diagnostic.column) == (2, 9)
    assert (diagnostic.end_line, diagnostic.end_column) == (2, 14)


@pytest.mark.parametrize(
    ("source", "line", "column", "end_column"),
    [
        ('rule r {\x0c say "open', 1, 15, 20),  # a form feed is whitespace, not a line end
        ("# menu\u2028cart\npolicy", 2, 7, 8),  # U+2028 in a comment ends no line
        ("\rpolicy", 1, 8, 9),
    ],
)
def test_syntax_error_positions_count_lines_at_newlines_only(
    source: str, line: int, column: int, end_column: int
) -> None:
    """The parser counts lines at "\\n"; so must every position the parser reports."""
    diagnostic = the_one(source)
    assert diagnostic.code == "syntax"
    assert (diagnostic.line, diagnostic.column) == (line, column)
    assert (diagnostic.end_line, diagnostic.end_column) == (line, end_column)


# --- a whole site at once --------------------------------------------------------------------


def test_errors_of_every_file_of_a_site_are_reported_together() -> None:
    result = check_sources(
        {
            "a.rules": f"define engaged = {OK}\n"
            'rule one { when page.dwel >= 30s say "x" }\n'
            'rule two { when engaged say "" }\n',
            "b.rules": 'rule three { when pge.path == "/" say "x" }\n'
            'rule four { when page.dwell >= 30 say "x" }\n'
            'rule one { when engaged say "y" }\n',
            "c.rules": 'rule five { when nope say "<b>x</b>" }\n',
        }
    )
    assert [(d.path, d.line, d.code) for d in result.errors] == [
        ("a.rules", 2, "unknown-field"),
        ("a.rules", 3, "empty-message"),
        ("b.rules", 1, "unknown-namespace"),
        ("b.rules", 2, "type-mismatch"),
        ("b.rules", 3, "duplicate-rule"),
        ("c.rules", 1, "undefined-define"),
        ("c.rules", 1, "markup-in-message"),
    ]
    duplicate = next(d for d in result.errors if d.code == "duplicate-rule")
    assert "first defined at a.rules:2:6" in duplicate.hints


def test_a_syntax_error_in_one_file_does_not_hide_the_errors_of_another() -> None:
    result = check_sources(
        {
            "a.rules": "rule r { when }",
            "b.rules": 'rule s { when page.dwell >= 30 say "x" }',
        }
    )
    assert [(d.path, d.code) for d in result.errors] == [
        ("a.rules", "syntax"),
        ("b.rules", "type-mismatch"),
    ]


def test_defines_are_shared_by_every_file_of_a_site() -> None:
    result = check_sources(
        {
            "a.rules": AGENTS + f"define engaged = {OK}\n",
            "b.rules": 'rule r { when engaged say "x" }\n',
        }
    )
    assert result.diagnostics == ()


def test_a_second_policy_in_another_file_points_back_at_the_first() -> None:
    result = check_sources({"a.rules": "policy { }", "b.rules": "\n\npolicy { }"})
    (diagnostic,) = result.errors
    assert (diagnostic.path, diagnostic.line, diagnostic.code) == (
        "b.rules",
        3,
        "multiple-policies",
    )
    assert any("a.rules:1:1" in hint for hint in diagnostic.hints)


# --- rendering and data -----------------------------------------------------------------


def test_render_prints_the_place_the_source_line_a_caret_run_and_hints() -> None:
    source = f'{AGENTS}rule r {{ when page.dwell >= 30 say "x" }}\n'
    (diagnostic,) = check_sources({"site.rules": source}).diagnostics
    assert render(diagnostic, source) == (
        "site.rules:2:15: error[type-mismatch]: `page.dwell` is a duration; write 30s, not 30\n"
        '  2 | rule r { when page.dwell >= 30 say "x" }\n'
        "    |               ^^^^^^^^^^^^^^^^\n"
        "  = help: durations need a unit: s, m, h, d or w"
    )


def test_render_of_a_warning_says_warning() -> None:
    source = f'rule r {{ when {OK} say "x" }}'
    (diagnostic,) = check_sources({"site.rules": source}).diagnostics
    assert render(diagnostic, source).startswith(
        "site.rules:1:6: warning[no-agent-check]: no rule or policy looks at agent availability\n"
        f'  1 | rule r {{ when {OK} say "x" }}\n'
        "    |      ^\n"
    )


def test_render_puts_the_caret_under_the_span_after_tabs_and_wide_gutters() -> None:
    source = "\n" * 11 + 'rule r {\twhen pge.path == "/" say "x" }\n'
    (diagnostic,) = check_sources({"site.rules": source}).diagnostics
    lines = render(diagnostic, source).splitlines()
    assert lines[0].startswith("site.rules:12:15: error[unknown-namespace]:")
    assert lines[1] == '  12 | rule r { when pge.path == "/" say "x" }'
    assert lines[2] == "     |               ^^^^^^^^"


def test_render_runs_the_caret_to_the_line_end_for_a_span_over_several_lines() -> None:
    source = "rule r {\n    when page.scroll >= 5 and\n         page.dwell >= 30s\n}"
    spanning = Diagnostic("never-holds", "m", "p", 2, 10, 3, 27, "warning")
    lines = render(spanning, source).splitlines()
    assert lines[1] == "  2 |     when page.scroll >= 5 and"
    assert lines[2] == "    |          " + "^" * len("page.scroll >= 5 and")


def test_render_shows_the_right_line_after_a_form_feed_earlier_in_the_file() -> None:
    """Lines are counted at "\\n" only, as the parser counts them; a form feed
    (whitespace in the grammar) or U+2028 in a comment does not start a line."""
    source = (
        f'# menu\u2028cart\ndefine a = {OK}\x0c\nrule r {{ when a and pge.path == "/" say "x" }}\n'
    )
    (diagnostic,) = check_sources({"site.rules": source}).errors
    assert (diagnostic.line, diagnostic.column) == (3, 21)
    assert render(diagnostic, source).splitlines()[1] == (
        '  3 | rule r { when a and pge.path == "/" say "x" }'
    )


def test_render_without_the_source_prints_the_head_and_hints_only() -> None:
    diagnostic = Diagnostic("unknown-field", "unknown field `page.dwel`", "s.rules", 4, 9, 4, 18,
                            hints=("did you mean `page.dwell`?",))  # fmt: skip
    assert render(diagnostic, None) == (
        "s.rules:4:9: error[unknown-field]: unknown field `page.dwel`\n"
        "  = help: did you mean `page.dwell`?"
    )


def test_render_all_separates_diagnostics_with_a_blank_line_and_summary_counts() -> None:
    sources = {"a.rules": 'rule r { when page.dwel >= 30s say "" }'}
    diagnostics = check_sources(sources).diagnostics
    text = render_all(diagnostics, sources)
    assert text.count("\n\n") == 1
    assert text.startswith("a.rules:1:15: error[unknown-field]")
    assert summary(diagnostics) == "2 errors"
    assert summary(()) == "no problems"
    assert summary([*diagnostics, Diagnostic("w", "m", "p", 1, 1, 1, 2, "warning")]) == (
        "2 errors, 1 warning"
    )


def test_to_dict_carries_every_field_and_is_json() -> None:
    (diagnostic,) = check_sources(
        {"site.rules": 'rule r { when pge.path == "/" say "x" }'}
    ).diagnostics
    data = diagnostic.to_dict()
    assert data == {
        "code": "unknown-namespace",
        "message": "unknown field `pge.path`: there is no `pge`",
        "path": "site.rules",
        "line": 1,
        "column": 15,
        "end_line": 1,
        "end_column": 23,
        "severity": "error",
        "hints": ["did you mean `page.path`?"],
    }
    assert json.loads(json.dumps(data)) == data


@pytest.mark.parametrize("row", ERRORS[:12] + WARNINGS[:3], ids=lambda row: row[0])
def test_to_dict_matches_the_diagnostic_attributes(row: tuple[str, str, int, int, str]) -> None:
    diagnostic = diagnose(row[1])[0]
    data = diagnostic.to_dict()
    for key in ("code", "message", "path", "line", "column", "end_line", "end_column", "severity"):
        assert data[key] == getattr(diagnostic, key)
    assert data["hints"] == list(diagnostic.hints)
