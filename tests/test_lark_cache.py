"""The analysed parser is cached in the user's cache folder, across processes.

A second process loads the file the first wrote and writes nothing; the file's
name changes with the grammar and the Lark and Python versions; a folder that
cannot be written, or a damaged file, still gives the same check.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import lark
import pytest

import politely
from politely.lark_cache import CACHE_DIR_VARIABLE, cache_file, cache_folder, cached_lark
from politely.parser import _WholeWords, grammar_text

SOURCE = Path(politely.__file__).resolve().parent.parent
SITE = Path(__file__).resolve().parent.parent / "rules"
# Two syntax errors: one from the post-lexer (`sessions` glued to `session`), one
# from the parser itself; both must read the same from a loaded parser.
BROKEN = (
    'rule a { when page.dwell >= 30s say "Hi" at most 1 per sessions }\n'
    'rule b { when page.dwell >= say "Hi" }\n'
)


def check(cache: Path, *paths: Path) -> subprocess.CompletedProcess[str]:
    """`politely check` in a new process with `cache` as its cache folder."""
    env = {**os.environ, CACHE_DIR_VARIABLE: str(cache), "PYTHONPATH": str(SOURCE)}
    return subprocess.run(
        [sys.executable, "-m", "politely", "check", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def written(folder: Path) -> dict[str, tuple[int, int]]:
    """Each file in `folder` and what tells a rewrite apart: inode and modification time."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir()}


def test_a_second_process_loads_the_cache_and_writes_nothing(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = check(cache, SITE)
    assert first.returncode == 0, first.stderr
    files = written(cache)
    assert sorted(name.split("-")[0] for name in files) == ["fast", "parser"]  # and its tables

    second = check(cache, SITE)

    assert (second.returncode, second.stdout, second.stderr) == (0, first.stdout, "")
    assert written(cache) == files  # loaded, not analysed again and rewritten


def test_a_loaded_parser_reports_syntax_errors_as_a_built_one(tmp_path: Path) -> None:
    broken = tmp_path / "broken.rules"
    broken.write_text(BROKEN, encoding="utf-8")
    unusable = tmp_path / "a-file"
    unusable.write_text("", encoding="utf-8")
    built = check(unusable / "cache", broken)  # no cache: analysed in memory
    check(tmp_path / "cache", broken)  # writes the cache

    loaded = check(tmp_path / "cache", broken)

    assert built.returncode == loaded.returncode == 1
    assert "sessions" in built.stdout
    assert loaded.stdout == built.stdout


def test_an_unwritable_cache_folder_still_checks_and_says_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")  # no folder can be made below a file

    result = check(blocker / "cache", SITE)

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "5 rules in 3 files: no problems\n"


def test_a_damaged_cache_file_is_analysed_again_and_replaced(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    broken = tmp_path / "broken.rules"
    broken.write_text(BROKEN, encoding="utf-8")
    expected = check(cache, broken)
    (damaged,) = cache.glob("parser-*")
    damaged.write_bytes(b"not a pickle\n")

    # A syntax error: parsed the careful way, which needs Lark's parser (a file
    # without one is parsed from the fast path's tables, and never reads it).
    result = check(cache, broken)

    assert (result.returncode, result.stdout, result.stderr) == (1, expected.stdout, "")
    assert damaged.read_bytes() != b"not a pickle\n"
    files = written(cache)
    assert check(cache, broken).returncode == 1
    assert written(cache) == files  # the replacement loads


OPTIONS = {"parser": "lalr", "lexer": "contextual", "maybe_placeholders": True}


def test_another_grammar_or_other_options_get_another_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(tmp_path))
    grammar = grammar_text()
    changed = grammar + "\n// an edit\n"
    other = {**OPTIONS, "maybe_placeholders": False}

    cached_lark(grammar, **OPTIONS)
    cached_lark(changed, **OPTIONS)
    cached_lark(grammar, **other)

    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        cache_file(g, o, tmp_path).name
        for g, o in [(grammar, OPTIONS), (changed, OPTIONS), (grammar, other)]
    )


def test_a_loaded_parser_keeps_its_options_and_post_lexer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(tmp_path))
    built = cached_lark(grammar_text(), **OPTIONS, postlex=_WholeWords())
    text = 'rule r { when page.dwell >= 30s say "Hi" }'

    loaded = cached_lark(grammar_text(), **OPTIONS, postlex=_WholeWords())

    assert (built.source_path, loaded.source_path) == ("<string>", "<deserialized>")
    assert isinstance(loaded.options.postlex, _WholeWords)
    assert loaded.options.maybe_placeholders
    assert loaded.parse(text) == built.parse(text)


def test_the_file_name_holds_the_lark_and_python_versions() -> None:
    name = cache_file("start: NAME", OPTIONS, Path("/cache")).name
    python = f"py{sys.version_info.major}.{sys.version_info.minor}"
    assert name.startswith("parser-")
    assert f"-lark{lark.__version__}-" in name
    assert name.endswith(f"-{python}.lark-cache")


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({CACHE_DIR_VARIABLE: "/srv/cache", "XDG_CACHE_HOME": "/x"}, Path("/srv/cache")),
        ({"XDG_CACHE_HOME": "/x"}, Path("/x/politely")),
        ({"XDG_CACHE_HOME": "relative", "HOME": "/home/ann"}, Path("/home/ann/.cache/politely")),
        ({CACHE_DIR_VARIABLE: "", "HOME": "/home/ann"}, Path("/home/ann/.cache/politely")),
    ],
)
def test_the_cache_folder_is_chosen_by_the_environment(
    environ: dict[str, str], expected: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", environ.get("HOME", "/home/ann"))
    assert cache_folder(environ) == expected
