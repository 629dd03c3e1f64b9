"""The grammar is written once, in grammar/politely.lark: the wheel carries it inside
the package, and a source tree without the package copy reads it from grammar/.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from politely import resources

REPO = Path(__file__).resolve().parent.parent
GRAMMAR = REPO / "grammar" / "politely.lark"
RULE = 'rule hi { when page.dwell >= 30s say "Hi" }\n'
PARSE = (
    "import sys, politely, politely.parser as p; "
    "assert politely.__file__.startswith(sys.argv[1]), politely.__file__; "
    f"result = p.parse({RULE!r}); "
    "assert result.program is not None and not result.diagnostics, result; "
    "print('parsed')"
)


def python(code: str, *args: str, path: Path) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter that imports politely from `path` first."""
    return subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(path)!r}); {code}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=path,
    )


def test_the_grammar_is_one_file_in_the_repository() -> None:
    regular = [p for p in REPO.rglob("*.lark") if ".venv" not in p.parts and not p.is_symlink()]
    assert [p.relative_to(REPO) for p in regular] == [Path("grammar/politely.lark")]


def test_the_wheel_ships_the_grammar_and_the_parser_loads_it(tmp_path: Path, wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        lark = [name for name in archive.namelist() if name.endswith(".lark")]
        assert lark == ["politely/politely.lark"]
        assert archive.read("politely/politely.lark") == GRAMMAR.read_bytes()
        archive.extractall(tmp_path / "installed")
    installed = tmp_path / "installed"
    done = python(PARSE, str(installed), path=installed)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "parsed"
    found = python(
        "from politely import resources; print(resources.grammar_file())", path=installed
    )
    assert found.stdout.strip() == str(installed / "politely" / "politely.lark")


@pytest.fixture
def source_tree(tmp_path: Path) -> Path:
    """A checkout without the package copy of the grammar: src/politely and grammar/."""
    shutil.copytree(
        REPO / "src" / "politely",
        tmp_path / "src" / "politely",
        ignore=shutil.ignore_patterns("*.lark", "__pycache__"),
    )
    shutil.copytree(REPO / "grammar", tmp_path / "grammar")
    return tmp_path


def test_a_source_tree_without_the_package_copy_reads_grammar_dir(source_tree: Path) -> None:
    src = source_tree / "src"
    assert not (src / "politely" / "politely.lark").exists()
    done = python(
        "from politely import resources; print(resources.grammar_file()); "
        "print(len(resources.grammar_text()))",
        path=src,
    )
    assert done.returncode == 0, done.stderr
    where, size = done.stdout.split()
    assert where == str(source_tree / "grammar" / "politely.lark")
    assert int(size) == len(GRAMMAR.read_text(encoding="utf-8"))


def test_a_missing_grammar_says_what_is_missing(source_tree: Path) -> None:
    shutil.rmtree(source_tree / "grammar")
    done = python(
        "from politely import resources; resources.grammar_text()", path=source_tree / "src"
    )
    assert "politely's grammar is missing" in done.stderr


def test_the_parser_of_a_source_tree_reads_grammar_dir(source_tree: Path) -> None:
    src = source_tree / "src"
    done = python(PARSE, str(src), path=src)
    assert done.returncode == 0, done.stderr


def test_this_checkout_finds_the_grammar() -> None:
    assert resources.grammar_text() == GRAMMAR.read_text(encoding="utf-8")
