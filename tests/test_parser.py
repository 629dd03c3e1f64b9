"""The parser turns every construct of LANGUAGE.md sections 2-4 into the AST of
`politely.nodes`, with 1-based spans, and no `lark.Tree` or `lark.Token` ever
reaches the AST.

ASTs are compared whole: spans are excluded from node equality, so the expected
values below are written without them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from lark import Token, Tree

from politely import nodes as n
from politely.parser import parse

RULES = Path(__file__).resolve().parent.parent / "rules"
RULE_FILES = sorted(RULES.glob("*.rules"))


def program(text: str) -> n.Program:
    """The AST of `text`, which must parse without any diagnostic."""
    result = parse(text)
    assert result.diagnostics == ()
    assert result.program is not None
    return result.program


def condition(text: str) -> n.Condition:
    define = program(f"define x = {text}").items[0]
    assert isinstance(define, n.Define)
    return define.condition


def rule_clauses(body: str) -> tuple[n.Clause, ...]:
    rule = program(f"rule r {{ {body} }}").items[0]
    assert isinstance(rule, n.Rule)
    return rule.clauses


def policy_clauses(body: str) -> tuple[n.Clause, ...]:
    policy = program(f"policy {{ {body} }}").items[0]
    assert isinstance(policy, n.Policy)
    return policy.clauses


def f(name: str) -> n.Field:
    return n.Field(tuple(name.split(".")))


def ref(name: str) -> n.Ref:
    return n.Ref(name)


def dur(seconds: int) -> n.Duration:
    return n.Duration(seconds)


def num(value: int | float) -> n.Number:
    return n.Number(value)


def text(value: str) -> n.Text:
    return n.Text(value)


DWELL_30S = n.Compare(f("page.dwell"), ">=", dur(30))


# --- files and items -----------------------------------------------------------------


@pytest.mark.parametrize("source", ["", "   \n\n", "# only a comment\n", "# a\n\n# b"])
def test_empty_and_comment_only_files_parse_to_an_empty_program(source: str) -> None:
    assert program(source) == n.Program(())


def test_define_binds_a_name_to_a_condition() -> None:
    assert program("define engaged = session.pageviews >= 3 and page.dwell >= 20s") == (
        n.Program(
            (
                n.Define(
                    n.Name("engaged"),
                    n.And(
                        (
                            n.Compare(f("session.pageviews"), ">=", num(3)),
                            n.Compare(f("page.dwell"), ">=", dur(20)),
                        )
                    ),
                ),
            )
        )
    )


def test_the_example_file_of_language_md_parses_to_its_whole_ast() -> None:
    source = """
    # Reusable conditions
    define engaged = session.pageviews >= 3 and page.dwell >= 20s
    define big_cart = visitor.cart_value >= 100

    policy {
        at most 1 invitation per 10m
        at most 2 invitations per session
        at most 4 invitations per 7d
        at most 40 invitations per 1m sitewide
        quiet 1d after dismiss
        quiet 3d after chat
        only when agents.available > 0 and queue.wait < 2m
        never when page.path matches "/checkout/payment*"
        during weekdays 08:00-20:00 in "Europe/Berlin"
        session timeout 30m
    }

    rule pricing_help {
        priority 10
        when page.path matches "/pricing*" and engaged
        say "Comparing plans? I can help you pick the right one."
         or "Hi {visitor.name or there}! Any questions about our plans?"
        cooldown 1h
        at most 1 per session
    }

    rule cart_rescue {
        on exit_intent
        when big_cart and not visitor.returning
        say "Before you go: can I help with your order?"
        at most 1 per 7d
    }
    """
    expected = n.Program(
        (
            n.Define(
                n.Name("engaged"),
                n.And(
                    (
                        n.Compare(f("session.pageviews"), ">=", num(3)),
                        n.Compare(f("page.dwell"), ">=", dur(20)),
                    )
                ),
            ),
            n.Define(n.Name("big_cart"), n.Compare(f("visitor.cart_value"), ">=", num(100))),
            n.Policy(
                (
                    n.Cap(num(1), "duration", dur(600)),
                    n.Cap(num(2), "session"),
                    n.Cap(num(4), "duration", dur(7 * 86400)),
                    n.Cap(num(40), "duration", dur(60), sitewide=True),
                    n.Quiet(dur(86400), "dismiss"),
                    n.Quiet(dur(3 * 86400), "chat"),
                    n.Only(
                        n.And(
                            (
                                n.Compare(f("agents.available"), ">", num(0)),
                                n.Compare(f("queue.wait"), "<", dur(120)),
                            )
                        )
                    ),
                    n.Never(n.Matches(f("page.path"), text("/checkout/payment*"))),
                    n.During(
                        n.Schedule(
                            (n.ScheduleWindow(frozenset(range(5)), 8 * 60, 20 * 60),),
                            text("Europe/Berlin"),
                        )
                    ),
                    n.SessionTimeout(dur(1800)),
                )
            ),
            n.Rule(
                n.Name("pricing_help"),
                (
                    n.Priority(num(10)),
                    n.When(n.And((n.Matches(f("page.path"), text("/pricing*")), ref("engaged")))),
                    n.Say(
                        (
                            n.Message("Comparing plans? I can help you pick the right one."),
                            n.Message("Hi {visitor.name or there}! Any questions about our plans?"),
                        )
                    ),
                    n.Cooldown(dur(3600)),
                    n.Cap(num(1), "session"),
                ),
            ),
            n.Rule(
                n.Name("cart_rescue"),
                (
                    n.On((n.Name("exit_intent"),)),
                    n.When(n.And((ref("big_cart"), n.Not(n.Bare(f("visitor.returning")))))),
                    n.Say((n.Message("Before you go: can I help with your order?"),)),
                    n.Cap(num(1), "duration", dur(7 * 86400)),
                ),
            ),
        )
    )
    assert program(source) == expected


def test_items_keep_source_order_across_kinds() -> None:
    source = 'rule a { when x say "1" }\ndefine x = page.dwell >= 1s\npolicy { }\n'
    items = program(source + 'rule b { when x say "2" }').items
    assert [type(i).__name__ for i in items] == ["Rule", "Define", "Policy", "Rule"]


def test_empty_blocks_parse_to_no_clauses() -> None:
    assert program("policy { }\nrule r {}").items == (n.Policy(()), n.Rule(n.Name("r"), ()))


def test_clauses_keep_source_order_whatever_it_is() -> None:
    clauses = rule_clauses('cooldown 1h say "x" when a priority 2 on tick')
    assert [type(c) for c in clauses] == [n.Cooldown, n.Say, n.When, n.Priority, n.On]


# --- rule clauses --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("when visitor.returning", n.When(n.Bare(f("visitor.returning")))),
        ('say "Hi"', n.Say((n.Message("Hi"),))),
        ('say "a" or "b" or "c"', n.Say((n.Message("a"), n.Message("b"), n.Message("c")))),
        ("on exit_intent", n.On((n.Name("exit_intent"),))),
        (
            "on page_view, tick, checkout_error",
            n.On((n.Name("page_view"), n.Name("tick"), n.Name("checkout_error"))),
        ),
        ("priority 10", n.Priority(num(10))),
        ("priority 0", n.Priority(num(0))),
        ("priority -5", n.Priority(num(-5))),
        ("cooldown 1h", n.Cooldown(dur(3600))),
        ("cooldown 1h30m", n.Cooldown(dur(5400))),
        ("at most 1 per session", n.Cap(num(1), "session")),
        ("at most 2 per visitor", n.Cap(num(2), "visitor")),
        ("at most 1 per 7d", n.Cap(num(1), "duration", dur(7 * 86400))),
        ("at most 3 per 1d12h", n.Cap(num(3), "duration", dur(36 * 3600))),
        (
            "during mon-fri 09:00-17:00",
            n.During(n.Schedule((n.ScheduleWindow(frozenset(range(5)), 540, 1020),))),
        ),
    ],
)
def test_each_rule_clause_parses_to_its_node(body: str, expected: n.Clause) -> None:
    assert rule_clauses(body) == (expected,)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "at most 1 invitation per 10m",
            n.Cap(num(1), "duration", dur(600), says_invitations=True),
        ),
        ("at most 2 invitations per session", n.Cap(num(2), "session", says_invitations=True)),
        ("at most 5 invitations per visitor", n.Cap(num(5), "visitor", says_invitations=True)),
        (
            "at most 40 invitations per 1m sitewide",
            n.Cap(num(40), "duration", dur(60), sitewide=True, says_invitations=True),
        ),
        ("quiet 1d after dismiss", n.Quiet(dur(86400), "dismiss")),
        ("quiet 3d after chat", n.Quiet(dur(3 * 86400), "chat")),
        ("only when agents.available > 0", n.Only(n.Compare(f("agents.available"), ">", num(0)))),
        (
            'never when page.path matches "/checkout/payment*"',
            n.Never(n.Matches(f("page.path"), text("/checkout/payment*"))),
        ),
        (
            'during weekdays 08:00-20:00 in "Europe/Berlin"',
            n.During(
                n.Schedule(
                    (n.ScheduleWindow(frozenset(range(5)), 480, 1200),), text("Europe/Berlin")
                )
            ),
        ),
        ("session timeout 30m", n.SessionTimeout(dur(1800))),
    ],
)
def test_each_policy_clause_parses_to_its_node(body: str, expected: n.Clause) -> None:
    assert policy_clauses(body) == (expected,)


@pytest.mark.parametrize(
    ("body", "says_invitations"),
    [("at most 1 per session", False), ("at most 1 invitation per session", True)],
)
def test_cap_remembers_whether_invitations_was_written(body: str, says_invitations: bool) -> None:
    (cap,) = policy_clauses(body)
    assert isinstance(cap, n.Cap)
    assert cap.says_invitations is says_invitations


def test_the_grammar_lets_any_clause_stand_in_a_rule_or_the_policy() -> None:
    """Misplaced clauses parse; the checker reports them in words (test_diagnostics)."""
    assert rule_clauses("quiet 1d after chat session timeout 5m") == (
        n.Quiet(dur(86400), "chat"),
        n.SessionTimeout(dur(300)),
    )
    assert policy_clauses("on tick priority 3") == (n.On((n.Name("tick"),)), n.Priority(num(3)))


# --- conditions ------------------------------------------------------------------------

A, B, C, D = ref("a"), ref("b"), ref("c"), ref("d")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("a", A),
        ("a and b", n.And((A, B))),
        ("a or b", n.Or((A, B))),
        ("not a", n.Not(A)),
        ("not not a", n.Not(n.Not(A))),
        # not > and > or
        ("a or b and c", n.Or((A, n.And((B, C))))),
        ("a and b or c", n.Or((n.And((A, B)), C))),
        ("a and b or c and d", n.Or((n.And((A, B)), n.And((C, D))))),
        ("not a and b", n.And((n.Not(A), B))),
        ("not a or b", n.Or((n.Not(A), B))),
        ("a or not b and c", n.Or((A, n.And((n.Not(B), C))))),
        # parentheses override precedence
        ("(a or b) and c", n.And((n.Or((A, B)), C))),
        ("a and (b or c)", n.And((A, n.Or((B, C))))),
        ("not (a and b)", n.Not(n.And((A, B)))),
        ("not (a or b) and c", n.And((n.Not(n.Or((A, B))), C))),
        ("((a))", A),
        ("(not a)", n.Not(A)),
        # chains of one operator are flattened, parentheses or not
        ("a and b and c", n.And((A, B, C))),
        ("a or b or c or d", n.Or((A, B, C, D))),
        ("a and (b and c)", n.And((A, B, C))),
        ("(a or b) or c", n.Or((A, B, C))),
        ("a or (b and c) or d", n.Or((A, n.And((B, C)), D))),
    ],
)
def test_conditions_follow_not_over_and_over_or(source: str, expected: n.Condition) -> None:
    assert condition(source) == expected


@pytest.mark.parametrize("op", ["==", "!=", "<", "<=", ">", ">="])
def test_every_comparison_operator_parses(op: str) -> None:
    assert condition(f"page.scroll {op} 50") == n.Compare(f("page.scroll"), op, num(50))  # type: ignore[arg-type]


@pytest.mark.parametrize("source", ["page.scroll>=50", "page.scroll >= 50", "page . scroll>= 50"])
def test_whitespace_around_operators_and_dots_is_free(source: str) -> None:
    assert condition(source) == n.Compare(f("page.scroll"), ">=", num(50))


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("3", num(3)),
        ("2.5", num(2.5)),
        ("0", num(0)),
        ("-1", num(-1)),
        ("-2.5", num(-2.5)),
        ("- 4", num(-4)),
        ("50%", n.Percent(50)),
        ("12.5%", n.Percent(12.5)),
        ("30s", dur(30)),
        ("10m", dur(600)),
        ("2h", dur(7200)),
        ("1d", dur(86400)),
        ("1w", dur(7 * 86400)),
        ("1h30m", dur(5400)),
        ("90m", dur(5400)),
        ("1d2h3m4s", dur(86400 + 7200 + 180 + 4)),
        ('"pro"', text("pro")),
        ('""', text("")),
        ("true", n.Boolean(True)),
        ("false", n.Boolean(False)),
    ],
)
def test_values_parse_to_typed_literals(literal: str, expected: n.Value) -> None:
    assert condition(f"visitor.x == {literal}") == n.Compare(f("visitor.x"), "==", expected)


def test_an_integer_and_a_float_are_kept_apart() -> None:
    three = condition("visitor.x == 3")
    assert isinstance(three, n.Compare)
    assert isinstance(three.value, n.Number)
    assert type(three.value.value) is int
    half = condition("visitor.x == 2.5")
    assert isinstance(half, n.Compare)
    assert isinstance(half.value, n.Number)
    assert type(half.value.value) is float


def test_a_bare_number_is_never_a_duration() -> None:
    compare = condition("visitor.x == 30")
    assert isinstance(compare, n.Compare)
    assert compare.value == num(30)
    assert not isinstance(compare.value, n.Duration)


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        (r'"say \"hi\""', 'say "hi"'),
        (r'"back\\slash"', "back\\slash"),
        (r'"two\nlines"', "two\nlines"),
        (r'"\\n is not a newline"', "\\n is not a newline"),
        (r'"\"\\\n"', '"\\\n'),
        ('"caf\u00e9 \u2603 \U0001f600"', "caf\u00e9 \u2603 \U0001f600"),
        ('"# not a comment"', "# not a comment"),
        ('"{braces} are literal here"', "{braces} are literal here"),
    ],
)
def test_strings_decode_their_escapes(literal: str, expected: str) -> None:
    assert condition(f"page.title == {literal}") == n.Compare(f("page.title"), "==", text(expected))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('page.path in ["/a", "/b"]', n.InList(f("page.path"), (text("/a"), text("/b")))),
        ('page.path not in ["/a"]', n.InList(f("page.path"), (text("/a"),), negated=True)),
        ("visitor.x in [1, 2.5, -3]", n.InList(f("visitor.x"), (num(1), num(2.5), num(-3)))),
        ("page.dwell in [30s, 1m]", n.InList(f("page.dwell"), (dur(30), dur(60)))),
        ("page.scroll in [50%]", n.InList(f("page.scroll"), (n.Percent(50),))),
        (
            "visitor.x in [true, false]",
            n.InList(f("visitor.x"), (n.Boolean(True), n.Boolean(False))),
        ),
        ('page.path in ["/a", "/b",]', n.InList(f("page.path"), (text("/a"), text("/b")))),
        ("page.path in []", n.InList(f("page.path"), ())),
        ("page.path not in []", n.InList(f("page.path"), (), negated=True)),
    ],
)
def test_in_and_not_in_take_a_list(source: str, expected: n.InList) -> None:
    assert condition(source) == expected


def test_not_in_differs_from_not_before_in() -> None:
    assert condition('not page.path in ["/a"]') == n.Not(n.InList(f("page.path"), (text("/a"),)))
    assert condition('page.path not in ["/a"]') == n.InList(f("page.path"), (text("/a"),), True)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('page.path matches "/pricing*"', n.Matches(f("page.path"), text("/pricing*"))),
        ('page.url matches "/a?b"', n.Matches(f("page.url"), text("/a?b"))),
        ('page.title contains "Error"', n.Contains(f("page.title"), text("Error"))),
        ('event.code contains "\\""', n.Contains(f("event.code"), text('"'))),
    ],
)
def test_matches_and_contains_take_a_string(source: str, expected: n.Condition) -> None:
    assert condition(source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("visitor.returning", n.Bare(f("visitor.returning"))),
        ("visitor.vip", n.Bare(f("visitor.vip"))),
        ("event.is_test", n.Bare(f("event.is_test"))),
        ("event", n.Bare(f("event"))),
        ("engaged", ref("engaged")),
        ("not big_cart", n.Not(ref("big_cart"))),
    ],
)
def test_a_lone_dotted_field_is_bare_and_a_lone_name_is_a_define(
    source: str, expected: n.Condition
) -> None:
    assert condition(source) == expected


@pytest.mark.parametrize(
    "source",
    [
        "session.pageviews >= 2",
        "visitor.visits > 1",
        'event == "tick"',
        "invitations.session < 1",
        "visitor.in >= 1",
        "event.matches == 1",
    ],
)
def test_keywords_read_as_field_names_inside_a_field(source: str) -> None:
    """`session`, `visitor`, `event`, `in` are keywords only where a keyword can stand."""
    parsed = condition(source)
    assert isinstance(parsed, n.Compare)
    assert parsed.field.name == source.split()[0]


@pytest.mark.parametrize(
    "source",
    [
        'ruler { when page.dwell >= 30s say "x" }',
        'rule r { whenpage.dwell >= 30s say "x" }',
        'rule r { when page.dwell >= 30s sayit "x" }',
        "policy { quiet 1d after chatty }",
        "definex = page.dwell >= 30s",
    ],
)
def test_keywords_are_whole_words_not_prefixes_of_a_longer_name(source: str) -> None:
    """`ruler` is an identifier (LANGUAGE.md section 2), never `rule` followed by `r`."""
    result = parse(source)
    assert result.program is None
    assert [d.code for d in result.diagnostics] == ["syntax"]


def test_deep_dotted_custom_fields_keep_every_part() -> None:
    assert condition("event.order.total > 10") == n.Compare(f("event.order.total"), ">", num(10))


# --- schedules -------------------------------------------------------------------------


def window(days: set[int], start: str, end: str) -> n.ScheduleWindow:
    def minutes(hhmm: str) -> int:
        hours, mins = hhmm.split(":")
        return int(hours) * 60 + int(mins)

    return n.ScheduleWindow(frozenset(days), minutes(start), minutes(end))


def schedule(source: str) -> n.Schedule:
    (during,) = rule_clauses(f"during {source}")
    assert isinstance(during, n.During)
    return during.schedule


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        ("mon", {0}),
        ("sun", {6}),
        ("mon-fri", {0, 1, 2, 3, 4}),
        ("tue-thu", {1, 2, 3}),
        ("fri-mon", {4, 5, 6, 0}),  # a range may wrap over the week's end
        ("sat-sun", {5, 6}),
        ("wed-wed", {2}),
        ("mon,wed,fri", {0, 2, 4}),
        ("mon, wed", {0, 2}),
        ("mon-wed,sat", {0, 1, 2, 5}),
        ("weekdays", {0, 1, 2, 3, 4}),
        ("weekends", {5, 6}),
        ("daily", {0, 1, 2, 3, 4, 5, 6}),
        ("weekends,mon", {5, 6, 0}),
    ],
)
def test_days_parse_to_day_sets_monday_first(days: str, expected: set[int]) -> None:
    assert schedule(f"{days} 09:00-17:00") == n.Schedule((window(expected, "09:00", "17:00"),))


@pytest.mark.parametrize(
    ("times", "start", "end"),
    [
        ("09:00-17:30", 540, 1050),
        ("9:05-10:00", 545, 600),
        ("00:00-24:00", 0, 1440),
        ("22:00-02:00", 1320, 120),  # overnight: the end is before the start
        ("23:59-00:00", 1439, 0),
    ],
)
def test_times_parse_to_minutes_and_overnight_ranges_keep_end_before_start(
    times: str, start: int, end: int
) -> None:
    expected = n.ScheduleWindow(frozenset(range(7)), start, end)
    assert schedule(f"daily {times}").windows == (expected,)


def test_a_schedule_lists_windows_and_an_optional_zone() -> None:
    assert schedule(
        'weekdays 08:00-20:00, sat 10:00-14:00, fri 22:00-02:00 in "America/New_York"'
    ) == n.Schedule(
        (
            window({0, 1, 2, 3, 4}, "08:00", "20:00"),
            window({5}, "10:00", "14:00"),
            window({4}, "22:00", "02:00"),
        ),
        text("America/New_York"),
    )


def test_a_schedule_without_a_zone_has_none() -> None:
    assert schedule("daily 09:00-17:00").zone is None


# --- messages --------------------------------------------------------------------------


def message(literal: str) -> n.Message:
    (say,) = rule_clauses(f"say {literal}")
    assert isinstance(say, n.Say)
    (only,) = say.messages
    return only


@pytest.mark.parametrize(
    ("literal", "template", "parts"),
    [
        ('"Hi"', "Hi", ("Hi",)),
        ('"{visitor.name}"', "{visitor.name}", (n.Slot(f("visitor.name")),)),
        (
            '"Hi {visitor.name}!"',
            "Hi {visitor.name}!",
            ("Hi ", n.Slot(f("visitor.name")), "!"),
        ),
        (
            '"Hi {visitor.name or there}!"',
            "Hi {visitor.name or there}!",
            ("Hi ", n.Slot(f("visitor.name"), "there"), "!"),
        ),
        (
            '"Hi {visitor.name or dear friend}"',
            "Hi {visitor.name or dear friend}",
            ("Hi ", n.Slot(f("visitor.name"), "dear friend")),
        ),
        (
            '"{ visitor.name  or  there }"',
            "{visitor.name or there}",
            (n.Slot(f("visitor.name"), "there"),),
        ),
        ('"{{not a slot}}"', "{{not a slot}}", ("{not a slot}",)),
        ('"a {{ b }} c"', "a {{ b }} c", ("a { b } c",)),
        (
            '"{{{page.title}}}"',
            "{{{page.title}}}",
            ("{", n.Slot(f("page.title")), "}"),
        ),
        (
            '"{page.title} on {page.path}"',
            "{page.title} on {page.path}",
            (n.Slot(f("page.title")), " on ", n.Slot(f("page.path"))),
        ),
        (
            r'"say \"hi\"\n{visitor.name}"',
            'say "hi"\n{visitor.name}',
            ('say "hi"\n', n.Slot(f("visitor.name"))),
        ),
    ],
)
def test_messages_split_into_text_and_field_slots(
    literal: str, template: str, parts: tuple[str | n.Slot, ...]
) -> None:
    parsed = message(literal)
    assert parsed.text == template
    assert parsed.parts == parts


@pytest.mark.parametrize(
    ("literal", "fallback"),
    [
        (r'"{visitor.name or \"friend\"}"', '"friend"'),
        (r'"{visitor.name or back\\slash}"', "back\\slash"),
        (r'"{visitor.name or two\nlines}"', "two\nlines"),
    ],
)
def test_escapes_inside_a_fallback_are_decoded_like_the_rest_of_the_string(
    literal: str, fallback: str
) -> None:
    slot = message(literal).parts[0]
    assert slot == n.Slot(f("visitor.name"), fallback)


def test_message_equality_tells_a_literal_brace_from_a_slot() -> None:
    assert message('"{{page.title}}"') != message('"{page.title}"')


# --- spans -----------------------------------------------------------------------------

SPANNED = """\
define engaged = page.dwell >= 30s

rule pricing_help {
    when page.path matches "/pricing*" and engaged
    say "Hi {visitor.name or there}!"
    cooldown 1h30m
}
"""


def test_spans_give_one_based_lines_and_columns() -> None:
    define, rule = program(SPANNED).items
    assert isinstance(define, n.Define)
    assert isinstance(rule, n.Rule)
    assert (define.span.line, define.span.column) == (1, 1)
    assert (define.name.span.line, define.name.span.column) == (1, 8)
    assert (rule.span.line, rule.span.column, rule.span.end_line) == (3, 1, 7)
    assert (rule.name.span.line, rule.name.span.column) == (3, 6)
    when, say, cooldown = rule.clauses
    assert isinstance(when, n.When)
    assert (when.span.line, when.span.column) == (4, 5)
    assert isinstance(when.condition, n.And)
    matches, engaged = when.condition.operands
    assert isinstance(matches, n.Matches)
    assert (matches.field.span.line, matches.field.span.column) == (4, 10)
    assert (matches.pattern.span.line, matches.pattern.span.column) == (4, 28)
    assert (engaged.span.line, engaged.span.column) == (4, 44)
    assert isinstance(say, n.Say)
    (hello,) = say.messages
    assert (hello.span.line, hello.span.column) == (5, 9)
    slot = hello.parts[1]
    assert isinstance(slot, n.Slot)
    assert (slot.span.line, slot.span.column) == (5, 13)
    assert (slot.field.span.line, slot.field.span.column, slot.field.span.end_column) == (5, 14, 26)
    assert isinstance(cooldown, n.Cooldown)
    assert (cooldown.duration.span.line, cooldown.duration.span.column) == (6, 14)
    assert cooldown.duration.span.end_column == 19  # "1h30m" is 5 characters, end exclusive


def test_span_ends_are_exclusive_and_positions_index_the_source() -> None:
    (define,) = program("define a = page.dwell >= 30s").items
    assert isinstance(define, n.Define)
    compare = define.condition
    assert isinstance(compare, n.Compare)
    source = "define a = page.dwell >= 30s"
    assert source[compare.span.start_pos : compare.span.end_pos] == "page.dwell >= 30s"
    assert (compare.span.column, compare.span.end_column) == (12, 29)
    value = compare.value
    assert source[value.span.start_pos : value.span.end_pos] == "30s"


def test_spans_do_not_take_part_in_equality() -> None:
    assert program("define a = page.dwell >= 90s") == program(
        "\n\n   define  a=page.dwell>=1m30s  # same thing"
    )


# --- no Lark objects in the AST ------------------------------------------------------

EVERY_CONSTRUCT = r"""
# every construct of LANGUAGE.md sections 2-4
define engaged = session.pageviews >= 3 and page.dwell >= 20s
define reading = (page.scroll > 50% or page.dwell >= 1h30m) and not visitor.returning
define listed = visitor.plan in ["free", "trial",] or visitor.x not in [1, 2.5, -3, 30s, true]
define texty = page.title contains "a \"b\" \\ \n" and page.url matches "/a?b*"
define nested = not (engaged or reading) and (listed or texty) or event == "tick"

policy {
    at most 1 invitation per 10m
    at most 2 invitations per session
    at most 9 invitations per visitor
    at most 40 invitations per 1m sitewide
    quiet 1d after dismiss
    quiet 3d after chat
    only when agents.available > 0 and queue.wait < 2m
    never when page.path matches "/checkout/payment*"
    during weekdays 08:00-20:00, sat,sun 10:00-14:00, fri-mon 22:00-02:00 in "Europe/Berlin"
    session timeout 30m
}

rule everything {
    priority -2
    on page_view, tick, exit_intent
    when engaged and nested and visitor.vip and event.flag
    say "Hi {visitor.name or there}! {{literal}} {page.title}"
     or "plain"
    cooldown 1w
    at most 1 per session
    at most 2 per 1d
    during daily 00:00-24:00, mon-wed 09:00-10:00
}
"""

PROGRAMS = [EVERY_CONSTRUCT, *(p.read_text(encoding="utf-8") for p in RULE_FILES)]


def walk(value: object, trail: str = "program") -> Iterator[tuple[str, object]]:
    """Every value reachable from an AST node, with the attribute path to it."""
    yield trail, value
    if isinstance(value, n.Node):
        for name in value.__struct_fields__:
            yield from walk(getattr(value, name), f"{trail}.{name}")
    elif isinstance(value, tuple | list | frozenset | set):
        for i, item in enumerate(value):
            yield from walk(item, f"{trail}[{i}]")


def test_the_every_construct_program_holds_every_kind_of_node() -> None:
    kinds = {type(v).__name__ for _, v in walk(program(EVERY_CONSTRUCT))}
    assert {
        "Define", "Policy", "Rule", "Name", "On", "When", "Say", "Priority", "Cooldown", "Cap",
        "During", "Quiet", "Only", "Never", "SessionTimeout", "Schedule", "ScheduleWindow",
        "Message", "Slot", "Field", "Compare", "InList", "Matches", "Contains", "Bare", "Ref",
        "Not", "And", "Or", "Number", "Percent", "Duration", "Text", "Boolean",
    } <= kinds  # fmt: skip


@pytest.mark.parametrize("source", PROGRAMS, ids=["every-construct", *(p.name for p in RULE_FILES)])
def test_no_lark_tree_or_token_reaches_the_ast(source: str) -> None:
    found = [
        (trail, value)
        for trail, value in walk(program(source))
        if isinstance(value, Tree | Token)
        or (isinstance(value, str) and type(value) is not str)  # Token subclasses str
    ]
    assert found == []


@pytest.mark.parametrize("source", PROGRAMS, ids=["every-construct", *(p.name for p in RULE_FILES)])
def test_every_node_of_the_ast_is_a_politely_node_or_plain_value(source: str) -> None:
    allowed = (str, int, float, bool, type(None), tuple, frozenset, n.Span)
    strange = [
        (trail, type(value).__name__)
        for trail, value in walk(program(source))
        if not isinstance(value, allowed) and type(value).__module__ != n.__name__
    ]
    assert strange == []


@pytest.mark.parametrize("source", PROGRAMS, ids=["every-construct", *(p.name for p in RULE_FILES)])
def test_every_child_span_lies_inside_its_parents_span(source: str) -> None:
    def inside(child: n.Span, parent: n.Span) -> bool:
        return (parent.line, parent.column) <= (child.line, child.column) and (
            child.end_line,
            child.end_column,
        ) <= (parent.end_line, parent.end_column)

    def check(node: object, parent: n.Span | None) -> Iterator[str]:
        if isinstance(node, n.Node):
            span = getattr(node, "span", None)
            if isinstance(span, n.Span):
                if span == n.NO_SPAN:
                    yield f"{type(node).__name__} has no span"
                elif parent is not None and not inside(span, parent):
                    yield f"{type(node).__name__} {span} is outside {parent}"
                parent = span
            for name in node.__struct_fields__:
                if name != "span":
                    yield from check(getattr(node, name), parent)
        elif isinstance(node, tuple):
            for item in node:
                yield from check(item, parent)

    assert list(check(program(source), None)) == []


def test_nodes_compare_and_hash_by_meaning_not_by_span_or_wording() -> None:
    here, there = n.Span(1, 1, 1, 9), n.Span(4, 2, 4, 30, 50, 78)
    one = n.Cap(n.Number(1, here), "session", says_invitations=True, span=here)
    same = n.Cap(n.Number(1, there), "session", says_invitations=False, span=there)
    assert one == same
    assert hash(one) == hash(same)
    assert one != n.Cap(n.Number(2, here), "session", span=here)
    assert n.Message("Hi", ("Hi",)) == n.Message("Hi", ()) != n.Message("Ho", ("Ho",))
    assert n.Text("x") != n.Name("x")  # another kind of node never equals
    assert repr(n.Number(1, there)) == "Number(value=1)"


def test_parsed_nodes_are_never_tracked_by_the_garbage_collector() -> None:
    """A 10,000-rule site is about a million nodes, all alive as long as its rule
    set: the collector must not walk them at every collection (it took 2.5 s of
    such a load). Frozen nodes can form no cycle, so they need no tracking."""
    import gc

    source = (
        "define d = page.dwell >= 30s\n"
        'rule r { when d and visitor.plan in ["a", "b"] and not visitor.returning\n'
        'say "Hi {visitor.name or there}" at most 1 per session during weekdays 08:00-18:00 }'
    )
    program = parse(source).program
    assert program is not None

    def walk(node: object) -> Iterator[object]:
        if isinstance(node, n.Node):
            yield node
            for name in node.__struct_fields__:
                yield from walk(getattr(node, name))
        elif isinstance(node, tuple) and not isinstance(node, n.Span):
            for item in node:
                yield from walk(item)

    found = [node for node in walk(program) if gc.is_tracked(node)]
    assert len(list(walk(program))) > 10
    assert found == []


def test_spans_are_never_tracked_by_the_garbage_collector() -> None:
    """Every node and token kept has a span: on a 10,000-rule site, 320,000 of them,
    which the first collection after a load walked (as it walks every new tuple)
    before they were frozen Structs the collector does not track. Read back from a
    saved parse, they are the same."""
    import gc

    from politely import saved_parses

    source = 'rule r { when page.dwell >= 30s and visitor.plan in ["a"] say "Hi" }'
    result = parse(source)
    assert result.program is not None
    decoded = saved_parses._decoder().decode(msgspec.msgpack.encode(result))
    for program in (result.program, decoded.program):
        assert program is not None
        spans = [node.span for node in _nodes(program)]
        assert len(spans) > 10
        assert all(isinstance(span, n.Span) for span in spans)
        assert [span for span in spans if gc.is_tracked(span)] == []


def _nodes(node: object) -> Iterator[n.Node]:
    if isinstance(node, n.Node):
        yield node
        for name in node.__struct_fields__:
            yield from _nodes(getattr(node, name))
    elif isinstance(node, tuple):
        for item in node:
            yield from _nodes(item)
