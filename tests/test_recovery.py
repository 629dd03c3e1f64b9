"""One run of `politely check` reports every error of a site (docs/language.md, section 12).

After a syntax error the parser resumes at the next line whose first word is
`rule`, `define` or `policy`: every syntax error of every file is reported, up
to 50 a file, and every item that did parse is checked as usual.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import examples
from politely.checker import check_sources
from politely.diagnostics import Diagnostic
from politely.errors import FormatError
from politely.formatter import format_source
from politely.parser import parse

AGENTS = "policy {\n    only when agents.available > 0\n}\n"


def codes_at(diagnostics: tuple[Diagnostic, ...]) -> list[tuple[str, int, int, str]]:
    return [(d.path, d.line, d.column, d.code) for d in diagnostics]


def test_a_site_with_four_mistakes_reports_all_four_in_one_run() -> None:
    """The tracker's example: four mistakes took three runs to find."""
    result = check_sources(
        {
            "a.rules": AGENTS
            + 'rule one {\n    when page.dwell >= 30s\n    cooldown 30\n    say "x"\n}\n'
            + 'rule two {\n    when page.dwel >= 30s\n    say "x"\n}\n',
            "b.rules": 'rule three {\n    when visitor.vip "Hi"\n}\n'
            + 'rule four {\n    when page.dwell >= 30\n    say "x"\n}\n',
        }
    )
    assert codes_at(result.diagnostics) == [
        ("a.rules", 6, 14, "syntax"),
        ("a.rules", 10, 10, "unknown-field"),
        ("b.rules", 2, 22, "syntax"),
        ("b.rules", 5, 10, "type-mismatch"),
    ]


def test_every_syntax_error_of_a_file_is_reported_and_the_rules_between_are_checked() -> None:
    source = (
        'rule a {\n    when page.dwell >= 30s "Hi"\n}\n'
        'rule b {\n    when page.dwell >= 30\n    say "x"\n}\n'
        "rule c {\n    cooldwn 1h\n}\n"
        'define d = page.dwell >= 30s say "x"\n'
        'rule e {\n    when d and pge.path == "/"\n    say "x"\n}\n'
    )
    diagnostics = check_sources({"site.rules": source}).diagnostics
    assert codes_at(diagnostics) == [
        ("site.rules", 2, 28, "syntax"),
        ("site.rules", 5, 10, "type-mismatch"),
        ("site.rules", 9, 5, "syntax"),
        ("site.rules", 11, 30, "syntax"),
        ("site.rules", 13, 16, "unknown-namespace"),
    ]
    assert diagnostics[2].hints[0] == "did you mean `cooldown`?"


def test_a_define_with_a_syntax_error_is_not_also_undefined_where_it_is_used() -> None:
    source = 'define engaged = page.dwell >=\nrule r {\n    when engaged\n    say "x"\n}\n'
    assert [d.code for d in check_sources({"site.rules": source}).diagnostics] == ["syntax"]


def test_a_problem_inside_an_item_with_a_syntax_error_waits_for_the_syntax_fix() -> None:
    """`1.5h` is malformed too, but the rule around it did not parse: one error, not two."""
    source = 'rule r {\n    cooldown 1.5h\n    when page.dwell >= 30s "Hi"\n}\n'
    assert codes_at(check_sources({"site.rules": source}).diagnostics) == [
        ("site.rules", 3, 28, "syntax")
    ]


def test_a_missing_brace_is_reported_at_the_next_rule_which_is_still_checked() -> None:
    source = 'rule a {\n    when page.dwell >= 30s\n    say "x"\n\nrule b {\n    when pge.x\n}\n'
    diagnostics = check_sources({"site.rules": source}).diagnostics
    assert codes_at(diagnostics) == [
        ("site.rules", 5, 1, "syntax"),
        ("site.rules", 5, 6, "missing-say"),
        ("site.rules", 6, 10, "unknown-namespace"),
    ]
    assert diagnostics[0].message == "rule `a` is not closed: is a `}` missing before this `rule`?"


def test_a_rule_complete_before_a_syntax_error_on_its_last_line_is_kept() -> None:
    source = 'rule a {\n    when page.dwell >= 30\n    say "x"\n} @\n'
    assert codes_at(check_sources({"site.rules": source}).diagnostics) == [
        ("site.rules", 2, 10, "type-mismatch"),
        ("site.rules", 4, 3, "syntax"),
    ]


def test_indented_items_are_found_too() -> None:
    source = '  rule a {\n    when }\n  rule b {\n    when page.dwell >= 30\n    say "x"\n  }\n'
    assert [d.code for d in check_sources({"site.rules": source}).diagnostics] == [
        "syntax",
        "type-mismatch",
    ]


def test_past_fifty_syntax_errors_the_rest_are_counted() -> None:
    source = "".join(f"rule r{i} {{ when }}\n" for i in range(57))
    diagnostics = parse(source).diagnostics
    assert [d.code for d in diagnostics] == ["syntax"] * 50 + ["too-many-errors"]
    last = diagnostics[-1]
    assert (last.line, last.column) == (51, 17)
    assert last.message == "and 7 more syntax errors in this file"
    assert last.hints == ("check reports the first 50 of a file; fix those first",)


def test_the_parse_of_a_file_with_a_syntax_error_still_has_no_program() -> None:
    """`program` stays None: the formatter refuses, with the first error."""
    result = parse('rule a { when }\nrule b { when page.dwell >= 30s say "x" }\n')
    assert result.program is None
    assert [type(item).__name__ for item in result.parsed.items] == ["Rule"]
    with pytest.raises(FormatError) as refused:
        format_source('rule a { when }\nrule b { when page.dwell >= 30s say "x" }\n')
    assert refused.value.diagnostic == result.diagnostics[0]


# --- the property: k mistakes in k rules, all k reported --------------------------------

# One mistake each, as (clauses of the rule, the code it draws, its line in the rule).
MISTAKES = [
    ('    when page.dwell >= 30s "Hi"', "syntax", 2),
    ('    when page.dwell >= 30s\n    cooldown 30\n    say "x"', "syntax", 3),
    ('    when page.dwell >= 30s\n    sya "x"', "syntax", 3),
    ('    when visitor.vip AND page.dwell >= 30s\n    say "x"', "syntax", 2),
    ('    when page.dwel >= 30s\n    say "x"', "unknown-field", 2),
    ('    when page.dwell >= 30\n    say "x"', "type-mismatch", 2),
    ('    when pge.path == "/"\n    say "x"', "unknown-namespace", 2),
    ("    when page.dwell >= 30s", "missing-say", 1),
    ('    when page.dwell >= 30s\n    say "x"\n    cooldown 1.5h', "bad-duration", 4),
    ('    when page.dwell >= 30s\n    say "<b>x</b>"', "markup-in-message", 3),
]
CLEAN = '    when page.dwell >= 30s\n    say "x"'


@settings(max_examples=examples(40), deadline=None)
@given(st.lists(st.sampled_from([None, *range(len(MISTAKES))]), min_size=1, max_size=8), st.data())
def test_k_independent_mistakes_in_k_rules_are_all_reported(
    choices: list[int | None], data: st.DataObject
) -> None:
    files = data.draw(st.integers(1, 3))
    sources: dict[str, str] = {f"{f}.rules": AGENTS if f == 0 else "" for f in range(files)}
    expected: set[tuple[str, int, str]] = set()
    clean_lines: set[tuple[str, int]] = set()
    for i, choice in enumerate(choices):
        path = f"{data.draw(st.integers(0, files - 1))}.rules"
        first = sources[path].count("\n") + 1
        body = CLEAN if choice is None else MISTAKES[choice][0]
        rule = f"rule r{i} {{\n{body}\n}}\n"
        sources[path] += rule
        lines = range(first, first + rule.count("\n"))
        if choice is None:
            clean_lines.update((path, line) for line in lines)
        else:
            expected.add((path, first + MISTAKES[choice][2] - 1, MISTAKES[choice][1]))
    diagnostics = check_sources(sources).diagnostics
    found = {(d.path, d.line, d.code) for d in diagnostics}
    assert expected <= found
    if expected:  # errors, so no warnings; and nothing spills into a clean rule
        assert not {(d.path, d.line) for d in diagnostics} & clean_lines
