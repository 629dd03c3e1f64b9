"""The generated code agrees with an independent interpreter (tests/oracle.py).

Rule sets come from the condition strategy of test_recheck.py plus atoms for the
fields it leaves out (custom values of every type, nested ones, attributes sent
with the wrong type, utm, referrers); visitor states, events and agent statuses
are generated with missing and wrongly typed values. For every rule, the
unindexed `RuleSet.matching`, the index (`candidates`, the bucket functions)
and the policy's `only`/`never` functions must say what the oracle says.
"""

from __future__ import annotations

import functools
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conftest import examples
from oracle import holds
from politely import check_sources, compile_rules
from politely.models import Event
from politely.ruleset import RuleSet
from politely.state import AgentStatus, InvitationLog, InvitationRecord, VisitorState
from test_recheck import OPS, PATHS, _atom_choices

NOW = 1_767_600_000.0
TEXTS = ["", "pro", "US", "x=1", "/pricing", "Pro plan", "a*b"]
ANY_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 200),
    st.sampled_from([0.5, 99.5, 100.0, 30.0]),
    st.sampled_from(TEXTS),
    st.just({"b": 3, "c": "pro"}),
    st.just([1, 2]),
)


_FIXED_ATOMS = [
    "visitor.vip",
    "event.flag",
    "visitor.returning",
    "not visitor.returning",
    'visitor.country == "US"',
    'visitor.country in ["US", "CA"]',
    'visitor.device != "mobile"',
    'visitor.language matches "e?"',
    'session.utm_source == "ads"',
    'session.utm_campaign != "spring"',
    'session.referrer contains "google"',
    'session.landing matches "/pricing*"',
    'page.title contains "Pro"',
    'page.referrer == ""',
    'page.url matches "*x=1*"',
    "page.scroll < 50%",
    "visitor.visits >= 2",
    "visitor.chats == 0",
    "queue.length > 1",
    'event in ["page_view", "help"]',
    'event != "tick"',
    'page.path not in ["/", "/pricing"]',
]


def _atoms() -> st.SearchStrategy[str]:
    """Every atom shape as its own branch, so each is drawn often."""
    op = st.sampled_from(OPS)
    custom = st.sampled_from(
        ["visitor.plan", "visitor.cart", "event.kind", "event.n", "visitor.a.b"]
    )
    numbers = st.sampled_from(["0", "3", "99.5", "100", "30s", "50%"])
    texts = st.sampled_from(['"pro"', '""', "true", "false"])
    lists = st.sampled_from(['["pro", "US"]', "[1, 3, 100]", "[30s, 1m]"])
    return st.one_of(
        *_atom_choices(),
        st.builds("{} {} {}".format, custom, op, numbers),
        st.builds("{} {} {}".format, custom, st.sampled_from(["==", "!="]), texts),
        st.builds("{} {} {}".format, custom, st.sampled_from(["in", "not in"]), lists),
        st.builds("{} matches {}".format, custom, st.sampled_from(['"p*"', '"?ro"', '"*"'])),
        st.builds("{} contains {}".format, custom, st.sampled_from(['"r"', '"pro"'])),
        *(st.just(atom) for atom in _FIXED_ATOMS),
    )


@functools.cache  # one strategy, not a new tree to validate at every draw
def _conditions() -> st.SearchStrategy[str]:
    atom = _atoms()
    return st.one_of(
        atom,
        atom,
        st.builds("({}) and ({})".format, atom, atom),
        st.builds("({}) or not ({})".format, atom, atom),
    )


@st.composite
def sites(draw: st.DrawFn) -> str:
    parts = []
    gates = draw(st.sampled_from(["", "only", "never", "both"]))
    if gates:
        lines = ["policy {"]
        if gates in ("only", "both"):
            lines.append(f"only when {draw(_conditions())}")
        if gates in ("never", "both"):
            lines.append(f"never when {draw(_conditions())}")
        parts.append("\n".join([*lines, "}"]))
    for i in range(draw(st.integers(1, 10))):
        on = draw(st.sampled_from(["", "on tick", "on help", "on page_view, help"]))
        parts.append(f'rule r{i} {{ {on} when {draw(_conditions())} say "Hi" }}')
    return "\n".join(parts) + "\n"


_maybe_text = st.one_of(st.none(), st.sampled_from([*TEXTS, "https://google.com/", "ads"]))
_seconds = st.integers(0, 4000).map(float) | st.sampled_from([0.5, 29.5, 86399.0, 86400.0])


@st.composite
def visits(draw: st.DrawFn) -> tuple[VisitorState, Any, AgentStatus | None, float]:
    now = NOW + draw(st.sampled_from([0.0, 0.5]))
    s = VisitorState()
    s.session = draw(st.sampled_from([None, "s1", "s2"]))
    s.session_start = draw(st.one_of(st.none(), _seconds.map(lambda d: now - d)))
    s.pageviews = draw(st.integers(0, 4))
    s.landing = draw(st.one_of(st.none(), st.sampled_from(PATHS)))
    s.session_referrer = draw(_maybe_text)
    if draw(st.booleans()):
        s.utm = (draw(_maybe_text), draw(_maybe_text), draw(st.sampled_from([None, "spring"])))
    s.visits = draw(st.integers(0, 3))
    s.chats = draw(st.integers(0, 2))
    s.page_path = draw(st.one_of(st.none(), st.sampled_from(PATHS)))
    if s.page_path is not None:
        s.page_url = s.page_path + draw(st.sampled_from(["", "?x=1", "?y=2&x=1"]))
    s.page_title = draw(_maybe_text)
    s.page_referrer = draw(_maybe_text)
    s.page_start = draw(st.one_of(st.none(), _seconds.map(lambda d: now - d)))
    s.scroll = float(draw(st.sampled_from([0, 25, 50, 75.5, 100])))
    if draw(st.booleans()):
        keys = st.sampled_from(["plan", "cart", "vip", "a", "country", "language", "device"])
        s.attributes = draw(st.dictionaries(keys, ANY_VALUES, max_size=5))
    if draw(st.booleans()):
        log = InvitationLog()
        log.session = draw(st.sampled_from([None, "s1", "s2"]))
        log.session_count = draw(st.integers(0, 3))
        ages = sorted(draw(st.lists(_seconds, max_size=4)), reverse=True)
        log.recent = [
            InvitationRecord(f"i{k}", now - age, "r0", 0, "s1") for k, age in enumerate(ages)
        ]
        s.log = log
    name = draw(st.sampled_from(["page_view", "tick", "help"]))
    keys = st.sampled_from(["kind", "n", "flag", "a"])
    event = Event.model_construct(
        event=name, props=draw(st.dictionaries(keys, ANY_VALUES, max_size=3))
    )
    agents = None
    if draw(st.booleans()):
        agents = AgentStatus(
            draw(st.integers(0, 3)),
            draw(st.integers(0, 3)),
            draw(st.integers(0, 3)),
            float(draw(st.sampled_from([0, 20, 30, 60, 90]))),
            now,
        )
    return s, event, agents, now


def _compiled(source: str) -> RuleSet | None:
    result = check_sources({"site.rules": source})
    return compile_rules(result) if result.ok else None


@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(source=sites(), contexts=st.lists(visits(), min_size=1, max_size=6))
def test_generated_code_agrees_with_the_interpreter(
    source: str, contexts: list[tuple[VisitorState, Any, AgentStatus | None, float]]
) -> None:
    rules = _compiled(source)
    assume(rules is not None)
    assert rules is not None
    policy = rules.policy
    for state, event, agents, now in contexts:
        held = [r for r in rules.by_rank if holds(r.condition, state, event, agents, now)]
        matching = rules.matching(state, event, agents, now)
        assert [r.name for r in matching] == [r.name for r in held], source
        listening = [r.name for r in held if event.event in r.events]
        found = rules.candidates(event, state, agents, now)
        assert [r.name for r in found] == listening, source
        for gate, condition in (("only", policy.only_condition), ("never", policy.never_condition)):
            if condition is not None:
                function = getattr(policy, gate)
                expected = holds(condition, state, event, agents, now)
                assert function(state, event, agents, now) == expected, (gate, source)
