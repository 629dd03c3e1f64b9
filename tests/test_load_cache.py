"""Reloading an unchanged site checks and compiles nothing again; any change does.

The check is kept by the digest of the site's paths, order and texts (a bounded
cache), the rule set while it is in use (a weak map). These tests count the
checks and parses that run and the entries kept, never time.
"""

from __future__ import annotations

import dataclasses
import gc

import pytest

from conftest import FakeClock
from events import view
from politely import Engine, check_sources, checker, compile_rules, parser
from politely.compiler import COMPILED
from politely.loadcache import ENTRY_CHARS, SiteCache

POLICY = "policy { at most 1000 invitations per visitor }\n# load cache test\n"
RULE = 'rule r{0} {{ on page_view when session.pageviews >= {1} say "Hi {0}" }}\n'


def site(threshold: int = 1) -> dict[str, str]:
    return {
        "site/00-policy.rules": POLICY,
        "site/10-rules.rules": "".join(RULE.format(i, threshold + i) for i in range(3)),
    }


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """A check cache of this test's own, and a parse cache without these files."""
    monkeypatch.setattr(checker, "CHECKED", SiteCache())
    parser.PARSED.clear()


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """The sites actually checked (not answered by the cache), by their paths."""
    seen: list[tuple[str, ...]] = []
    original = checker._Checker.run

    def counting(self: checker._Checker) -> checker.CheckResult:
        seen.append(tuple(self.sources))
        return original(self)

    monkeypatch.setattr(checker._Checker, "run", counting)
    return seen


def test_an_unchanged_reload_returns_the_running_rule_set(
    checks: list[tuple[str, ...]], clock: FakeClock
) -> None:
    sources = site()
    rules = compile_rules(check_sources(sources))
    assert len(checks) == 1
    again = compile_rules(check_sources(dict(sources)))  # equal files, another dict
    assert len(checks) == 1
    assert again is rules
    first = Engine(rules, clock=clock, trust_event_time=False)
    second = Engine(again, clock=clock, trust_event_time=False)
    for engine in (first, second):
        decision = view(engine, "v1")
        assert decision.invitation is not None
        assert decision.invitation.rule == "r0"
        assert decision.ruleset == rules.hash


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            lambda s: {**s, "site/10-rules.rules": s["site/10-rules.rules"] + " "}, id="a-byte"
        ),
        pytest.param(lambda s: {p.replace("10-", "20-"): t for p, t in s.items()}, id="a-rename"),
        pytest.param(lambda s: dict(reversed(list(s.items()))), id="another-order"),
    ],
)
def test_any_change_to_the_files_is_checked_and_compiled_again(
    checks: list[tuple[str, ...]], parses: list[str], change: object
) -> None:
    sources = site()
    rules = compile_rules(check_sources(sources))
    changed = change(sources)  # type: ignore[operator]
    parses.clear()
    result = check_sources(changed)
    assert len(checks) == 2
    assert checks[-1] == tuple(changed)
    assert result.key != check_sources(sources).key
    assert compile_rules(result) is not rules
    # Only a file whose path or text is new is parsed again.
    assert parses == [p for p, t in changed.items() if sources.get(p) != t]


def test_a_changed_threshold_changes_the_decision(clock: FakeClock) -> None:
    low = Engine(compile_rules(check_sources(site(1))), clock=clock, trust_event_time=False)
    high = Engine(compile_rules(check_sources(site(5))), clock=clock, trust_event_time=False)
    assert view(low, "v1").invitation is not None
    assert view(high, "v1").invitation is None


def test_a_rule_set_is_kept_only_while_in_use() -> None:
    gc.collect()  # rule sets earlier tests left in reference cycles go first, not below
    before = len(COMPILED)
    rules = compile_rules(check_sources(site(7)))
    assert len(COMPILED) == before + 1
    del rules
    gc.collect()
    assert len(COMPILED) == before


def test_a_result_changed_by_hand_is_compiled_afresh() -> None:
    result = check_sources(site())
    rules = compile_rules(result)
    fewer = dataclasses.replace(result, rules=result.rules[:1])
    assert fewer.key == b""
    compiled = compile_rules(fewer)
    assert compiled is not rules
    assert [r.name for r in compiled.rules] == ["r0"]


def test_the_check_cache_is_bounded_by_characters() -> None:
    cache: SiteCache[str] = SiteCache(max_chars=10 * ENTRY_CHARS)
    for i in range(50):  # far more distinct sites than fit
        cache.put(i.to_bytes(4, "little"), f"site {i}", 100)
        assert cache.chars <= 10 * ENTRY_CHARS
    assert 0 < len(cache) <= 10
    assert cache.get((49).to_bytes(4, "little")) == "site 49"  # the newest stays
    assert cache.get((0).to_bytes(4, "little")) is None  # the oldest went
    cache.put(b"huge", "too big", 10 * ENTRY_CHARS)  # never kept: larger than the bound
    assert cache.get(b"huge") is None


def test_the_process_wide_check_cache_stays_within_its_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    small: SiteCache[checker.CheckResult] = SiteCache(max_chars=4 * ENTRY_CHARS)
    monkeypatch.setattr(checker, "CHECKED", small)  # four small sites
    for i in range(20):
        check_sources({"a.rules": RULE.format(i, 1)})
    assert len(small) <= 4
    assert small.misses == 20
    check_sources({"a.rules": RULE.format(19, 1)})
    assert small.hits == 1
