"""Large files' parse results are saved in the cache folder and read back by a later
process exactly as parsed (spans and diagnostics included), never when stale or
damaged, and within a bound."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import T0
from politely import Engine, checker, parser, saved_parses
from politely.compiler import COMPILED, compile_rules
from politely.lark_cache import CACHE_DIR_VARIABLE
from test_fast_parse import SITE, exact

SOURCE = Path(__file__).resolve().parents[1] / "src"
LARGE = SITE + SITE.replace("rule r", "rule s")  # past SAVE_FROM
BROKEN = LARGE + "rule broken {\n  when page.dwell >= 30 seconds\n  say 'hi'\n}\n"
assert len(BROKEN) >= saved_parses.SAVE_FROM


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(tmp_path))
    parser.PARSED.clear()
    return tmp_path


def saved_files(cache: Path) -> list[Path]:
    return sorted(cache.glob("parses/*/*.msgpack"))


def everything(result: parser.ParseResult) -> Any:
    return (
        exact(result.program),
        exact(result.parsed),
        result.diagnostics,
        result.broken_defines,
    )


def never_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any) -> None:
        raise AssertionError("parsed although a saved result was there")

    monkeypatch.setattr(parser, "_Run", refuse)


def test_a_large_file_is_read_back_exactly_as_it_was_parsed(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed = parser.parse(BROKEN, "site.rules")
    assert parsed.diagnostics  # syntax errors and hints travel too
    assert len(saved_files(cache)) == 1
    parser.PARSED.clear()  # as in a new process
    never_parse(monkeypatch)
    assert everything(parser.parse(BROKEN, "site.rules")) == everything(parsed)


def test_another_path_or_text_is_not_answered_by_a_saved_result(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parser.parse(LARGE, "a.rules")
    parser.PARSED.clear()
    other_path = parser.parse(LARGE, "b.rules")
    other_text = parser.parse(LARGE + "\n", "a.rules")
    assert len(saved_files(cache)) == 3
    assert other_path.program is not None
    assert other_text.program is not None


def test_a_small_file_is_never_saved(cache: Path) -> None:
    parser.parse('rule r { when page.dwell >= 1s say "Hi" }', "small.rules")
    assert saved_files(cache) == []


def test_a_later_process_reads_what_an_earlier_one_saved(cache: Path, tmp_path: Path) -> None:
    site = tmp_path / "site.rules"
    site.write_text(BROKEN, encoding="utf-8")
    script = (
        "import sys; from politely import parser, saved_parses\n"
        "key = parser.ParseCache.key(open(sys.argv[1]).read(), sys.argv[1])\n"
        "print(saved_parses.load(key) is not None)\n"
        "parser.parse(open(sys.argv[1]).read(), sys.argv[1])\n"
    )
    env = {**os.environ, CACHE_DIR_VARIABLE: str(cache), "PYTHONPATH": str(SOURCE)}

    def run() -> str:
        done = subprocess.run(
            [sys.executable, "-c", script, str(site)], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert run() == "False"  # the first process finds nothing, parses and saves
    assert run() == "True"  # the second finds the first's result


@pytest.mark.parametrize(
    "damage",
    [b"", b"\x00garbage", b"\x93\x01\x02\x03", "truncated"],
    ids=["empty", "garbage", "another shape", "truncated"],
)
def test_a_damaged_file_is_parsed_again_and_replaced(cache: Path, damage: bytes | str) -> None:
    parsed = parser.parse(BROKEN, "site.rules")
    (saved,) = saved_files(cache)
    whole = saved.read_bytes()
    saved.write_bytes(whole[: len(whole) // 2] if damage == "truncated" else damage)  # type: ignore[arg-type]
    parser.PARSED.clear()
    assert everything(parser.parse(BROKEN, "site.rules")) == everything(parsed)
    assert saved.read_bytes() == whole  # saved again, whole


def test_another_version_reads_none_of_the_files_and_removes_them(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parser.parse(LARGE, "site.rules")
    (old,) = saved_files(cache)
    monkeypatch.setattr(saved_parses, "version_digest", lambda: "0123456789abcdef")
    parser.PARSED.clear()
    assert saved_parses.load(parser.ParseCache.key(LARGE, "site.rules")) is None
    parser.parse(LARGE, "site.rules")
    (new,) = saved_files(cache)
    assert new.parent.name == "0123456789abcdef"
    assert not old.exists()


def test_the_version_digest_covers_politely_s_source(tmp_path: Path) -> None:
    """An edited checkout is another version: the digest reads the package's files."""
    package = Path(saved_parses.__file__).resolve().parent
    copy = tmp_path / "politely"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    script = "from politely import saved_parses; print(saved_parses.version_digest())"

    def digest() -> str:
        done = subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONPATH": str(tmp_path)},
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    before = digest()
    nodes = copy / "nodes.py"
    nodes.write_text(nodes.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    assert digest() != before


def test_the_least_recently_used_files_go_past_the_bound(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(saved_parses, "MAX_SAVED", 2)
    texts = [LARGE + "\n" * i for i in range(3)]
    keys = [parser.ParseCache.key(t, "site.rules") for t in texts]
    parser.parse(texts[0], "site.rules")
    parser.parse(texts[1], "site.rules")
    for key, when in zip(keys[:2], (0, 100), strict=True):  # the first the older, long ago
        (path,) = cache.glob(f"parses/*/{key.hex()}.msgpack")
        os.utime(path, (when, when))
    assert saved_parses.load(keys[0]) is not None  # read: used now
    parser.parse(texts[2], "site.rules")
    assert saved_parses.load(keys[1]) is None  # the least recently used went
    assert saved_parses.load(keys[0]) is not None
    assert saved_parses.load(keys[2]) is not None


def test_a_folder_that_cannot_be_written_parses_as_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would be", encoding="utf-8")
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(blocker))
    parser.PARSED.clear()
    assert parser.parse(LARGE, "site.rules").program is not None
    assert saved_parses.load(parser.ParseCache.key(LARGE, "site.rules")) is None


def test_a_site_read_back_checks_and_decides_as_the_site_parsed(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing downstream tells a read-back tree from a parsed one: the same
    diagnostics (spans, pestering warnings) and the same decisions."""
    valid = SITE + SITE.split("\n", 1)[1].replace("rule r", "rule s")
    broken = {"a.rules": BROKEN, "b.rules": valid.replace("page.dwell >= 1", "page.dwel >= 1")}

    def load() -> tuple[Any, ...]:
        checker.CHECKED.clear()
        COMPILED.clear()
        result = checker.check_sources({"site.rules": valid})
        engine = Engine(compile_rules(result), clock=lambda: T0)
        decisions = [
            engine.evaluate({"visitor": "v", "event": event, "url": url, "at": T0 + second})
            for second, event, url in [
                *((second, "page_view", "/p1/x") for second in range(3)),  # engaged: 3 views
                (40, "tick", "/p1/x"),
            ]
        ]
        return (
            result.diagnostics,
            checker.check_sources(broken).diagnostics,
            [d.model_dump() for d in decisions],
        )

    parsed = load()
    assert parsed[1]  # errors to compare
    assert any(d.severity == "warning" for d in parsed[0] + parsed[1])
    assert any(d["invitation"] for d in parsed[2])  # an invitation to compare
    parser.PARSED.clear()
    never_parse(monkeypatch)
    assert load() == parsed
