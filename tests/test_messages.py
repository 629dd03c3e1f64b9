"""Messages: which variant a visitor reads, and how templates render (docs/semantics.md 6).

The first variant comes from a stable hash of (visitor, rule), the same in any
process; each later invitation of that rule to that visitor takes the next
variant, wrapping. Templates insert field values as plain text, with a
fallback for missing or empty values; no markup ever reaches the site.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from typing import Any

import pytest

import politely
from conftest import FakeClock
from events import MakeEngine, view
from politely import Engine, Invitation

LOOSE = "policy { at most 1000 invitations per visitor }\n"
VARIANTS = ("One", "Two", "Three")
THREE = 'rule r { on page_view when session.pageviews >= 1 say "One" or "Two" or "Three" }\n'


def invitation(engine: Engine, visitor: str = "v1", **fields: Any) -> Invitation:
    found = view(engine, visitor, **fields).invitation
    assert found is not None
    return found


def say(make_engine: MakeEngine, template: str) -> Callable[..., str]:
    """`render(**event fields)`: the message a fresh visitor's page view gets."""
    engine = make_engine(
        LOOSE + f'rule r {{ on page_view when session.pageviews >= 1 say "{template}" }}'
    )
    count = iter(range(1_000_000))

    def render(**fields: Any) -> str:
        return invitation(engine, f"visitor-{next(count)}", **fields).message

    return render


# --- variants -------------------------------------------------------------------------------


def test_the_message_is_the_variant_named_by_its_index(make_engine: MakeEngine) -> None:
    engine = make_engine(LOOSE + THREE)
    for visitor in ("a", "b", "c", "d", "e"):
        found = invitation(engine, visitor)
        assert found.message == VARIANTS[found.variant]


def test_the_first_variant_is_the_same_across_engine_instances(
    make_engine: MakeEngine,
) -> None:
    visitors = [f"visitor-{i}" for i in range(30)]
    first = [invitation(make_engine(LOOSE + THREE), v).variant for v in visitors]
    second = [invitation(make_engine(LOOSE + THREE), v).variant for v in visitors]
    assert first == second


def test_the_first_variant_does_not_depend_on_the_other_rules(make_engine: MakeEngine) -> None:
    visitors = [f"visitor-{i}" for i in range(30)]
    alone = make_engine(LOOSE + THREE)
    crowded = make_engine(
        LOOSE + 'rule other { on exit_intent when visitor.visits >= 1 say "X" or "Y" }\n' + THREE
    )
    assert [invitation(alone, v).variant for v in visitors] == [
        invitation(crowded, v).variant for v in visitors
    ]


def test_first_variants_split_visitors_across_every_variant(make_engine: MakeEngine) -> None:
    engine = make_engine(LOOSE + THREE)
    seen = {invitation(engine, f"visitor-{i}").variant for i in range(90)}
    assert seen == {0, 1, 2}


def test_the_first_variant_differs_between_rules_for_some_visitor(make_engine: MakeEngine) -> None:
    engine = make_engine(
        LOOSE
        + 'rule a { on page_view when session.pageviews >= 1 say "1" or "2" or "3" }\n'
        + 'rule b { on exit_intent when session.pageviews >= 1 say "1" or "2" or "3" }\n'
    )
    pairs = []
    for i in range(30):
        visitor = f"visitor-{i}"
        a = invitation(engine, visitor).variant
        b = engine.evaluate({"visitor": visitor, "event": "exit_intent"}).invitation
        assert b is not None
        pairs.append((a, b.variant))
    assert any(a != b for a, b in pairs)


def test_later_invitations_take_the_next_variant_in_order_wrapping(
    make_engine: MakeEngine,
) -> None:
    engine = make_engine(LOOSE + THREE)
    variants = [invitation(engine).variant for _ in range(7)]
    first = variants[0]
    assert variants == [(first + i) % 3 for i in range(7)]


def test_a_visitor_never_reads_the_same_text_twice_in_a_row(make_engine: MakeEngine) -> None:
    engine = make_engine(
        LOOSE + 'rule r { on page_view when session.pageviews >= 1 say "A" or "B" }'
    )
    for visitor in ("x", "y", "z"):
        messages = [invitation(engine, visitor).message for _ in range(6)]
        assert all(a != b for a, b in pairwise(messages))


def test_the_variant_sequence_is_per_rule(make_engine: MakeEngine) -> None:
    engine = make_engine(
        LOOSE
        + THREE
        + 'rule other { priority 5 on exit_intent when visitor.visits >= 1 say "X" or "Y" }\n'
    )
    first = invitation(engine).variant
    engine.evaluate({"visitor": "v1", "event": "exit_intent"})
    assert invitation(engine).variant == (first + 1) % 3


def test_the_variant_sequence_continues_across_sessions(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(LOOSE + THREE)
    first = invitation(engine).variant
    clock.advance(2 * 3600)
    assert invitation(engine).variant == (first + 1) % 3


def test_the_variant_sequence_is_per_visitor(make_engine: MakeEngine) -> None:
    engine = make_engine(LOOSE + THREE)
    invitation(engine, "busy")
    invitation(engine, "busy")
    fresh = make_engine(LOOSE + THREE)
    assert invitation(engine, "quiet").variant == invitation(fresh, "quiet").variant


def test_a_single_message_is_variant_zero(make_engine: MakeEngine) -> None:
    engine = make_engine(LOOSE + 'rule r { on page_view when session.pageviews >= 1 say "Only" }')
    assert [invitation(engine).variant for _ in range(3)] == [0, 0, 0]


def test_shown_counts_are_kept_per_variant(make_engine: MakeEngine) -> None:
    engine = make_engine(LOOSE + THREE)
    for _ in range(4):
        invitation(engine)
    variants = engine.stats().rules[0].variants
    assert sorted(v.shown for v in variants) == [1, 1, 2]
    assert [v.message for v in variants] == list(VARIANTS)


# --- templates ---------------------------------------------------------------------------------


def test_a_field_is_inserted(make_engine: MakeEngine) -> None:
    render = say(make_engine, "Hi {visitor.name}, welcome to {page.path}!")
    assert render(attributes={"name": "Ada"}) == "Hi Ada, welcome to /!"


def test_a_fallback_replaces_a_missing_value(make_engine: MakeEngine) -> None:
    render = say(make_engine, "Hi {visitor.name or there}!")
    assert render() == "Hi there!"
    assert render(attributes={"name": "Ada"}) == "Hi Ada!"


def test_a_fallback_replaces_an_empty_value(make_engine: MakeEngine) -> None:
    render = say(make_engine, "Hi {visitor.name or there}!")
    assert render(attributes={"name": ""}) == "Hi there!"


def test_a_fallback_may_hold_several_words(make_engine: MakeEngine) -> None:
    render = say(make_engine, "Hello {visitor.name or dear visitor}.")
    assert render() == "Hello dear visitor."


def test_a_missing_value_without_fallback_is_left_out(make_engine: MakeEngine) -> None:
    render = say(make_engine, "Hi{visitor.name}!")
    assert render() == "Hi!"


def test_double_braces_are_literal_braces(make_engine: MakeEngine) -> None:
    render = say(make_engine, "Use code {{SPRING}} for {{10%}} off, {visitor.name or friend}")
    assert render() == "Use code {SPRING} for {10%} off, friend"


@pytest.mark.parametrize(
    ("value", "text"),
    [(3, "3"), (120.0, "120"), (2.5, "2.5"), (-4, "-4"), ("12", "12")],
)
def test_numbers_are_rendered_as_plain_text(
    make_engine: MakeEngine, value: object, text: str
) -> None:
    render = say(make_engine, "Cart: {visitor.cart_value}")
    assert render(attributes={"cart_value": value}) == f"Cart: {text}"


def test_known_number_fields_are_rendered_as_text(make_engine: MakeEngine) -> None:
    engine = make_engine(
        LOOSE + 'rule r { on page_view when session.pageviews >= 2 say "Page {session.pageviews}" }'
    )
    view(engine)
    assert invitation(engine).message == "Page 2"


def test_durations_are_rendered_as_text(make_engine: MakeEngine) -> None:
    engine = make_engine(
        LOOSE + 'rule r { on page_view when queue.wait >= 0s say "Wait: {queue.wait}" }'
    )
    engine.set_agents(online=1, available=1, queue_wait=120)
    assert invitation(engine).message in {"Wait: 2m", "Wait: 120s", "Wait: 120", "Wait: 2 minutes"}


def test_event_properties_are_fields_in_messages(make_engine: MakeEngine) -> None:
    engine = make_engine(
        LOOSE + 'rule r { on add_to_cart when event.value >= 1 say "Nice {event.item or pick}!" }'
    )
    view(engine)
    found = engine.evaluate(
        {"visitor": "v1", "event": "add_to_cart", "props": {"value": 3, "item": "teapot"}}
    ).invitation
    assert found is not None
    assert found.message == "Nice teapot!"


@pytest.mark.parametrize(
    "value",
    [
        "<b>Ada</b>",
        "<script>alert(1)</script>",
        "Ada <img src=x onerror=alert(1)>",
        "a < b > c",
        "<<>>",
    ],
)
def test_angle_brackets_from_visitor_values_never_appear(
    make_engine: MakeEngine, value: str
) -> None:
    render = say(make_engine, "Hi {visitor.name or there}, on {page.title or a page}")
    message = render(attributes={"name": value}, title=value)
    assert "<" not in message
    assert ">" not in message
    assert message.startswith("Hi ")


def test_markup_in_a_message_is_an_error(make_engine: MakeEngine) -> None:
    with pytest.raises(politely.RulesError) as raised:
        make_engine('rule r { on page_view when visitor.visits >= 1 say "<b>Hi</b>" }')
    assert [d.code for d in raised.value.diagnostics if d.is_error] == ["markup-in-message"]


def test_a_structured_value_renders_as_missing(make_engine: MakeEngine) -> None:
    render = say(make_engine, "Hi {visitor.name or there}")
    assert render(attributes={"name": {"first": "Ada"}}) == "Hi there"
    assert render(attributes={"name": ["Ada"]}) == "Hi there"
