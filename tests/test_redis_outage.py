"""Outages on a real redis-server of the test's own: SIGKILL and SIGSTOP during a load.

Every evaluation returns, degraded and without an invitation; with the
breaker open a call makes no network attempt (counted at the connection, not
timed); when the server is back, invitations resume on the same engine.
When a pause ends, exactly one caller probes while the others keep failing
fast (threads against a stopped server). The breaker runs on a clock the
test moves by hand: on a loaded machine, twenty calls could outlast a real
breaker period and let a second attempt through. Elapsed times are recorded
in `TIMES` for the report, never asserted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from conftest import FakeClock
from politely import Engine, StoreError
from politely.caps import Cap
from politely.state import InvitationRecord
from politely.stores.base import Claim, Outcome, Write
from politely.stores.redis import RedisStore, open_redis
from redis_servers import Server

ALWAYS = 'rule r { on page_view when session.pageviews >= 1 say "Hi" }\n'
BREAKER = 0.3
TIMES: dict[str, list[float]] = {}


class Armed:
    """A connection class counting network attempts (sends and connects);
    `before_send`, once set, runs before the next send."""

    def __init__(self) -> None:
        import redis

        self.sent = 0
        self.before_send: Callable[[], None] | None = None
        armed = self

        class Connection(redis.Connection):
            def send_packed_command(self, command: Any, check_health: bool = True) -> None:
                armed.sent += 1
                hook, armed.before_send = armed.before_send, None
                if hook is not None:
                    hook()
                super().send_packed_command(command, check_health)

            def _connect(self) -> Any:
                armed.sent += 1  # a connection attempt reaches the network too
                return super()._connect()

        self.connection_class = Connection


@pytest.fixture
def server() -> Iterator[Server]:
    pytest.importorskip("redis")
    started = Server()
    yield started
    started.resume() if started.process and started.process.poll() is None else None
    started.kill()


StoreT = TypeVar("StoreT", bound=RedisStore)


class Closing:
    """Closes, after the test, every store given to it: a store's sockets to a server
    the test stopped or killed would otherwise be closed by the garbage collector,
    whose "unclosed socket" warning lands on whichever test runs then."""

    def __init__(self) -> None:
        self.stores: list[RedisStore] = []

    def __call__(self, store: StoreT) -> StoreT:
        self.stores.append(store)
        return store


@pytest.fixture
def closing() -> Iterator[Closing]:
    kept = Closing()
    yield kept
    for store in kept.stores:
        store.close()


def setup(server: Server, closing: Closing) -> tuple[Engine, RedisStore, Armed, FakeClock]:
    """An engine on the server, its store's breaker on a clock moved by hand."""
    armed = Armed()
    connected = open_redis(f"{server.url}?timeout=0.1", connection_class=armed.connection_class)
    clock = FakeClock()
    store = closing(RedisStore(connected._connect, cluster=False, breaker=BREAKER, clock=clock))
    return Engine.from_source(ALWAYS, store=store), store, armed, clock


def view(engine: Engine, visitor: str) -> Any:
    return engine.evaluate({"visitor": visitor, "event": "page_view", "url": "/"})


def outage(engine: Engine, armed: Armed, name: str, calls: int = 20) -> list[Any]:
    decisions, elapsed = [], []
    for i in range(calls):
        start = time.perf_counter()
        decisions.append(view(engine, f"{name}{i}"))
        elapsed.append(time.perf_counter() - start)
    TIMES[name] = elapsed
    return decisions


@pytest.mark.parametrize("how", ["kill", "stop"])
def test_an_outage_during_a_load_degrades_fails_fast_and_recovers(
    server: Server, how: str, closing: Closing
) -> None:
    engine, store, armed, clock = setup(server, closing)
    assert view(engine, "before").invitation is not None
    armed.before_send = server.kill if how == "kill" else server.stop  # during the next load
    sent = armed.sent
    decisions = outage(engine, armed, how)
    assert all(d.invitation is None and d.degraded for d in decisions)
    assert engine.degraded == 20
    # one network attempt; the breaker kept the other 19 calls off the network
    assert armed.sent - sent == 1
    assert store.failures == 1
    assert store.breaker_open
    if how == "kill":
        server.start()  # on the same port: nothing about the engine restarts
    else:
        server.resume()
    clock.advance(BREAKER + 0.05)
    assert view(engine, "after").invitation is not None
    assert not store.breaker_open


def test_a_dead_server_costs_one_attempt_per_breaker_period(
    server: Server, closing: Closing
) -> None:
    engine, store, armed, clock = setup(server, closing)
    server.kill()
    for period in range(3):
        sent = armed.sent
        assert all(d.degraded for d in outage(engine, armed, f"dead{period}", calls=5))
        assert armed.sent - sent == 1  # reconnects are attempted, never a storm
        clock.advance(BREAKER + 0.05)
    assert store.failures == 3


def test_store_errors_come_from_the_redis_error(server: Server, closing: Closing) -> None:
    import redis

    _, store, _, _ = setup(server, closing)
    server.kill()
    with pytest.raises(StoreError) as raised:
        store.ping()
    assert isinstance(raised.value.__cause__, redis.RedisError)
    with pytest.raises(StoreError, match="not tried"):
        store.ping()  # the breaker: no attempt


class CrashAfterReserve(RedisStore):
    """The process dies between the sitewide reservation and the visitor's commit."""

    def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        if name == "commit":
            raise SystemExit("crashed")
        return super()._run(name, keys, args)


def test_a_crash_between_reserve_and_commit_costs_a_slot_never_an_invitation(
    server: Server, closing: Closing
) -> None:
    healthy = closing(open_redis(server.url))
    crashing = closing(CrashAfterReserve(healthy._connect, cluster=False))
    sitewide = (Cap(2, 60),)

    def write(visitor: str, at: float) -> Write:
        record = InvitationRecord(f"i-{visitor}", at, "r", 0, "s1")
        return Write(0, at, None, 3600, Claim(record, (), sitewide, 3600, 60))

    with pytest.raises(SystemExit):
        crashing.commit("s", "v1", write("v1", 100.0))
    assert healthy.load("s", "v1", 100.0).version == 0  # no invitation recorded
    assert healthy.load("s", "x", 100.0, sitewide=sitewide).sitewide[0].used == 1  # a slot held
    assert healthy.commit("s", "v2", write("v2", 101.0)) is Outcome.APPLIED
    assert healthy.commit("s", "v3", write("v3", 102.0)) is Outcome.REFUSED  # 2 per 1m: never 3
    assert healthy.commit("s", "v4", write("v4", 160.0)) is Outcome.APPLIED  # the slot came back


class Gated:
    """A connection class recording which threads reach the network (a connect or a
    send); the first attempt after `hold()` waits until `release()`."""

    def __init__(self) -> None:
        import redis

        self.threads: set[str] = set()  # thread names: unique, unlike ids
        self._gate: threading.Event | None = None
        self.held = threading.Event()  # the held thread is waiting at the gate
        self.held_thread: str | None = None
        lock = threading.Lock()
        gated = self

        def attempt() -> None:
            with lock:
                gated.threads.add(threading.current_thread().name)
                gate, gated._gate = gated._gate, None
            if gate is not None:
                gated.held_thread = threading.current_thread().name
                gated.held.set()
                gate.wait()

        class Connection(redis.Connection):
            def send_packed_command(self, command: Any, check_health: bool = True) -> None:
                attempt()
                super().send_packed_command(command, check_health)

            def _connect(self) -> Any:
                attempt()
                return super()._connect()

        self.connection_class = Connection

    def hold(self) -> threading.Event:
        self.threads.clear()
        self.held.clear()
        self._gate = threading.Event()
        return self._gate


def race(store: RedisStore, gated: Gated, callers: int) -> dict[str, str]:
    """`callers` threads call ping at once; the first network attempt is held until
    every other caller has returned. What each thread got, by thread name."""
    gate = gated.hold()
    barrier = threading.Barrier(callers)
    got: dict[str, str] = {}

    def call() -> None:
        barrier.wait()
        try:
            store.ping()
            got[threading.current_thread().name] = "ok"
        except StoreError as error:
            got[threading.current_thread().name] = "fast" if "not tried" in str(error) else "failed"

    threads = [threading.Thread(target=call) for _ in range(callers)]
    for t in threads:
        t.start()
    assert gated.held.wait(30)  # a caller reached the network (a bound, not a timing)
    for t in threads:
        if t.name != gated.held_thread:
            t.join()
    gate.set()
    for t in threads:
        t.join()
    return got


def test_after_the_pause_exactly_one_caller_probes_a_stopped_server(
    server: Server, closing: Closing
) -> None:
    """The breaker's clock is injected: no sleeping, no timing asserted; network attempts
    are counted per thread at the connection."""
    gated = Gated()
    now = [0.0]
    plain = open_redis(f"{server.url}?timeout=0.1", connection_class=gated.connection_class)
    store = closing(
        RedisStore(plain._connect, cluster=False, breaker=BREAKER, clock=lambda: now[0])
    )
    store.ping()
    server.stop()
    with pytest.raises(StoreError, match="failed"):
        store.ping()  # the socket timeout: the breaker opens
    assert store.breaker_open
    now[0] += BREAKER  # the pause is over: half-open

    got = race(store, gated, 8)
    assert len(gated.threads) == 1  # one probe reached the network, the others failed fast
    (probe,) = gated.threads
    assert got.pop(probe) == "failed"  # the server is still stopped
    assert set(got.values()) == {"fast"}
    assert store.breaker_open  # the failed probe opened it for another pause
    gated.threads.clear()
    with pytest.raises(StoreError, match="not tried"):
        store.ping()
    assert not gated.threads

    server.resume()
    now[0] += BREAKER
    got = race(store, gated, 8)
    assert len(gated.threads) == 1
    (probe,) = gated.threads
    assert got.pop(probe) == "ok"
    assert set(got.values()) == {"fast"}  # while the probe was out
    assert not store.breaker_open  # the probe closed it: everyone goes again
    gated.hold().set()
    callers = [threading.Thread(target=store.ping) for _ in range(4)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    assert len(gated.threads) == 4
    assert store.failures == 2
