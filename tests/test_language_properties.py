"""Laws of the rule language, checked on generated input (hypothesis).

(a) Every program the grammar generates parses without a syntax diagnostic, and
    checks (and, when it has no error, compiles) without raising.
(b) For those that parse cleanly, formatting changes nothing the parser sees
    (`parse(fmt(x)) == parse(x)`) and formatting twice equals formatting once.
(c) Arbitrary text and mutated example files give diagnostics, never a
    traceback: `check_sources` never raises, `format_source` raises only
    FormatError, and every diagnostic points inside its file.
"""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import HealthCheck, Phase, assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark

from conftest import examples
from politely.checker import check_sources
from politely.compiler import compile_rules
from politely.diagnostics import render
from politely.formatter import FormatError, format_source
from politely.parser import parse, tree_parser

RULES = Path(__file__).resolve().parent.parent / "rules"
EXAMPLES = [p.read_text(encoding="utf-8") for p in sorted(RULES.glob("*.rules"))]

SETTINGS = settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
# Drawing from the grammar costs ~50ms a program and shrinking one takes minutes, so
# grammar-based tests draw fewer examples and report the failing program unshrunk.
GRAMMAR_SETTINGS = settings(
    SETTINGS,
    max_examples=examples(30),
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)

# --- (a) programs from the grammar -----------------------------------------------------

_LARK = tree_parser()
_TERMINALS, _, _IGNORED = _LARK.grammar.compile(_LARK.options.start, ())
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
KEYWORDS = {t.pattern.value for t in _TERMINALS if t.pattern.type == "str"}
WORDS = {
    *KEYWORDS,
    "invitation", "invitations", "sitewide", "dismiss", "chat",
    *DAYS, "weekdays", "weekends", "daily",
}  # fmt: skip


def _then_space(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Generated tokens are concatenated: a space keeps `rule` and `r` apart."""
    return strategy.map(lambda text: text + " ")


_names = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True).filter(lambda s: s not in WORDS)
_integer = st.integers(0, 10**6).map(str)
_decimal = st.tuples(st.integers(0, 999), st.integers(0, 99)).map(lambda t: f"{t[0]}.{t[1]}")
_number = st.one_of(_integer, _decimal)
_duration = st.lists(
    st.tuples(st.integers(1, 99), st.sampled_from("wdhms")), min_size=1, max_size=3
).map(lambda parts: "".join(f"{count}{unit}" for count, unit in parts))
_time = st.tuples(st.integers(0, 23), st.integers(0, 59)).map(lambda t: f"{t[0]:02d}:{t[1]:02d}")
# Text in strings and comments: anything but what ends or escapes them. Characters
# such as U+2028 are included on purpose: only "\n" ends a line of a rules file.
_free_char = st.characters(
    blacklist_characters='"\\\n{}', blacklist_categories=("Cs",), max_codepoint=0x2FFFF
)
_string = st.lists(
    st.one_of(
        _free_char,
        st.sampled_from(
            ['\\"', "\\\\", "\\n", "{{", "}}", "{visitor.name}", "{page.title or you}"]
        ),
    ),
    max_size=8,
).map(lambda parts: '"' + "".join(parts) + '"')
_comment = st.text(
    st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)), max_size=8
).map(lambda text: "#" + text + "\n")

EXPLICIT: dict[str, st.SearchStrategy[str]] = {
    **{t.name: st.just(t.pattern.value + " ") for t in _TERMINALS if t.pattern.type == "str"},
    "NAME": _then_space(_names),
    "STRING": _then_space(_string),
    "NUMBER": _then_space(_number),
    "DURATION": _then_space(_duration),
    "PERCENT": _then_space(_number.map(lambda x: x + "%")),
    "TIME": _then_space(_time),
    "DAY": _then_space(st.sampled_from(DAYS)),
    "COMPARATOR": _then_space(st.sampled_from(["==", "!=", "<", "<=", ">", ">="])),
    "INVITATIONS": _then_space(st.sampled_from(["invitation", "invitations"])),
    "SITEWIDE": st.just("sitewide "),
    "QUIET_AFTER": _then_space(st.sampled_from(["dismiss", "chat"])),
    "WS": st.sampled_from([" ", "\n", "\t", "\r\n", "  \n\n  "]),
    "COMMENT": _comment,
}
# Group names (weekdays, weekends, daily) are valid alone but not in a range, which the
# grammar cannot tell; they are exercised by test_parser and test_formatter instead.

programs = from_lark(_LARK, explicit=EXPLICIT)


def test_every_terminal_of_the_grammar_has_a_generator() -> None:
    assert {t.name for t in _TERMINALS} | set(_IGNORED) == set(EXPLICIT)


@GRAMMAR_SETTINGS
@given(programs)
def test_programs_generated_from_the_grammar_parse_without_a_syntax_error(source: str) -> None:
    result = parse(source)
    assert [d.message for d in result.diagnostics if d.code == "syntax"] == []
    assert result.program is not None
    checked = check_sources({"generated.rules": source})  # never raises either
    if checked.ok:
        compile_rules(checked)


# --- (b) formatting laws on generated programs -----------------------------------------------


@GRAMMAR_SETTINGS
@given(programs)
# Only "\n" ends a line (LANGUAGE.md section 2); a U+2028 in a string must not move
# the comment below it. Kept as an explicit example so the law is checked on it
# every run.
@example('define a = visitor.x == "\u2028"\n# c\n\ndefine b = a\n')
def test_formatting_a_generated_program_keeps_its_meaning_and_is_idempotent(
    source: str,
) -> None:
    result = parse(source)
    assume(result.program is not None and not result.diagnostics)
    once = format_source(source)
    assert parse(once).program == result.program
    assert parse(once).diagnostics == ()
    assert format_source(once) == once


# --- (c) arbitrary and mutated text never crash -----------------------------------------------

_TOKEN = re.compile(r'\s+|"(?:[^"\\\n]|\\.)*"|#[^\n]*|\w+|.', re.DOTALL)
_PIECES = [
    *sorted(KEYWORDS),
    "{", "}", "(", ")", "[", "]", ",", ".", "=", "-", "#", '"', "\\", "%", "*", "?", ":",
    "page.dwell", "30s", "1h30m", "09:00", "mon-fri", "\u2028", "\x0c", "\r", "\x00",
    "\ufffd", "é", "𝔘",
]  # fmt: skip
_arbitrary_text = st.one_of(
    st.text(max_size=80),
    st.lists(st.sampled_from(_PIECES) | st.text(max_size=3), max_size=40).map(" ".join),
    st.lists(st.sampled_from(_PIECES), max_size=40).map("".join),
)


@st.composite
def mutated_examples(draw: st.DrawFn) -> str:
    """An example file with a few characters or tokens deleted, duplicated, swapped
    or inserted."""
    text = draw(st.sampled_from(EXAMPLES))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["chars", "tokens"]))
        units = list(text) if kind == "chars" else _TOKEN.findall(text)
        if not units:
            break
        i = draw(st.integers(0, len(units) - 1))
        j = draw(st.integers(0, len(units) - 1))
        operation = draw(st.sampled_from(["delete", "duplicate", "swap", "insert"]))
        if operation == "delete":
            del units[i : i + draw(st.integers(1, 3))]
        elif operation == "duplicate":
            units[i:i] = units[i : i + draw(st.integers(1, 3))]
        elif operation == "swap":
            units[i], units[j] = units[j], units[i]
        else:
            units.insert(i, draw(st.sampled_from(_PIECES) | st.characters()))
        text = "".join(units)
    return text


def _assert_diagnostics_not_tracebacks(text: str) -> None:
    result = check_sources({"site.rules": text})
    lines = text.count("\n") + 1
    for d in result.diagnostics:
        assert d.path == "site.rules"
        assert d.severity in ("error", "warning")
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", d.code)
        assert d.message
        assert 1 <= d.line <= lines, d
        assert d.column >= 1, d
        assert (d.end_line, d.end_column) >= (d.line, d.column), d
        render(d, text)
    parsed = parse(text)
    if parsed.program is None:  # a syntax error; parsing resumed at the next item
        assert "syntax" in [d.code for d in parsed.diagnostics]
    try:
        format_source(text)
    except FormatError as error:
        refusal = error.diagnostic
    else:
        refusal = None
    assert refusal is None or refusal in parsed.diagnostics


@SETTINGS
@given(_arbitrary_text)
# Found by this test: only "\n" ends a line, so a lone "\r" must not move a position.
@example("\rpolicy")
@example('\r"')
def test_arbitrary_text_gives_diagnostics_never_a_traceback(text: str) -> None:
    _assert_diagnostics_not_tracebacks(text)


@settings(SETTINGS, max_examples=examples(120))
@given(mutated_examples())
def test_mutated_example_files_give_diagnostics_never_a_traceback(text: str) -> None:
    _assert_diagnostics_not_tracebacks(text)
