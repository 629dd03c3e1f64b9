"""The embedded durable store: one SQLite file, for one machine (`sqlite:///path.db`).

Safe for many threads and several processes on one machine. The file is in
WAL mode: readers never wait for the writer, and writers take turns (a busy
timeout, 5 s by default, bounds the wait; past it the engine fails quiet).

Every `commit` is ONE transaction that takes the write lock before it reads
(`BEGIN IMMEDIATE`): read the visitor's version, history and remembered ids,
compare the version, check the claim's caps (`contract.admit`) and the site's
sitewide caps (counted in SQL over an index), write everything, bump the
version, COMMIT. Versions are random 63-bit numbers, so a forgotten visitor
that comes back never reuses one.

Durability: `synchronous=NORMAL` (the default) keeps every returned commit
through a crash of the process (the write is in the WAL file, which the OS
holds); a power loss or an OS crash may lose the last transactions.
`?synchronous=full` syncs the WAL on every commit and survives those too, at
a cost per write. `?synchronous=off` is for tests only.

Tables, one per fact: `visitors` (site, visitor, version, profile, history,
seen, expires), `sitewide` (site, at), `blocks`, `agents`, `stats` (site,
rule, variant, what, n). The schema's version is `PRAGMA user_version`; a
file written by another schema version is refused with a clear StoreError.

Idle visitors (expires <= now) are absent on load at once, and deleted later
in batches of `SWEEP_BATCH` rows, one short transaction each: every
`SWEEP_EVERY` commits (at the earlier of the write's time and the system
clock, so a trusted event time from the far future deletes nobody), or when
`sweep(now)` is called. Old sitewide times are trimmed as new ones are added.
"""

from __future__ import annotations

import logging
import os
import secrets
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import msgspec

from politely.caps import Cap
from politely.errors import StoreError
from politely.state import AgentStatus, Block, Count, SitewideUsage
from politely.stores.base import Loaded, Outcome, Write
from politely.stores.contract import admit, remember, replay

log = logging.getLogger("politely.store")

SCHEMA_VERSION = 1
SWEEP_EVERY = 1000  # commits between two automatic sweeps
SWEEP_BATCH = 500  # rows deleted per transaction
TRIM_SITEWIDE = 64  # old sitewide times deleted per recorded one (more than one: it catches up)
SYNCHRONOUS = ("off", "normal", "full")
DEFAULT_BUSY_TIMEOUT_MS = 5000

SCHEMA = (
    """CREATE TABLE visitors (
        site TEXT NOT NULL,
        visitor TEXT NOT NULL,
        version INTEGER NOT NULL,
        profile BLOB,
        history BLOB,
        seen BLOB,
        expires REAL NOT NULL,
        PRIMARY KEY (site, visitor)
    )""",
    "CREATE INDEX visitors_expires ON visitors (expires)",
    "CREATE TABLE sitewide (site TEXT NOT NULL, at REAL NOT NULL)",
    "CREATE INDEX sitewide_site_at ON sitewide (site, at)",
    """CREATE TABLE blocks (
        site TEXT NOT NULL,
        visitor TEXT NOT NULL,
        reason TEXT NOT NULL,
        until REAL,
        at REAL NOT NULL,
        by TEXT,
        PRIMARY KEY (site, visitor)
    )""",
    """CREATE TABLE agents (
        site TEXT PRIMARY KEY,
        online INTEGER NOT NULL,
        available INTEGER NOT NULL,
        queue_length INTEGER NOT NULL,
        queue_wait REAL NOT NULL,
        at REAL NOT NULL
    )""",
    # rule '' and variant -1 stand for None: a primary key needs values to compare
    """CREATE TABLE stats (
        site TEXT NOT NULL,
        rule TEXT NOT NULL,
        variant INTEGER NOT NULL,
        what TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (site, rule, variant, what)
    )""",
)
TABLES = ("agents", "blocks", "sitewide", "stats", "visitors")

Seen = dict[str, tuple[float, bytes]]
_encode_seen = msgspec.msgpack.Encoder().encode
_decode_seen = msgspec.msgpack.Decoder(list[tuple[str, float, bytes]]).decode


class SQLiteStore:
    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "normal",
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    ) -> None:
        if synchronous.lower() not in SYNCHRONOUS:
            raise StoreError(f"synchronous must be one of {', '.join(SYNCHRONOUS)}")
        if busy_timeout_ms < 0:
            raise StoreError("busy_timeout_ms must be 0 or more")
        self.path = Path(path)
        self.synchronous = synchronous.lower()
        self.busy_timeout_ms = busy_timeout_ms
        self._idle: list[sqlite3.Connection] = []  # a pool: one connection per concurrent caller
        self._all: list[sqlite3.Connection] = []
        self._pool_lock = threading.Lock()
        self._commits = 0
        self._closed = False
        with self._errors("open"), self._connection() as conn:
            self._prepare(conn)

    # --- connections and transactions ---------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=self.busy_timeout_ms / 1000,
            isolation_level=None,  # autocommit: every transaction is an explicit BEGIN
            check_same_thread=False,  # pooled: used by one thread at a time
        )
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self.synchronous.upper()}")
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
        except BaseException:
            conn.close()
            raise
        return conn

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with self._pool_lock:
            if self._closed:
                raise StoreError(f"{self!r} is closed")
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._connect()
            with self._pool_lock:
                self._all.append(conn)
        try:
            yield conn
        finally:
            if conn.in_transaction:  # an error inside a transaction: never reuse it half done
                try:
                    conn.rollback()
                except sqlite3.Error:
                    log.exception("rollback failed")
            with self._pool_lock:
                if self._closed:
                    conn.close()
                else:
                    self._idle.append(conn)

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        """A read (deferred) or write (immediate: the write lock first) transaction."""
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            yield conn
            self._finish(conn)

    def _finish(self, conn: sqlite3.Connection) -> None:
        conn.execute("COMMIT")

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as error:
            raise StoreError(f"SQLite store {self.path} ({doing}): {error}") from error

    def _prepare(self, conn: sqlite3.Connection) -> None:
        """Create the schema in a new file; refuse a file of another schema version."""
        conn.execute("BEGIN IMMEDIATE")  # two processes opening a new file: one creates it
        try:
            found = conn.execute("PRAGMA user_version").fetchone()[0]
            if found == 0:
                tables = {
                    row[0]
                    for row in conn.execute(
                        "SELECT name FROM sqlite_master WHERE type = 'table'"
                        " AND name NOT LIKE 'sqlite_%'"
                    )
                }
                if tables:
                    raise StoreError(
                        f"{self.path} holds tables ({', '.join(sorted(tables))}) but no politely "
                        "schema version: not a politely store"
                    )
                for statement in SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            elif found != SCHEMA_VERSION:
                newer = "a newer release" if found > SCHEMA_VERSION else "an older release"
                raise StoreError(
                    f"{self.path} has schema version {found} (written by {newer}); this "
                    f"release reads version {SCHEMA_VERSION} and cannot migrate it: "
                    "open it with the release that wrote it, or start a new file"
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.rollback()
            raise

    # --- the protocol ------------------------------------------------------------------------

    def load(
        self,
        site: str,
        visitor: str,
        now: float,
        *,
        event_id: str | None = None,
        sitewide: Sequence[Cap] = (),
    ) -> Loaded:
        with self._errors("load"), self._transaction(write=False) as conn:
            row = conn.execute(
                "SELECT version, profile, history, seen FROM visitors"
                " WHERE site = ? AND visitor = ? AND expires > ?",
                (site, visitor, now),
            ).fetchone()
            block = _active_block(conn, site, visitor, now)
            agents = _agents(conn, site)
            usage = tuple(_sitewide_usage(conn, site, cap, now) for cap in sitewide)
        if row is None:
            return Loaded(0, None, None, block, agents, usage, None)
        version, profile, history, seen = row
        return Loaded(
            version, profile, history, block, agents, usage, replay(_seen(seen), event_id)
        )

    def commit(self, site: str, visitor: str, write: Write) -> Outcome:
        with self._errors("commit"), self._transaction(write=True) as conn:
            outcome = self._apply(conn, site, visitor, write)
        self._commits += 1  # racy across threads: it only paces the sweeps
        if self._commits % SWEEP_EVERY == 0:
            try:  # the commit is done: a failed sweep must not turn it into an error
                self._sweep_once(min(write.at, time.time()))
            except StoreError:
                log.warning("SQLite store %s: sweep failed", self.path, exc_info=True)
        return outcome

    def _apply(self, conn: sqlite3.Connection, site: str, visitor: str, write: Write) -> Outcome:
        """The atomic step, inside a transaction that holds the write lock."""
        row = conn.execute(
            "SELECT version, profile, history, seen, expires FROM visitors"
            " WHERE site = ? AND visitor = ? AND expires > ?",
            (site, visitor, write.at),
        ).fetchone()
        version, profile, history, seen_blob, expires = row or (0, None, None, None, None)
        if version != write.version:
            return Outcome.CONFLICT
        outcome = Outcome.APPLIED
        claim = write.claim
        if claim is not None:
            admitted = admit(history, claim)
            if admitted is not None and not all(
                _count(conn, site, cap, write.at) < cap.limit for cap in claim.sitewide
            ):
                admitted = None
            if admitted is None:
                outcome = Outcome.REFUSED
            else:
                history = admitted
                if claim.sitewide:
                    _record_sitewide(conn, site, write.at, claim.keep_sitewide_for)
        entry = write.remember
        if entry is not None:
            refused = outcome is Outcome.REFUSED and entry.refused is not None
            decision = entry.refused if refused and entry.refused is not None else entry.decision
            seen_blob = _encode_seen(
                [(k, at, d) for k, (at, d) in remember(_seen(seen_blob), entry, decision).items()]
            )
        if write.profile is not None:
            profile = write.profile
        keep_until = write.at + write.keep_for
        if expires is not None:
            keep_until = max(keep_until, expires)
        new_version = secrets.randbits(63) or 1
        while new_version == version:
            new_version = secrets.randbits(63) or 1
        conn.execute(
            "INSERT INTO visitors (site, visitor, version, profile, history, seen, expires)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (site, visitor) DO UPDATE SET version = excluded.version,"
            " profile = excluded.profile, history = excluded.history, seen = excluded.seen,"
            " expires = excluded.expires",
            (site, visitor, new_version, profile, history, seen_blob, keep_until),
        )
        _add_stats(conn, site, write.refused_counts if outcome is Outcome.REFUSED else write.counts)
        return outcome

    def count(self, site: str, counts: Iterable[Count]) -> None:
        counts = tuple(counts)
        if not counts:
            return
        with self._errors("count"), self._transaction(write=True) as conn:
            _add_stats(conn, site, counts)

    def forget(self, site: str, visitor: str) -> bool:
        with self._errors("forget"), self._transaction(write=True) as conn:
            key = (site, visitor)
            gone = conn.execute("DELETE FROM visitors WHERE site = ? AND visitor = ?", key)
            erased = gone.rowcount
            erased += conn.execute(
                "DELETE FROM blocks WHERE site = ? AND visitor = ?", key
            ).rowcount
        return erased > 0

    def block(self, site: str, visitor: str, block: Block) -> None:
        with self._errors("block"), self._transaction(write=True) as conn:
            conn.execute(
                "INSERT OR REPLACE INTO blocks (site, visitor, reason, until, at, by)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (site, visitor, block.reason, block.until, block.at, block.by),
            )

    def unblock(self, site: str, visitor: str) -> bool:
        with self._errors("unblock"), self._transaction(write=True) as conn:
            gone = conn.execute(
                "DELETE FROM blocks WHERE site = ? AND visitor = ?", (site, visitor)
            )
            return gone.rowcount > 0

    def blocks(self, site: str, now: float) -> Mapping[str, Block]:
        with self._errors("blocks"), self._transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT visitor, reason, until, at, by FROM blocks"
                " WHERE site = ? AND (until IS NULL OR until > ?) ORDER BY visitor",
                (site, now),
            ).fetchall()
        return {row[0]: Block(*row[1:]) for row in rows}

    def set_agents(self, site: str, status: AgentStatus) -> None:
        with self._errors("set_agents"), self._transaction(write=True) as conn:
            conn.execute(
                "INSERT OR REPLACE INTO agents"
                " (site, online, available, queue_length, queue_wait, at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    site,
                    status.online,
                    status.available,
                    status.queue_length,
                    status.queue_wait,
                    status.at,
                ),
            )

    def stats(self, site: str) -> Counter[Count]:
        with self._errors("stats"), self._transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT rule, variant, what, n FROM stats WHERE site = ?", (site,)
            ).fetchall()
        return Counter(
            {
                (rule or None, None if variant < 0 else variant, what): n
                for rule, variant, what, n in rows
            }
        )

    def ping(self) -> None:
        with self._errors("ping"), self._connection() as conn:
            conn.execute("SELECT 1 FROM visitors LIMIT 1").fetchall()

    def close(self) -> None:
        """Close every connection; the file stays. Using the store afterwards raises."""
        with self._pool_lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def __repr__(self) -> str:
        state = ", closed" if self._closed else ""
        return f"SQLiteStore({str(self.path)!r}, synchronous={self.synchronous}{state})"

    # --- retention ---------------------------------------------------------------------------

    def sweep(self, now: float) -> int:
        """Delete idle visitors, expired blocks and old sitewide rows, in short batches.

        Returns how many rows went. Each batch is its own transaction, so the
        write lock is never held for long, and other writers interleave."""
        total = 0
        while True:
            deleted = self._sweep_once(now)
            total += deleted
            if deleted < SWEEP_BATCH:
                return total

    def _sweep_once(self, now: float) -> int:
        with self._errors("sweep"), self._transaction(write=True) as conn:
            deleted = conn.execute(
                "DELETE FROM visitors WHERE rowid IN"
                " (SELECT rowid FROM visitors WHERE expires <= ? LIMIT ?)",
                (now, SWEEP_BATCH),
            ).rowcount
            deleted += conn.execute(
                "DELETE FROM blocks WHERE rowid IN"
                " (SELECT rowid FROM blocks WHERE until <= ? LIMIT ?)",
                (now, SWEEP_BATCH),
            ).rowcount
        return deleted


# --- helpers over one connection -------------------------------------------------------------


def _seen(blob: bytes | None) -> Seen | None:
    if blob is None:
        return None
    return {key: (at, decision) for key, at, decision in _decode_seen(blob)}


def _active_block(conn: sqlite3.Connection, site: str, visitor: str, now: float) -> Block | None:
    row = conn.execute(
        "SELECT reason, until, at, by FROM blocks WHERE site = ? AND visitor = ?"
        " AND (until IS NULL OR until > ?)",
        (site, visitor, now),
    ).fetchone()
    return Block(*row) if row is not None else None


def _agents(conn: sqlite3.Connection, site: str) -> AgentStatus | None:
    row = conn.execute(
        "SELECT online, available, queue_length, queue_wait, at FROM agents WHERE site = ?",
        (site,),
    ).fetchone()
    return AgentStatus(*row) if row is not None else None


def _window(cap: Cap) -> int:
    window = cap.window
    if not isinstance(window, int):
        raise StoreError(f"a sitewide cap needs a rolling window, not {window!r}")
    return window


def _count(conn: sqlite3.Connection, site: str, cap: Cap, now: float) -> int:
    """Sitewide invitations in the cap's window (now - window, now], counted up to
    the cap's limit: reads at most `limit` rows of the index, however busy."""
    row = conn.execute(
        "SELECT COUNT(*) FROM (SELECT 1 FROM sitewide WHERE site = ? AND at > ? AND at <= ?"
        " LIMIT ?)",
        (site, now - _window(cap), now, cap.limit),
    ).fetchone()
    return int(row[0])


def _newest(conn: sqlite3.Connection, site: str, now: float, offset: int) -> list[float]:
    """The times `offset` and `offset + 1` places before the newest one at or before
    `now`, those of them that exist: one query for both times a release needs."""
    rows = conn.execute(
        "SELECT at FROM sitewide WHERE site = ? AND at <= ? ORDER BY at DESC LIMIT 2 OFFSET ?",
        (site, now, offset),
    ).fetchall()
    return [float(at) for (at,) in rows]


def _sitewide_usage(conn: sqlite3.Connection, site: str, cap: Cap, now: float) -> SitewideUsage:
    """`caps.sitewide_usage` in SQL: a count and at most two times, by position.

    The cap releases when the limit-th newest invitation leaves the window;
    counted from the newest, that is offset limit - 1 (and limit - 2 after one
    more at `now`), so no query reads more than `limit` rows of the index. A
    cap with room for this invitation and the next costs the count alone; a
    full one, the count and one query for both times."""
    window = _window(cap)
    count = _count(conn, site, cap, now)
    limit = cap.limit
    if count + 1 < limit:
        return SitewideUsage(count, now, now)
    if limit == 1:  # the one recorded now is the one that must leave
        release = now if count < limit else _newest(conn, site, now, 0)[0] + window
        return SitewideUsage(count, release, now + window)
    held = _newest(conn, site, now, limit - 2)  # both in the window when the cap is full
    release = now if count < limit else held[1] + window
    return SitewideUsage(count, release, held[0] + window)


def _record_sitewide(conn: sqlite3.Connection, site: str, at: float, keep_for: float) -> None:
    conn.execute("INSERT INTO sitewide (site, at) VALUES (?, ?)", (site, at))
    conn.execute(
        "DELETE FROM sitewide WHERE rowid IN (SELECT rowid FROM sitewide"
        " WHERE site = ? AND at <= ? ORDER BY at LIMIT ?)",
        (site, at - keep_for, TRIM_SITEWIDE),
    )


def _add_stats(conn: sqlite3.Connection, site: str, counts: Iterable[Count]) -> None:
    tally = Counter(counts)
    if not tally:
        return
    conn.executemany(
        "INSERT INTO stats (site, rule, variant, what, n) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (site, rule, variant, what) DO UPDATE SET n = n + excluded.n",
        [
            (site, rule or "", -1 if variant is None else variant, what, n)
            for (rule, variant, what), n in tally.items()
        ],
    )


# --- URLs ------------------------------------------------------------------------------------


def open_sqlite(url: str) -> SQLiteStore:
    """`sqlite:///relative/path.db` or `sqlite:////absolute/path.db` (SQLAlchemy's
    convention: the path is what follows the third slash), with options
    `?synchronous=normal|full|off` and `?busy_timeout_ms=5000`."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite" or parts.netloc or not parts.path.startswith("/"):
        raise StoreError(
            f"bad SQLite store URL {url!r}: use sqlite:///relative/path.db or "
            "sqlite:////absolute/path.db"
        )
    path = parts.path[1:]
    if not path or path.endswith("/"):
        raise StoreError(f"bad SQLite store URL {url!r}: it names no file")
    options: dict[str, Any] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "synchronous":
            options["synchronous"] = value
        elif key == "busy_timeout_ms":
            try:
                options["busy_timeout_ms"] = int(value)
            except ValueError:
                raise StoreError(f"bad busy_timeout_ms {value!r} in {url!r}") from None
        else:
            raise StoreError(
                f"unknown option {key!r} in {url!r}: use synchronous or busy_timeout_ms"
            )
    directory = Path(path).parent
    if not directory.is_dir():
        raise StoreError(f"cannot create the SQLite store {path!r}: no directory {directory}")
    return SQLiteStore(path, **options)
