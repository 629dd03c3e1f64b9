"""A large site's files parsed in helper processes give exactly what parsing them here
gives; a helper that fails costs nothing but time; small or known sites start none."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from politely import checker, parallel_parse, parser, saved_parses
from politely.lark_cache import CACHE_DIR_VARIABLE
from test_fast_parse import SITE
from test_saved_parses import everything

# Four large files (some 25,000 characters each), one with syntax errors.
FILES = {
    f"site/{k}.rules": (SITE + SITE.split("\n", 1)[1].replace("rule r", "rule s")).replace(
        "rule ", f"rule f{k}_"
    )
    for k in range(4)
}
FILES["site/3.rules"] += "rule broken {\n  when page.dwell >= 30 seconds\n  say 'hi'\n}\n"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(tmp_path / "cache"))
    monkeypatch.setattr(parallel_parse, "PARALLEL_FROM", 50_000)
    monkeypatch.setattr(parallel_parse, "_cores", lambda: 3)
    parser.PARSED.clear()
    checker.CHECKED.clear()
    return tmp_path / "cache"


def parsed_here(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths this process parses from now on (not reads back)."""
    paths: list[str] = []
    run = parser._Run

    def counting(grammar: Any, text: str, path: str) -> Any:
        paths.append(path)
        return run(grammar, text, path)

    monkeypatch.setattr(parser, "_Run", counting)
    return paths


def test_helpers_parse_their_share_and_the_results_are_the_same(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = {path: everything(parser.parse(text, path)) for path, text in FILES.items()}
    parser.PARSED.clear()
    for saved in cache.glob("parses/*/*"):
        saved.unlink()  # nothing known: a first start
    here = parsed_here(monkeypatch)
    monkeypatch.delenv("PYTHONPATH", raising=False)  # helpers still import this politely
    parallel_parse.prefetch(FILES)
    assert 1 <= len(here) < len(FILES)  # this process parsed a share, helpers the rest
    found = {path: everything(parser.parse(text, path)) for path, text in FILES.items()}
    assert len(here) < len(FILES)  # the helpers' files were read back, not parsed again
    assert found == expected


def test_the_checker_gives_the_same_diagnostics_with_helpers(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    helped = checker.check_sources(FILES).diagnostics
    assert len(saved_parses_in(cache)) == len(FILES)
    monkeypatch.setattr(parallel_parse, "_cores", lambda: 1)
    parser.PARSED.clear()
    checker.CHECKED.clear()
    for saved in saved_parses_in(cache):
        saved.unlink()
    assert checker.check_sources(FILES).diagnostics == helped
    assert any(d.code for d in helped)


def saved_parses_in(cache: Path) -> list[Path]:
    return list(cache.glob("parses/*/*.msgpack"))


def test_a_helper_that_fails_only_means_parsing_here(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_run = subprocess.run

    def failing(command: list[str], **options: Any) -> Any:
        return real_run(["python3", "-c", "import sys; sys.exit(3)"], **options)

    monkeypatch.setattr(subprocess, "run", failing)
    here = parsed_here(monkeypatch)
    parallel_parse.prefetch(FILES)
    results = {path: parser.parse(text, path) for path, text in FILES.items()}
    assert sorted(here) == sorted(FILES)  # every file, in the end, parsed here
    assert all(r.parsed.items for r in results.values())


@pytest.mark.parametrize(
    "why",
    ["one core", "too few characters", "no cache folder", "already saved", "one file"],
)
def test_no_helper_starts_where_it_cannot_pay(
    cache: Path, monkeypatch: pytest.MonkeyPatch, why: str
) -> None:
    files = dict(FILES)
    if why == "one core":
        monkeypatch.setattr(parallel_parse, "_cores", lambda: 1)
    elif why == "too few characters":
        monkeypatch.setattr(parallel_parse, "PARALLEL_FROM", sum(map(len, FILES.values())) + 1)
    elif why == "no cache folder":
        cache.parent.joinpath("blocker").write_text("not a folder", encoding="utf-8")
        monkeypatch.setenv(CACHE_DIR_VARIABLE, str(cache.parent / "blocker"))
    elif why == "already saved":
        for path, text in FILES.items():
            parser.parse(text, path)
        parser.PARSED.clear()
        assert all(saved_parses.has(parser.ParseCache.key(t, p)) for p, t in FILES.items())
    else:
        files = {"site/0.rules": FILES["site/0.rules"] * 3}

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a helper was started")

    monkeypatch.setattr(subprocess, "run", refuse)
    parallel_parse.prefetch(files)


def test_shares_are_dealt_by_size() -> None:
    files = [(f"f{i}", "x" * size) for i, size in enumerate([9, 1, 5, 4, 3])]
    shares = parallel_parse._deal(files, 2)
    assert [[path for path, _ in share] for share in shares] == [["f0", "f4"], ["f2", "f3", "f1"]]
