"""`politely check` loads only what checking needs: a new process starts fast.

The engine, pydantic, the stores and the service are for evaluating events;
checking rules never imports them, and compiling them does not either.
(msgspec does load: the syntax tree's nodes are its Structs, cheaper to import
than the dataclasses they replaced.) The front door (`politely.Engine`)
imports each public name on first use.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import politely

SOURCE = Path(politely.__file__).resolve().parent.parent
SITE = Path(__file__).resolve().parent.parent / "rules"
# Modules a check must not load: what evaluating events and serving need.
# (cachetools may load: the check cache that makes a reload free uses it, ~3 ms.)
NOT_FOR_CHECKING = (
    "pydantic",
    "fastapi",
    "starlette",
    "sqlite3",
    "politely.engine",
    "politely.models",
    "politely.stores",
    "politely.compiler",
    "politely.evaluator",
    "politely.service",
)


def modules_after(code: str, tmp_path: Path) -> set[str]:
    """The modules loaded once `code` ran in a new interpreter."""
    program = (
        "import contextlib, io, json, sys\n"
        f"{code}\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SOURCE), "POLITELY_CACHE_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stderr.splitlines()[-1]))


def loaded_of(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


@pytest.mark.parametrize(
    "arguments",
    [["check", str(SITE)], ["check", "--format", "json", str(SITE)], ["fmt", "--check", str(SITE)]],
)
def test_checking_imports_neither_the_engine_nor_pydantic(
    arguments: list[str], tmp_path: Path
) -> None:
    modules = modules_after(
        "from politely.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main({arguments!r}) == 0\n",
        tmp_path,
    )
    assert "politely.checker" in modules  # the check did run
    assert loaded_of(modules, NOT_FOR_CHECKING) == []


def test_a_syntax_error_imports_neither_the_engine_nor_pydantic(tmp_path: Path) -> None:
    broken = tmp_path / "broken.rules"
    broken.write_text("rule a { when }\n", encoding="utf-8")
    modules = modules_after(
        "from politely.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main(['check', {str(broken)!r}]) == 1\n",
        tmp_path,
    )
    assert "politely.syntax_errors" in modules
    assert loaded_of(modules, NOT_FOR_CHECKING) == []


def test_compiling_rules_imports_neither_the_engine_nor_pydantic(tmp_path: Path) -> None:
    """A service's cold load (check, then compile) pays pydantic's import only with the
    engine that evaluates events, not to build the rule set."""
    modules = modules_after(
        "from politely.checker import check_path\n"
        "from politely.compiler import compile_rules\n"
        f"assert compile_rules(check_path({str(SITE)!r})).rules\n",
        tmp_path,
    )
    assert "politely.ruleset" in modules  # the compile did run
    compiling = tuple(m for m in NOT_FOR_CHECKING if m != "politely.compiler")
    assert loaded_of(modules, compiling) == []


def test_importing_politely_loads_none_of_its_modules(tmp_path: Path) -> None:
    modules = modules_after("import politely", tmp_path)
    assert loaded_of(modules, ("politely",)) == ["politely"]
    assert loaded_of(modules, NOT_FOR_CHECKING) == []


def test_a_public_name_is_imported_on_first_use(tmp_path: Path) -> None:
    modules = modules_after(
        "import politely\n"
        "from politely import Engine\n"
        "from politely.engine import Engine as Defined\n"
        "assert politely.Engine is Engine is Defined\n",
        tmp_path,
    )
    assert "politely.engine" in modules


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Engin'"):
        politely.Engin  # noqa: B018


def test_dir_lists_every_public_name() -> None:
    assert set(politely.__all__) <= set(dir(politely))
