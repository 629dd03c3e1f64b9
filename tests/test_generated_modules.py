"""Generated code: each module has a filename of its own, in linecache while it lives."""

from __future__ import annotations

import gc
import linecache

from politely.checker import check_sources
from politely.compiler import compile_rules
from politely.ruleset import RuleSet


def _compile(text: str, path: str = "site.rules") -> RuleSet:
    return compile_rules(check_sources({path: text}))


def _filename(rules: RuleSet) -> str:
    bucket = next(iter(next(iter(rules.index.values())).free))
    return bucket.compiled().__code__.co_filename


def test_each_rule_set_has_its_own_filename_and_source() -> None:
    first = _compile('rule a { when page.dwell >= 5s say "A" }')
    second = _compile('rule b { when session.pageviews >= 2 say "B" }')
    # Another folder: the same rule set hash (file names without folders), a new module.
    again = _compile('rule a { when page.dwell >= 5s say "A" }', "elsewhere/site.rules")
    assert again.hash == first.hash
    names = {_filename(first), _filename(second), _filename(again)}
    assert len(names) == 3
    assert first.hash in _filename(first)
    source = "".join(linecache.getlines(_filename(second)))
    assert "s.pageviews" in source
    assert "s.page_start" not in source


def test_the_entry_is_released_when_the_rule_set_is_collected() -> None:
    rules = _compile('rule a { on tick when page.dwell >= 5s say "A" }')
    bucket_file = _filename(rules)
    window = rules.rules[0].window
    assert window is not None
    window_file = window.__code__.co_filename
    assert window_file != bucket_file
    assert bucket_file in linecache.cache
    assert window_file in linecache.cache
    del rules, window
    gc.collect()
    assert bucket_file not in linecache.cache
    assert window_file not in linecache.cache


def test_checkcache_keeps_live_entries() -> None:
    rules = _compile('rule a { when page.dwell >= 5s say "A" }')
    linecache.checkcache()
    assert linecache.getline(_filename(rules), 1).startswith("def ")
