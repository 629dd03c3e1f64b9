"""A large site's files parsed on several cores at once, when none was parsed before.

Parsing is pure Python (Lark's LALR machine), so threads would only take turns;
other processes are needed. When a site's large files are neither parsed in
this process nor saved (`politely.saved_parses`), as on the first start of a
new version, `prefetch` deals them out by size: helper processes
(`python -m politely.parallel_parse`) each parse their share and save it in
the cache folder, while this process parses its own; then the checker reads
every result as on a restart. A helper that cannot start, fails or is killed
only means this process parses its files itself afterwards: the results are the
same either way, since the helpers run this very politely (its folder is put
first on their path, and saved parses are kept by a digest of its source).

Used only where it pays: more than one core, a cache folder that can be
written, at least two large files waiting, and `PARALLEL_FROM` characters of
them in all (a helper takes about a fifth of a second to start).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping, Sequence
from contextlib import suppress
from pathlib import Path

import msgspec

from politely import parser, saved_parses
from politely.limits import MAX_FILE_CHARS

PARALLEL_FROM = 400_000  # characters waiting to be parsed: about a second of parsing
MAX_HELPERS = 7
_Share = list[tuple[str, str]]  # (path, text) of the files one process parses


def prefetch(sources: Mapping[str, str]) -> None:
    """Parse the large files of `sources` that nobody parsed yet, on every core."""
    waiting = [(path, text) for path, text in sources.items() if _waiting(path, text)]
    helpers = min(_cores() - 1, len(waiting) - 1, MAX_HELPERS)
    if helpers < 1 or sum(len(text) for _, text in waiting) < PARALLEL_FROM:
        return
    if not _writable_cache():
        return
    mine, *theirs = _deal(waiting, helpers + 1)
    started = [threading.Thread(target=_helper, args=(share,)) for share in theirs]
    for thread in started:
        thread.start()
    for path, text in mine:
        parser.parse(text, path)
    for thread in started:
        thread.join()


def _waiting(path: str, text: str) -> bool:
    text = text.removeprefix(parser.BOM)
    if len(text) < saved_parses.SAVE_FROM or len(text) > MAX_FILE_CHARS:
        return False
    key = parser.ParseCache.key(text, path)
    return key not in parser.PARSED and not saved_parses.has(key)


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):  # the cores this process may run on
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _writable_cache() -> bool:
    folder = saved_parses.prepared()
    return folder is not None and os.access(folder, os.W_OK)


def _deal(files: Sequence[tuple[str, str]], hands: int) -> list[_Share]:
    """The files in `hands` shares of about equal size, largest first to the smallest share."""
    shares: list[_Share] = [[] for _ in range(hands)]
    sizes = [0] * hands
    for path, text in sorted(files, key=lambda file: -len(file[1])):
        smallest = sizes.index(min(sizes))
        shares[smallest].append((path, text))
        sizes[smallest] += len(text)
    return shares


def _helper(share: _Share) -> None:
    """Run one helper process over `share`; it saves what it parses. Whatever goes
    wrong there is left unsaid: this process parses what the helper did not save."""
    import subprocess  # not imported by a `politely check` that never needs a helper

    package_root = str(Path(parser.__file__).resolve().parents[1])
    path = os.pathsep.join([package_root, *filter(None, [os.environ.get("PYTHONPATH")])])
    with suppress(OSError):  # no process to start
        subprocess.run(
            [sys.executable, "-m", __name__],
            input=msgspec.msgpack.encode(share),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": path},
            check=False,
        )


def main() -> None:
    """A helper: parse the (path, text) pairs MessagePack'd on stdin, saving each."""
    share = msgspec.msgpack.decode(sys.stdin.buffer.read(), type=list[tuple[str, str]])
    for path, text in share:
        parser.parse(text, path)


if __name__ == "__main__":
    main()
