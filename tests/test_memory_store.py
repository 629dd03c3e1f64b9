"""The store seam: atomic commits, races, expiry; the memory store's eviction.

Tests taking `make_store` run on every store kind (conftest.STORE_KINDS).

Races are forced with `racing.Racing`: every racer loads the same snapshot
before any commits. Each guarantee is also shown to fail against a
deliberately broken store (no version check, or no cap re-check), so the
tests can fail.
"""

from __future__ import annotations

import gc
import logging
import warnings

import pytest

from conftest import FakeClock, MakeStore
from events import DAY, HOUR, MakeEngine
from politely import Engine, MemoryStore
from politely.caps import Cap
from politely.codec import decode_history, encode_profile
from politely.state import Block, InvitationRecord, VisitorState
from politely.stores.base import Claim, Outcome, Write
from racing import Racing, invited, run_concurrently

ALWAYS = 'rule r { on page_view when session.pageviews >= 1 say "Hi" or "Hello" }\n'
PAGE = {"visitor": "v1", "event": "page_view", "url": "/"}


class NoVersionCheck(MemoryStore):
    """Broken on purpose: last writer wins, as the store did before the seam."""

    def commit(self, site: str, visitor: str, write: Write) -> Outcome:
        current = self.load(site, visitor, write.at).version
        return super().commit(site, visitor, _with_version(write, current))


class NoCapCheck(NoVersionCheck):
    """Broken on purpose: neither the version nor the caps are checked at commit."""

    def commit(self, site: str, visitor: str, write: Write) -> Outcome:
        if write.claim is not None:
            free = Claim(write.claim.record, (), (), write.claim.keep_for, 0)
            write = Write(
                write.version, write.at, write.profile, write.keep_for, free, write.remember,
                write.counts,
            )  # fmt: skip
        return super().commit(site, visitor, write)


def _with_version(write: Write, version: int) -> Write:
    return Write(
        version, write.at, write.profile, write.keep_for, write.claim, write.remember,
        write.counts, write.refused_counts,
    )  # fmt: skip


def engine_on(source: str, store: object, clock: FakeClock) -> Engine:
    return Engine.from_source(source, store=store, clock=clock, trust_event_time=False)  # type: ignore[arg-type]


def suppressed(engine: Engine) -> dict[str, int]:
    return engine.stats().rules[0].suppressed


def record(at: float, session: str = "s1") -> InvitationRecord:
    return InvitationRecord(f"i{at}", at, "r", 0, session)


def claim_write(
    version: int, at: float, caps: tuple[Cap, ...], sitewide: tuple[Cap, ...] = ()
) -> Write:
    claim = Claim(record(at), caps, sitewide, keep_for=3600, keep_sitewide_for=3600)
    return Write(
        version, at, encode_profile(VisitorState()), 86400, claim,
        counts=(("r", 0, "shown"),), refused_counts=(("r", None, "cap_race"),),
    )  # fmt: skip


# --- the atomic commit ----------------------------------------------------------------------


def test_a_commit_on_a_stale_version_changes_nothing(make_store: MakeStore) -> None:
    store = make_store()
    assert store.commit("s", "v1", claim_write(0, 100.0, ())) is Outcome.APPLIED
    assert store.commit("s", "v1", claim_write(0, 101.0, ())) is Outcome.CONFLICT
    loaded = store.load("s", "v1", 102.0)
    assert loaded.history is not None
    assert decode_history(loaded.history).ever == 1
    assert store.stats("s") == {("r", 0, "shown"): 1}


def test_a_claim_past_a_visitor_cap_is_refused_but_the_rest_is_saved(make_store: MakeStore) -> None:
    store = make_store()
    cap = (Cap(1, 600),)
    assert store.commit("s", "v1", claim_write(0, 100.0, cap)) is Outcome.APPLIED
    version = store.load("s", "v1", 100.0).version
    assert store.commit("s", "v1", claim_write(version, 200.0, cap)) is Outcome.REFUSED
    after = store.load("s", "v1", 200.0)
    assert after.version != version  # the profile was saved
    assert after.history is not None
    assert decode_history(after.history).ever == 1
    assert store.stats("s") == {("r", 0, "shown"): 1, ("r", None, "cap_race"): 1}
    assert store.commit("s", "v1", claim_write(after.version, 700.0, cap)) is Outcome.APPLIED


def test_a_sitewide_claim_is_refused_across_visitors(make_store: MakeStore) -> None:
    store = make_store()
    sitewide = (Cap(2, 60),)
    outcomes = [
        store.commit("s", f"v{i}", claim_write(0, 100.0 + i, (), sitewide)) for i in range(4)
    ]
    assert outcomes == [Outcome.APPLIED, Outcome.APPLIED, Outcome.REFUSED, Outcome.REFUSED]
    usage = store.load("s", "v9", 130.0, sitewide=sitewide).sitewide
    assert [(u.used, u.release, u.release_after_one) for u in usage] == [(2, 160.0, 161.0)]
    assert store.load("s", "v9", 160.0, sitewide=sitewide).sitewide[0].used == 1


def test_sites_sharing_a_store_keep_apart(make_store: MakeStore) -> None:
    store = make_store()
    store.commit("a", "v1", claim_write(0, 100.0, ()))
    assert store.load("b", "v1", 100.0).version == 0
    assert store.stats("b") == {}
    store.block("a", "v1", Block("abusive"))
    assert store.blocks("b", 100.0) == {}


def test_the_sitewide_usage_is_two_numbers_however_many_invitations(make_store: MakeStore) -> None:
    store = make_store()
    sitewide = (Cap(100, 3600),)
    for i in range(5000):
        at = float(i % 1800)
        invitation = InvitationRecord(f"i{i}", at, "r", 0, "s1")
        claim = Claim(invitation, (), (Cap(10_000, 3600),), 3600, 3600)
        store.commit("s", f"v{i}", Write(0, at, None, 86400, claim))
    usage = store.load("s", "x", 1800.0, sitewide=sitewide).sitewide[0]
    times = sorted(float(i % 1800) for i in range(5000))
    assert usage.used == 100  # counted up to the cap's limit: the cap is full
    assert usage.release == times[5000 - 100] + 3600  # when the 100 newest alone remain
    assert usage.release_after_one == times[5000 - 99] + 3600


# --- races: the engine's reload on conflict -------------------------------------------------------


@pytest.mark.parametrize("workers", [2, 8])
def test_racing_page_views_of_one_visitor_grant_the_cap_and_lose_no_event(
    make_store: MakeStore, clock: FakeClock, workers: int
) -> None:
    engine = engine_on(ALWAYS, Racing(make_store(), workers), clock)
    decisions = run_concurrently(engine, [PAGE] * workers, workers)
    assert invited(decisions) == 1  # the default policy: 1 invitation per 10m
    state = engine.visitor_state("v1")
    assert state is not None
    assert state.pageviews == workers  # every page view counted: none lost
    assert suppressed(engine) == {"visitor_cap": workers - 1}


def test_without_the_version_check_racing_events_are_lost(clock: FakeClock) -> None:
    """The race test above can fail: the same race on a last-writer-wins store."""
    engine = engine_on(ALWAYS, Racing(NoVersionCheck(), 8), clock)
    decisions = run_concurrently(engine, [PAGE] * 8, 8)
    assert invited(decisions) == 1  # the cap re-check still holds...
    state = engine.visitor_state("v1")
    assert state is not None
    assert state.pageviews < 8  # ...but page views were lost


def test_without_any_commit_check_a_race_over_grants(clock: FakeClock) -> None:
    engine = engine_on(ALWAYS, Racing(NoCapCheck(), 8), clock)
    assert invited(run_concurrently(engine, [PAGE] * 8, 8)) > 1


def test_a_dismissal_racing_a_page_view_is_never_lost(
    make_store: MakeStore, clock: FakeClock
) -> None:
    """The lost dismissal of the old store: the visitor was invited again an hour later."""
    source = "policy { quiet 1d after dismiss }\n" + ALWAYS
    for _ in range(20):
        engine = engine_on(source, Racing(make_store(), 2), clock)
        dismiss = {"visitor": "v1", "event": "invitation_dismissed"}
        run_concurrently(engine, [PAGE, dismiss], 2)
        clock.advance(HOUR)
        assert engine.evaluate(PAGE).invitation is None
        state = engine.visitor_state("v1")
        assert state is not None
        assert state.last_dismiss is not None


def test_a_chat_start_racing_a_page_view_is_never_lost(
    make_store: MakeStore, clock: FakeClock
) -> None:
    for _ in range(20):
        engine = engine_on(ALWAYS, Racing(make_store(), 2), clock)
        chat = {"visitor": "v1", "event": "chat_started"}
        run_concurrently(engine, [chat, PAGE], 2)
        clock.advance(600)  # within the session: the chat is still open
        decision = engine.evaluate(PAGE)
        assert decision.chat == "in_chat"
        assert decision.invitation is None


def test_racing_visitors_never_exceed_a_sitewide_cap(
    make_store: MakeStore, clock: FakeClock
) -> None:
    source = "policy { at most 5 invitations per 1m sitewide }\n" + ALWAYS
    workers = 20
    engine = engine_on(source, Racing(make_store(), workers), clock)
    events = [{"visitor": f"v{i}", "event": "page_view", "url": "/"} for i in range(workers)]
    assert invited(run_concurrently(engine, events, workers)) == 5
    assert suppressed(engine) == {"cap_race": workers - 5}


def test_a_refused_decision_is_what_a_retry_returns(
    make_store: MakeStore, clock: FakeClock
) -> None:
    source = "policy { at most 1 invitation per 1m sitewide }\n" + ALWAYS
    engine = engine_on(source, Racing(make_store(), 2), clock)
    events = [{**PAGE, "visitor": v, "id": "e1"} for v in ("v1", "v2")]
    decisions = run_concurrently(engine, events, 2)
    assert invited(decisions) == 1
    refused = next(d for d in decisions if d.invitation is None)
    assert refused.recheck_in == 1
    loser = events[decisions.index(refused)]
    assert engine.evaluate(loser) == refused


def test_unsynchronised_threads_respect_a_session_cap(make_engine: MakeEngine) -> None:
    engine = make_engine("policy { at most 3 invitations per session }\n" + ALWAYS)
    events = [{"visitor": "v1", "session": "s1", "event": "page_view", "url": "/"}] * 300
    decisions = run_concurrently(engine, events, 16)
    assert invited(decisions) == 3
    state = engine.visitor_state("v1")
    assert state is not None
    # Every event answered is recorded. On a loaded machine a networked store may
    # time out under 16 threads on one visitor: that event fails quiet (degraded,
    # maybe written), which is the contract, and is counted apart.
    answered = sum(not d.degraded for d in decisions)
    assert answered <= state.pageviews <= 300
    assert answered >= 290


# --- expiry and eviction --------------------------------------------------------------------


def test_an_idle_visitor_expires_after_the_retention(
    make_store: MakeStore, clock: FakeClock
) -> None:
    store = make_store()
    engine = Engine.from_source(ALWAYS, store=store, clock=clock, trust_event_time=False,
                                retention=2 * DAY)  # fmt: skip
    engine.evaluate(PAGE)
    clock.advance(2 * DAY - 1)
    assert engine.visitor_state("v1") is not None
    clock.advance(2)
    assert engine.visitor_state("v1") is None


def test_activity_renews_the_retention(make_store: MakeStore, clock: FakeClock) -> None:
    engine = Engine.from_source(ALWAYS, store=make_store(), clock=clock, trust_event_time=False,
                                retention=2 * DAY)  # fmt: skip
    for _ in range(5):
        engine.evaluate(PAGE)
        clock.advance(DAY + HOUR)
    assert engine.visitor_state("v1") is not None


def test_the_rules_retention_wins_over_a_shorter_one(make_engine: MakeEngine) -> None:
    """The default policy's quiet periods last a day: a 100 s retention would break them."""
    engine = make_engine(ALWAYS, retention=100)
    assert engine.keep_visitors_for == engine.rules.retention == DAY


def test_a_lifetime_cap_keeps_visitors_forever(make_engine: MakeEngine, clock: FakeClock) -> None:
    engine = make_engine("policy { at most 1 invitation per visitor }\n" + ALWAYS)
    assert engine.evaluate(PAGE).invitation is not None
    clock.advance(400 * DAY)
    assert engine.evaluate(PAGE).invitation is None


def test_an_event_from_the_far_future_expires_nobody_else(make_store: MakeStore) -> None:
    engine = Engine.from_source(ALWAYS, store=make_store())  # trusted event time, as in the library
    engine.evaluate({**PAGE, "at": 1000})
    engine.evaluate({**PAGE, "visitor": "v2", "at": 1000 + 400 * DAY})
    engine.evaluate({**PAGE, "at": 1600})
    state = engine.visitor_state("v1", at=1600)
    assert state is not None
    assert state.pageviews == 2


def test_an_expired_visitor_comes_back_new_without_its_history(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(ALWAYS, retention=DAY)
    engine.evaluate(PAGE)
    clock.advance(DAY + 1)
    engine.evaluate(PAGE)
    state = engine.visitor_state("v1")
    assert state is not None
    assert state.visits == 1
    assert state.log is not None
    assert state.log.ever == 1


def test_eviction_at_maxsize_is_counted_and_logged(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryStore(maxsize=10)
    engine = engine_on(ALWAYS, store, clock)
    with caplog.at_level(logging.WARNING, logger="politely.store"):
        for i in range(14):
            engine.evaluate({**PAGE, "visitor": f"v{i}"})
    assert len(store) == 10
    assert store.evictions == 4
    assert [r.getMessage() for r in caplog.records] == [
        f"memory store full (maxsize 10): {n} visitors forgotten early so far" for n in (1, 2, 4)
    ]
    assert engine.visitor_state("v0") is None
    assert engine.visitor_state("v13") is not None


def test_visitors_add_nothing_a_garbage_collection_walks(clock: FakeClock) -> None:
    """A million visitors must not make every full collection walk a million
    objects: held visitors are bytes under text keys, never tracked."""
    store = MemoryStore()
    engine = engine_on(ALWAYS, store, clock)
    engine.evaluate({**PAGE, "visitor": "warm-up", "id": "e0"})
    engine.clear_recent()
    with warnings.catch_warnings():  # what earlier tests left to the collector is theirs
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    before = len(gc.get_objects())
    for i in range(2000):
        engine.evaluate({**PAGE, "visitor": f"v{i}", "id": f"e{i}"})  # ids are remembered too
    engine.clear_recent()  # the engine's bounded cache of decoded states, not the store
    gc.collect()
    assert len(store) == 2001
    assert len(gc.get_objects()) - before < 100


def test_the_visitor_written_longest_ago_is_evicted_first(clock: FakeClock) -> None:
    """A write (a page view) moves a visitor to the back; a read does not."""
    store = MemoryStore(maxsize=3)
    engine = engine_on(ALWAYS, store, clock)
    for name in ("v0", "v1", "v2"):
        engine.evaluate({**PAGE, "visitor": name})
    engine.visitor_state("v0")  # a read: v0 stays first in line
    engine.evaluate({**PAGE, "visitor": "v1"})  # a write: v1 goes to the back
    engine.evaluate({**PAGE, "visitor": "v3"})
    assert engine.visitor_state("v0") is None
    engine.evaluate({**PAGE, "visitor": "v4"})
    assert engine.visitor_state("v2") is None
    assert [engine.visitor_state(v) is not None for v in ("v1", "v3", "v4")] == [True] * 3


def test_blocks_are_never_evicted(make_engine: MakeEngine, clock: FakeClock) -> None:
    engine = make_engine(ALWAYS, retention=DAY)
    engine.block("v1", "abusive")
    engine.evaluate(PAGE)
    clock.advance(10 * 365 * DAY)
    assert "v1" in engine.blocks()
    decision = engine.evaluate(PAGE)
    assert decision.chat == "blocked"
    assert decision.invitation is None


def test_an_expired_block_is_dropped_on_the_injected_clock(
    make_store: MakeStore, clock: FakeClock
) -> None:
    store = make_store()
    store.block("s", "v1", Block("short", until=clock.now + 50, at=clock.now))
    assert store.load("s", "v1", clock.now + 49).block is not None
    assert store.load("s", "v1", clock.now + 50).block is None
    assert store.blocks("s", clock.now + 50) == {}


def test_forget_erases_a_visitor_and_its_block(make_engine: MakeEngine) -> None:
    engine = make_engine(ALWAYS)
    engine.evaluate(PAGE)
    engine.block("v1", "asked to be forgotten")
    assert engine.forget("v1")
    assert engine.visitor_state("v1") is None
    assert engine.blocks() == {}
    assert not engine.forget("v1")


def test_a_decision_does_not_change_a_held_state(make_engine: MakeEngine) -> None:
    engine = make_engine(ALWAYS)
    engine.evaluate({**PAGE, "url": "/a", "attributes": {"x": 1}})
    held = engine.visitor_state("v1")
    assert held is not None
    engine.evaluate({**PAGE, "url": "/b", "attributes": {"x": None, "y": 2}})
    assert (held.page_path, held.pageviews, held.attributes) == ("/a", 1, {"x": 1})


# --- failing quiet --------------------------------------------------------------------------


class Broken(MemoryStore):
    def load(self, *args: object, **kwargs: object) -> object:  # type: ignore[override]
        from politely import StoreError

        raise StoreError("the store is down")


def test_a_failing_store_gives_a_degraded_decision_without_invitation(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    engine = engine_on(ALWAYS, Broken(), clock)
    with caplog.at_level(logging.WARNING, logger="politely.engine"):
        decision = engine.evaluate(PAGE)
    assert decision.invitation is None
    assert decision.degraded
    assert decision.model_dump()["degraded"] is True
    assert engine.degraded == 1
    assert "the store is down" in caplog.text


def test_a_healthy_decision_has_no_degraded_key(make_engine: MakeEngine) -> None:
    decision = make_engine(ALWAYS).evaluate(PAGE)
    assert "degraded" not in decision.model_dump()
    assert "visitor" not in decision.model_dump()


@pytest.mark.parametrize("url", ["memory://", "memory://anything"])
def test_open_store_gives_a_memory_store(url: str) -> None:
    from politely import open_store

    assert isinstance(open_store(url), MemoryStore)


def test_open_store_refuses_an_unknown_url_with_a_store_error() -> None:
    from politely import StoreError, open_store

    with pytest.raises(StoreError, match="unknown store URL"):
        open_store("mysql://db")
