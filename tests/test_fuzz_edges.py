"""Fuzzing the edges: whatever an event, a library call or a traffic line holds, the
answer is a decision or a clear error (EventError; for the CLI an exit code and a
one-line message), never a traceback. Bounded to a few seconds in the default run.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import examples
from politely import Decision, Engine, EventError
from politely.cli import main
from politely.explain import Explanation

SETTINGS = settings(
    max_examples=examples(100),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

SITE = """\
policy {
    at most 3 invitations per session
    quiet 1h after dismiss
}

rule pricing {
    when page.path matches "/pricing*" and page.dwell >= 5s and agents.available > 0
    say "Hi {visitor.name or there}!"
    during mon-fri 09:00-17:00 in "Europe/Berlin"
}

rule deal {
    on exit_intent
    when visitor.cart >= 100 or event.reason contains "price"
    say "Free shipping today."
}
"""
ENGINE = Engine.from_source(SITE)

# JSON-ish values, with the awkward ones well represented.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["", "x" * 1001, "\x00", "\ud7ff", "/pricing", "🙂" * 5]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)
times = st.one_of(
    values,
    st.floats(min_value=-1e12, max_value=1e12),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.datetimes(timezones=st.none() | st.just(UTC)),
    st.sampled_from(
        [
            "2026-01-05T10:00:00Z",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "2026-03-29T02:30:00+01:00",
            "2026-01-05",
            "tomorrow",
            "1767607200",
        ]
    ),
)
urls = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "http://[::1",
            "https://[not-an-ip]/x",
            "https://ex\uff0fample.com/x",
            "//host/pricing?a=1#f",
            "/pricing?utm_source=x",
            "https://shop.example/pricing#faq",
            "mailto:a@b",
            "/" + "p" * 3000,
        ]
    ),
)
KEYS = ["session", "title", "referrer", "country", "language", "device", "invitation", "id"]
events = st.fixed_dictionaries(
    {
        "visitor": st.one_of(st.sampled_from(["v1", "v2", "v3"]), values),
        "event": st.one_of(
            st.sampled_from(["page_view", "tick", "exit_intent", "invitation_dismissed"]), values
        ),
    },
    optional={
        "at": times,
        "url": urls,
        "scroll": st.one_of(values, st.floats(min_value=-10, max_value=110)),
        "props": values,
        "attributes": values,
        "page": values,
        **{key: values for key in KEYS},
    },
)


def decided_or_refused(call: Any, answer: type | None = None) -> None:
    """The call answers (with an `answer` when given) or raises a one-line EventError."""
    message = None
    try:
        result = call()
    except EventError as error:
        message = str(error)
    if message is not None:
        assert message  # a message naming what is wrong...
        assert "\n" not in message  # ...on one line
    elif answer is not None:
        assert isinstance(result, answer)


@SETTINGS
@given(event=events)
def test_any_event_gets_a_decision_or_an_event_error(event: dict[str, Any]) -> None:
    decided_or_refused(lambda: ENGINE.evaluate(event), Decision)
    decided_or_refused(lambda: ENGINE.explain(event), Explanation)


@SETTINGS
@given(
    counts=st.lists(
        st.one_of(st.integers(min_value=-2, max_value=5), values), min_size=4, max_size=4
    ),
    at=st.one_of(st.none(), times),
    until=st.one_of(st.none(), times),
    visitor=st.one_of(st.just("v1"), values),
)
def test_any_library_call_works_or_raises_event_error_at_the_call(
    counts: list[Any], at: Any, until: Any, visitor: Any
) -> None:
    engine = Engine.from_source(SITE)
    online, available, length, wait = counts
    for call in (
        lambda: engine.set_agents(
            online=online, available=available, queue_length=length, queue_wait=wait, at=at
        ),
        lambda: engine.block(visitor, "reason", until=until, at=at),
        lambda: engine.blocks(at=at),
        lambda: engine.visitor_state("v1", at=at),
    ):
        decided_or_refused(call)
    # Whatever was accepted, later calls still work.
    engine.blocks()
    engine.evaluate({"visitor": "v1", "event": "page_view", "url": "/pricing"})
    engine.evaluate({"visitor": "v1", "event": "tick", "at": "2026-01-05T10:00:00Z"})
    engine.stats()


def _line(item: Any) -> bytes:
    try:
        return json.dumps(item, allow_nan=True).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError):
        return b"{}"


raw_lines = st.one_of(
    st.binary(max_size=60),
    events.map(_line),
    st.fixed_dictionaries({"at": times, "agents": values}).map(_line),
    st.fixed_dictionaries({"at": times, "block": values}).map(_line),
    st.fixed_dictionaries({"at": times, "unblock": values}).map(_line),
    st.builds(lambda d: b'{"at": 0, "props": ' + b"[" * d + b"]" * d + b"}", st.integers(0, 3000)),
)
START = datetime(2026, 1, 5, 10, tzinfo=UTC).timestamp()
GOOD = [
    json.dumps({"at": START, "agents": {"online": 1, "available": 1}}).encode(),
    json.dumps({"at": START, "visitor": "v1", "event": "page_view", "url": "/pricing"}).encode(),
    json.dumps({"at": START + 6, "visitor": "v1", "event": "tick"}).encode(),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("site") / "site.rules"
    path.write_text(SITE, encoding="utf-8")
    return path


@settings(SETTINGS, max_examples=examples(40))
@given(lines=st.lists(raw_lines, max_size=3), where=st.integers(0, 3))
def test_any_traffic_gives_a_summary_or_an_exit_code_and_a_message(
    site: Path,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    lines: list[bytes],
    where: int,
) -> None:
    traffic = tmp_path_factory.mktemp("traffic") / "traffic.jsonl"
    traffic.write_bytes(b"\n".join(GOOD[:where] + lines + GOOD[where:]) + b"\n")
    for argv in (
        ["simulate", str(site), str(traffic)],
        ["simulate", str(site), str(traffic), "--json", "--ticks"],
        ["explain", str(site), str(traffic), "--visitor", "v1"],
    ):
        code = main(argv)  # any exception would escape here and fail the test
        out, err = capsys.readouterr()
        assert code in (0, 1, 2)
        assert "Traceback" not in err
        if code:  # one line saying what is wrong (after the note on sorting, if any)
            last = err.splitlines()[-1]
            assert last.startswith("politely: ")
            assert len(err.splitlines()) == 1 or "not in time order" in err
        else:
            assert out


def test_the_fuzzed_values_include_what_used_to_escape() -> None:
    """The strategies reach the inputs of the issue (a sanity check on the fuzzer)."""
    assert math.isnan(float("nan"))
    for event in (
        {"visitor": "v", "event": "page_view", "url": "http://[::1"},
        {"visitor": "v", "event": "tick", "at": "0001-01-01T00:00:00Z"},
        {"visitor": "v", "event": "tick", "attributes": {"x": 2**70}},
    ):
        with pytest.raises(EventError):
            ENGINE.evaluate(event)
