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
from politely import Engine, checker, parser, saved_checks, saved_parses, zones
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
    cache: Path, monkeypatch: pytest.MonkeyPatch, damage: bytes | str
) -> None:
    made = check_sources(BROKEN)
    (saved,) = saved_checks_in(cache)
    whole = saved.read_bytes()
    saved.write_bytes(whole[: len(whole) // 2] if damage == "truncated" else damage)  # type: ignore[arg-type]
    forget()
    assert everything(check_sources(BROKEN)) == everything(made)
    assert saved.read_bytes() == whole  # saved again, whole
    forget()
    never_check(monkeypatch)
    assert everything(check_sources(BROKEN)) == everything(made)  # and read back


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
    runs = []

    class Counted(checker._Checker):
        def run(self) -> CheckResult:
            runs.append(self)
            return super().run()

    with (
        tempfile.TemporaryDirectory() as folder,
        _cache_folder(folder),
        mock.patch.object(saved_checks, "SAVE_FROM", 0),
        mock.patch.object(checker, "_Checker", Counted),
    ):
        forget()
        made = check_sources(site)
        forget()
        found = check_sources(site)
        saved = saved_checks_in(Path(folder))
    forget()
    assert everything(found) == everything(made)
    assert len(runs) == (1 if saved else 2)  # read back whenever it could be saved


def test_a_define_used_by_every_rule_is_saved_once_and_shared_again(cache: Path) -> None:
    """MessagePack shares nothing: a check saved with each rule's `when` written out
    would hold a define's body once per use (a 900-test define used by 1,100 rules
    made an 86 MB file and a 1 GB restart). The saved check holds the rules as
    written; reading it back writes each define out once, shared, as checking does."""
    tests = " or ".join(f'page.path == "/p{k}"' for k in range(300))
    site = {"a.rules": f"define soon = page.dwell >= 5s\ndefine big = soon and ({tests})\n"}
    site["b.rules"] = "".join(
        f'rule r{k} {{ when big say "Hi, have a look at our offers" }}\n' for k in range(3000)
    )
    chars = sum(map(len, site.values()))
    assert chars >= saved_checks.SAVE_FROM
    made = check_sources(site)
    assert made.ok
    (saved,) = saved_checks_in(cache)
    assert saved.stat().st_size < 10 * chars  # not the ~170 MB of 3,000 copies
    forget()
    found = check_sources(site)
    assert (found.diagnostics, found.rules) == (made.diagnostics, made.rules)
    assert len({id(e.condition) for e in found.expanded}) == 1  # one body, shared
    assert found.expanded[0] == made.expanded[0]
    assert len(found.expanded) == len(made.expanded)


def test_a_cache_folder_that_cannot_be_entered_checks_as_without_it(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python 3.11's `Path.is_dir` and `is_file` raise on a folder above that cannot
    be entered (EACCES); a load never fails for the cache's sake."""
    made = check_sources(WARNED)
    forget()

    for name in ("is_dir", "is_file", "read_bytes"):
        monkeypatch.setattr(Path, name, refused_in(cache, getattr(Path, name)))
    assert check_sources({**WARNED, "09.rules": "\n"}).diagnostics == made.diagnostics


def refused_in(cache: Path, method: Any) -> Any:
    def refused(self: Path) -> Any:
        if str(self).startswith(str(cache)):
            raise PermissionError(13, "Permission denied", str(self))
        return method(self)

    return refused


def test_a_check_read_back_marks_its_files_saved_parses_used(cache: Path) -> None:
    """A site whose check is read back parses none of its files; their saved parses
    are marked used all the same, so they are not the first to go past the bound
    while the site is in use (a later edit of one file reads the others back)."""
    check_sources(WARNED)
    parses = list(cache.glob("parses/*/*.msgpack"))
    assert len(parses) == 4
    for path in parses:
        os.utime(path, (0, 0))
    forget()
    check_sources(WARNED)
    assert all(path.stat().st_mtime > 0 for path in parses)


def test_a_zone_database_that_disagrees_is_found_before_the_rest_is_decoded(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    check_sources(BROKEN)
    decoded: list[Any] = []
    decode = saved_parses.decode

    def counted(decoder: Any, data: memoryview) -> Any:
        found = decode(decoder, data)
        decoded.append(type(found).__name__)
        return found

    monkeypatch.setattr(saved_parses, "decode", counted)
    key = check_sources(BROKEN).key
    assert saved_checks.load(key) is not None
    assert decoded == ["_Verdicts", "SavedCheck"]
    decoded.clear()
    monkeypatch.setattr(zones, "verdict", lambda name: zones.Verdict(True, False, None, ""))
    assert saved_checks.load(key) is None
    assert decoded == ["_Verdicts"]
