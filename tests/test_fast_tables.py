"""The fast path's tables are saved in the cache folder and read back without Lark.

Read back, they are the very tables Lark's parser gives; a process checking files
without syntax errors then never imports Lark, and one with a syntax error still
reports it as before; a damaged, stale or missing file means reading the tables
from Lark's parser again, and the check is the same.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lark
import msgspec
import pytest

import politely
from politely import fast_tables, lalr_tables, parser
from politely.lalr import FastParse
from politely.lalr_tables import tables_of
from politely.lark_cache import CACHE_DIR_VARIABLE
from test_fast_parse import EXAMPLES, SITE, calls, careful, exact

SOURCE = Path(politely.__file__).resolve().parent.parent
RULES = Path(__file__).resolve().parent.parent / "rules"
BROKEN = 'rule a { when page.dwell >= 30s say "Hi" at most 1 per sessions }\nrule b { when }\n'

# Run by a new process: check the files in argv, then say on stderr whether Lark
# was imported (the check's own output goes to stdout).
_CHECK = """
import sys
from politely.cli import main
from politely.lark_cache import lark_version
code = main(["check", *sys.argv[1:]])
print("lark imported" if "lark" in sys.modules else "no lark", lark_version(), file=sys.stderr)
sys.exit(code)
"""


def check(cache: Path, *paths: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, CACHE_DIR_VARIABLE: str(cache), "PYTHONPATH": str(SOURCE)}
    return subprocess.run(
        [sys.executable, "-c", _CHECK, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def options() -> dict[str, Any]:
    return parser._options()


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(tmp_path))
    return tmp_path


def built() -> Any:
    tables = tables_of(parser._grammar().lark)
    assert tables is not None
    return tables


def test_the_tables_read_back_are_the_tables_built(folder: Path) -> None:
    tables = built()
    fast_tables.save(parser.grammar_text(), options(), tables)

    loaded = fast_tables.load(parser.grammar_text(), options())

    assert loaded == tables
    assert loaded is not tables


@pytest.mark.parametrize("text", [SITE, *EXAMPLES])
def test_the_builder_receives_the_same_calls_from_tables_read_back(folder: Path, text: str) -> None:
    fast_tables.save(parser.grammar_text(), options(), built())
    loaded = fast_tables.load(parser.grammar_text(), options())
    assert loaded is not None

    fast, slow = calls(text, FastParse(loaded))

    assert fast == slow
    assert fast


def test_a_file_that_decodes_but_is_not_what_was_written_is_not_used(folder: Path) -> None:
    fast_tables.save(parser.grammar_text(), options(), built())
    path = fast_tables.table_file(parser.grammar_text(), options(), folder)
    data = path.read_bytes()
    check, encoded = data[:32], data[32:]
    saved = msgspec.msgpack.decode(encoded, type=type(built()))
    changed = msgspec.structs.replace(saved, start_state=saved.end_state)
    path.write_bytes(check + msgspec.msgpack.encode(changed))  # decodes; the digest is old

    assert fast_tables.load(parser.grammar_text(), options()) is None


_OTHER_SHAPE = msgspec.msgpack.encode({"scan": 1})  # (tables of a format not bumped)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not MessagePack",
        b"\0" * 32 + b"\x93\x01\x02\x03",
        hashlib.sha256(_OTHER_SHAPE).digest() + _OTHER_SHAPE,  # whole, but no FastTables
    ],
    ids=["empty", "text", "wrong digest", "another shape"],
)
def test_a_damaged_file_is_not_used(folder: Path, content: bytes) -> None:
    fast_tables.save(parser.grammar_text(), options(), built())
    fast_tables.table_file(parser.grammar_text(), options(), folder).write_bytes(content)

    assert fast_tables.load(parser.grammar_text(), options()) is None


def test_the_file_name_holds_the_grammar_options_versions_and_code() -> None:
    grammar = parser.grammar_text()
    name = fast_tables.table_file(grammar, options(), Path("/cache")).name
    python = f"py{sys.version_info.major}.{sys.version_info.minor}"
    package = Path(fast_tables.__file__).parent
    code = hashlib.sha256(
        b"".join((package / module).read_bytes() for module in fast_tables._CODE)
    ).hexdigest()[:12]

    assert name.startswith("fast-parse-")
    assert f"-lark{lark.__version__}-{python}-code{code}." in name
    assert set(fast_tables._CODE) >= {
        "lalr.py",
        "lalr_tables.py",
        "regex_starts.py",
        "fast_tables.py",
    }
    others = [
        fast_tables.table_file(grammar + "\n// an edit\n", options(), Path("/cache")).name,
        fast_tables.table_file(grammar, {**options(), "maybe_placeholders": False}, Path("/")).name,
    ]
    assert name not in others


def test_a_small_file_without_syntax_errors_never_loads_lark_s_parser(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = 'rule r { when page.dwell >= 30s say "Hi" }'
    expected = exact(careful(text))
    parser._fast()  # (its tables may come from Lark's parser, once a process)
    parser.PARSED.clear()

    def refuse() -> None:
        raise AssertionError("Lark's parser was needed")

    monkeypatch.setattr(parser, "_grammar", refuse)
    assert exact(parser.parse(text, "site.rules")) == expected


def test_a_check_without_syntax_errors_never_imports_lark(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = check(cache, RULES)  # writes Lark's parser and the tables
    assert first.returncode == 0, first.stderr

    second = check(cache, RULES)

    assert (second.returncode, second.stdout) == (0, first.stdout)
    assert second.stderr == f"no lark {lark.__version__}\n"


def test_a_check_with_a_syntax_error_reports_it_as_the_careful_parse(tmp_path: Path) -> None:
    broken = tmp_path / "broken.rules"
    broken.write_text(BROKEN, encoding="utf-8")
    cache = tmp_path / "cache"
    check(cache, RULES)  # the tables and Lark's parser are written

    result = check(cache, broken)

    assert result.returncode == 1
    assert result.stderr == f"lark imported {lark.__version__}\n"
    assert "`sessions`" in result.stdout
    assert result.stdout.count("[syntax]") == 2, result.stdout


def _broken_scan(tables: Any) -> Any:
    return msgspec.structs.replace(tables, scan=("(", 0))


def _state_past_the_end(tables: Any) -> Any:
    return msgspec.structs.replace(tables, lexer_of=(*tables.lexer_of[:-1], 10**6))


def _no_gotos(tables: Any) -> Any:
    return msgspec.structs.replace(tables, gotos=tuple({} for _ in tables.gotos))


@pytest.fixture
def fresh_fast() -> Iterator[None]:
    """`parser._fast` asked anew in the test, and again after it."""
    parser._fast.cache_clear()
    yield
    parser._fast.cache_clear()


@pytest.mark.parametrize("damage", [_broken_scan, _state_past_the_end, _no_gotos])
@pytest.mark.usefixtures("fresh_fast")
def test_tables_that_are_whole_but_cannot_run_are_not_used(
    folder: Path, damage: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file whose checksum holds, written by hand or by a broken writer: parsing
    is as without it (never an exception), and the file is written again."""
    monkeypatch.setattr(parser, "PARSED", parser.ParseCache())
    text = 'rule a { when page.dwell >= 30s say "Hi" }\n'
    expected = parser.parse(text, "expected.rules")
    good = fast_tables.load(parser.grammar_text(), options())
    assert good == built()
    fast_tables.save(parser.grammar_text(), options(), damage(good))
    parser._fast.cache_clear()

    result = parser.parse(text, "a.rules")
    again = parser.parse(text, "b.rules")

    assert result.diagnostics == again.diagnostics == expected.diagnostics == ()
    assert result.program == again.program == expected.program is not None
    assert fast_tables.load(parser.grammar_text(), options()) == good


def _decoded(path: Path) -> Any:
    """A table file's tables (its bytes differ between processes: sets are unordered)."""
    return msgspec.msgpack.decode(path.read_bytes()[32:], type=type(built()))


def test_a_missing_or_damaged_table_file_is_written_again(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = check(cache, RULES)
    (tables,) = cache.glob("fast-parse-*")
    written = _decoded(tables)
    tables.write_bytes(b"damaged")

    again = check(cache, RULES)

    assert (again.returncode, again.stdout) == (0, first.stdout)
    assert _decoded(tables) == written
    tables.unlink()
    assert check(cache, RULES).stdout == first.stdout
    assert _decoded(tables) == written


def test_a_parser_whose_tables_cannot_be_read_is_parsed_the_careful_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reading the tables looks inside Lark and `re`'s own parser: whatever surprise
    another version holds there (not only the shapes `tables_of` knows to refuse)
    means no fast path, never a parse that raises."""
    monkeypatch.setattr(parser, "PARSED", parser.ParseCache())
    text = 'rule a { when page.dwell >= 30s say "Hi" }\n'
    expected = parser.parse(text, "expected.rules")

    def surprise(lark: Any) -> None:
        raise TypeError("a changed internal")

    monkeypatch.setattr(fast_tables, "load", lambda grammar, options: None)
    monkeypatch.setattr(lalr_tables, "tables_of", surprise)
    parser._fast.cache_clear()
    try:
        result = parser.parse(text, "a.rules")
        assert parser._fast() is None
    finally:
        parser._fast.cache_clear()

    assert result.diagnostics == expected.diagnostics == ()
    assert result.program == expected.program is not None


@pytest.mark.usefixtures("fresh_fast")
def test_tables_read_from_lark_that_cannot_build_a_parser_are_neither_used_nor_saved(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(parser, "PARSED", parser.ParseCache())
    text = 'rule a { when page.dwell >= 30s say "Hi" }\n'
    expected = parser.parse(text, "expected.rules")
    saved: list[Any] = []
    monkeypatch.setattr(fast_tables, "load", lambda grammar, options: None)
    monkeypatch.setattr(fast_tables, "save", lambda *args: saved.append(args))
    monkeypatch.setattr(lalr_tables, "tables_of", lambda lark: _broken_scan(built()))
    parser._fast.cache_clear()

    result = parser.parse(text, "a.rules")

    assert parser._fast() is None
    assert saved == []
    assert result.program == expected.program is not None
