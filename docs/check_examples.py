"""Check that every example in the docs is real: `python docs/check_examples.py`.

- A ```rules block must be in the canonical layout (`politely fmt`) and check
  without errors, unless the ```console block right after it shows a parser
  error (syntax, bad-duration, ...): such examples cannot be formatted.
  The latest ```rules block is saved as `site.rules`, the latest ```jsonl
  block as `traffic.jsonl`, for the commands that follow.
- In a ```console block, each `$ command` is run (in the repository when it
  names `rules`, else in a scratch folder holding those two files as they are
  at that block) and its output must equal the lines under it. Each block gets
  a folder of its own, so blocks run side by side, one per core: they are new
  processes, and their start-up is most of this script's time.
- The `>>>` examples of each page run as doctests; every rules text given to
  `Engine.from_source` must check without diagnostics and be canonical.

Exit status 0 when all examples hold, 1 otherwise.
"""

from __future__ import annotations

import difflib
import doctest
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path

import politely
from politely.checker import check_sources
from politely.formatter import format_source

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.S | re.M)
PARSER_ERROR = re.compile(
    r"error\[(syntax|bad-duration|bad-schedule|bad-string|bad-template|bad-number|too-deep)\]"
)
POLITELY = str(Path(sys.executable).with_name("politely"))


def run(command: str, cwd: Path) -> str:
    command = re.sub(r"(^|\| )politely ", rf"\1{POLITELY} ", command)
    done = subprocess.run(command, shell=True, cwd=cwd, capture_output=True, text=True)
    return (done.stdout + done.stderr).rstrip("\n")


def check_blocks(page: Path, pool: ThreadPoolExecutor) -> int:
    text = page.read_text(encoding="utf-8")
    problems = 0
    files: dict[str, str] = {}  # what the scratch folder holds at this point of the page
    consoles: list[Future[tuple[int, str]]] = []
    scratch = Path(tempfile.mkdtemp(prefix="politely-docs-"))
    try:
        for block in FENCE.finditer(text):
            kind, body = block.group(1), block.group(2)
            where = f"{page.name}:{text[: block.start()].count(chr(10)) + 1}"
            if kind == "rules":
                files["site.rules"] = body
                following = text[block.end() :].lstrip()
                shown = following.split("```")[1] if following.startswith("```console") else ""
                if PARSER_ERROR.search(shown):
                    continue
                try:
                    canonical = format_source(body) == body
                except Exception:
                    canonical = False
                if not canonical:
                    problems += 1
                    print(f"{where}: not in the canonical layout")
                errors = check_sources({"site.rules": body}).errors
                if errors and "politely check" not in shown:
                    problems += 1
                    print(f"{where}: errors {[d.code for d in errors]}")
            elif kind == "jsonl":
                files["traffic.jsonl"] = body
            elif kind == "console":
                folder = scratch / str(len(consoles))
                folder.mkdir()
                for name, content in files.items():
                    (folder / name).write_text(content, encoding="utf-8")
                consoles.append(pool.submit(check_console, body, where, folder))
        for console in consoles:  # in the page's order, whichever finished first
            found, report = console.result()
            problems += found
            print(report, end="")
    finally:
        for console in consoles:
            console.cancel()
        wait(consoles)  # nothing of this page still runs in `scratch`
        shutil.rmtree(scratch)
    return problems


def check_console(body: str, where: str, scratch: Path) -> tuple[int, str]:
    """The problems of one console block, and what to print about them."""
    problems, report = 0, []
    lines = body.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("$ ")]
    for start, end in zip(starts, [*starts[1:], len(lines)], strict=True):
        command = lines[start][2:]
        expected = "\n".join(lines[start + 1 : end]).rstrip("\n")
        cwd = REPO if re.search(r"(^| )rules(/| |$)", command) else scratch
        got = run(command, cwd)
        if got != expected:
            problems += 1
            report.append(f"{where}: `{command}` prints something else:")
            diff = difflib.unified_diff(expected.splitlines(), got.splitlines(), lineterm="")
            report.extend(f"    {line}" for line in diff)
    return problems, "".join(f"{line}\n" for line in report)


def check_doctests(page: Path) -> int:
    original = politely.Engine.from_source.__func__  # type: ignore[attr-defined]
    problems = 0

    def from_source(cls: type, text: str, **options: object) -> politely.Engine:
        nonlocal problems
        body = text.lstrip("\n")
        if format_source(body) != body or check_sources({"site.rules": body}).diagnostics:
            problems += 1
            print(f"{page.name}: a rules text in an example is not canonical or not clean")
        return original(cls, text, **options)  # type: ignore[no-any-return]

    politely.Engine.from_source = classmethod(from_source)  # type: ignore[method-assign,assignment]
    try:
        result = doctest.testfile(str(page), module_relative=False, optionflags=doctest.ELLIPSIS)
    finally:
        politely.Engine.from_source = classmethod(original)  # type: ignore[method-assign]
    return problems + result.failed


def main() -> int:
    problems = 0
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for page in sorted(DOCS.glob("*.md")):
            found = check_blocks(page, pool) + check_doctests(page)
            print(f"{page.name}: {'ok' if not found else f'{found} problem(s)'}")
            problems += found
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
