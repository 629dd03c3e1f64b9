"""Generated code: each module has a filename of its own, in linecache while it lives."""

from __future__ import annotations

import gc
import linecache
import os
from pathlib import Path
from typing import Any

import pytest

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
    _compile('rule b { when page.dwell >= 6s say "B" }')  # the next module made
    assert bucket_file not in linecache.cache
    assert window_file not in linecache.cache


def test_a_collection_inside_checkcache_leaves_its_loop_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`linecache.checkcache` lists the entries, then reads each one, and the
    collector can run in between (here: inside its `os.stat` of a file listed
    first). A collected rule set's entry stays until the next module is made,
    so the loop finds every entry it listed."""
    real = tmp_path / "real.py"
    real.write_text("x = 1\n")
    stat = os.stat(real)
    linecache.cache[str(real)] = (stat.st_size, stat.st_mtime, ["x = 1\n"], str(real))
    gc.disable()
    try:
        rules = _compile('rule a { on tick when page.dwell >= 5s say "A" }')
        bucket_file = _filename(rules)
        del rules
        real_stat = os.stat

        def stat_then_collect(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
            gc.collect()  # the rule set's module dies here, mid-loop
            return real_stat(path, *args, **kwargs)

        monkeypatch.setattr(linecache.os, "stat", stat_then_collect)
        linecache.checkcache()  # raised KeyError when the finalizer removed the entry
    finally:
        gc.enable()
        linecache.cache.pop(str(real), None)
    monkeypatch.undo()
    assert bucket_file in linecache.cache
    _compile('rule b { when page.dwell >= 6s say "B" }')
    assert bucket_file not in linecache.cache


def test_checkcache_keeps_live_entries() -> None:
    rules = _compile('rule a { when page.dwell >= 5s say "A" }')
    linecache.checkcache()
    assert linecache.getline(_filename(rules), 1).startswith("def ")
