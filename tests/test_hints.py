"""Hints that never change the meaning (docs/language.md, section 12).

Each row is one mistake a marketer makes, with the exact place and words
`politely check` answers with. A hint may only suggest what the writer meant:
`24 hours` is `24h`, never `24s`; `per visit` is `per session`, never
`per visitor`; a keyword is suggested only where it fits.
"""

from __future__ import annotations

import pytest

from politely.checker import check_sources
from politely.diagnostics import Diagnostic
from politely.fields import KNOWN_FIELDS, near_miss
from politely.zones import abbreviation_zones, suggest, valid_zone

OK = "page.dwell >= 30s"


def rule(*lines: str) -> str:
    """A rule in the canonical layout; its first clause line is line 2."""
    return "rule r {\n" + "".join(f"    {line}\n" for line in lines) + "}\n"


# (source, code, line, column, message, hints)
HINTS = [
    # durations written with words
    (
        rule(f"when {OK}", 'say "x"', "at most 2 per 24 hours"),
        "syntax",
        4,
        19,
        "`24 hours` is not a duration",
        ("write 24h",),
    ),
    (
        rule(f"when {OK}", 'say "x"', "cooldown 1 hour"),
        "syntax",
        4,
        14,
        "`1 hour` is not a duration",
        ("write 1h",),
    ),
    (
        rule(f"when {OK}", 'say "x"', "at most 2 per day"),
        "syntax",
        4,
        19,
        "`day` is not a duration",
        ("write `per 1d`",),
    ),
    (
        rule(f"when {OK}", 'say "x"', "at most 1 per week"),
        "syntax",
        4,
        19,
        "`week` is not a duration",
        ("write `per 7d`",),
    ),
    (
        rule(f"when {OK}", 'say "x"', "at most 1 per visit"),
        "syntax",
        4,
        19,
        "`visit` is not a window",
        ("did you mean `per session`?",),
    ),
    (
        rule(f"when {OK}", 'say "x"', "at most 1 per month"),
        "syntax",
        4,
        19,
        "`month` is not a duration",
        ("months and years have no fixed length: write days, such as `per 30d`",),
    ),
    (
        "policy {\n    quiet 2 days after dismiss\n}\n",
        "syntax",
        2,
        11,
        "`2 days` is not a duration",
        ("write 2d",),
    ),
    (
        "policy {\n    session timeout 45 minutes\n}\n",
        "syntax",
        2,
        21,
        "`45 minutes` is not a duration",
        ("write 45m",),
    ),
    (
        rule("when page.dwell >= 30 seconds", 'say "x"'),
        "syntax",
        2,
        24,
        "`30 seconds` is not a duration",
        ("write 30s",),
    ),
    (
        rule("when page.dwell >= 1.5 minutes", 'say "x"'),
        "syntax",
        2,
        24,
        "`1.5 minutes` is not a duration",
        ("write 1m30s",),
    ),
    (
        rule(f"when {OK}", 'say "x"', "cooldown 1h 30m"),
        "syntax",
        4,
        14,
        "a duration is written without spaces",
        ("write 1h30m",),
    ),
    (
        rule(f"when {OK}", 'say "x"', "cooldown 30"),
        "syntax",
        4,
        14,
        "durations need a unit: write 30s",
        ("units are s, m, h, d and w: 30s, 10m, 1h30m, 7d",),
    ),
    # percents
    (
        rule("when page.scroll >= 50 %", 'say "x"'),
        "syntax",
        2,
        25,
        "a percent sign goes right after its number",
        ("write 50%",),
    ),
    (
        rule("when page.scroll >= 50 percent", 'say "x"'),
        "syntax",
        2,
        25,
        "`50 percent` is not a percentage",
        ("write 50%",),
    ),
    # keyword suggestions that fit the position
    (
        rule(f"when {OK}", 'say "x"', "cooldwn 1h"),
        "syntax",
        4,
        5,
        "`cooldwn` does not start a clause in rule `r`",
        (
            "did you mean `cooldown`?",
            "clauses are on, when, say, priority, cooldown, at most, during (policy: at most, "
            "quiet, only when, never when, during, session timeout)",
        ),
    ),
    (
        "policy {\n    quiet 1d after dismis\n}\n",
        "syntax",
        2,
        20,
        "expected `dismiss` or `chat` in the policy, found `dismis`",
        ("did you mean `dismiss`?",),
    ),
    (
        rule(f"when {OK}", 'say "x"', "during weekday 09:00-17:00"),
        "syntax",
        4,
        12,
        "expected days such as mon-fri or weekdays in rule `r`, found `weekday`",
        ("did you mean `weekdays`?",),
    ),
    (
        rule(f"when {OK}", 'sya "x"'),
        "syntax",
        3,
        5,
        "expected `and`, `or`, the next clause or `}` after the condition, found `sya`",
        ("did you mean `say`?",),
    ),
    # what other languages write
    (
        rule('when visitor.plan = "pro"', 'say "x"'),
        "syntax",
        2,
        23,
        "`=` is not a comparison",
        ("did you mean `==`?",),
    ),
    (
        rule("when visitor.seats => 5", 'say "x"'),
        "syntax",
        2,
        24,
        "`=>` is not a comparison",
        ("did you mean `>=`?",),
    ),
    (
        rule(f"when visitor.vip AND {OK}", 'say "x"'),
        "syntax",
        2,
        22,
        "keywords are lowercase: `and`, not `AND`",
        ("did you mean `and`?",),
    ),
    (
        rule(f"when visitor.vip OR {OK}", 'say "x"'),
        "syntax",
        2,
        22,
        "keywords are lowercase: `or`, not `OR`",
        ("did you mean `or`?",),
    ),
    (
        rule("when NOT visitor.vip", 'say "x"'),
        "syntax",
        2,
        10,
        "keywords are lowercase: `not`, not `NOT`",
        ("did you mean `not`?",),
    ),
    (
        rule(f"when visitor.vip && {OK}", 'say "x"'),
        "syntax",
        2,
        22,
        "politely writes `and`, not `&&`",
        ("did you mean `and`?",),
    ),
    (
        rule(f"when visitor.vip || {OK}", 'say "x"'),
        "syntax",
        2,
        22,
        "politely writes `or`, not `||`",
        ("did you mean `or`?",),
    ),
    (
        rule(f"when !visitor.vip and {OK}", 'say "x"'),
        "syntax",
        2,
        10,
        "politely writes `not`, not `!`",
        ("did you mean `not`?",),
    ),
    (
        'Rule r {\n    when page.dwell >= 30s\n    say "x"\n}\n',
        "syntax",
        1,
        1,
        "keywords are lowercase: `rule`, not `Rule`",
        ("did you mean `rule`?",),
    ),
    # quotes and comments
    (
        rule(f"when {OK}", "say “Hi there”"),
        "syntax",
        3,
        9,
        "`“` is a curly quote",
        ("replace the curly quotes with straight double quotes",),
    ),
    (
        rule(f"when {OK}", "say 'Hi there'"),
        "syntax",
        3,
        9,
        "`'` does not start a text",
        ("use double quotes",),
    ),
    (
        rule(f"when {OK}", 'say "x"  // greet'),
        "syntax",
        3,
        14,
        "`//` does not start a comment",
        ("comments start with #",),
    ),
    # names with hyphens
    (
        f'rule cart-rescue {{\n    when {OK}\n    say "x"\n}}\n',
        "syntax",
        1,
        6,
        "`cart-rescue` is not a name: names cannot contain `-`",
        ("names use _: `cart_rescue`",),
    ),
    (
        rule("on exit-intent", "when visitor.vip", 'say "x"'),
        "syntax",
        2,
        8,
        "`exit-intent` is not a name: names cannot contain `-`",
        ("names use _: `exit_intent`",),
    ),
    (
        rule("when visitor.cart-value >= 150", 'say "x"'),
        "syntax",
        2,
        10,
        "`visitor.cart-value` is not a name: names cannot contain `-`",
        ("names use _: `visitor.cart_value`",),
    ),
    # time zones
    (
        rule(f"when {OK}", 'say "x"', 'during weekdays 09:00-17:00 in "CEST"'),
        "unknown-zone",
        4,
        36,
        '"CEST" is an abbreviation, not an IANA time zone',
        ('write a city zone such as "Europe/Berlin" or "Europe/Paris"',),
    ),
    (
        rule(f"when {OK}", 'say "x"', 'during weekdays 09:00-17:00 in "PST"'),
        "unknown-zone",
        4,
        36,
        '"PST" is an abbreviation, not an IANA time zone',
        ('write a city zone such as "America/Los_Angeles" or "America/Vancouver"',),
    ),
    (
        rule(f"when {OK}", 'say "x"', 'during weekdays 09:00-17:00 in "BST"'),
        "unknown-zone",
        4,
        36,
        '"BST" is an abbreviation, not an IANA time zone',
        ('write a city zone such as "Europe/London"',),
    ),
    (
        rule(f"when {OK}", 'say "x"', 'during weekdays 09:00-17:00 in "Paris"'),
        "unknown-zone",
        4,
        36,
        '"Paris" is not an IANA time zone',
        ('did you mean "Europe/Paris"?',),
    ),
    (
        rule(f"when {OK}", 'say "x"', 'during weekdays 09:00-17:00 in "New York"'),
        "unknown-zone",
        4,
        36,
        '"New York" is not an IANA time zone',
        ('did you mean "America/New_York"?',),
    ),
    (
        rule(f"when {OK}", 'say "x"', 'during weekdays 09:00-17:00 in "europe/paris"'),
        "unknown-zone",
        4,
        36,
        '"europe/paris" is not an IANA time zone',
        ('did you mean "Europe/Paris"?',),
    ),
    (
        rule(f"when {OK}", 'say "x"', "during weekdays 09:00-17:00 in Europe/Paris"),
        "syntax",
        4,
        36,
        "the time zone goes in double quotes",
        ('put the zone in double quotes: in "Europe/Paris"',),
    ),
]


def diagnose(source: str) -> tuple[Diagnostic, ...]:
    policy = "policy {\n    only when agents.available > 0\n}\n"
    if source.startswith("policy"):
        return check_sources({"site.rules": source}).diagnostics
    return check_sources({"site.rules": source, "z.rules": policy}).diagnostics


@pytest.mark.parametrize(
    ("source", "code", "line", "column", "message", "hints"),
    HINTS,
    ids=[f"{row[1]}-{i}" for i, row in enumerate(HINTS)],
)
def test_each_mistake_gets_a_hint_that_keeps_its_meaning(
    source: str, code: str, line: int, column: int, message: str, hints: tuple[str, ...]
) -> None:
    (diagnostic,) = diagnose(source)
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == (code, line, column)
    assert (diagnostic.message, diagnostic.hints) == (message, hints)


# --- hints never suggest something that means something else ---------------------------


@pytest.mark.parametrize(
    ("words", "written"),
    [("24 hours", "24h"), ("1 hour", "1h"), ("90 minutes", "90m"), ("3 days", "3d"),
     ("2 weeks", "2w"), ("45 seconds", "45s"), ("1.5 hours", "1h30m"), ("10 mins", "10m")],
)  # fmt: skip
def test_a_spelled_duration_is_suggested_with_exactly_its_length(words: str, written: str) -> None:
    (diagnostic,) = diagnose(rule(f"when {OK}", 'say "x"', f"cooldown {words}"))
    assert diagnostic.hints == (f"write {written}",)
    fixed = rule(f"when {OK}", 'say "x"', f"cooldown {written}")
    assert not [d for d in diagnose(fixed) if d.is_error]


def test_a_decimal_that_is_no_whole_number_of_seconds_gets_no_value() -> None:
    (diagnostic,) = diagnose(rule("when page.dwell >= 0.3333 minutes", 'say "x"'))
    assert diagnostic.hints == (
        "durations are whole numbers with a unit s, m, h, d or w, such as 45s, 90m or 1h30m",
    )


def test_a_number_word_that_is_no_duration_where_a_number_goes_gets_no_duration_hint() -> None:
    """`priority 30 seconds`: a priority is a number; suggesting 30s would be a type error."""
    (diagnostic,) = diagnose(rule("priority 30 seconds", f"when {OK}", 'say "x"'))
    assert not any("30s" in hint for hint in diagnostic.hints)


def test_a_keyword_is_never_suggested_where_it_cannot_stand() -> None:
    """The tracker's example: `per day` drew "did you mean `say`?"."""
    (diagnostic,) = diagnose(rule(f"when {OK}", 'say "x"', "at most 2 per day"))
    assert "say" not in " ".join(diagnostic.hints)


def test_a_zone_is_never_suggested_for_looking_like_an_abbreviation() -> None:
    """The tracker's example: "CEST" drew "did you mean "EST"?", US Eastern time."""
    for abbreviation in ("CEST", "CET", "PST", "BST", "EEST", "AEST", "MSK"):
        assert '"EST"' not in suggest(abbreviation)
        assert all(valid_zone(zone) and "/" in zone for zone in abbreviation_zones(abbreviation))


def test_a_legacy_zone_named_like_an_abbreviation_warns_when_its_clock_differs() -> None:
    """ "EST" is a real IANA name, but it keeps UTC-5 all summer; "CET" is Berlin's clock."""
    (diagnostic,) = diagnose(rule(f"when {OK}", 'say "x"', 'during weekdays 09:00-17:00 in "EST"'))
    assert (diagnostic.code, diagnostic.severity, diagnostic.line, diagnostic.column) == (
        "zone-abbreviation",
        "warning",
        4,
        36,
    )
    assert diagnostic.message == (
        '"EST" is an abbreviation, and its clock differs from "America/New_York" '
        "for part of the year"
    )
    assert diagnostic.hints == (
        'write a city zone such as "America/New_York" or "America/Toronto"',
    )
    assert diagnose(rule(f"when {OK}", 'say "x"', 'during weekdays 09:00-17:00 in "CET"')) == ()
    assert diagnose(rule(f"when {OK}", 'say "x"', 'during weekdays 09:00-17:00 in "UTC"')) == ()


# --- near misses of known fields among your own --------------------------------------------

NEAR_MISSES = [
    ("visitor.retuning", "visitor.returning"),
    ("visitor.contry", "visitor.country"),
    ("visitor.visit", "visitor.visits"),
    ("visitor.devices", "visitor.device"),
    ("event.nam", "event"),
    ("event.name", "event"),
]


@pytest.mark.parametrize(("written", "meant"), NEAR_MISSES)
def test_a_near_miss_of_a_known_field_warns_with_the_field(written: str, meant: str) -> None:
    (diagnostic,) = diagnose(rule(f"when {written} == 1 and {OK}", 'say "x"'))
    assert (diagnostic.code, diagnostic.severity, diagnostic.line, diagnostic.column) == (
        "near-miss-field",
        "warning",
        2,
        10,
    )
    assert diagnostic.message == f"`{written}` is not a built-in field"
    assert diagnostic.hints == (
        f"did you mean `{meant}`?",
        "fields of your own are fine if your site sends them",
    )


def test_a_near_miss_in_a_message_warns_too() -> None:
    (diagnostic,) = diagnose(rule(f"when {OK}", 'say "Hi from {visitor.contry}"'))
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("near-miss-field", 3, 19)


@pytest.mark.parametrize(
    "field",
    ["visitor.plan", "visitor.vip", "visitor.cart_value", "visitor.first_name",
     "visitor.country_code", "visitor.device_type", "visitor.lang", "visitor.seats",
     "event.amount", "event.order.total"],
)  # fmt: skip
def test_a_custom_field_that_is_no_near_miss_stays_silent(field: str) -> None:
    assert diagnose(rule(f"when {field} == 1 and {OK}", 'say "x"')) == ()


def test_near_misses_wait_for_the_errors_to_be_fixed() -> None:
    """Like every warning, shown only once there are no errors."""
    source = rule(f"when visitor.retuning and {OK}", 'say "x"', "cooldown 0s")
    assert [d.code for d in diagnose(source)] == ["bad-duration"]


def test_every_known_field_of_a_custom_namespace_is_its_own_exact_match() -> None:
    for name in KNOWN_FIELDS:
        assert near_miss(tuple(name.split("."))) is None


def test_the_zone_cache_is_bounded_since_the_service_feeds_it_user_text() -> None:
    assert valid_zone.cache_info().maxsize == 1024
