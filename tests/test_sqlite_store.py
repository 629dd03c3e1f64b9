"""What only the SQLite store has: its URL, schema, durability settings, erasure, sweeping.

The store's behaviour under the engine's scenarios is tested by the
store-generic modules (conftest.STORE_KINDS); processes and crashes are in
test_sqlite_processes.py.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import FakeClock
from events import DAY, HOUR
from politely import Engine, StoreError, open_store
from politely.caps import Cap
from politely.state import Block, InvitationRecord
from politely.stores.base import Claim, Outcome, Write
from politely.stores.sqlite import SCHEMA_VERSION, SWEEP_BATCH, SQLiteStore

ALWAYS = 'rule r { on page_view when session.pageviews >= 1 say "Hi" }\n'
PAGE = {"visitor": "v1", "event": "page_view", "url": "/"}


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "politely.db"


@pytest.fixture
def store(path: Path) -> Iterator[SQLiteStore]:
    opened = SQLiteStore(path)
    yield opened
    opened.close()


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


# --- URLs -----------------------------------------------------------------------------------


def test_an_absolute_path_has_four_slashes(path: Path) -> None:
    store = open_store(f"sqlite:///{path}")
    assert isinstance(store, SQLiteStore)
    assert store.path == path
    assert store.synchronous == "normal"
    assert store.busy_timeout_ms == 5000
    assert repr(store) == f"SQLiteStore({str(path)!r}, synchronous=normal)"
    store.close()
    assert "closed" in repr(store)


def test_a_relative_path_has_three_slashes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    store = open_store("sqlite:///data/p.db?synchronous=FULL&busy_timeout_ms=250")
    assert isinstance(store, SQLiteStore)
    assert store.path == Path("data/p.db")
    assert (store.synchronous, store.busy_timeout_ms) == ("full", 250)
    assert rows(tmp_path / "data" / "p.db", "PRAGMA journal_mode") == [("wal",)]
    store.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://host/p.db", "bad SQLite store URL"),
        ("sqlite://", "bad SQLite store URL"),
        ("sqlite:///", "names no file"),
        ("sqlite:///{dir}/", "names no file"),
        ("sqlite:///{dir}/p.db?synchronous=sometimes", "synchronous must be one of"),
        ("sqlite:///{dir}/p.db?busy_timeout_ms=soon", "bad busy_timeout_ms"),
        ("sqlite:///{dir}/p.db?busy_timeout_ms=-1", "busy_timeout_ms must be 0 or more"),
        ("sqlite:///{dir}/p.db?journal=delete", "unknown option 'journal'"),
        ("sqlite:///{dir}/missing/p.db", "no directory"),
    ],
)
def test_a_bad_url_is_a_clear_store_error(tmp_path: Path, url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        open_store(url.format(dir=tmp_path))


def test_a_path_that_cannot_be_a_file_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()  # (a read-only folder would do, but not for root)
    with pytest.raises(StoreError, match="taken \\(open\\): unable to open database file"):
        open_store(f"sqlite:///{tmp_path}/taken")


def test_a_file_that_is_not_a_database_is_a_store_error(path: Path) -> None:
    path.write_bytes(b"not a database, but long enough to look like a header" * 10)
    with pytest.raises(StoreError, match="not a database") as error:
        SQLiteStore(path)
    assert isinstance(error.value.__cause__, sqlite3.DatabaseError)


# --- schema -----------------------------------------------------------------------------------


def test_a_new_file_gets_the_schema_and_its_version(store: SQLiteStore, path: Path) -> None:
    assert rows(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    tables = rows(path, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    assert [t[0] for t in tables] == ["agents", "blocks", "sitewide", "stats", "visitors"]
    SQLiteStore(path).close()  # opening it again changes nothing


def test_a_file_of_another_schema_version_is_refused(path: Path) -> None:
    SQLiteStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="schema version 2 \\(written by a newer release\\)"):
        SQLiteStore(path)


def test_a_database_that_is_not_a_politely_store_is_refused(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    with pytest.raises(StoreError, match=r"holds tables \(customers\).*not a politely store"):
        SQLiteStore(path)


# --- the store --------------------------------------------------------------------------------


def test_everything_survives_reopening(path: Path, clock: FakeClock) -> None:
    engine = Engine.from_source(ALWAYS, store=SQLiteStore(path), clock=clock,
                                trust_event_time=False)  # fmt: skip
    assert engine.evaluate(PAGE).invitation is not None
    engine.block("v2", "abusive", by="ops")
    engine.set_agents(online=2, available=1)
    engine.store.close()
    again = Engine.from_source(ALWAYS, store=SQLiteStore(path), clock=clock,
                               trust_event_time=False)  # fmt: skip
    assert again.evaluate(PAGE).invitation is None  # 1 per 10m still holds
    assert again.stats().rules[0].shown == 1
    assert again.blocks()["v2"] == Block("abusive", None, clock.now, "ops")
    state = again.visitor_state("v1")
    assert state is not None
    assert state.pageviews == 2
    again.store.close()


def test_forget_removes_every_row_about_a_visitor(store: SQLiteStore, path: Path) -> None:
    engine = Engine.from_source(ALWAYS, store=store)
    engine.evaluate({**PAGE, "at": 1000, "id": "e1"})
    engine.evaluate({**PAGE, "visitor": "v2", "at": 1000})
    store.block("default", "v1", Block("asked to be forgotten"))
    assert engine.forget("v1")
    assert rows(path, "SELECT visitor FROM visitors") == [("v2",)]
    assert rows(path, "SELECT visitor FROM blocks") == []
    assert not engine.forget("v1")
    assert engine.visitor_state("v1", at=1000) is None


def test_a_forgotten_visitor_never_gets_an_old_version_back(store: SQLiteStore) -> None:
    write = Write(0, 100.0, b"\x91\x01", 3600)
    assert store.commit("s", "v1", write) is Outcome.APPLIED
    old = store.load("s", "v1", 100.0).version
    store.forget("s", "v1")
    assert store.commit("s", "v1", write) is Outcome.APPLIED
    assert store.load("s", "v1", 100.0).version not in (0, old)
    assert store.commit("s", "v1", Write(old, 101.0, None, 3600)) is Outcome.CONFLICT


def test_idle_visitors_are_absent_at_once_and_swept_in_batches(
    store: SQLiteStore, path: Path
) -> None:
    visitors = 2 * SWEEP_BATCH + 10
    for i in range(visitors):
        store.commit("s", f"v{i}", Write(0, float(i), b"\x91\x01", DAY))
    store.commit("s", "late", Write(0, 10 * DAY, b"\x91\x01", DAY))
    store.block("s", "b1", Block("short", until=100.0))
    store.block("s", "b2", Block("forever"))
    assert store.load("s", "v0", DAY).version == 0  # expired: absent before any sweep
    assert store.load("s", "v1", DAY).version != 0
    assert rows(path, "SELECT COUNT(*) FROM visitors") == [(visitors + 1,)]
    assert store.sweep(2 * DAY) == visitors + 1
    assert rows(path, "SELECT visitor FROM visitors") == [("late",)]
    assert rows(path, "SELECT visitor FROM blocks") == [("b2",)]
    assert store.sweep(2 * DAY) == 0


def test_old_sitewide_times_are_trimmed_as_new_ones_come(store: SQLiteStore, path: Path) -> None:
    cap = Cap(1000, 60)
    for i in range(300):
        at = float(i * 10)
        record = InvitationRecord(f"i{i}", at, "r", 0, "s1")
        claim = Claim(record, (), (cap,), keep_for=60, keep_sitewide_for=60)
        assert store.commit("s", f"v{i}", Write(0, at, None, HOUR, claim)) is Outcome.APPLIED
    assert rows(path, "SELECT MIN(at), COUNT(*) FROM sitewide") == [
        (2940.0, 6)
    ]  # 2930 left the window at 2990
    assert store.load("s", "x", 2990.0, sitewide=(cap,)).sitewide[0].used == 6


def test_sitewide_usage_agrees_with_the_caps_module(store: SQLiteStore) -> None:
    from politely.caps import sitewide_usage

    times = [100.0, 100.0, 130.0, 150.0, 170.0, 500.0]  # 500: another instance's clock
    for i, at in enumerate(times):
        record = InvitationRecord(f"i{i}", at, "r", 0, "s1")
        claim = Claim(record, (), (Cap(100, 3600),), 3600, 3600)
        store.commit("s", f"v{i}", Write(0, at, None, HOUR, claim))
    caps = [Cap(limit, window) for limit in (1, 2, 3, 4, 6) for window in (30, 60, 100)]
    for now in (100.0, 129.0, 160.0, 175.0, 200.0, 260.0):
        loaded = store.load("s", "x", now, sitewide=caps).sitewide
        assert loaded == tuple(sitewide_usage(cap, times, now) for cap in caps), now


def test_sqlite_errors_are_store_errors_from_the_original(store: SQLiteStore, path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE stats")
    with pytest.raises(StoreError, match="no such table: stats") as error:
        store.stats("s")
    assert isinstance(error.value.__cause__, sqlite3.OperationalError)


def test_a_failing_store_fails_quiet(store: SQLiteStore, path: Path) -> None:
    engine = Engine.from_source(ALWAYS, store=store)
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE visitors")
    decision = engine.evaluate({**PAGE, "at": 1000})
    assert decision.degraded
    assert decision.invitation is None


def test_ping_answers_and_a_closed_store_raises(store: SQLiteStore) -> None:
    store.ping()
    store.close()
    with pytest.raises(StoreError, match="is closed"):
        store.ping()


def test_a_write_lock_held_too_long_is_a_store_error(path: Path) -> None:
    store = SQLiteStore(path, busy_timeout_ms=0)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="locked"):
            store.commit("s", "v1", Write(0, 100.0, b"\x91\x01", 3600))
        assert store.load("s", "v1", 100.0).version == 0  # readers never wait in WAL mode
    finally:
        other.rollback()
        other.close()
        store.close()
