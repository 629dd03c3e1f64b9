"""Golden replay: the example site in rules/ against its demo traffic.

`politely simulate rules rules/demo-traffic.jsonl --json` must print exactly
tests/golden/demo-traffic.jsonl, line by line. Each decision in the golden
file was checked by hand against docs/contract.md and the intent written in
rules/*.rules. When a change to the rules, the traffic or the engine changes
a decision on purpose, regenerate the file deliberately and review the diff:

    POLITELY_REGENERATE_GOLDEN=1 python -m pytest tests/test_golden_replay.py
    git diff tests/golden/
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path

import pytest

from conftest import IN_CI
from politely.cli import main

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"
TRAFFIC = RULES / "demo-traffic.jsonl"
GOLDEN = Path(__file__).resolve().parent / "golden" / "demo-traffic.jsonl"
REGENERATE = "POLITELY_REGENERATE_GOLDEN"


def simulate(capsys: pytest.CaptureFixture[str]) -> list[str]:
    code = main(["simulate", str(RULES), str(TRAFFIC), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out.splitlines(keepends=True)


def test_demo_traffic_replays_exactly_as_the_golden_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    got = simulate(capsys)
    if os.environ.get(REGENERATE) == "1":
        if IN_CI:
            pytest.fail(f"{REGENERATE}=1 under CI: regenerate golden files locally, on purpose")
        GOLDEN.write_text("".join(got), encoding="utf-8")
        pytest.skip(
            f"rewrote {GOLDEN} ({len(got)} lines); review it with `git diff` before committing"
        )
    expected = GOLDEN.read_text(encoding="utf-8").splitlines(keepends=True)
    if got != expected:
        diff = "".join(
            difflib.unified_diff(
                expected,
                got,
                fromfile=str(GOLDEN.relative_to(ROOT)),
                tofile="politely simulate rules rules/demo-traffic.jsonl --json",
            )
        )
        pytest.fail(
            f"the demo replay no longer matches the golden file:\n{diff}\n"
            f"If every changed decision is intended, regenerate the file deliberately with\n"
            f"    {REGENERATE}=1 python -m pytest tests/test_golden_replay.py\n"
            f"and review `git diff tests/golden/` before committing.",
            pytrace=False,
        )


def test_golden_file_has_one_decision_for_each_event_of_the_demo_traffic() -> None:
    events = [
        json.loads(text)
        for text in TRAFFIC.read_text(encoding="utf-8").splitlines()
        if text.strip() and "event" in json.loads(text)
    ]
    decisions = [json.loads(text) for text in GOLDEN.read_text(encoding="utf-8").splitlines()]
    assert [(d["visitor"], d["at"]) for d in decisions] == [(e["visitor"], e["at"]) for e in events]


def test_golden_file_shows_every_rule_of_the_example_site_firing() -> None:
    decisions = [json.loads(text) for text in GOLDEN.read_text(encoding="utf-8").splitlines()]
    fired = {d["invitation"]["rule"] for d in decisions if d["invitation"] is not None}
    assert fired == {
        "pricing_help",
        "returning_customer",
        "product_questions",
        "cart_rescue",
        "checkout_trouble",
    }


def test_example_site_checks_without_problems(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(RULES)]) == 0
    assert "no problems" in capsys.readouterr().out
