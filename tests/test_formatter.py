"""`politely fmt` writes one canonical layout, keeps every comment, changes no
meaning (`parse(fmt(x)) == parse(x)`), is idempotent, and refuses text it cannot
read faithfully (FormatError).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from politely import nodes as n
from politely.diagnostics import Diagnostic
from politely.formatter import (
    LINE_LENGTH,
    FormatError,
    format_days,
    format_duration,
    format_source,
)
from politely.parser import parse

RULES = Path(__file__).resolve().parent.parent / "rules"
RULE_FILES = sorted(RULES.glob("*.rules"))


def fmt(text: str) -> str:
    return format_source(text)


def same_program(a: str, b: str) -> bool:
    first, second = parse(a), parse(b)
    assert first.program is not None
    return first.program == second.program


# --- canonical layout ------------------------------------------------------------------

LAYOUTS = [
    ("", ""),
    ("  \n\n\t\n", ""),
    ("define a=page.dwell>=90s", "define a = page.dwell >= 1m30s\n"),
    (
        'rule hi{when page.dwell>=30s say "Hi"}',
        'rule hi {\n    when page.dwell >= 30s\n    say "Hi"\n}\n',
    ),
    (
        'rule r { priority - 5 on page_view,tick when visitor.x > -2.5 say "a" or "b" or "c" }',
        "rule r {\n"
        "    priority -5\n"
        "    on page_view, tick\n"
        "    when visitor.x > -2.5\n"
        '    say "a"\n'
        '     or "b"\n'
        '     or "c"\n'
        "}\n",
    ),
    (
        "policy{at most 1 per 600s at most 2 invitation per session at most 1 invitations per"
        " visitor at most 40 per 60s sitewide quiet 86400s after dismiss quiet 3d after chat"
        " session timeout 1800s only when agents.available>0 never when page.path matches"
        ' "/x*" during mon-fri 8:00-20:00,sat,sun 10:00-14:00 in "Europe/Berlin"}',
        "policy {\n"
        "    at most 1 invitation per 10m\n"
        "    at most 2 invitations per session\n"
        "    at most 1 invitation per visitor\n"
        "    at most 40 invitations per 1m sitewide\n"
        "    quiet 1d after dismiss\n"
        "    quiet 3d after chat\n"
        "    session timeout 30m\n"
        "    only when agents.available > 0\n"
        '    never when page.path matches "/x*"\n'
        '    during weekdays 08:00-20:00, weekends 10:00-14:00 in "Europe/Berlin"\n'
        "}\n",
    ),
    (
        'rule r { when a say "x" cooldown 3600s at most 1 invitations per 7d at most 2 per'
        " session during mon,tue,wed 9:00-17:00 }",
        "rule r {\n"
        "    when a\n"
        '    say "x"\n'
        "    cooldown 1h\n"
        "    at most 1 per 7d\n"
        "    at most 2 per session\n"
        "    during mon-wed 09:00-17:00\n"
        "}\n",
    ),
    ("rule r {}", "rule r {\n}\n"),
    ("policy {\n\n}", "policy {\n}\n"),
    (
        'define a = page.dwell >= 1s\ndefine b = a\nrule r { when b say "x" }\ndefine c = b',
        "define a = page.dwell >= 1s\n"
        "define b = a\n"
        "\n"
        'rule r {\n    when b\n    say "x"\n}\n'
        "\n"
        "define c = b\n",
    ),
    (
        "define a = page.dwell >= 1s\n\n\n\n\ndefine b = page.dwell >= 2s",
        "define a = page.dwell >= 1s\n\ndefine b = page.dwell >= 2s\n",
    ),
    (
        'rule r {\n    when a\n\n\n    say "x"\n\n    cooldown 1h\n}',
        'rule r {\n    when a\n\n    say "x"\n\n    cooldown 1h\n}\n',
    ),
    (
        'rule r {\r\n    when page.dwell >= 1s\r\n    say "x"\r\n}\r\n',
        'rule r {\n    when page.dwell >= 1s\n    say "x"\n}\n',
    ),
]


@pytest.mark.parametrize(("source", "expected"), LAYOUTS)
def test_the_canonical_layout(source: str, expected: str) -> None:
    assert fmt(source) == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("a and b or c", "(a and b) or c"),
        ("a or b and c", "a or (b and c)"),
        ("(a or b) and c", "(a or b) and c"),
        ("((a))", "a"),
        ("(a and b) and c", "a and b and c"),
        ("a or (b or c)", "a or b or c"),
        ("not (a and b)", "not (a and b)"),
        ("not (a)", "not a"),
        ("not not a", "not not a"),
        (
            "(a or b) and c or not (d and e) or f and not g",
            "((a or b) and c) or not (d and e) or (f and not g)",
        ),
        ('page.title contains "a\\"b\\\\c\\nd"', 'page.title contains "a\\"b\\\\c\\nd"'),
        (
            "visitor.x in [1,2.50,50%,1w,true,false,-3,]",
            "visitor.x in [1, 2.5, 50%, 7d, true, false, -3]",
        ),
        ('page.path not in [ "/a" ]', 'page.path not in ["/a"]'),
        ("page.path in []", "page.path in []"),
        ("page . dwell>=30s", "page.dwell >= 30s"),
        ("visitor.x == 007", "visitor.x == 7"),
        ("visitor.x == 2.50%", "visitor.x == 2.5%"),
        ("visitor.x == - 0", "visitor.x == 0"),
    ],
)  # fmt: skip
def test_conditions_are_written_with_canonical_spacing_and_parentheses(
    condition: str, expected: str
) -> None:
    assert fmt(f"define x = {condition}") == f"define x = {expected}\n"
    assert same_program(f"define x = {condition}", f"define x = {expected}")


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ('"Hi"', '"Hi"'),
        ('"{ visitor.name  or  there }"', '"{visitor.name or there}"'),
        ('"{{literal}} {page.title}"', '"{{literal}} {page.title}"'),
        ('"say \\"hi\\"\\n"', '"say \\"hi\\"\\n"'),
        ('"caf\u00e9 \U0001f600"', '"caf\u00e9 \U0001f600"'),
        ('"50% # not a comment"', '"50% # not a comment"'),
    ],
)
def test_messages_are_written_back_as_templates(message: str, expected: str) -> None:
    assert fmt(f"rule r {{ when a say {message} }}") == (
        f"rule r {{\n    when a\n    say {expected}\n}}\n"
    )


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("30s", "30s"),
        ("90s", "1m30s"),
        ("90m", "1h30m"),
        ("3600s", "1h"),
        ("120m", "2h"),
        ("86400s", "1d"),
        ("36h", "1d12h"),
        ("1w", "7d"),
        ("2w", "14d"),
        ("30m1h", "1h30m"),
        ("1d1h1m1s", "1d1h1m1s"),
        ("59s", "59s"),
        ("0s", "0s"),
    ],
)
def test_durations_are_written_largest_unit_first(written: str, canonical: str) -> None:
    assert fmt(f'rule r {{ when a say "x" cooldown {written} }}').splitlines()[3] == (
        f"    cooldown {canonical}"
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (1, "1s"), (60, "1m"), (61, "1m1s"), (3600, "1h"), (5400, "1h30m"),
     (86400, "1d"), (90061, "1d1h1m1s"), (7 * 86400, "7d"), (10 * 86400 + 1, "10d1s")],
)  # fmt: skip
def test_format_duration(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("mon-fri", "weekdays"),
        ("weekdays", "weekdays"),
        ("sat,sun", "weekends"),
        ("sat-sun", "weekends"),
        ("weekends", "weekends"),
        ("mon-sun", "daily"),
        ("daily", "daily"),
        ("weekdays,weekends", "daily"),
        ("mon,tue,wed", "mon-wed"),
        ("tue-sat", "tue-sat"),
        ("mon,tue", "mon,tue"),
        ("mon,wed,fri", "mon,wed,fri"),
        ("fri,mon", "mon,fri"),
        ("fri-mon", "mon,fri-sun"),
        ("mon,mon", "mon"),
        ("sun", "sun"),
    ],
)
def test_days_are_written_canonically(written: str, canonical: str) -> None:
    source = f'rule r {{ when a say "x" during {written} 09:00-17:00 }}'
    assert fmt(source).splitlines()[3] == f"    during {canonical} 09:00-17:00"
    assert same_program(source, fmt(source))


def test_format_days_covers_every_single_day() -> None:
    assert [format_days(frozenset({d})) for d in range(7)] == list(n.DAY_NAMES)


# --- long conditions ---------------------------------------------------------------------


def test_a_long_and_chain_breaks_at_each_top_level_and() -> None:
    source = (
        'rule long { when page.path matches "/pricing*" and session.pageviews >= 3 and'
        ' page.dwell >= 20s and (visitor.plan == "free" or visitor.trial) say "x" }'
    )
    assert fmt(source) == (
        "rule long {\n"
        '    when page.path matches "/pricing*"\n'
        "     and session.pageviews >= 3\n"
        "     and page.dwell >= 20s\n"
        '     and (visitor.plan == "free" or visitor.trial)\n'
        '    say "x"\n'
        "}\n"
    )


def test_a_long_or_chain_breaks_at_each_top_level_or() -> None:
    source = (
        'rule long { when page.path matches "/pricing*" or session.pageviews >= 3 or'
        ' page.dwell >= 20s or visitor.plan == "free" and visitor.trial say "x" }'
    )
    assert fmt(source) == (
        "rule long {\n"
        '    when page.path matches "/pricing*"\n'
        "      or session.pageviews >= 3\n"
        "      or page.dwell >= 20s\n"
        '      or (visitor.plan == "free" and visitor.trial)\n'
        '    say "x"\n'
        "}\n"
    )


def test_long_conditions_of_defines_and_the_policy_line_up_under_their_keyword() -> None:
    source = (
        "define long_one = page.dwell >= 20s and session.pageviews >= 3 and page.scroll >= 50%"
        ' and visitor.plan == "free"\n'
        "policy { only when agents.available > 0 and queue.wait < 2m and agents.online > 1"
        ' and queue.length < 5 never when page.path matches "/checkout/payment*" or'
        ' page.path matches "/account/*" or page.url contains "?x" }'
    )
    assert fmt(source) == (
        "define long_one = page.dwell >= 20s\n"
        "              and session.pageviews >= 3\n"
        "              and page.scroll >= 50%\n"
        '              and visitor.plan == "free"\n'
        "\n"
        "policy {\n"
        "    only when agents.available > 0\n"
        "          and queue.wait < 2m\n"
        "          and agents.online > 1\n"
        "          and queue.length < 5\n"
        '    never when page.path matches "/checkout/payment*"\n'
        '            or page.path matches "/account/*"\n'
        '            or page.url contains "?x"\n'
        "}\n"
    )


def _rule_with_condition_of_length(length: int) -> str:
    head = 'visitor.a == "'
    tail = '" and visitor.b == 1'
    condition = head + "x" * (length - len(head) - len(tail)) + tail
    assert len(condition) == length
    return f'rule r {{\n    when {condition}\n    say "x"\n}}\n'


def test_a_condition_that_fits_the_line_stays_on_one_line() -> None:
    fits = _rule_with_condition_of_length(LINE_LENGTH - len("    when "))
    assert max(len(line) for line in fits.splitlines()) == LINE_LENGTH
    assert fmt(fits) == fits


def test_a_condition_one_character_too_long_is_broken() -> None:
    too_long = _rule_with_condition_of_length(LINE_LENGTH - len("    when ") + 1)
    lines = fmt(too_long).splitlines()
    assert lines[1].startswith('    when visitor.a == "xxx')
    assert lines[2] == "     and visitor.b == 1"
    assert same_program(too_long, fmt(too_long))


# --- comments ----------------------------------------------------------------------------

COMMENTED = [
    pytest.param(
        "# header\n\ndefine a = page.dwell >= 1s\n",
        "# header\n\ndefine a = page.dwell >= 1s\n",
        id="own-line comment and blank line before the first item",
    ),
    pytest.param(
        "define a = page.dwell >= 1s   # trailing\n",
        "define a = page.dwell >= 1s  # trailing\n",
        id="trailing comment, two spaces before #",
    ),
    pytest.param(
        'rule r {\n# inside\nwhen a\nsay "x"\n}\n',
        'rule r {\n    # inside\n    when a\n    say "x"\n}\n',
        id="own-line comment inside a block is indented",
    ),
    pytest.param(
        'rule r {\n    when a  # why\n    say "x"  # what\n}\n',
        'rule r {\n    when a  # why\n    say "x"  # what\n}\n',
        id="trailing comments on clauses",
    ),
    pytest.param(
        'rule r {\n    when a\n    say "x"\n    # before the closing brace\n}\n',
        'rule r {\n    when a\n    say "x"\n    # before the closing brace\n}\n',
        id="comment before the closing brace",
    ),
    pytest.param(
        'rule r {\n    when a\n    say "x"\n}  # after the closing brace\n',
        'rule r {\n    when a\n    say "x"\n}  # after the closing brace\n',
        id="comment after the closing brace",
    ),
    pytest.param(
        'rule r { when a say "x" }\n# end of file\n# really the end',
        'rule r {\n    when a\n    say "x"\n}\n# end of file\n# really the end\n',
        id="comments at the end of the file",
    ),
    pytest.param(
        'rule r {\n    when a\n    say "x"  # first\n     # between variants\n     or "y"\n}\n',
        'rule r {\n    when a\n    say "x"  # first\n    # between variants\n     or "y"\n}\n',
        id="comment between message variants",
    ),
    pytest.param(
        "define a = page.dwell >= 1s  # c1\n# c2\ndefine b = a\n",
        "define a = page.dwell >= 1s  # c1\n# c2\ndefine b = a\n",
        id="comments inside a group of defines",
    ),
    pytest.param("# only a comment", "# only a comment\n", id="a file of one comment"),
    pytest.param(
        'rule r { when a say "a # b" }  # c',
        'rule r {\n    when a\n    say "a # b"\n}  # c\n',
        id="a # inside a string is not a comment",
    ),
    pytest.param(
        'rule r { # open\n    when a\n    say "x"\n}\n',
        'rule r {  # open\n    when a\n    say "x"\n}\n',
        id="comment after the opening brace",
    ),
    pytest.param(
        "rule r {\n    when a  # one\n    # two\n}\n",
        "rule r {\n    when a  # one\n    # two\n}\n",
        id="comments in a block without say",
    ),
    pytest.param(
        "#!no space\n#\n#    indented text\n",
        "#!no space\n#\n#    indented text\n",
        id="comment text is kept verbatim",
    ),
]


@pytest.mark.parametrize(("source", "expected"), COMMENTED)
def test_comments_are_kept_where_they_were(source: str, expected: str) -> None:
    assert fmt(source) == expected


def test_comments_of_a_condition_broken_over_lines_are_all_kept() -> None:
    source = "define a =\n    page.dwell >= 1s  # one\n    and page.scroll > 5  # two\n"
    out = fmt(source)
    assert "# one" in out
    assert "# two" in out
    assert same_program(source, out)


@pytest.mark.parametrize("separator", ["\u2028", "\x0c"])
def test_a_comment_holding_a_unicode_line_separator_is_kept_whole(separator: str) -> None:
    """Only "\\n" ends a comment (docs/language.md); str.splitlines() does not agree."""
    source = f"# menu{separator}cart\ndefine a = page.dwell >= 1s\n"
    assert fmt(source) == source


@pytest.mark.parametrize("separator", ["\u2028", "\r", "\x0c"])
def test_a_line_separator_inside_a_string_moves_no_comment_or_blank_line(separator: str) -> None:
    source = f'define a = visitor.x == "{separator}"\n# c\n\ndefine b = a\n'
    assert fmt(source.replace(separator, "x")) == source.replace(separator, "x")
    assert fmt(source) == source


def test_every_comment_of_the_example_files_survives() -> None:
    for path in RULE_FILES:
        source = path.read_text(encoding="utf-8")
        comments = [line.strip() for line in source.splitlines() if line.strip().startswith("#")]
        out = fmt(source)
        assert all(c in out for c in comments), path.name


# --- blank lines -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        'rule r { when a say "x" }\n\nrule s { when a say "y" cooldown 1h }\n',
        '# header\n\n\nrule s { when a say "y" cooldown 1h }\n',
        "\n\n" + 'rule s { when a say "y" }',
    ],
)
def test_a_rule_written_on_one_line_after_a_blank_line_gets_no_blank_lines_inside(
    source: str,
) -> None:
    out = fmt(source)
    block = out[out.index("rule s {") :]
    assert "\n\n" not in block.rstrip("\n"), out


# --- laws ---------------------------------------------------------------------------------

TRICKY = [
    *(p.read_text(encoding="utf-8") for p in RULE_FILES),
    *(source for source, _ in LAYOUTS),
    *(p.values[0] for p in COMMENTED),  # type: ignore[union-attr]
    'rule r{when(a or b)and not(c and d)or e say"x"or"y"cooldown 90m}',
    "define a = page.dwell >= 1s\n\n\n# lonely\n\n\n",
    'policy { during fri-mon 22:00-02:00, daily 00:00-24:00 in "Asia/Kolkata" }',
    'rule r {\n\n\n    # a\n\n    # b\n    when a\n\n    # c\n    say "x"\n\n}\n\n# d\n',
    'rule r {\n    when a and\n        b and\n        c\n    say "x"\n     or "y"\n}\n',
    'rule r { when a say "Hi {visitor.name or \\"friend\\"}!" }',
]


@pytest.mark.parametrize("source", TRICKY)
def test_formatting_is_idempotent(source: str) -> None:
    once = fmt(source)
    assert fmt(once) == once


@pytest.mark.parametrize("source", TRICKY)
def test_formatting_never_changes_the_program(source: str) -> None:
    assert same_program(source, fmt(source))


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_the_example_files_are_already_formatted(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert fmt(source) == source


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "line", "column"),
    [
        ('rule r { when a "x" }', 1, 17),
        ("rule r {", 1, 9),
        ("define = a", 1, 8),
        ('rule r {\n    when a @ b\n    say "x"\n}', 2, 12),
        ('rule r { when a say "x }', 1, 21),
    ],
)
def test_a_syntax_error_raises_format_error_carrying_the_diagnostic(
    source: str, line: int, column: int
) -> None:
    with pytest.raises(FormatError) as caught:
        fmt(source)
    diagnostic = caught.value.diagnostic
    assert isinstance(diagnostic, Diagnostic)
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("syntax", line, column)
    assert str(caught.value) == diagnostic.message
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    "clause",
    [
        "cooldown 1.5h",
        "during mon-weekdays 09:00-10:00",
        "during mon 25:00-26:00",
        'say "a\\tb"',
        'say "Hi {1}"',
        'say "Hi {"',
    ],
)
def test_fmt_refuses_to_rewrite_a_value_the_parser_could_not_read(clause: str) -> None:
    """Writing `cooldown 1.5h` back as `cooldown 0s`, or dropping a bad escape, would
    destroy what the marketer typed: the formatter must refuse instead."""
    with pytest.raises(FormatError):
        fmt(f'rule r {{ when a say "x" {clause} }}')
