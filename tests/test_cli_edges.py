"""The command line at its edges: traffic out of time order, a summary whose columns
never collide, errors that name the right field, and no traceback for odd input.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import weakref
from pathlib import Path
from typing import Any

import pytest

from politely import cli, simulate
from politely.simulate import TrafficFile
from test_simulate import SHOP, SITE, at, decisions, line, row, run, write_rules, write_traffic

HI = 'rule hi { when page.dwell >= 5s say "Hi" }\n'


@pytest.fixture
def site(tmp_path: Path) -> Path:
    path = tmp_path / "site"
    path.mkdir()
    (path / "shop.rules").write_text(SITE, encoding="utf-8")
    return path


def shuffled(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The shop's lines grouped by visitor, as an export per visitor would be."""
    return sorted(items, key=lambda item: str(item.get("visitor", "")))


# --- traffic out of time order ---------------------------------------------------------------


def test_traffic_out_of_order_is_replayed_sorted_and_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, site: Path
) -> None:
    _, ordered, err = run(capsys, "simulate", site, write_traffic(tmp_path, SHOP), "--json")
    assert err == ""
    traffic = write_traffic(tmp_path, shuffled(SHOP), "grouped.jsonl")
    code, out, err = run(capsys, "simulate", site, traffic, "--json")
    assert code == 0
    assert f"{traffic}:" in err
    assert "not in time order; replaying them sorted by `at`" in err
    assert decisions(out) == decisions(ordered)


def test_sorting_is_stable_lines_with_the_same_time_keep_their_order(tmp_path: Path) -> None:
    items = [line(5, "b", "tick"), line(0, "a", "page_view"), line(0, "b", "page_view")]
    items += [line(0, "c", "page_view"), line(3, "a", "tick")]
    traffic = TrafficFile(write_traffic(tmp_path, items))
    assert not traffic.in_order
    assert traffic.first_out_of_order == 2
    assert [number for number, _ in traffic] == [2, 3, 4, 5, 1]


def test_a_large_file_out_of_order_is_sorted_in_runs_and_merged(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    items = [line((i * 7919) % 101, f"v{i % 13}", "tick") for i in range(300)]
    path = write_traffic(tmp_path, items)
    in_memory = [number for number, _ in TrafficFile(path)]
    spilled: list[int] = []
    original = simulate._spill

    def counting(run: Any, stack: Any) -> Any:
        spilled.append(len(run))
        return original(run, stack)

    monkeypatch.setattr(simulate, "_spill", counting)
    merged = [number for number, _ in TrafficFile(path, chunk=16)]
    assert merged == in_memory
    assert len(spilled) == 300 // 16  # it spilled every full run...
    assert max(spilled) == 16  # ...and never held more than one run in memory
    times = [item["at"] for item in items]
    assert [times[n - 1] for n in merged] == sorted(times)


def test_a_file_in_order_is_streamed_not_sorted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def never(self: TrafficFile) -> Any:
        raise AssertionError("a file in time order was sorted")

    monkeypatch.setattr(TrafficFile, "_sorted", never)
    traffic = TrafficFile(write_traffic(tmp_path, SHOP))
    assert traffic.in_order
    assert len(list(traffic)) == len(SHOP)


def test_the_summary_of_traffic_out_of_order_starts_again_sorted_and_says_so_once(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, site: Path
) -> None:
    _, ordered, _ = run(capsys, "simulate", site, write_traffic(tmp_path, SHOP))
    grouped = shuffled(SHOP)
    traffic = write_traffic(tmp_path, grouped, "grouped.jsonl")
    first_late = next(
        number
        for number in range(2, len(grouped) + 1)
        if grouped[number - 1]["at"] < max(item["at"] for item in grouped[: number - 1])
    )
    assert first_late > 2  # the stream replays lines before it meets the late one
    code, out, err = run(capsys, "simulate", site, traffic)
    assert code == 0
    assert err == (
        f"politely: {traffic}:{first_late}: lines are not in time order; replaying them "
        "sorted by `at` (lines with the same time keep their order)\n"
    )
    assert out == ordered  # nothing the abandoned stream counted is in the summary


def test_the_abandoned_replay_is_let_go_before_the_sorted_one_starts(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, site: Path
) -> None:
    made: list[weakref.ref[simulate.Simulation]] = []
    alive_at_restart: list[bool] = []

    class Watched(simulate.Simulation):
        def __init__(self, *args: Any, **options: Any) -> None:
            if made:
                gc.collect()
                alive_at_restart.append(made[-1]() is not None)
            super().__init__(*args, **options)
            made.append(weakref.ref(self))

    monkeypatch.setattr(simulate, "Simulation", Watched)
    traffic = write_traffic(tmp_path, shuffled(SHOP), "grouped.jsonl")
    assert run(capsys, "simulate", site, traffic)[0] == 0
    assert alive_at_restart == [False]  # its visitors' states are not held twice


def test_a_file_read_without_reading_ahead_stops_at_its_first_late_line_then_sorts(
    tmp_path: Path,
) -> None:
    items = [line(0, "a", "page_view"), line(5, "b", "tick"), line(3, "a", "tick")]
    items += [line(9, "c", "page_view"), line(1, "c", "tick")]
    path = write_traffic(tmp_path, items)
    traffic = TrafficFile(path, read_ahead=False)
    assert traffic.in_order  # as far as is known: nothing is read yet
    stream = iter(traffic)
    assert [next(stream)[0], next(stream)[0]] == [1, 2]
    with pytest.raises(simulate.OutOfOrderError):
        next(stream)
    assert traffic.first_out_of_order == 3 == TrafficFile(path).first_out_of_order
    assert [number for number, _ in traffic] == [number for number, _ in TrafficFile(path)]
    assert [number for number, _ in traffic] == [1, 5, 3, 2, 4]


def test_the_summary_reads_a_file_in_order_once_and_json_reads_it_ahead(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    opened: list[str] = []
    original = TrafficFile._read_ahead

    def counting(self: TrafficFile) -> None:
        opened.append("ahead")
        original(self)

    monkeypatch.setattr(TrafficFile, "_read_ahead", counting)
    rules, traffic = write_rules(tmp_path, HI), write_traffic(tmp_path, SHOP)
    assert run(capsys, "simulate", rules, traffic)[0] == 0
    assert opened == []
    assert run(capsys, "simulate", rules, traffic, "--json")[0] == 0
    assert run(capsys, "simulate", rules, traffic, "--ticks")[0] == 0
    assert opened == ["ahead", "ahead"]


def test_json_finds_a_line_that_is_not_json_before_it_shows_any_decision(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    traffic = write_traffic(tmp_path, SHOP)
    with traffic.open("a", encoding="utf-8") as out:
        out.write("{not json\n")
    code, out, err = run(capsys, "simulate", write_rules(tmp_path, HI), traffic, "--json")
    assert (code, out) == (1, "")
    assert f"{traffic}:{len(SHOP) + 1}: not JSON" in err


def test_explain_names_the_files_own_line_numbers_after_sorting(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, site: Path
) -> None:
    items = [line(10, "a", "tick"), line(0, "a", "page_view", url="/")]
    code, out, err = run(capsys, "explain", site, write_traffic(tmp_path, items), "--visitor", "a")
    assert code == 0
    assert "not in time order" in err
    headings = [text for text in out.splitlines() if text and not text.startswith(" ")]
    assert "(line 2)" in headings[0]
    assert "(line 1)" in headings[1]


def test_ticks_option_works_on_a_file_out_of_order(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rules = write_rules(tmp_path, HI)
    items = [line(100, "a", "page_view", url="/b"), line(0, "a", "page_view", url="/")]
    _, out, _ = run(capsys, "simulate", rules, write_traffic(tmp_path, items), "--json", "--ticks")
    assert [(d["event"], d["at"]) for d in decisions(out)] == [
        ("page_view", at(0)),
        ("tick", at(5)),
        ("page_view", at(100)),
    ]


# --- traffic from a pipe ---------------------------------------------------------------------


def from_stdin(
    site: Path, items: list[dict[str, Any]] | str, *options: str, temporary: Path
) -> subprocess.CompletedProcess[str]:
    """`politely simulate SITE /dev/stdin` in a process of its own, the lines piped
    in (a pipe can be read once), its temporary files in `temporary`."""
    text = items if isinstance(items, str) else "".join(json.dumps(i) + "\n" for i in items)
    command = [sys.executable, "-m", "politely", "simulate", str(site), "/dev/stdin", *options]
    env = {**os.environ, "TMPDIR": str(temporary)}
    return subprocess.run(command, input=text, capture_output=True, text=True, env=env)


@pytest.mark.parametrize("options", [(), ("--json",), ("--json", "--ticks")])
def test_traffic_from_a_pipe_out_of_order_is_replayed_as_from_a_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, site: Path, options: tuple[str, ...]
) -> None:
    """A sorted replay (and `--json`'s read ahead) reads the traffic again, so
    politely copies a pipe first, names the pipe in what it says, and removes
    the copy."""
    grouped = shuffled(SHOP)
    traffic = write_traffic(tmp_path, grouped, "grouped.jsonl")
    _, expected, file_err = run(capsys, "simulate", site, traffic, *options)
    temporary = tmp_path / "temporary"
    temporary.mkdir()
    piped = from_stdin(site, grouped, *options, temporary=temporary)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == expected
    assert piped.stderr == file_err.replace(str(traffic), "/dev/stdin")
    assert "/dev/stdin:" in piped.stderr  # the lines out of order, named by the pipe
    assert list(temporary.iterdir()) == []


def test_a_bad_line_from_a_pipe_is_named_by_the_pipe_and_its_line(
    tmp_path: Path, site: Path
) -> None:
    text = json.dumps(line(0, "a", "page_view")) + "\nnot json\n"
    piped = from_stdin(site, text, "--json", temporary=tmp_path)
    assert piped.returncode == 1
    assert piped.stdout == ""  # read ahead: nothing shown before the bad line is found
    assert piped.stderr.startswith("politely: /dev/stdin:2: not JSON")


# --- the summary ----------------------------------------------------------------------------


def test_long_rule_names_never_collide_with_the_numbers(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    name = "r" + "x" * 45
    rules = write_rules(
        tmp_path, f'rule {name} {{ when page.dwell >= 5s say "Hi" }}\n' + SITE.split("\n\n", 1)[1]
    )
    items = [line(0, "a", "page_view", url="/"), line(10, "a", "tick")]
    _, out, _ = run(capsys, "simulate", rules, write_traffic(tmp_path, items))
    assert row(out, name)[1:] == ["1", "1000.0", "0", "0", "-"]
    table = out.split("\n\n")[1].splitlines()
    header = table[0]
    assert header.startswith("invitations")
    for text in table[1:]:
        assert len(text) == len(header), text  # every number ends where its heading ends
        assert text[: len(name) + 4].rstrip().split(":")[0] in (
            f"  {name}",
            "  deal",
            "  help",
            "    variant 0",
            "    variant 1",
            "  total",
        )


def test_variants_that_start_alike_are_told_apart(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rules = write_rules(
        tmp_path,
        "policy { at most 10 invitations per session }\n"
        'rule hi { when page.dwell >= 5s say "Hello there, need help with your order?"'
        ' or "Hello there, need help with your account?" cooldown 1m }\n',
    )
    items = [line(0, v, "page_view", url="/") for v in "abcd"]
    items += [line(10, v, "tick") for v in "abcd"]
    _, out, _ = run(capsys, "simulate", rules, write_traffic(tmp_path, items))
    labels = [text.split("  ")[2] for text in out.splitlines() if text.startswith("    variant")]
    assert len(labels) == 2
    assert labels[0] != labels[1]


def test_visitors_not_considered_counts_visitors_and_events_apart(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rules = write_rules(tmp_path, HI)
    items = [
        line(0, block={"visitor": "e", "reason": "abuse"}),
        line(1, "e", "page_view", url="/"),
        line(2, "e", "tick"),
        line(3, "e", "page_view", url="/x"),
    ]
    _, out, _ = run(capsys, "simulate", rules, write_traffic(tmp_path, items))
    assert "visitors not considered: blocked 1 visitor (3 events)" in out


def test_json_lines_name_the_event(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, site: Path
) -> None:
    _, out, _ = run(capsys, "simulate", site, write_traffic(tmp_path, SHOP), "--json")
    assert [d["event"] for d in decisions(out)] == [i["event"] for i in SHOP if "event" in i]
    assert list(decisions(out)[0])[-3:] == ["visitor", "event", "at"]


# --- traffic errors name the right field -------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "words"),
    [
        (
            {"visitor": "a", "event": "page_view", "page": "/x"},
            "page: not a key of an event; did you mean `url`?",
        ),
        (
            {"visitor": "a", "event": "tick", "scrol": 5},
            "scrol: not a key of an event; did you mean `scroll`?",
        ),
        (
            {"visitor": "a", "event": "tick", "colour": 1},
            "colour: not a key of an event (its keys: visitor",
        ),
        ({"agents": "x"}, "agents: expected an object"),
        (
            {"agents": {"online": 1, "available": 1, "queue": 2}},
            "agents.queue: not a key of `agents`",
        ),
        ({"agents": {"online": 1, "available": "x"}}, "agents.available: "),
        ({"block": {"visitor": "v", "until": "tomorrow"}}, "block.until: not a time"),
        (
            {"block": {"visitor": "v", "why": "x"}},
            "block.why: not a key of a block (its keys: visitor, reason, until, by)",
        ),
        ({"block": {"visitor": 7}}, "block.visitor: expected a visitor id"),
        ({"block": {"reason": "x"}}, "block.visitor: missing"),
        ({"block": "v"}, "block: expected an object"),
        ({"unblock": None}, "unblock: expected a visitor id (non-empty text), got null"),
        ({"unblock": ""}, "unblock: expected a visitor id"),
        ({"unblock": "v", "note": "x"}, "note: not a key of an unblock line"),
        (
            {"visitor": "a", "event": "tick", "attributes": {"x": "y" * 1001}},
            "attributes.x: text longer",
        ),
        ({"visitor": "a", "event": "tick", "url": "http://[::1"}, "url: not a URL"),
        (  # a key is shown on one line
            {"agents": {"\r": 1, "online": 1, "available": 1}},
            'agents."\\r": not a key of `agents`',
        ),
        (
            {"visitor": "a", "event": "tick", "attributes": {"a\nb": "x" * 1001}},
            'attributes."a\\nb": text longer',
        ),
    ],
)
def test_a_bad_line_names_the_field_that_is_wrong(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, item: dict[str, Any], words: str
) -> None:
    rules = write_rules(tmp_path, HI)
    good = line(0, "a", "page_view", url="/")
    traffic = write_traffic(tmp_path, [good, {"at": at(1), **item}])
    code, _, err = run(capsys, "simulate", rules, traffic)
    assert code == 1
    assert f"{traffic}:2: {words}" in err, err
    assert "Traceback" not in err


def test_unblock_null_does_not_unblock_a_visitor_named_none(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rules = write_rules(tmp_path, HI)
    items = [line(0, block={"visitor": "None", "reason": "x"}), line(1, unblock=None)]
    code, _, err = run(capsys, "simulate", rules, write_traffic(tmp_path, items))
    assert code == 1
    assert "unblock: expected a visitor id" in err


# --- no traceback, whatever the files ----------------------------------------------------------


def write_bytes(tmp_path: Path, data: bytes, name: str = "traffic.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


GOOD = json.dumps(line(0, "a", "page_view", url="/")).encode() + b"\n"


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b'{"at": 0, "visitor": "v\xff", "event": "tick"}\n', "not UTF-8 (byte 24 of the line)"),
        (b'{"at": 0, "props": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n", "nested too deeply"),
        (
            b'{"at": 0, "visitor": "a", "event": "tick", "scroll": ' + b"1" * 5000 + b"}\n",
            "too many digits",
        ),
        (b'{"at": 0, "visitor": "a", "event": "tick", "scroll": NaN}\n', "not JSON: NaN"),
        (b'{"at": 1e400, "visitor": "a", "event": "tick"}\n', "at: not a time"),
        (
            b'{"at": "0001-01-01T00:00:00Z", "visitor": "a", "event": "tick"}\n',
            "at: a time must be",
        ),
        (
            b'{"at": 0, "visitor": "a", "event": "tick", "props": '
            + b'{"a": ' * 50
            + b"1}"
            + b"}" * 50,
            "nested more than 3 levels",
        ),
    ],
)
def test_odd_traffic_gives_file_line_and_what(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, data: bytes, words: str
) -> None:
    rules = write_rules(tmp_path, HI)
    traffic = write_bytes(tmp_path, GOOD + data)
    for command in ("simulate", "explain"):
        code, _, err = run(
            capsys, command, rules, traffic, *(["--visitor", "a"] * (command == "explain"))
        )
        assert code == 1
        assert f"politely: {traffic}:2: " in err
        assert words in err, err
        assert "Traceback" not in err


def test_a_line_longer_than_the_bound_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(simulate, "MAX_LINE", 100)
    rules = write_rules(tmp_path, HI)
    long_line = json.dumps(line(1, "a", "tick", props={"x": "y" * 200})).encode() + b"\n"
    code, _, err = run(capsys, "simulate", rules, write_bytes(tmp_path, GOOD + long_line))
    assert code == 1
    assert ":2: a line longer than 100 bytes" in err


def test_a_byte_order_mark_at_the_start_is_fine(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rules = write_rules(tmp_path, HI)
    code, out, _ = run(capsys, "simulate", rules, write_bytes(tmp_path, b"\xef\xbb\xbf" + GOOD))
    assert code == 0
    assert out.startswith("1 event from 1 visitor")


def test_a_traffic_folder_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rules = write_rules(tmp_path, HI)
    (tmp_path / "traffic").mkdir()
    for command in ("simulate", "explain"):
        extra = ["--visitor", "a"] if command == "explain" else []
        code, _, err = run(capsys, command, rules, tmp_path / "traffic", *extra)
        assert code == 2
        assert err == f"politely: {tmp_path / 'traffic'}: is a folder, not a file\n"


def test_a_folder_named_like_a_rules_file_inside_a_site_is_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, site: Path
) -> None:
    (site / "x.rules").mkdir()
    traffic = write_traffic(tmp_path, SHOP)
    for argv in (
        ["check", site],
        ["fmt", site],
        ["fmt", "--check", site],
        ["simulate", site, traffic],
    ):
        code, _, err = run(capsys, *argv)
        assert code == 2, argv
        assert f"{site / 'x.rules'}: is a folder, not a file" in err
        assert "Traceback" not in err


def test_an_unreadable_traffic_file_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rules = write_rules(tmp_path, HI)
    traffic = write_traffic(tmp_path, [line(0, "a", "page_view")])

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied", str(traffic))

    monkeypatch.setattr(simulate, "open", refuse, raising=False)
    code, _, err = run(capsys, "simulate", rules, traffic)
    assert code == 2
    assert err == f"politely: {traffic}: Permission denied\n"


# --- fmt --diff -------------------------------------------------------------------------------

MESSY = 'rule r {   when page.dwell >= 30s\nsay "Hi" }'


def test_fmt_check_diff_prints_a_unified_diff_and_changes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "a.rules"
    path.write_text(MESSY, encoding="utf-8")
    code, out, err = run(capsys, "fmt", "--check", "--diff", path)
    assert code == 1
    assert path.read_text(encoding="utf-8") == MESSY
    lines = out.splitlines()
    assert lines[0] == f"--- {path}\t(as it is)"
    assert lines[1] == f"+++ {path}\t(formatted)"
    assert lines[2].startswith("@@ ")
    assert "-rule r {   when page.dwell >= 30s" in lines
    assert "+    when page.dwell >= 30s" in lines
    assert "\\ No newline at end of file" in lines
    assert err == f"would reformat {path}\n"


def test_fmt_diff_alone_writes_nothing_and_exits_0(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "a.rules"
    path.write_text(MESSY, encoding="utf-8")
    code, out, _ = run(capsys, "fmt", "--diff", path)
    assert code == 0
    assert out.startswith("--- ")
    assert path.read_text(encoding="utf-8") == MESSY


def test_fmt_check_diff_of_formatted_files_prints_no_diff(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "a.rules"
    path.write_text('rule r {\n    when page.dwell >= 30s\n    say "Hi"\n}\n', encoding="utf-8")
    code, out, err = run(capsys, "fmt", "--check", "--diff", path)
    assert (code, out) == (0, "")
    assert err == "all files are formatted\n"


# --- the progress line ---------------------------------------------------------------------------


def progress_shown(err: str) -> list[int]:
    return [int(part[12:-1]) for part in err.split("\r") if part.startswith("simulating: ")]


def test_a_long_traffic_file_on_a_terminal_shows_its_progress_through_the_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from politely import cli

    monkeypatch.setattr(cli.sys.stderr, "isatty", lambda: True)
    monkeypatch.setattr(cli.os.path, "getsize", lambda path: 2_000_000)  # "long"
    items = [line(0, block={"visitor": "z", "reason": "x"})]
    items += [line(i, f"v{i}", "page_view", url="/" + "x" * 10 * i) for i in range(4)]
    traffic = write_traffic(tmp_path, items)
    code, out, err = run(capsys, "simulate", write_rules(tmp_path, HI), traffic)
    assert code == 0
    assert out.startswith("4 events from 4 visitors")
    # after each event, the share of the file's bytes read through its line
    sizes = [len(text) for text in traffic.read_bytes().splitlines(keepends=True)]
    through = [sum(sizes[: n + 1]) * 100 // sum(sizes) for n in range(1, 5)]
    assert progress_shown(err) == through
    assert through[0] > 20  # (the block line is long: bytes, not lines, are counted)


def test_a_sorted_replay_shows_its_progress_by_lines_replayed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from politely import cli

    monkeypatch.setattr(cli.sys.stderr, "isatty", lambda: True)
    monkeypatch.setattr(cli.os.path, "getsize", lambda path: 2_000_000)
    items = [line(9 - i, f"v{i}", "page_view", url="/") for i in range(4)]
    traffic = write_traffic(tmp_path, items)
    code, _, err = run(capsys, "simulate", write_rules(tmp_path, HI), traffic, "--json")
    assert code == 0
    assert progress_shown(err) == [25, 50, 75, 100]


# --- one command built -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [["check", "rules", "--bogus"], ["check"], ["fmt", "--nope"], ["simulate", "--help"]],
    ids=["unrecognized", "missing", "unknown-option", "help"],
)
def test_building_only_the_asked_command_changes_no_message(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    with pytest.raises(SystemExit) as alone:
        cli.main(argv)
    only = capsys.readouterr()
    with pytest.raises(SystemExit) as full:
        cli.build_parser().parse_args(argv)
    every = capsys.readouterr()
    assert (alone.value.code, only.out, only.err) == (full.value.code, every.out, every.err)


def test_a_usage_error_after_a_command_lists_every_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        cli.main(["check", "rules", "--bogus"])
    assert "usage: politely [-h] {check,fmt,simulate,explain,serve} ..." in capsys.readouterr().err
