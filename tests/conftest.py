"""Shared test helpers: an injected clock, engines from source, the built wheel, CI strictness."""

from __future__ import annotations

import importlib
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import settings

from politely import Engine, open_store
from politely.stores import Store
from redis_servers import (  # noqa: F401  (fixtures)
    SiteScoped,
    make_redis_store,
    redis_kind,
    redis_store,
    redis_store_factory,
)

# Monday 2026-01-05 10:00:00 UTC: a whole second, inside most schedules.
T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC).timestamp()
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Property tests keep bounded example counts, so the default run stays fast; the
# `politely-long` profile runs ten times as many examples of every one of them:
# `POLITELY_HYPOTHESIS=long python -m pytest` or `--hypothesis-profile=politely-long`.
settings.register_profile("politely-long", max_examples=1000, deadline=None)
if os.environ.get("POLITELY_HYPOTHESIS") == "long":
    settings.load_profile("politely-long")


# The session's own cache folder (the Lark parser, saved parses), inherited by every
# process it starts: tests never read or write the user's, and every run starts empty.
_CACHE = tempfile.mkdtemp(prefix="politely-test-cache-")
os.environ["POLITELY_CACHE_DIR"] = _CACHE


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """One process when a Redis is named: each test flushes the server it uses, and
    workers sharing a named one would flush each other's keys (servers the session
    starts itself are one per worker)."""
    named = [v for v in ("POLITELY_TEST_REDIS", "POLITELY_TEST_REDIS_CLUSTER") if os.getenv(v)]
    if named and config.getoption("numprocesses", None):
        config.option.numprocesses = 0
        config.option.dist = "no"
        print(f"{named[0]} is set: the tests run in one process", file=sys.stderr)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_CACHE, ignore_errors=True)


def examples(count: int) -> int:
    """A test's example count, scaled as the loaded profile scales Hypothesis's 100."""
    return count * settings.default.max_examples // 100


def require(module: str) -> ModuleType:
    """Import an optional test dependency: skip locally if missing, fail under CI=true."""
    try:
        return importlib.import_module(module)
    except ImportError:
        if IN_CI:
            pytest.fail(f"{module} is required under CI=true but is not installed")
        pytest.skip(f"{module} is not installed")


class FakeClock:
    """A clock tests move by hand; never sleeps."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built once per session (each build sets up an isolated
    environment with the build backend: seconds that several packaging tests share)."""
    pytest.importorskip("build")
    out = tmp_path_factory.mktemp("dist")
    root = Path(__file__).resolve().parent.parent
    built = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(root)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (found,) = out.glob("*.whl")
    return found


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# Every store kind the scenario tests run against: its URL, `{dir}` a fresh
# temporary folder and `{n}` a fresh number. Adding a kind is one line here.
# (synchronous=off: durability has its own tests, on the default.)
STORE_URLS = {
    "memory": "memory://",
    "sqlite": "sqlite:///{dir}/store{n}.db?synchronous=off",
    "redis": "session server",  # tests/redis_servers.py starts it
    "redis+cluster": "session server",
}
STORE_KINDS = list(STORE_URLS)

# Modules whose tests that use `make_engine` or `make_store` run once per store kind.
STORE_GENERIC_MODULES = {
    "test_agents",
    "test_caps",
    "test_library",
    "test_memory_store",
    "test_messages",
    "test_outcomes",
    "test_policy",
    "test_retries",
    "test_sessions",
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if (
        "store_kind" in metafunc.fixturenames
        and metafunc.module.__name__.rsplit(".", 1)[-1] in STORE_GENERIC_MODULES
        and not any(m.name == "parametrize" and "store_kind" in str(m.args[0])
                    for m in metafunc.definition.iter_markers())
    ):  # fmt: skip
        metafunc.parametrize("store_kind", STORE_KINDS)


@pytest.fixture
def store_kind() -> str:
    """The store kind a test runs on: each of STORE_KINDS in the store-generic modules."""
    return "memory"


MakeStore = Callable[[], Store]


@pytest.fixture
def make_store(store_kind: str, tmp_path: Path) -> Iterator[MakeStore]:
    """`make_store()` → a new, empty store of the test's kind; all closed afterwards."""
    opened: list[Store] = []
    numbers = itertools.count()

    def make() -> Store:
        n = next(numbers)
        if store_kind.startswith("redis"):
            shared = redis_store_factory(store_kind) if n == 0 else opened[0].store  # type: ignore[attr-defined]
            opened.append(SiteScoped(shared, f"t{n}"))
        else:
            opened.append(open_store(STORE_URLS[store_kind].format(dir=tmp_path, n=n)))
        return opened[-1]

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def make_engine(clock: FakeClock, make_store: MakeStore) -> Callable[..., Engine]:
    """`make_engine(source)` → an Engine on the test clock, trusting no event time,
    on a new store of the test's kind."""

    def make(source: str, **options: Any) -> Engine:
        options.setdefault("clock", clock)
        options.setdefault("trust_event_time", False)
        if "store" not in options:
            options["store"] = make_store()
        return Engine.from_source(source, **options)

    return make


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths actually parsed in a test (not answered by a cache)."""
    from politely import parser

    seen: list[str] = []
    original = parser._Run.parse_all

    def counting(self: parser._Run) -> None:
        seen.append(self.path)
        original(self)

    monkeypatch.setattr(parser._Run, "parse_all", counting)
    return seen
