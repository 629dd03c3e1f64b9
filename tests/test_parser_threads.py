"""Parses share no mutable state: threads parsing different texts at once each
get their own items and diagnostics."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from politely.parser import ParseResult, parse

THREADS = 8
ROUNDS = 40


def _text(k: int, round: int = 0) -> str:
    """A file whose diagnostics say which text it was: `k` blank lines, then a
    rule named after k with a malformed duration (a diagnostic, not a syntax error).
    The round's comment makes each text new, so the parse cache never answers."""
    rule = f'rule r{k} {{ when page.dwell >= {k + 1}zz say "Hi {k}" }}'
    return "\n" * k + f"{rule} # round {round}\n"


def _check(k: int, result: ParseResult) -> None:
    assert [d.line for d in result.diagnostics] == [k + 1], result.diagnostics
    assert all(d.path == f"file{k}.rules" for d in result.diagnostics)
    assert [item.name.value for item in result.parsed.items] == [f"r{k}"]


def test_threads_parsing_at_once_each_get_their_own_diagnostics() -> None:
    expected = {k: parse(_text(k), f"file{k}.rules") for k in range(THREADS)}
    for k, result in expected.items():
        _check(k, result)
    barrier = threading.Barrier(THREADS)

    def work(k: int) -> list[ParseResult]:
        barrier.wait()
        return [parse(_text(k, r), f"file{k}.rules") for r in range(1, ROUNDS + 1)]

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(work, range(THREADS)))
    for k, rounds in enumerate(results):
        for result in rounds:
            _check(k, result)
            assert result.diagnostics == expected[k].diagnostics
