"""The Redis store on real servers (one Redis, one three-master Cluster).

The contract tests of `test_memory_store.py`, the engine's scenarios, the
round trips a decision costs, and an equivalence property: random claims give
the same outcomes and the same decoded histories in the memory store and in
Redis (the Lua script mirrors `politely.stores.contract`).
"""

from __future__ import annotations

import gc
import itertools
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import FakeClock, examples
from events import DAY, HOUR
from politely import Engine, MemoryStore, StoreError, open_store
from politely.caps import Cap
from politely.codec import decode_history, encode_profile
from politely.state import Block, InvitationRecord, VisitorState
from politely.stores.base import Claim, Outcome, Remember, Write
from politely.stores.redis import RedisStore, site_key, visitor_key
from racing import Racing, invited, run_concurrently
from redis_servers import redis_store_factory

ALWAYS = 'rule r { on page_view when session.pageviews >= 1 say "Hi" or "Hello" }\n'
PAGE = {"visitor": "v1", "event": "page_view", "url": "/"}


def record(at: float, session: str = "s1", rule: str = "r") -> InvitationRecord:
    return InvitationRecord(f"i{at}", at, rule, 0, session)


def claim_write(
    version: int, at: float, caps: tuple[Cap, ...], sitewide: tuple[Cap, ...] = ()
) -> Write:
    claim = Claim(record(at), caps, sitewide, keep_for=3600, keep_sitewide_for=3600)
    return Write(
        version, at, encode_profile(VisitorState()), 86400, claim,
        counts=(("r", 0, "shown"),), refused_counts=(("r", None, "cap_race"),),
    )  # fmt: skip


def engine_on(source: str, store: object, clock: FakeClock, **options: Any) -> Engine:
    return Engine.from_source(source, store=store, clock=clock, trust_event_time=False, **options)  # type: ignore[arg-type]


# --- the contract -------------------------------------------------------------------------


def test_a_commit_on_a_stale_version_changes_nothing(redis_store: RedisStore) -> None:
    store = redis_store
    assert store.commit("s", "v1", claim_write(0, 100.0, ())) is Outcome.APPLIED
    assert store.commit("s", "v1", claim_write(0, 101.0, ())) is Outcome.CONFLICT
    loaded = store.load("s", "v1", 102.0)
    assert loaded.history is not None
    assert decode_history(loaded.history).ever == 1
    assert store.stats("s") == {("r", 0, "shown"): 1}


def test_a_claim_past_a_visitor_cap_is_refused_but_the_rest_is_saved(
    redis_store: RedisStore,
) -> None:
    store = redis_store
    cap = (Cap(1, 600),)
    assert store.commit("s", "v1", claim_write(0, 100.0, cap)) is Outcome.APPLIED
    version = store.load("s", "v1", 100.0).version
    assert store.commit("s", "v1", claim_write(version, 200.0, cap)) is Outcome.REFUSED
    after = store.load("s", "v1", 200.0)
    assert after.version != version
    assert after.history is not None
    assert decode_history(after.history).ever == 1
    assert store.stats("s") == {("r", 0, "shown"): 1, ("r", None, "cap_race"): 1}
    assert store.commit("s", "v1", claim_write(after.version, 700.0, cap)) is Outcome.APPLIED


def test_a_sitewide_claim_is_refused_across_visitors(redis_store: RedisStore) -> None:
    store = redis_store
    sitewide = (Cap(2, 60),)
    outcomes = [
        store.commit("s", f"v{i}", claim_write(0, 100.0 + i, (), sitewide)) for i in range(4)
    ]
    assert outcomes == [Outcome.APPLIED, Outcome.APPLIED, Outcome.REFUSED, Outcome.REFUSED]
    usage = store.load("s", "v9", 130.0, sitewide=sitewide).sitewide
    assert [(u.used, u.release, u.release_after_one) for u in usage] == [(2, 160.0, 161.0)]
    assert store.load("s", "v9", 160.0, sitewide=sitewide).sitewide[0].used == 1


def test_a_refused_or_conflicting_claim_gives_its_sitewide_slot_back(
    redis_store: RedisStore,
) -> None:
    store = redis_store
    sitewide = (Cap(1, 60),)
    store.commit("s", "v1", claim_write(0, 100.0, ()))
    assert store.commit("s", "v1", claim_write(0, 101.0, (), sitewide)) is Outcome.CONFLICT
    version = store.load("s", "v1", 101.0).version
    store.commit("s", "v1", claim_write(version, 101.0, (Cap(1, 600),)))  # refused: used
    version = store.load("s", "v1", 102.0).version
    assert store.commit("s", "v1", claim_write(version, 102.0, (Cap(1, 600),), sitewide)) is (
        Outcome.REFUSED
    )
    assert store.load("s", "v2", 103.0, sitewide=sitewide).sitewide[0].used == 0
    assert store.commit("s", "v2", claim_write(0, 103.0, (), sitewide)) is Outcome.APPLIED


def test_sites_sharing_a_store_keep_apart(redis_store: RedisStore) -> None:
    store = redis_store
    store.commit("a", "v1", claim_write(0, 100.0, ()))
    assert store.load("b", "v1", 100.0).version == 0
    assert store.stats("b") == {}
    store.block("a", "v1", Block("abusive"))
    assert store.blocks("b", 100.0) == {}
    assert set(store.blocks("a", 100.0)) == {"v1"}


def test_the_sitewide_usage_is_two_numbers_however_many_invitations(
    redis_store: RedisStore,
) -> None:
    store, memory = redis_store, MemoryStore()
    sitewide = (Cap(100, 3600), Cap(1, 900), Cap(2, 600))
    for i in range(600):
        at = float(i * 3 % 1800)
        write = Write(0, at, None, 86400, Claim(record(at), (), (Cap(10_000, 3600),), 3600, 3600))
        assert store.commit("s", f"v{i}", write) is memory.commit("s", f"v{i}", write)
    for now in (0.0, 600.0, 1799.0, 1800.0, 3000.0, 5000.0):
        assert store.load("s", "x", now, sitewide=sitewide).sitewide == (
            memory.load("s", "x", now, sitewide=sitewide).sitewide
        )


def test_keys_carry_the_site_and_a_visitor_keeps_to_one_slot(redis_store: RedisStore) -> None:
    store = redis_store
    store.commit("shop", "v1", claim_write(0, 100.0, (), (Cap(5, 60),)))
    client = store.client()
    assert client.exists(visitor_key("shop", "v1"), site_key("shop", "sitewide")) == 2
    assert visitor_key("shop", "v1").startswith("politely:{shop:v1}")


def _tag(key: str) -> str:
    """The hash tag as Redis reads it: from the first `{` to the first `}` after it."""
    start = key.index("{")
    return key[start + 1 : key.index("}", start + 1)]


ADVERSARIAL = ["a", "b", "a:b", "b:c", "c", ":", "::", "{", "}", "}{", "{a}", "a}", "%3A", "%", ""]
names = st.text(alphabet="ab:{}%3A7BD", max_size=6)


@settings(max_examples=examples(300), deadline=None)
@given(st.tuples(names, names), st.tuples(names, names))
@example(("a:b", "c"), ("a", "b:c"))
@example(("a}", "b"), ("a", "}b"))
@example(("a%3Ab", "c"), ("a:b", "c"))
def test_two_different_site_visitor_pairs_never_share_a_key(
    one: tuple[str, str], other: tuple[str, str]
) -> None:
    keys = {visitor_key(*one)} | {site_key(one[0], w) for w in ("sitewide", "blocks", "stats")}
    for key in keys:  # each key has one tag: the whole escaped name (or names)
        assert key.count("{") == key.count("}") == 1
        assert _tag(key) == key[key.index("{") + 1 : key.rindex("}")]
    if one != other:
        assert visitor_key(*one) != visitor_key(*other)
    assert visitor_key(*other) not in keys - {visitor_key(*one)}
    if one[0] != other[0]:
        assert site_key(one[0], "stats") != site_key(other[0], "stats")


def test_names_without_special_characters_keep_their_keys() -> None:
    assert visitor_key("shop", "v1") == "politely:{shop:v1}"
    assert site_key("shop~t1", "stats") == "politely:{shop~t1}:stats"
    assert visitor_key("a:b", "}{") == "politely:{a%3Ab:%7D%7B}"


def test_adversarial_names_keep_apart_and_work(redis_store: RedisStore) -> None:
    store = redis_store
    pairs = [(s, v) for s in ("a", "a:b", "}{", "{s}") for v in ADVERSARIAL]
    for n, (site, visitor) in enumerate(pairs):
        assert store.commit(site, visitor, claim_write(0, 100.0 + n, (), (Cap(99, 600),))) is (
            Outcome.APPLIED
        )
    for n, (site, visitor) in enumerate(pairs):
        loaded = store.load(site, visitor, 200.0, sitewide=(Cap(99, 600),))
        assert loaded.history is not None
        assert [r.at for r in decode_history(loaded.history).recent] == [100.0 + n]
    for site in ("a", "a:b", "}{", "{s}"):
        assert store.stats(site) == {("r", 0, "shown"): len(ADVERSARIAL)}
    assert store.forget("a:b", "c")
    assert store.load("a", "b:c", 200.0).version != 0  # not the same visitor


def test_a_visitor_named_braces_keeps_to_one_slot_on_a_cluster(
    make_redis_store: Callable[..., RedisStore], clock: FakeClock
) -> None:
    from redis.cluster import key_slot

    store = make_redis_store("redis+cluster")
    key = visitor_key("shop", "}{")
    assert key_slot(key.encode()) == key_slot(b"shop:%7D%7B")  # the whole tag, nothing less
    engine = engine_on(ALWAYS, store, clock)
    engine.site = "shop"
    decision = engine.evaluate({**PAGE, "visitor": "}{"})
    assert decision.invitation is not None
    assert not decision.degraded
    state = engine.visitor_state("}{")
    assert state is not None
    assert state.pageviews == 1
    assert engine.evaluate({**PAGE, "visitor": "}{"}).invitation is None  # it is remembered
    assert engine.forget("}{")


def test_every_visitor_and_sitewide_key_has_a_ttl(redis_store: RedisStore) -> None:
    store = redis_store
    store.commit("s", "v1", claim_write(0, 100.0, (), (Cap(5, 60),)))
    client = store.client()
    assert 86_000_000 < client.pttl(visitor_key("s", "v1")) <= 86_400_000
    assert 3_500_000 < client.pttl(site_key("s", "sitewide")) <= 3_600_000
    forever = Write(store.load("s", "v1", 101.0).version, 101.0, None, float("inf"))
    assert store.commit("s", "v1", forever) is Outcome.APPLIED
    assert client.pttl(visitor_key("s", "v1")) == -1  # keep_for inf: PERSIST
    later = Write(store.load("s", "v1", 102.0).version, 102.0, None, 60)
    store.commit("s", "v1", later)
    assert client.pttl(visitor_key("s", "v1")) == -1  # a longer keep is never shortened


def test_remembered_ids_are_replayed_and_trimmed(redis_store: RedisStore) -> None:
    store = redis_store
    version = 0
    for i in range(6):
        entry = Remember(f"e{i}", 100.0 + i, f"d{i}".encode(), keep_for=600, keep_at_most=3)
        store.commit("s", "v1", Write(version, 100.0 + i, None, DAY, remember=entry))
        version = store.load("s", "v1", 100.0 + i).version
    assert store.load("s", "v1", 110.0, event_id="e5").replay == (105.0, b"d5")
    assert store.load("s", "v1", 110.0, event_id="e2").replay is None
    fields = {f.decode() for f in store.client().hkeys(visitor_key("s", "v1"))}
    assert fields == {"v", "x", "s", "e:e3", "e:e4", "e:e5"}


def test_forget_erases_a_visitor_and_a_forgotten_visitor_never_reuses_a_version(
    redis_store: RedisStore,
) -> None:
    store = redis_store
    store.commit("s", "v1", claim_write(0, 100.0, ()))
    old = store.load("s", "v1", 100.0).version
    store.block("s", "v1", Block("asked"))
    assert store.forget("s", "v1")
    assert not store.forget("s", "v1")
    assert store.load("s", "v1", 100.0).version == 0
    store.commit("s", "v1", claim_write(0, 100.0, ()))
    assert store.load("s", "v1", 100.0).version != old
    assert store.commit("s", "v1", claim_write(old, 101.0, ())) is Outcome.CONFLICT


def test_blocks_agents_and_unblock(redis_store: RedisStore) -> None:
    store = redis_store
    store.block("s", "v1", Block("short", until=150.0, at=100.0, by="ops"))
    assert store.load("s", "v1", 149.0).block == Block("short", 150.0, 100.0, "ops")
    assert store.load("s", "v1", 150.0).block is None
    assert store.blocks("s", 150.0) == {}
    assert store.unblock("s", "v1")
    assert not store.unblock("s", "v1")


def test_closing_a_store_closes_every_connection_it_opened(redis_kind: str) -> None:
    """On a Cluster too, where the client's own close leaves the nodes' pools (and
    the connections its pipelines took) open until the garbage collector finds them."""
    store = redis_store_factory(redis_kind)
    store.load("s", "v", 100.0, sitewide=(Cap(2, 60),))  # a pipeline
    store.commit("s", "v", claim_write(0, 100.0, (Cap(2, 60),)))
    store.close()
    del store
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        gc.collect()
    assert [str(w.message) for w in caught if w.category is ResourceWarning] == []


def test_open_store_opens_redis_urls_lazily() -> None:
    store = open_store("redis://127.0.0.1:1/0?timeout=0.05&breaker=5")
    assert isinstance(store, RedisStore)
    assert not store.cluster
    assert store.breaker == 5
    cluster = open_store("redis+cluster://127.0.0.1:1")
    assert isinstance(cluster, RedisStore)
    assert cluster.cluster  # nothing was connected: opening never needs the server
    with pytest.raises(StoreError, match="redis"):
        store.ping()


def test_a_missing_redis_py_is_a_clear_store_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(StoreError, match=r"pip install 'politely\[redis\]'"):
        open_store("redis://localhost:6379/0")


# --- the engine on Redis ------------------------------------------------------------------


@pytest.mark.parametrize("workers", [2, 8])
def test_racing_page_views_of_one_visitor_grant_the_cap_and_lose_no_event(
    redis_store: RedisStore, clock: FakeClock, workers: int
) -> None:
    engine = engine_on(ALWAYS, Racing(redis_store, workers), clock)
    decisions = run_concurrently(engine, [PAGE] * workers, workers)
    assert invited(decisions) == 1
    state = engine.visitor_state("v1")
    assert state is not None
    assert state.pageviews == workers
    assert engine.stats().rules[0].suppressed == {"visitor_cap": workers - 1}


def test_racing_visitors_never_exceed_a_sitewide_cap(
    redis_store: RedisStore, clock: FakeClock
) -> None:
    source = "policy { at most 5 invitations per 1m sitewide }\n" + ALWAYS
    workers = 20
    engine = engine_on(source, Racing(redis_store, workers), clock)
    events = [{"visitor": f"v{i}", "event": "page_view", "url": "/"} for i in range(workers)]
    assert invited(run_concurrently(engine, events, workers)) == 5
    assert engine.stats().rules[0].suppressed == {"cap_race": workers - 5}


def test_a_dismissal_racing_a_page_view_is_never_lost(
    redis_store: RedisStore, clock: FakeClock
) -> None:
    source = "policy { quiet 1d after dismiss }\n" + ALWAYS
    for trial in range(10):
        engine = engine_on(source, Racing(redis_store, 2), clock)
        visitor = f"d{trial}"
        dismiss = {"visitor": visitor, "event": "invitation_dismissed"}
        run_concurrently(engine, [{**PAGE, "visitor": visitor}, dismiss], 2)
        clock.advance(HOUR)
        assert engine.evaluate({**PAGE, "visitor": visitor}).invitation is None


def test_a_refused_decision_is_what_a_retry_returns(
    redis_store: RedisStore, clock: FakeClock
) -> None:
    source = "policy { at most 1 invitation per 1m sitewide }\n" + ALWAYS
    engine = engine_on(source, Racing(redis_store, 2), clock)
    events = [{**PAGE, "visitor": v, "id": "e1"} for v in ("v1", "v2")]
    decisions = run_concurrently(engine, events, 2)
    assert invited(decisions) == 1
    refused = next(d for d in decisions if d.invitation is None)
    assert refused.recheck_in == 1
    assert engine.evaluate(events[decisions.index(refused)]) == refused


def test_an_idle_visitor_expires_after_the_retention_on_the_engine_clock(
    redis_store: RedisStore, clock: FakeClock
) -> None:
    engine = engine_on(ALWAYS, redis_store, clock, retention=2 * DAY)
    engine.evaluate(PAGE)
    clock.advance(2 * DAY - 1)
    assert engine.visitor_state("v1") is not None
    clock.advance(2)
    assert engine.visitor_state("v1") is None
    engine.evaluate(PAGE)
    state = engine.visitor_state("v1")
    assert state is not None
    assert state.visits == 1
    assert state.log is not None
    assert state.log.ever == 1


def test_a_lifetime_cap_keeps_visitors_forever(redis_store: RedisStore, clock: FakeClock) -> None:
    engine = engine_on("policy { at most 1 invitation per visitor }\n" + ALWAYS, redis_store, clock)
    assert engine.evaluate(PAGE).invitation is not None
    assert redis_store.client().pttl(visitor_key("default", "v1")) == -1
    clock.advance(400 * DAY)
    assert engine.evaluate(PAGE).invitation is None


def test_blocks_and_forget_through_the_engine(redis_store: RedisStore, clock: FakeClock) -> None:
    engine = engine_on(ALWAYS, redis_store, clock)
    engine.block("v1", "abusive")
    decision = engine.evaluate(PAGE)
    assert decision.chat == "blocked"
    assert decision.invitation is None
    assert engine.forget("v1")
    assert engine.blocks() == {}
    assert engine.evaluate(PAGE).invitation is not None


def test_unsynchronised_threads_respect_a_session_cap(
    redis_store: RedisStore, clock: FakeClock
) -> None:
    engine = engine_on(
        "policy { at most 3 invitations per session }\n" + ALWAYS, redis_store, clock
    )
    events = [{"visitor": "v1", "session": "s1", "event": "page_view", "url": "/"}] * 60
    assert invited(run_concurrently(engine, events, 8)) == 3
    state = engine.visitor_state("v1")
    assert state is not None
    assert state.pageviews == 60


# --- the client, opened by racing threads -----------------------------------------------------


class SignallingLock:
    """A lock that sets `waiting` when an acquirer finds it held (it then waits as usual)."""

    def __init__(self, waiting: threading.Event) -> None:
        self._lock = threading.Lock()
        self.waiting = waiting

    def __enter__(self) -> None:
        if not self._lock.acquire(blocking=False):
            self.waiting.set()
            self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


def test_a_thread_that_finds_the_client_being_opened_finds_its_scripts(
    redis_store: RedisStore,
) -> None:
    """One thread opens the client and is still registering its scripts when another
    commits: the other waits for both, never sees the client without its scripts."""
    registering, release, progress = threading.Event(), threading.Event(), threading.Event()

    class SlowToRegister:
        def __init__(self, client: Any) -> None:
            self._client = client

        def __getattr__(self, name: str) -> Any:
            return getattr(self._client, name)

        def register_script(self, source: str) -> Any:
            registering.set()
            release.wait()
            return self._client.register_script(source)

    store = RedisStore(lambda: SlowToRegister(redis_store._connect()), cluster=redis_store.cluster)
    store._lock = SignallingLock(progress)  # type: ignore[assignment]
    errors: list[BaseException] = []

    def commit() -> None:
        try:
            assert store.commit("s", "v1", claim_write(0, 100.0, ())) is Outcome.APPLIED
        except BaseException as error:  # the test reports it below
            errors.append(error)
        finally:
            progress.set()  # it finished (or failed) without waiting for the lock

    opener = threading.Thread(target=store.client)
    opener.start()
    registering.wait()
    other = threading.Thread(target=commit)
    other.start()
    progress.wait()  # the other thread waits for the lock, or is already done
    release.set()
    opener.join()
    other.join()
    store.close()
    assert errors == []


# --- round trips ---------------------------------------------------------------------------
#
# A round trip is a *sequential step*: one or more sends issued before any reply is
# awaited. A pipeline is one step, and so is a cluster pipeline that writes to several
# nodes before it reads any of them. The connection counts both: `steps` (a send
# after a reply was read starts a new step) and `sends` (one per connection a step
# writes to); the store's own `round_trips` counts its steps and must agree.


class Wire:
    """What the redis-py connections sent, counted at the connection."""

    def __init__(self) -> None:
        import redis

        self.steps = self.sends = 0
        self._awaiting = False  # sends went out and no reply was read since
        wire = self

        class Counting(redis.Connection):
            def send_packed_command(self, command: Any, check_health: bool = True) -> None:
                wire.sends += 1
                if not wire._awaiting:
                    wire.steps += 1
                    wire._awaiting = True
                super().send_packed_command(command, check_health)

            def read_response(self, *args: Any, **kwargs: Any) -> Any:
                wire._awaiting = False
                return super().read_response(*args, **kwargs)

        self.connection_class = Counting


DWELL = 'rule r { when page.dwell >= 30s say "Hi" }\n'
TARGET = {"tick": 1, "page_view": 2, "dismiss": 2, "invite": 2, "sitewide": 3}


@pytest.mark.parametrize(
    ("kind", "sends"),
    [
        ("redis", {"tick": 1, "page_view": 2, "dismiss": 2, "invite": 2, "sitewide": 3}),
        # a Cluster: a load is one pipeline to two nodes (the visitor's slot and the
        # site's); a commit that counts something (an invitation, a suppression) sends
        # the script to the visitor's node and the counts to the site's, together
        ("redis+cluster", {"tick": 2, "page_view": 3, "dismiss": 4, "invite": 4, "sitewide": 5}),
    ],
)
def test_round_trips_per_decision(
    make_redis_store: Callable[..., RedisStore],
    clock: FakeClock,
    kind: str,
    sends: dict[str, int],
) -> None:
    """The targets: 1 step for a tick that changes nothing, 2 for any other event (load,
    then write), 3 with a sitewide claim (load, reserve, commit), on both kinds."""
    wire = Wire()
    store = make_redis_store(kind, connection_class=wire.connection_class)
    engine = engine_on(DWELL, store, clock)
    sitewide = engine_on("policy { at most 9 invitations per 1h sitewide }\n" + DWELL, store, clock)
    sitewide.site = "other"
    for warm in ("w1", "w2"):  # connect, load the scripts
        engine.evaluate({"visitor": warm, "event": "page_view", "url": "/"})
        sitewide.evaluate({"visitor": warm, "event": "page_view", "url": "/"})
        clock.advance(40)
        engine.evaluate({"visitor": warm, "event": "tick"})
        sitewide.evaluate({"visitor": warm, "event": "tick"})
    if store.cluster:  # a connection to every node, so no handshake is counted below
        from redis.cluster import RedisCluster

        store.client().ping(target_nodes=RedisCluster.ALL_NODES)

    found: dict[str, tuple[int, int, int]] = {}

    def measure(name: str, engine: Engine, event: dict[str, Any]) -> None:
        before = (wire.steps, store.round_trips, wire.sends)
        engine.evaluate(event)
        after = (wire.steps, store.round_trips, wire.sends)
        found[name] = tuple(a - b for a, b in zip(after, before, strict=True))  # type: ignore[assignment]

    measure("page_view", engine, {"visitor": "v1", "event": "page_view", "url": "/"})
    clock.advance(5)
    measure("tick", engine, {"visitor": "v1", "event": "tick"})
    clock.advance(30)
    measure("invite", engine, {"visitor": "v1", "event": "tick"})
    measure("dismiss", engine, {"visitor": "v1", "event": "invitation_dismissed"})
    sitewide.evaluate({"visitor": "v2", "event": "page_view", "url": "/"})
    clock.advance(40)
    measure("sitewide", sitewide, {"visitor": "v2", "event": "tick"})
    assert {name: steps for name, (steps, _, _) in found.items()} == TARGET
    assert {name: counted for name, (_, counted, _) in found.items()} == TARGET
    assert {name: n for name, (_, _, n) in found.items()} == sends


def test_a_refused_or_conflicting_commit_on_a_cluster_corrects_its_counts_in_one_step(
    make_redis_store: Callable[..., RedisStore],
) -> None:
    """On a Cluster the expected outcome's counts go out with the commit; a refusal or
    a conflict costs one more step, which leaves the statistics as on one server."""
    wire = Wire()
    store = make_redis_store("redis+cluster", connection_class=wire.connection_class)
    cap, sitewide = (Cap(1, 600),), (Cap(5, 60),)
    store.commit("s", "v1", claim_write(0, 100.0, cap))  # warm: the script is loaded
    store.client().ping(target_nodes="all")
    version = store.load("s", "v1", 100.0).version

    def steps(write: Write) -> tuple[Outcome, int]:
        before = wire.steps
        outcome = store.commit("s", "v1", write)
        return outcome, wire.steps - before

    assert steps(claim_write(version, 200.0, cap)) == (Outcome.REFUSED, 2)
    assert store.stats("s") == {("r", 0, "shown"): 1, ("r", None, "cap_race"): 1}
    assert steps(claim_write(version, 201.0, cap)) == (Outcome.CONFLICT, 2)
    assert store.stats("s") == {("r", 0, "shown"): 1, ("r", None, "cap_race"): 1}
    version = store.load("s", "v1", 700.0).version
    assert steps(claim_write(version, 700.0, cap, sitewide)) == (Outcome.APPLIED, 2)  # + reserve
    assert store.stats("s") == {("r", 0, "shown"): 2, ("r", None, "cap_race"): 1}
    for n in range(4):  # sitewide invitation ids are their times: one apart
        store.commit("s", f"w{n}", claim_write(0, 701.0 + n, (), sitewide))
    before = wire.steps  # the sitewide cap is used up: refused before the commit, no correction
    assert store.commit("s", "v6", claim_write(0, 710.0, (), sitewide)) is Outcome.REFUSED
    assert wire.steps - before == 2
    assert store.stats("s") == {("r", 0, "shown"): 6, ("r", None, "cap_race"): 2}


def test_a_cluster_commit_whose_script_is_not_loaded_runs_it_alone_and_counts_once(
    make_redis_store: Callable[..., RedisStore],
) -> None:
    wire = Wire()
    store = make_redis_store("redis+cluster", connection_class=wire.connection_class)
    client = store.client()
    client.ping(target_nodes="all")  # connected: no handshake counted below
    for node in client.get_primaries():  # as after a failover to a fresh node
        client.get_redis_connection(node).script_flush()
    before = wire.steps
    assert store.commit("s", "v1", claim_write(0, 100.0, ())) is Outcome.APPLIED
    assert wire.steps - before == 2  # NOSCRIPT in the pipeline, then EVAL with the source
    assert store.stats("s") == {("r", 0, "shown"): 1}
    version = store.load("s", "v1", 100.0).version
    before = wire.steps
    assert store.commit("s", "v1", claim_write(version, 101.0, ())) is Outcome.APPLIED
    assert wire.steps - before == 1  # loaded now
    assert store.stats("s") == {("r", 0, "shown"): 2}


class CrashBeforeCorrection(RedisStore):
    """The process dies after the Cluster commit answered, before its correction."""

    @contextmanager
    def _io(self, what: str) -> Iterator[None]:
        if what == "commit (correction)":
            raise SystemExit("crashed")
        with super()._io(what):
            yield


def test_a_crash_before_the_cluster_correction_costs_a_statistic_never_an_invitation(
    make_redis_store: Callable[..., RedisStore],
) -> None:
    healthy = make_redis_store("redis+cluster")
    crashing = CrashBeforeCorrection(healthy._connect, cluster=True)
    cap, sitewide = (Cap(1, 600),), (Cap(1, 60),)
    assert healthy.commit("s", "v1", claim_write(0, 100.0, cap)) is Outcome.APPLIED
    version = healthy.load("s", "v1", 200.0).version
    with pytest.raises(SystemExit):  # refused by the visitor's cap, holding a sitewide slot
        crashing.commit("s", "v1", claim_write(version, 200.0, cap, sitewide))
    after = healthy.load("s", "v1", 200.0, sitewide=sitewide)
    assert after.history is not None
    assert decode_history(after.history).ever == 1  # no invitation recorded
    assert after.sitewide[0].used == 1  # the slot it reserved is held till the window ends
    # the expected outcome's count stands, the refusal's is missing: a statistic
    assert healthy.stats("s") == {("r", 0, "shown"): 2}
    crashing.close()


# --- the Lua script mirrors the contract ------------------------------------------------------

RULES = ["a", "b", "B", "_a", "ab"]
caps = st.builds(
    Cap,
    st.integers(1, 4),
    st.sampled_from([60, 600, 3600, "session", "visitor"]),
    st.sampled_from([None, *RULES]),
)
claims = st.lists(
    st.tuples(
        st.sampled_from(["v1", "v1", "v2"]),
        st.sampled_from([0, 0.25, 30, 60, 60, 120, 300, 600]),  # steps that meet windows' ends
        st.sampled_from(["s1", "s2", "s3"]),
        st.sampled_from(RULES),
        st.integers(0, 2),
        st.lists(caps, max_size=2),
        st.lists(st.builds(Cap, st.integers(1, 3), st.sampled_from([60, 600])), max_size=2),
        st.sampled_from([None, "e1", "e2", "e3"]),
        st.booleans(),  # a claim, or just a write
    ),
    min_size=1,
    max_size=40,
)
_sites = itertools.count()


def _comparable(history: bytes | None) -> Any:
    if history is None:
        return None
    log = decode_history(history)
    recent = [(r.id, float(r.at), r.rule, r.variant, r.session) for r in log.recent]
    return (recent, log.session, log.session_count, log.ever, log.by_rule_session,
            log.by_rule_ever, log.last_variant)  # fmt: skip


@pytest.mark.parametrize("kind", ["redis", "redis+cluster"])
@settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=claims)
@example(  # a rolling window ends exactly at the next claim: half-open, it allows it
    steps=[("v1", 30, "s1", "a", 0, [Cap(1, 60)], [], None, True)] * 2
    + [("v1", 60, "s1", "a", 0, [Cap(1, 60)], [Cap(1, 60)], None, True)] * 2
)
@example(  # more than 8 invitations, older ones past keep_for: trimmed to the last 8
    steps=[
        ("v1", 30, "s1" if i < 5 else "s2", RULES[i % 5], i % 3, [], [], f"e{i % 4}", True)
        for i in range(12)
    ]
)
def test_random_claims_give_the_same_outcomes_and_histories_as_the_memory_store(
    make_redis_store: Callable[..., RedisStore], kind: str, steps: list[Any]
) -> None:
    store = _equivalence_store(make_redis_store, kind)
    memory = MemoryStore()
    site = f"eq{next(_sites)}"
    at = 1000.0
    for n, (visitor, step, session, rule, variant, vcaps, scaps, event_id, claiming) in enumerate(
        steps
    ):
        at = round(at + step, 3)
        both = (
            memory.load(site, visitor, at, event_id=event_id),
            store.load(site, visitor, at, event_id=event_id),
        )
        assert both[0].replay == both[1].replay
        assert _comparable(both[0].history) == _comparable(both[1].history)
        claim = None
        if claiming:
            invitation = InvitationRecord(f"i{n}", at, rule, variant, session)
            claim = Claim(invitation, tuple(vcaps), tuple(scaps), 120, 600)
        entry = None
        if event_id is not None:
            entry = Remember(event_id, at, f"d{n}".encode(), f"r{n}".encode(), 300, 2)
        counts, refused = ((rule, variant, "shown"),), ((rule, None, "cap_race"),)
        for s, loaded in zip((memory, store), both, strict=True):
            write = Write(loaded.version, at, b"p%d" % n, 900, claim, entry, counts, refused)
            outcome = s.commit(site, visitor, write)
            if s is memory:
                expected = outcome
            else:
                assert outcome is expected
    for now in (at, at + 30, at + 300):
        sitewide = (Cap(1, 60), Cap(2, 600), Cap(3, 600))
        assert memory.load(site, "v1", now, sitewide=sitewide).sitewide == (
            store.load(site, "v1", now, sitewide=sitewide).sitewide
        )
    assert memory.stats(site) == store.stats(site)


_equivalence: dict[str, RedisStore] = {}


def _equivalence_store(make: Callable[..., RedisStore], kind: str) -> RedisStore:
    """One flushed store per kind for all examples (each example uses its own site)."""
    if kind not in _equivalence:
        _equivalence[kind] = make(kind)
    return _equivalence[kind]
