"""Reloading a site parses only the files that changed: parse results are kept by
the digest of each file's path and text, in a bounded cache. No time is asserted."""

from __future__ import annotations

from politely import check_sources
from politely.parser import ParseCache, parse

RULE = 'rule r{} {{ when page.dwell >= {}s say "Hi" }}\n'


def test_an_unchanged_file_is_not_parsed_again(parses: list[str]) -> None:
    site = {f"site/f{i}.rules": RULE.format(i, 1000 + i) + "# cache test\n" for i in range(3)}
    first = check_sources(site)
    assert sorted(parses) == sorted(site)
    parses.clear()
    site["site/f1.rules"] = RULE.format(1, 7) + "# cache test, changed\n"
    second = check_sources(site)
    assert parses == ["site/f1.rules"]
    assert first.ok
    assert second.ok


def test_the_same_text_under_another_path_is_parsed_for_its_own_diagnostics() -> None:
    text = 'rule r { when page.dwell >= 5zz say "Hi" } # cache test, paths\n'
    a, b = parse(text, "a.rules"), parse(text, "b.rules")
    assert [d.path for d in a.diagnostics] == ["a.rules"]
    assert [d.path for d in b.diagnostics] == ["b.rules"]
    assert parse(text, "a.rules") is a


def test_the_cache_is_bounded_by_characters_and_files() -> None:
    cache = ParseCache(max_chars=100, max_files=3)
    result = parse(RULE.format(0, 1))
    for i in range(5):
        cache.put(ParseCache.key(str(i), "p"), result, 10)
    assert len(cache) == 3
    assert cache.get(ParseCache.key("0", "p")) is None
    assert cache.get(ParseCache.key("4", "p")) is result
    cache.put(ParseCache.key("big", "p"), result, 60)
    cache.put(ParseCache.key("bigger", "p"), result, 60)
    assert cache.get(ParseCache.key("big", "p")) is None  # 120 characters: the oldest went
    assert cache.get(ParseCache.key("bigger", "p")) is result
    cache.put(ParseCache.key("huge", "p"), result, 101)  # never kept: larger than the bound
    assert cache.get(ParseCache.key("huge", "p")) is None
