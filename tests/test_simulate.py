"""`politely simulate` and `politely explain` through the CLI's `main`.

Each test writes a small site and a traffic file into `tmp_path`, runs the
command as a marketer would, and reads what it printed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from politely.cli import main

START = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)  # Monday
DECISION_KEYS = {"invitation", "recheck_in", "chat", "ruleset"}
INVITATION_KEYS = {"id", "rule", "message", "variant"}

SITE = """\
policy {
    at most 10 invitations per session
    quiet 5m after dismiss
}

rule help {
    when page.dwell >= 10s
    say "Need a hand?" or "Any questions?"
    cooldown 1m
}

rule deal {
    on exit_intent
    when visitor.cart >= 100
    say "Before you go: free shipping today."
}
"""


def at(seconds: float) -> str:
    return (START + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def line(
    seconds: float, visitor: str | None = None, event: str | None = None, **fields: Any
) -> dict[str, Any]:
    item: dict[str, Any] = {"at": at(seconds)}
    if visitor is not None:
        item["visitor"] = visitor
    if event is not None:
        item["event"] = event
    item.update(fields)
    return item


# The shop's morning: five visitors, six sessions, four invitations.
SHOP = [
    line(0, "a", "page_view", url="/"),
    line(0, "b", "page_view", url="/"),
    line(0, block={"visitor": "e", "reason": "abuse"}),
    line(1, "c", "page_view", url="/cart", attributes={"cart": 150}),
    line(2, "c", "exit_intent"),  # deal
    line(5, "e", "page_view", url="/"),  # blocked
    line(10, "a", "tick"),  # help
    line(10, "b", "tick"),  # help
    line(12, "c", "tick"),  # help: c's second invitation
    line(15, "b", "invitation_dismissed"),
    line(20, "a", "invitation_accepted"),
    line(30, "a", "tick"),  # in a chat: not considered
    line(80, "b", "tick"),  # help held back: quiet after dismiss
    line(120, "d", "page_view", url="/"),
    line(3720, "d", "page_view", url="/"),  # an hour later: d's second session
]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    path = tmp_path / "site"
    path.mkdir()
    (path / "shop.rules").write_text(SITE, encoding="utf-8")
    return path


def write_rules(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "one.rules"
    path.write_text(text, encoding="utf-8")
    return path


def write_traffic(tmp_path: Path, items: list[dict[str, Any]], name: str = "traffic.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def decisions(out: str) -> list[dict[str, Any]]:
    return [json.loads(text) for text in out.splitlines()]


def row(out: str, label: str) -> list[str]:
    """The cells of the summary row whose first cell is `label`."""
    for text in out.splitlines():
        cells = text.split()
        if cells and cells[0] == label:
            return cells
    raise AssertionError(f"no row {label!r} in:\n{out}")


# --- the summary ------------------------------------------------------------------------


def test_summary_counts_events_visitors_and_sessions(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, site: Path
) -> None:
    code, out, _ = run(capsys, "simulate", site, write_traffic(tmp_path, SHOP))
    assert code == 0
    first = out.splitlines()[0]
    assert first.startswith("14 events from 5 visitors in 6 sessions")
    assert f"from {at(0)} to {at(3720)}" in first


def test_summary_shows_invitations_per_rule_and_per_1000_sessions(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, site: Path
) -> None:
    _, out, _ = run(capsys, "simulate", site, write_traffic(tmp_path, SHOP))
    assert "per 1,000 sessions" in out
    assert row(out, "help")[1:3] == ["3", "500.0"]
    assert row(out, "deal")[1:3] == ["1", "166.7"]
    assert row(out, "total")[1:3] == ["4", "666.7"]


def test_summary_shows_acceptance_where_outcomes_are_present(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, site: Path
) -> None:
    _, out, _ = run(capsys, "simulate", site, write_traffic(tmp_path, SHOP))
    # shown, per 1,000, accepted, dismissed, acceptance
    assert row(out, "help")[1:] == ["3", "500.0", "1", "1", "33.3%"]
    assert row(out, "deal")[-1] == "-"  # shown, but no outcome recorded
    assert row(out, "total")[1:] == ["4", "666.7", "1", "1", "25.0%"]


def test_summary_splits_a_rule_with_several_messages_by_variant(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, site: Path
) -> None:
    _, out, _ = run(capsys, "simulate", site, write_traffic(tmp_path, SHOP))
    # A variant row: the label (28 characters wide), then the same columns as its rule.
    variants = [text for text in out.splitlines() if text.strip().startswith("variant")]
    assert [text.split()[1] for text in variants] == ["0:", "1:"]  # help's two; deal has one
    assert sum(int(text[28:].split()[0]) for text in variants) == 3


def test_summary_names_the_most_invitations_any_visitor_got(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, site: Path
) -> None:
    _, out, _ = run(capsys, "simulate", site, write_traffic(tmp_path, SHOP))
    assert "most invitations to one visitor: 2 (visitor c)" in out


def test_summary_lists_what_held_invitations_back_by_reason(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, site: Path
) -> None:
    _, out, _ = run(capsys, "simulate", site, write_traffic(tmp_path, SHOP))
    held = out.split("held back", 1)[1]
    assert row(held, "help")[1:] == ["quiet_after_dismiss", "1"]
    assert (
        "visitors not considered: blocked 1 visitor (1 event), in_chat 1 visitor (1 event)" in out
    )


def test_summary_of_traffic_without_invitations_says_none(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, site: Path
) -> None:
    traffic = write_traffic(tmp_path, [line(0, "a", "page_view", url="/")])
    code, out, _ = run(capsys, "simulate", site, traffic)
    assert code == 0
    assert row(out, "total")[1:3] == ["0", "0.0"]
    assert "most invitations to one visitor: 0" in out
    assert "held back" not in out


# --- --json -----------------------------------------------------------------------------------


def test_json_prints_one_decision_a_line_in_traffic_order(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, site: Path
) -> None:
    code, out, _ = run(capsys, "simulate", site, write_traffic(tmp_path, SHOP), "--json")
    assert code == 0
    events = [item for item in SHOP if "event" in item]
    found = decisions(out)
    assert [(d["visitor"], d["at"]) for d in found] == [(e["visitor"], e["at"]) for e in events]


def test_json_lines_carry_exactly_the_decision_keys_plus_visitor_event_and_at(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, site: Path
) -> None:
    _, out, _ = run(capsys, "simulate", site, write_traffic(tmp_path, SHOP), "--json")
    found = decisions(out)
    for decision in found:
        assert set(decision) == DECISION_KEYS | {"visitor", "event", "at"}
        assert decision["chat"] in ("available", "blocked", "in_chat")
        assert decision["recheck_in"] is None or isinstance(decision["recheck_in"], int)
        if decision["invitation"] is not None:
            assert set(decision["invitation"]) == INVITATION_KEYS
    assert len({d["ruleset"] for d in found}) == 1
    invited = [(d["at"], d["visitor"], d["invitation"]["rule"]) for d in found if d["invitation"]]
    assert invited == [
        (at(2), "c", "deal"),
        (at(10), "a", "help"),
        (at(10), "b", "help"),
        (at(12), "c", "help"),
    ]
    chats = {(d["visitor"], d["at"]): d["chat"] for d in found}
    assert chats[("e", at(5))] == "blocked"
    assert chats[("a", at(30))] == "in_chat"


def test_json_prints_each_time_in_utc_whatever_zone_the_traffic_used(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, site: Path
) -> None:
    traffic = write_traffic(
        tmp_path, [{"at": "2026-01-05T11:00:00+01:00", "visitor": "a", "event": "page_view"}]
    )
    _, out, _ = run(capsys, "simulate", site, traffic, "--json")
    assert decisions(out)[0]["at"] == "2026-01-05T10:00:00Z"


def test_json_prints_no_summary(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, site: Path
) -> None:
    _, out, _ = run(capsys, "simulate", site, write_traffic(tmp_path, SHOP), "--json")
    assert "per 1,000 sessions" not in out
    assert all(text.startswith("{") for text in out.splitlines())


# --- agent, block and unblock lines ---------------------------------------------------------

AGENT_RULE = 'rule hi { when agents.available > 0 and page.dwell >= 5s say "Hi" }\n'


def test_agent_lines_set_the_status_conditions_read(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rules = write_rules(tmp_path, AGENT_RULE)
    traffic = write_traffic(
        tmp_path,
        [
            line(0, agents={"online": 2, "available": 0}),
            line(0, "a", "page_view", url="/"),
            line(6, "a", "tick"),  # nobody available
            line(7, agents={"online": 2, "available": 1, "queue_wait": 20}),
            line(8, "a", "tick"),  # invited
        ],
    )
    _, out, _ = run(capsys, "simulate", rules, traffic, "--json")
    found = decisions(out)
    assert [d["invitation"] is not None for d in found] == [False, False, True]


def test_an_agent_status_older_than_2_minutes_is_unknown(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rules = write_rules(tmp_path, AGENT_RULE)
    traffic = write_traffic(
        tmp_path,
        [
            line(0, agents={"online": 2, "available": 1}),
            line(0, "a", "page_view", url="/"),
            line(121, "a", "tick"),
        ],
    )
    _, out, _ = run(capsys, "simulate", rules, traffic, "--json")
    assert decisions(out)[-1]["invitation"] is None


def test_block_and_unblock_lines_stop_and_restart_invitations(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rules = write_rules(tmp_path, 'rule hi { when page.dwell >= 5s say "Hi" }\n')
    traffic = write_traffic(
        tmp_path,
        [
            line(0, block={"visitor": "a", "reason": "abuse"}),
            line(0, "a", "page_view", url="/"),
            line(6, "a", "tick"),
            line(7, unblock="a"),
            line(8, "a", "tick"),
        ],
    )
    _, out, _ = run(capsys, "simulate", rules, traffic, "--json")
    found = decisions(out)
    assert [d["chat"] for d in found] == ["blocked", "blocked", "available"]
    assert [d["invitation"] is not None for d in found] == [False, False, True]
    assert found[0]["recheck_in"] is None  # blocked until lifted


def test_a_block_with_an_expiry_ends_on_its_own(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rules = write_rules(tmp_path, 'rule hi { when page.dwell >= 5s say "Hi" }\n')
    traffic = write_traffic(
        tmp_path,
        [
            line(0, block={"visitor": "a", "reason": "cooling off", "until": at(60)}),
            line(0, "a", "page_view", url="/"),
            line(59, "a", "tick"),
            line(60, "a", "tick"),
        ],
    )
    _, out, _ = run(capsys, "simulate", rules, traffic, "--json")
    found = decisions(out)
    assert [d["chat"] for d in found] == ["blocked", "blocked", "available"]
    assert found[0]["recheck_in"] == 60
    assert found[2]["invitation"] is not None


# --- --agents ---------------------------------------------------------------------------------


def test_agents_option_gives_every_event_the_same_fresh_status(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rules = write_rules(
        tmp_path, 'rule hi { when agents.available > 0 and queue.wait < 30s say "Hi" }\n'
    )
    traffic = write_traffic(
        tmp_path,
        [line(0, "a", "page_view", url="/"), line(600, "b", "page_view", url="/")],
    )
    _, out, _ = run(
        capsys,
        "simulate",
        rules,
        traffic,
        "--json",
        "--agents",
        "online=2,available=1,queue_wait=20s",
    )
    assert [d["invitation"] is not None for d in decisions(out)] == [True, True]
    _, out, _ = run(
        capsys,
        "simulate",
        rules,
        traffic,
        "--json",
        "--agents",
        "online=2,available=1,queue_wait=40s",
    )
    assert [d["invitation"] for d in decisions(out)] == [None, None]
    _, out, _ = run(capsys, "simulate", rules, traffic, "--json")
    assert [d["invitation"] for d in decisions(out)] == [None, None]


def test_a_bad_agents_option_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rules = write_rules(tmp_path, AGENT_RULE)
    traffic = write_traffic(tmp_path, [line(0, "a", "page_view", url="/")])
    code, out, err = run(capsys, "simulate", rules, traffic, "--agents", "online=lots")
    assert code == 2
    assert out == ""
    assert err.startswith("politely: --agents: ")
    assert "Traceback" not in err


# --- --ticks ----------------------------------------------------------------------------------

DWELL_RULE = 'rule hi { when page.dwell >= 30s say "Hi" }\n'


def test_ticks_option_sends_the_tick_each_decision_asks_for(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rules = write_rules(tmp_path, DWELL_RULE)
    traffic = write_traffic(
        tmp_path,
        [line(0, "a", "page_view", url="/"), line(100, "a", "page_view", url="/b")],
    )
    _, out, _ = run(capsys, "simulate", rules, traffic, "--json")
    assert [d["invitation"] for d in decisions(out)] == [None, None]
    _, out, _ = run(capsys, "simulate", rules, traffic, "--json", "--ticks")
    found = decisions(out)
    assert [d["at"] for d in found] == [at(0), at(30), at(100)]
    assert found[1]["invitation"]["rule"] == "hi"


def test_ticks_option_stops_at_each_visitors_last_recorded_event(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rules = write_rules(tmp_path, DWELL_RULE)
    traffic = write_traffic(
        tmp_path,
        [line(0, "a", "page_view", url="/"), line(10, "a", "page_view", url="/b")],
    )
    _, out, _ = run(capsys, "simulate", rules, traffic, "--json", "--ticks")
    assert [d["at"] for d in decisions(out)] == [at(0), at(10)]


def test_ticks_option_counts_the_sent_ticks_apart_from_the_events(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rules = write_rules(tmp_path, DWELL_RULE)
    traffic = write_traffic(
        tmp_path,
        [line(0, "a", "page_view", url="/"), line(100, "a", "page_view", url="/b")],
    )
    code, out, _ = run(capsys, "simulate", rules, traffic, "--ticks")
    assert code == 0
    assert out.splitlines()[0].startswith("2 events (and 1 ")
    assert row(out, "hi")[1] == "1"


# --- bad traffic ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ('{"at": "2026-01-05T10:00:01Z", "visitor": "a", "event": ', "not JSON"),
        ('{"visitor": "a", "event": "tick"}', "`at`"),
        ('{"agents": {"online": 1, "available": 1}}', "`at`"),
        (
            '{"at": "2026-01-05T10:00:01Z", "visitor": "a", "event": "scroll", "scroll": 150}',
            "scroll",
        ),
        ('["a", "list"]', "object"),
        ('{"at": "2026-01-05T10:00:01Z", "visitor": "a"}', "`event` is missing"),
        ('{"at": "2026-01-05T10:00:01Z", "page": "/"}', "expected an event"),
        ('{"at": "2026-01-05T10:00:01Z", "visitor": "a", "event": "tick", "colour": 1}', "colour"),
        ('{"at": "2026-01-05T10:00:01Z", "agents": {"online": 1}}', "available"),
    ],
)
def test_a_bad_traffic_line_stops_with_its_file_line_and_what_is_wrong(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, site: Path, bad: str, words: str
) -> None:
    traffic = tmp_path / "traffic.jsonl"
    good = [line(0, "a", "page_view", url="/"), line(0, "b", "page_view", url="/")]
    after = line(2, "z", "page_view", url="/")
    traffic.write_text(
        "".join(json.dumps(x) + "\n" for x in good) + bad + "\n" + json.dumps(after) + "\n",
        encoding="utf-8",
    )
    code, out, err = run(capsys, "simulate", site, traffic, "--json")
    assert code == 1
    assert f"{traffic}:3: " in err
    assert words in err.split(f"{traffic}:3: ", 1)[1]
    assert "Traceback" not in err
    assert len(out.splitlines()) <= 2  # nothing past the bad line was evaluated
    assert '"visitor": "z"' not in out


def test_explain_stops_on_a_bad_traffic_line_too(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, site: Path
) -> None:
    traffic = tmp_path / "traffic.jsonl"
    traffic.write_text(
        json.dumps(line(0, "a", "page_view", url="/")) + "\nnope\n", encoding="utf-8"
    )
    code, _, err = run(capsys, "explain", site, traffic, "--visitor", "a")
    assert code == 1
    assert f"{traffic}:2: not JSON" in err


def test_a_missing_traffic_file_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, site: Path
) -> None:
    code, _, err = run(capsys, "simulate", site, tmp_path / "nothing.jsonl")
    assert code == 2
    assert "nothing.jsonl" in err


def test_rules_with_errors_stop_before_any_traffic_is_read(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rules = write_rules(tmp_path, 'rule r { when page.dwell >= 30 say "Hi" }\n')
    traffic = write_traffic(tmp_path, [line(0, "a", "page_view", url="/")])
    code, out, _ = run(capsys, "simulate", rules, traffic)
    assert code == 1
    assert "error[type-mismatch]" in out
    assert "per 1,000 sessions" not in out


# --- explain ---------------------------------------------------------------------------------


def explained_events(out: str) -> list[str]:
    """The heading line of each explained event (the lines that are not indented)."""
    return [text for text in out.splitlines() if text and not text.startswith(" ")]


def test_explain_prints_each_event_of_the_visitor_and_no_other(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, site: Path
) -> None:
    code, out, _ = run(capsys, "explain", site, write_traffic(tmp_path, SHOP), "--visitor", "b")
    assert code == 0
    headings = explained_events(out)
    assert [h.split()[0] for h in headings] == [at(0), at(10), at(15), at(80)]
    assert all(
        f"({where})" in h
        for h, where in zip(headings, ["line 2", "line 8", "line 10", "line 13"], strict=True)
    )


def test_explain_says_what_each_rule_did_and_why(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, site: Path
) -> None:
    _, out, _ = run(capsys, "explain", site, write_traffic(tmp_path, SHOP), "--visitor", "b")
    blocks = out.strip().split("\n\n")
    assert len(blocks) == 4
    view, invited, dismissed, held = (block.splitlines() for block in blocks)

    assert "page_view /" in view[0]
    assert "no invitation, ask again in 10s" in view[0]
    assert _rule_line(view, "help").split(None, 1)[1] == (
        "condition false: page.dwell >= 10s is false: page.dwell is 0s; could fire in 10s"
    )
    assert "not listening: listens to exit_intent" in _rule_line(view, "deal")

    assert "invite with help" in invited[0]
    assert "fired" in _rule_line(invited, "help")

    assert "no invitation" in dismissed[0]
    assert "outcome event" in _rule_line(dismissed, "help")

    assert "no invitation" in held[0]
    assert "quiet: dismissed 1m5s ago; quiet 5m after dismiss" in _rule_line(held, "help")


def _rule_line(block: list[str], rule: str) -> str:
    for text in block[1:]:
        if text.split()[0] == rule:
            return text.strip()
    raise AssertionError(f"no line for {rule} in {block}")


def test_explain_tells_why_a_visitor_is_not_considered(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, site: Path
) -> None:
    traffic = write_traffic(tmp_path, SHOP)
    _, out, _ = run(capsys, "explain", site, traffic, "--visitor", "e")
    assert "(chat: blocked)" in out
    assert "not considered: the visitor is blocked" in out
    _, out, _ = run(capsys, "explain", site, traffic, "--visitor", "a")
    assert "not considered: the visitor is in a chat" in out


def test_explain_with_ticks_shows_the_ticks_it_sent(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rules = write_rules(tmp_path, DWELL_RULE)
    traffic = write_traffic(
        tmp_path,
        [line(0, "a", "page_view", url="/"), line(100, "a", "page_view", url="/b")],
    )
    code, out, _ = run(capsys, "explain", rules, traffic, "--visitor", "a", "--ticks")
    assert code == 0
    headings = explained_events(out)
    assert len(headings) == 3
    assert "(sent tick)" in headings[1]
    assert 'invite with hi: "Hi"' in headings[1]


def test_explain_changes_nothing_a_simulation_would_decide(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, site: Path
) -> None:
    traffic = write_traffic(tmp_path, SHOP)
    _, out, _ = run(capsys, "explain", site, traffic, "--visitor", "c")
    invited = [h for h in explained_events(out) if "invite with" in h]
    assert [h.split()[0] for h in invited] == [at(2), at(12)]


def test_explain_of_a_visitor_without_events_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, site: Path
) -> None:
    code, out, err = run(
        capsys, "explain", site, write_traffic(tmp_path, SHOP), "--visitor", "nobody"
    )
    assert code == 1
    assert out == ""
    assert "nobody" in err


def test_explain_requires_a_visitor(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, site: Path
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["explain", str(site), str(write_traffic(tmp_path, SHOP))])
    assert stopped.value.code == 2
    assert "--visitor" in capsys.readouterr().err
