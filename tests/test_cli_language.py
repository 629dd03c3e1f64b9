"""`politely check` and `politely fmt`: exit codes (0 clean or warnings only, 1 errors
or files to reformat, 2 usage errors), the rendered and JSON diagnostics, and
`fmt` rewriting files, or only listing them with `--check`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from politely.cli import main

ROOT = Path(__file__).resolve().parent.parent
AGENTS = "policy { only when agents.available > 0 }\n"
CLEAN = AGENTS + 'rule hello {\n    when page.dwell >= 30s\n    say "Hi"\n}\n'
CLEAN_FORMATTED = (
    "policy {\n    only when agents.available > 0\n}\n\n"
    'rule hello {\n    when page.dwell >= 30s\n    say "Hi"\n}\n'
)
WARNING_ONLY = 'rule hello {\n    when page.dwell >= 30s\n    say "Hi"\n}\n'
BROKEN = AGENTS + 'rule hello { when page.dwell >= 30 say "Hi" }\n'


def run(argv: list[str]) -> int:
    """`main(argv)`, with argparse's SystemExit turned into its exit code."""
    try:
        return main(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1


def site(tmp_path: Path, **files: str) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    for name, text in files.items():
        (folder / f"{name}.rules").write_text(text, encoding="utf-8")
    return folder


# --- check ------------------------------------------------------------------------------


def test_check_exits_0_on_a_clean_site(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = site(tmp_path, a=CLEAN)
    assert run(["check", str(folder)]) == 0
    assert capsys.readouterr().out == "1 rule in 1 file: no problems\n"


def test_check_exits_0_with_warnings_only_and_prints_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = site(tmp_path, a=WARNING_ONLY)
    assert run(["check", str(folder)]) == 0
    out = capsys.readouterr().out
    assert f"{folder / 'a.rules'}:1:6: warning[no-agent-check]:" in out
    assert out.endswith("1 rule in 1 file: 1 warning\n")


def test_check_exits_1_on_errors_and_renders_each_with_a_caret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = site(tmp_path, a=BROKEN, b='rule other { when pge.path == "/" say "x" }\n')
    assert run(["check", str(folder)]) == 1
    out = capsys.readouterr().out
    path_a, path_b = folder / "a.rules", folder / "b.rules"
    assert (
        f"{path_a}:2:19: error[type-mismatch]: `page.dwell` is a duration; write 30s, not 30\n"
        '  2 | rule hello { when page.dwell >= 30 say "Hi" }\n'
        "    |                   ^^^^^^^^^^^^^^^^\n"
        "  = help: durations need a unit: s, m, h, d or w\n"
    ) in out
    assert f"{path_b}:1:19: error[unknown-namespace]:" in out
    assert "did you mean `page.path`?" in out
    assert out.endswith("2 rules in 2 files: 2 errors\n")


def test_check_reads_a_single_file_and_several_paths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = site(tmp_path, a=CLEAN)
    other = tmp_path / "other.rules"
    other.write_text(BROKEN.replace("hello", "bye"), encoding="utf-8")
    assert run(["check", str(folder / "a.rules")]) == 0
    assert run(["check", str(folder), str(other)]) == 1
    assert f"{other}:2:17: error[type-mismatch]" in capsys.readouterr().out


def test_check_reads_the_files_of_a_folder_in_file_name_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = 'rule r{name} {{ when page.dwel >= 1s say "x" }}\n'
    folder = site(tmp_path, **{"20-b": bad.format(name=2), "10-a": bad.format(name=1)})
    (folder / "notes.txt").write_text("not rules", encoding="utf-8")
    assert run(["check", str(folder), "--format", "json"]) == 1
    paths = [d["path"] for d in json.loads(capsys.readouterr().out)["diagnostics"]]
    assert paths == [str(folder / "10-a.rules"), str(folder / "20-b.rules")]


def test_check_json_carries_every_diagnostic_field_and_the_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = site(tmp_path, a=BROKEN)
    assert run(["check", "--format", "json", str(folder)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report == {
        "diagnostics": [
            {
                "code": "type-mismatch",
                "message": "`page.dwell` is a duration; write 30s, not 30",
                "path": str(folder / "a.rules"),
                "line": 2,
                "column": 19,
                "end_line": 2,
                "end_column": 35,
                "severity": "error",
                "hints": ["durations need a unit: s, m, h, d or w"],
            }
        ],
        "errors": 1,
        "warnings": 0,
    }


def test_check_json_exits_0_and_counts_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = site(tmp_path, a=WARNING_ONLY)
    assert run(["check", str(folder), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["errors"], report["warnings"]) == (0, 1)
    assert report["diagnostics"][0]["severity"] == "warning"


def test_check_reports_a_syntax_error_in_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = site(tmp_path, a='rule r { when page.dwell >= 30s "Hi" }\n')
    assert run(["check", str(folder)]) == 1
    assert "1:33: error[syntax]: expected `say` after the condition" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "{missing}"],
        ["check", "{empty}"],
        ["check"],
        ["check", "--bogus", "{site}"],
        ["check", "--format", "xml", "{site}"],
        ["fmt", "{missing}"],
        ["fmt"],
        ["fmt", "--write", "{site}"],
        ["lint", "{site}"],
        [],
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = site(tmp_path, a=CLEAN)
    (tmp_path / "empty").mkdir()
    places = {
        "missing": str(tmp_path / "missing.rules"),
        "empty": str(tmp_path / "empty"),
        "site": str(folder),
    }
    assert run([arg.format(**places) for arg in argv]) == 2
    captured = capsys.readouterr()
    assert captured.err
    assert "Traceback" not in captured.err


def test_a_missing_path_is_named_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere"
    assert run(["check", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err


# --- fmt --------------------------------------------------------------------------------------


def test_fmt_rewrites_files_in_the_canonical_layout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = site(tmp_path, a=CLEAN, b=CLEAN_FORMATTED.replace("hello", "other"))
    assert run(["fmt", str(folder)]) == 0
    assert (folder / "a.rules").read_text(encoding="utf-8") == CLEAN_FORMATTED
    assert capsys.readouterr().out == f"reformatted {folder / 'a.rules'}\n"


def test_fmt_of_one_file(tmp_path: Path) -> None:
    path = tmp_path / "one.rules"
    path.write_text(CLEAN, encoding="utf-8")
    assert run(["fmt", str(path)]) == 0
    assert path.read_text(encoding="utf-8") == CLEAN_FORMATTED


def test_fmt_check_lists_files_that_would_change_without_changing_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = site(tmp_path, a=CLEAN, b=CLEAN_FORMATTED.replace("hello", "other"))
    assert run(["fmt", "--check", str(folder)]) == 1
    assert capsys.readouterr().out == f"would reformat {folder / 'a.rules'}\n"
    assert (folder / "a.rules").read_text(encoding="utf-8") == CLEAN


def test_fmt_check_exits_0_when_everything_is_formatted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = site(tmp_path, a=CLEAN_FORMATTED)
    assert run(["fmt", str(folder), "--check"]) == 0
    assert "formatted" in capsys.readouterr().out
    assert (folder / "a.rules").read_text(encoding="utf-8") == CLEAN_FORMATTED


def test_fmt_then_fmt_check_agree(tmp_path: Path) -> None:
    folder = site(tmp_path, a=CLEAN, b='# x\nrule b{when page.dwell>=1m30s say "y"}  # y')
    assert run(["fmt", "--check", str(folder)]) == 1
    assert run(["fmt", str(folder)]) == 0
    assert run(["fmt", "--check", str(folder)]) == 0


def test_fmt_leaves_a_file_with_a_syntax_error_alone_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = 'rule r {\n    when page.dwell >= 30s "Hi"\n}\n'
    folder = site(tmp_path, a=CLEAN, b=broken)
    assert run(["fmt", str(folder)]) == 1
    assert (folder / "b.rules").read_text(encoding="utf-8") == broken
    assert (folder / "a.rules").read_text(encoding="utf-8") == CLEAN_FORMATTED
    err = capsys.readouterr().err
    assert f"{folder / 'b.rules'}:2:28: error[syntax]: expected `say` after the condition" in err


def test_fmt_never_rewrites_a_file_that_is_not_utf8(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = site(tmp_path, a=CLEAN)
    latin1 = AGENTS.encode() + b'# caf\xe9\nrule r{when page.dwell>=30s say "x"}\n'
    (folder / "b.rules").write_bytes(latin1)
    assert run(["fmt", str(folder)]) == 1
    assert (folder / "b.rules").read_bytes() == latin1
    assert str(folder / "b.rules") in capsys.readouterr().err


def test_check_reports_a_file_that_is_not_utf8_as_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = site(tmp_path)
    (folder / "a.rules").write_bytes(AGENTS.encode() + b"# caf\xe9\n")
    assert run(["check", str(folder)]) == 1
    assert f"{folder / 'a.rules'}:2:1: error[bad-encoding]:" in capsys.readouterr().out


# --- the module entry point --------------------------------------------------------------------


def test_python_dash_m_politely_checks_the_example_site() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "politely", "check", "rules"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.endswith("in 3 files: no problems\n")


def test_python_dash_m_politely_exits_1_on_errors(tmp_path: Path) -> None:
    folder = site(tmp_path, a=BROKEN)
    done = subprocess.run(
        [sys.executable, "-m", "politely", "check", str(folder), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert json.loads(done.stdout)["errors"] == 1
