"""One engine, many threads: the shared rule set's caches survive concurrent use.

cachetools caches are not thread-safe; a threaded server evaluates events for
many visitors at once against one rule set, whose index caches churn when
pages are many. A tiny thread switch interval makes the races likely.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

import politely

RULES = "policy { only when agents.available > 0 }\n" + "\n".join(
    f'rule r{i} {{ when page.path matches "/s{i}/*" and page.dwell >= 10s say "x" }}'
    for i in range(50)
)


@pytest.fixture
def frequent_thread_switches() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


@pytest.mark.usefixtures("frequent_thread_switches")
def test_concurrent_evaluations_over_thousands_of_pages_never_fail() -> None:
    engine = politely.Engine.from_source(RULES)
    engine.set_agents(online=1, available=1, at=1e9)

    def browse(thread: int) -> int:
        answered = 0
        for j in range(1500):  # 8 x 1,500 distinct pages: the 4,096-entry caches evict
            url = f"/s{j % 50}/p{thread}-{j}"
            decision = engine.evaluate(
                {"visitor": f"v{thread}-{j}", "event": "page_view", "url": url, "at": 1e9}
            )
            answered += decision.recheck_in == 10
        return answered

    with ThreadPoolExecutor(8) as pool:
        answered = list(pool.map(browse, range(8)))
    assert answered == [1500] * 8


@pytest.mark.usefixtures("frequent_thread_switches")
def test_a_full_memory_store_evicting_under_threads_never_fails() -> None:
    """Every commit of a new visitor evicts one when the store is full."""
    engine = politely.Engine.from_source(
        'rule r { when page.dwell >= 30s say "Hi" }', store=politely.MemoryStore(maxsize=64)
    )

    def browse(thread: int) -> int:
        for i in range(3000):
            engine.evaluate(
                {"visitor": f"v{i % 200}", "event": "page_view", "url": "/", "at": 1000 + i}
            )
        return thread

    with ThreadPoolExecutor(8) as pool:
        assert sorted(pool.map(browse, range(8))) == list(range(8))
    assert len(engine.store) <= 64  # type: ignore[arg-type]
