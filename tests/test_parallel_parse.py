"""A large site's files parsed in helper processes give exactly what parsing them here
gives; a helper that fails costs nothing but time; small or known sites start none."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
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

    def counting(text: str, path: str, fast: Any) -> Any:
        paths.append(path)
        return run(text, path, fast)

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
    real_popen = subprocess.Popen

    def failing(command: list[str], **options: Any) -> Any:
        return real_popen([sys.executable, "-c", "import sys; sys.exit(3)"], **options)

    monkeypatch.setattr(subprocess, "Popen", failing)
    here = parsed_here(monkeypatch)
    parallel_parse.prefetch(FILES)
    results = {path: parser.parse(text, path) for path, text in FILES.items()}
    assert sorted(here) == sorted(FILES)  # every file, in the end, parsed here
    assert all(r.parsed.items for r in results.values())


@pytest.mark.parametrize(
    "why",
    [
        "one core",
        "too few characters",
        "no cache folder",
        "already saved",
        "one file",
        "no python",
        "frozen",
    ],
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
    elif why == "no python":  # embedded: sys.executable may be empty
        monkeypatch.setattr(sys, "executable", "")
    elif why == "frozen":  # an application built with PyInstaller: sys.executable is the app
        monkeypatch.setattr(sys, "frozen", True, raising=False)
    else:
        files = {"site/0.rules": FILES["site/0.rules"] * 3}

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a helper was started")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    parallel_parse.prefetch(files)


def test_shares_are_dealt_by_size() -> None:
    files = [(f"f{i}", "x" * size) for i, size in enumerate([9, 1, 5, 4, 3])]
    shares = parallel_parse._deal(files, 2)
    assert [[path for path, _ in share] for share in shares] == [["f0", "f4"], ["f2", "f3", "f1"]]


def helpers_running(
    monkeypatch: pytest.MonkeyPatch, arguments: Callable[[list[str]], list[str]]
) -> list[subprocess.Popen[bytes]]:
    """Helpers start as this Python with `arguments(command)` instead of their own
    command; the list fills with the processes started."""
    real_popen = subprocess.Popen
    started: list[subprocess.Popen[bytes]] = []

    def instead(command: list[str], **options: Any) -> subprocess.Popen[bytes]:
        process = real_popen([sys.executable, *arguments(command)], **options)
        started.append(process)
        return process

    monkeypatch.setattr(subprocess, "Popen", instead)
    return started


def test_a_helper_that_hangs_is_stopped_and_its_share_parsed_here(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Helpers get a few times as long as this process took for its own share; one
    that is still running then is killed (and reaped), and its files parsed here."""
    monkeypatch.setattr(parallel_parse, "WAIT_AT_LEAST", 0.0)
    started = helpers_running(monkeypatch, lambda _: ["-c", "import time; time.sleep(60)"])
    here = parsed_here(monkeypatch)
    parallel_parse.prefetch(FILES)
    assert started
    assert all(process.returncode is not None for process in started)  # reaped
    assert all(process.returncode != 0 for process in started)  # killed, not done
    results = {path: parser.parse(text, path) for path, text in FILES.items()}
    assert sorted(here) == sorted(FILES)
    assert all(r.parsed.items for r in results.values())


def test_what_a_helper_saved_is_read_back_while_it_still_runs(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each file a helper saves is read back as soon as it is there: this process
    does not wait for the helper to end first. (These helpers save their whole
    share, then hang: once all of it is read back, they are stopped.)"""
    boot = parallel_parse._BOOT + "; import time; time.sleep(60)"
    started = helpers_running(monkeypatch, lambda command: ["-c", boot, *command[3:]])
    here = parsed_here(monkeypatch)
    parallel_parse.prefetch(FILES)
    assert started
    assert all(process.returncode not in (None, 0) for process in started)  # stopped
    assert 1 <= len(here) < len(FILES)  # the helpers' share was not parsed here
    keys = [parser.ParseCache.key(text, path) for path, text in FILES.items()]
    assert all(key in parser.PARSED for key in keys)  # yet all of it is here


def test_helpers_import_the_parent_s_modules_not_the_working_folder_s(
    cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`python -m` would put the working folder first on the helper's path: a
    `lark.py` or `politely/` there would be imported instead of the parent's."""
    trap = tmp_path / "trap"
    trap.mkdir()
    (trap / "lark.py").write_text("raise SystemExit(7)\n", encoding="utf-8")
    monkeypatch.chdir(trap)
    here = parsed_here(monkeypatch)
    parallel_parse.prefetch(FILES)
    for path, text in FILES.items():
        parser.parse(text, path)
    assert len(here) < len(FILES)  # the helpers' shares were read back, not parsed here


def test_helpers_find_a_folder_the_parent_put_on_its_path_at_run_time(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The helper is given the parent's `sys.path` as it is now, not as the
    environment would make it."""
    monkeypatch.delenv("PYTHONPATH", raising=False)
    commands: list[list[str]] = []
    real_popen = subprocess.Popen

    def recording(command: list[str], **options: Any) -> subprocess.Popen[bytes]:
        commands.append(command)
        return real_popen(command, **options)

    monkeypatch.setattr(subprocess, "Popen", recording)
    monkeypatch.setattr(sys, "path", [*sys.path, "/a/folder/added/at/run/time"])
    parallel_parse.prefetch(FILES)
    assert commands
    assert all("/a/folder/added/at/run/time" in command for command in commands)


def test_a_file_named_with_a_lone_surrogate_is_left_to_this_process(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MessagePack holds only UTF-8: such a file is not sent to a helper (nor is
    anything raised in a helper's thread)."""
    failures: list[Any] = []
    monkeypatch.setattr(threading, "excepthook", failures.append)
    files = {path.replace("0", "\udcff"): text for path, text in FILES.items()}
    parallel_parse.prefetch(files)
    assert failures == []
    assert all(parser.parse(text, path).parsed.items for path, text in files.items())


@pytest.mark.parametrize(
    ("files", "cpus"),
    [
        ({"cpu.max": "150000 100000\n"}, 1.5),  # cgroup v2: a quota of 1.5 CPUs
        ({"cpu.max": "max 100000\n"}, None),  # v2, no quota
        ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2.0),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),  # v1
        ({"cpu.max": "garbage"}, None),
        ({}, None),  # no cgroup files at all
    ],
)
def test_a_containers_cpu_quota_is_read_from_its_cgroup(
    tmp_path: Path, files: dict[str, str], cpus: float | None
) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    assert parallel_parse.cpu_quota(tmp_path) == cpus


def test_the_cores_used_are_the_affinity_capped_by_the_quota(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        parallel_parse.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False
    )
    for quota, cores in [(None, 4), (1.5, 1), (2.5, 2), (16.0, 4), (0.5, 1)]:
        monkeypatch.setattr(parallel_parse, "cpu_quota", lambda quota=quota: quota)
        assert parallel_parse._cores() == cores


def test_no_more_files_are_handed_out_than_the_saved_parses_keep(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(saved_parses, "MAX_SAVED", 3)
    dealt: list[int] = []
    deal = parallel_parse._deal

    def counting(files: Any, hands: int) -> Any:
        dealt.append(len(files))
        return deal(files, hands)

    monkeypatch.setattr(parallel_parse, "_deal", counting)
    parallel_parse.prefetch(FILES)
    assert dealt == [3]
    assert len(FILES) == 4
