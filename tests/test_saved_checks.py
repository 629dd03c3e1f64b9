"""A large site's check is saved in the cache folder and read back by a later
process exactly as made (diagnostics, trees, expansions), never where the zone
database would say otherwise, never for a small site, never when damaged."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import T0, examples
from politely import Engine, checker, parser, saved_checks, zones
from politely.checker import CheckResult, check_sources
from politely.compiler import COMPILED, compile_rules
from politely.lark_cache import CACHE_DIR_VARIABLE
from politely.parser import BOM
from test_fast_parse import SITE
from test_language_properties import mutated_examples
from test_saved_parses import _cache_folder, in_new_process, strictly

RULES = SITE.split("\n", 1)[1]  # SITE without its define
ZONED = (
    'rule zoned_a { when page.dwell >= 5s say "Hi" during weekdays 09:00-17:00 in "EST" }\n'
    'rule zoned_b { when page.dwell >= 6s say "Hi" during daily 09:00-17:00 in "Europe/Berlin" }\n'
)


def large_site(extra: str = "") -> dict[str, str]:
    """A site of about 112,000 characters (past SAVE_FROM) in six files, four of
    them large enough for their parses to be saved too."""
    site = {"00.rules": SITE + ZONED}
    for k in range(1, 5):
        site[f"{k:02}.rules"] = "".join(RULES.replace("rule r", f"rule f{k}{h}_r") for h in "ab")
    site["09.rules"] = extra
    assert sum(map(len, site.values())) >= saved_checks.SAVE_FROM
    return site


WARNED = large_site()
BROKEN = large_site('rule bad { when page.dwel >= 1s say "x" during daily 09:00-10:00 in "CEST" }')


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(tmp_path))
    forget()
    return tmp_path


def forget() -> None:
    """Empty every cache of this process, as in a new one."""
    parser.PARSED.clear()
    checker.CHECKED.clear()
    COMPILED.clear()


def saved_checks_in(cache: Path) -> list[Path]:
    return sorted(cache.glob("parses/*/*.check"))


def everything(result: CheckResult) -> Any:
    return strictly(
        (
            tuple(result.sources.items()),
            result.diagnostics,
            tuple(result.defines.items()),
            result.policy,
            result.rules,
            result.expanded,
            result.key,
        )
    )


def never_check(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any) -> None:
        raise AssertionError("checked although a saved check was there")

    monkeypatch.setattr(checker, "_Checker", refuse)


@pytest.mark.parametrize("site", [WARNED, BROKEN], ids=["warnings", "errors"])
def test_a_large_site_s_check_is_read_back_exactly_as_it_was_made(
    cache: Path, monkeypatch: pytest.MonkeyPatch, site: dict[str, str]
) -> None:
    made = check_sources(site)
    assert made.diagnostics  # warnings or errors travel too
    assert any(d.code.startswith("zone") or d.code == "unknown-zone" for d in made.diagnostics)
    assert len(saved_checks_in(cache)) == 1
    forget()
    never_check(monkeypatch)
    assert everything(check_sources(site)) == everything(made)


def test_a_site_whose_check_is_read_back_decides_as_the_site_checked(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing downstream tells a read-back check from a made one: the same
    compiled rules and the same decisions."""

    def decisions() -> list[dict[str, Any]]:
        engine = Engine(compile_rules(check_sources(WARNED)), clock=lambda: T0)
        return [
            engine.evaluate(
                {"visitor": "v", "event": event, "url": "/p1/x", "at": T0 + second}
            ).model_dump()
            for second, event in [*((s, "page_view") for s in range(3)), (40, "tick")]
        ]

    made = decisions()
    assert any(d["invitation"] for d in made)  # an invitation to compare
    forget()
    never_check(monkeypatch)
    assert decisions() == made


def test_another_text_or_order_of_files_is_checked_again(cache: Path) -> None:
    check_sources(WARNED)
    changed = {**WARNED, "09.rules": "\n"}
    reordered = dict(reversed(list(WARNED.items())))
    forget()
    for site in (changed, reordered):
        assert check_sources(site).key != check_sources(WARNED).key
    assert len(saved_checks_in(cache)) == 3


def test_a_small_site_s_check_is_never_saved(cache: Path) -> None:
    check_sources({"a.rules": SITE})
    assert len(SITE) < saved_checks.SAVE_FROM
    assert saved_checks_in(cache) == []


def test_saved_checks_are_bounded_apart_from_the_saved_parses(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The least recently used check goes past its bound; no parse goes with it,
    and many parses push out no check."""
    monkeypatch.setattr(saved_checks, "MAX_SAVED", 2)
    sites = [{**WARNED, "09.rules": "\n" * i} for i in range(3)]
    keys = [check_sources(site).key for site in sites[:2]]
    for key, when in zip(keys, (0, 100), strict=True):  # the first the older, long ago
        (path,) = cache.glob(f"parses/*/{key.hex()}.check")
        os.utime(path, (when, when))
    assert saved_checks.load(keys[0]) is not None  # read: used now
    parses = sorted(cache.glob("parses/*/*.msgpack"))
    assert len(parses) == 4  # the four large files
    keys.append(check_sources(sites[2]).key)
    assert [saved_checks.load(key) is not None for key in keys] == [True, False, True]
    assert sorted(cache.glob("parses/*/*.msgpack")) == parses


@pytest.mark.parametrize("damage", [b"", b"\x00garbage", "truncated"])
def test_a_damaged_saved_check_is_checked_again_and_replaced(
    cache: Path, damage: bytes | str
) -> None:
    made = check_sources(BROKEN)
    (saved,) = saved_checks_in(cache)
    whole = saved.read_bytes()
    saved.write_bytes(whole[: len(whole) // 2] if damage == "truncated" else damage)  # type: ignore[arg-type]
    forget()
    assert everything(check_sources(BROKEN)) == everything(made)
    assert saved.read_bytes() == whole  # saved again, whole


def test_a_check_is_not_read_back_where_the_zone_database_says_otherwise(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tzdata update (or another machine sharing the cache folder) may know a zone
    the saved check did not, or give other hints: the site is checked again, and
    the new check says what this database says."""
    made = check_sources(BROKEN)
    assert "unknown-zone" in {d.code for d in made.diagnostics}
    known, verdict = zones.verdict("Europe/Berlin"), zones.verdict
    monkeypatch.setattr(  # this database knows "CEST"
        zones, "verdict", lambda name: known if name == "CEST" else verdict(name)
    )
    forget()
    again = check_sources(BROKEN)
    assert "unknown-zone" not in {d.code for d in again.diagnostics}
    forget()  # the new check is saved in its place, and read back while the database agrees
    never_check(monkeypatch)
    assert everything(check_sources(BROKEN)) == everything(again)


def test_a_later_process_reads_the_check_an_earlier_one_saved(cache: Path, tmp_path: Path) -> None:
    folder = tmp_path / "site"
    folder.mkdir()
    for path, text in WARNED.items():
        (folder / path).write_text(text, encoding="utf-8")
    script = (
        "import sys; from politely import checker, loadcache, saved_checks\n"
        "key = loadcache.site_key(checker.read_sources(sys.argv[1]))\n"
        "print(saved_checks.load(key) is not None, checker.check_path(sys.argv[1]).ok)\n"
    )
    assert in_new_process(script, folder, cache) == "False True"  # finds nothing, saves
    assert in_new_process(script, folder, cache) == "True True"  # finds the first's check


@settings(max_examples=examples(60), deadline=None)
@given(source=st.one_of(mutated_examples(), st.just(SITE)), bom=st.booleans())
def test_whatever_check_is_read_back_is_the_check_made(source: str, bom: bool) -> None:
    """Any site (syntax errors, bad fields, warnings, a BOM): a check that is read
    back at all is, to the type of every number and string, the check made."""
    site = {
        "a.rules": (BOM if bom else "") + source,
        "b.rules": 'rule z { when page.dwell >= 1s say "z" }',
    }
    with (
        tempfile.TemporaryDirectory() as folder,
        _cache_folder(folder),
        mock.patch.object(saved_checks, "SAVE_FROM", 0),
    ):
        forget()
        made = check_sources(site)
        forget()
        found = check_sources(site)
    forget()
    assert everything(found) == everything(made)
