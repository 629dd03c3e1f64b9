"""A UTF-8 byte-order mark at the start of a rules file is accepted, by check and fmt.

Windows editors write one, and the writer cannot see it: refusing it as an
"unexpected character" at 1:1 would be a riddle.
"""

from __future__ import annotations

from pathlib import Path

from politely import Engine
from politely.checker import check_path, check_sources
from politely.cli import main
from politely.diagnostics import render
from politely.formatter import format_source

BOM = "\ufeff"
RULE = (
    "# greet\n"
    "rule hello {\n"
    "    when page.dwell >= 30s and agents.available > 0\n"
    '    say "Hi! Can I help?"\n'
    "}\n"
)


def test_a_file_starting_with_a_bom_checks_clean(tmp_path: Path) -> None:
    site = tmp_path / "site.rules"
    site.write_bytes(BOM.encode() + RULE.encode())
    result = check_path(site)
    assert result.diagnostics == ()
    assert len(result.rules) == 1


def test_positions_on_the_first_line_are_counted_without_the_bom() -> None:
    source = BOM + 'rule r { when pge.path == "/" say "x" }\n'
    result = check_sources({"site.rules": source})
    (diagnostic,) = result.diagnostics
    assert (diagnostic.line, diagnostic.column) == (1, 15)
    shown = render(diagnostic, result.sources["site.rules"]).splitlines()
    assert shown[1:] == [
        '  1 | rule r { when pge.path == "/" say "x" }',
        "    |" + " " * 15 + "^" * 8,
        "  = help: did you mean `page.path`?",
    ]


def test_fmt_drops_the_bom_and_keeps_a_comment_on_the_first_line() -> None:
    assert format_source(BOM + RULE) == RULE


def test_fmt_rewrites_a_file_with_a_bom_without_it(tmp_path: Path) -> None:
    site = tmp_path / "site.rules"
    site.write_bytes(BOM.encode() + RULE.encode())
    assert main(["fmt", str(site)]) == 0
    assert site.read_text(encoding="utf-8") == RULE


def test_an_engine_loads_rules_with_a_bom() -> None:
    engine = Engine.from_source(BOM + RULE)
    assert engine.rules.rules[0].name == "hello"


def test_a_bom_anywhere_else_is_still_an_unexpected_character() -> None:
    (diagnostic,) = check_sources({"site.rules": RULE + BOM}).diagnostics
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("syntax", 6, 1)
