"""A large site's files parsed on several cores at once, when none was parsed before.

Parsing is pure Python (Lark's LALR machine), so threads would only take turns;
other processes are needed. When a site's large files are neither parsed in
this process nor saved (`politely.saved_parses`), as on the first start of a
new version, `prefetch` deals them out by size: helper processes (this
Python, running `main`) each parse their share and save it in the cache
folder, while this process parses its own; then, while the helpers finish, this
process reads back each result as soon as it is saved (as on a restart), and the
checker finds them all parsed. A helper that cannot start, fails, is killed or is still
running `WAIT_TIMES` as long as this process took for its own share (it is
then stopped) only means this process parses its files itself afterwards: the
results are the same either way, since the helpers run this very politely
(they are given this process's `sys.path` as it is, not the working folder
first as `python -m` would; and saved parses are kept by a digest of the
source).

Used only where it pays and can work: more than one core, a `sys.executable`
that is Python (not an embedding or frozen application), a cache folder that
can be written, at least two large files waiting, and `PARALLEL_FROM`
characters of them in all (a helper takes about a fifth of a second to start).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from politely import parser, saved_parses
from politely.limits import MAX_FILE_CHARS

if TYPE_CHECKING:
    import subprocess

PARALLEL_FROM = 400_000  # characters waiting to be parsed: about a second of parsing
MAX_HELPERS = 7
# Once this process has parsed its own share, helpers are given this many times as
# long again (and at least WAIT_AT_LEAST seconds) to finish theirs, then stopped:
# their shares are about as large as its own, so only a stuck helper takes longer.
WAIT_TIMES = 4.0
WAIT_AT_LEAST = 10.0
POLL = 0.01  # seconds between looks for what a helper saved, while waiting for it
_Share = list[tuple[str, str]]  # (path, text) of the files one process parses


def prefetch(sources: Mapping[str, str]) -> None:
    """Parse the large files of `sources` that nobody parsed yet, on every core."""
    waiting = [(path, text) for path, text in sources.items() if _waiting(path, text)]
    # No more than the saved parses keep: a helper's result pushed out before it is
    # read back would be parsed again here.
    waiting = waiting[: saved_parses.MAX_SAVED]
    helpers = min(_cores() - 1, len(waiting) - 1, MAX_HELPERS)
    if helpers < 1 or sum(len(text) for _, text in waiting) < PARALLEL_FROM:
        return
    if not _python() or not _writable_cache():
        return
    mine, *theirs = _deal(waiting, helpers + 1)
    started: list[_Helper] = []
    try:
        started.extend(helper for share in theirs if (helper := _Helper.start(share)))
        began = time.monotonic()
        for path, text in mine:
            parser.parse(text, path)
        deadline = time.monotonic() + max(WAIT_AT_LEAST, WAIT_TIMES * (time.monotonic() - began))
        _read_back_while_waiting(started, deadline)
    finally:  # a helper still running now (or when this process is interrupted) is stopped
        for helper in started:
            helper.stop()


def _read_back_while_waiting(helpers: Sequence[_Helper], deadline: float) -> None:
    """Wait for the helpers, reading back each file a helper has saved meanwhile.

    A helper saves each file of its share as soon as it is parsed, so while it
    parses its last ones this process decodes the others (on the core it would
    otherwise leave idle) instead of all of them after the last helper ends.
    What is read back is what the checker would read back later: `parser.parse`
    finds the saved parse. A file not saved yet is never parsed here meanwhile.
    """
    pending = [
        (
            helper,
            [(parser.ParseCache.key(t.removeprefix(parser.BOM), p), p, t) for p, t in helper.share],
        )
        for helper in helpers
    ]
    while pending and time.monotonic() < deadline:
        still = []
        for helper, files in pending:
            done = not helper.thread.is_alive()  # before looking: then nothing more comes
            unread = []
            for key, path, text in files:
                if saved_parses.has(key):
                    parser.parse(text, path)
                else:
                    unread.append((key, path, text))
            if unread and not done:
                still.append((helper, unread))
        pending = still
        if pending:
            pending[0][0].thread.join(min(POLL, max(0.0, deadline - time.monotonic())))


def _waiting(path: str, text: str) -> bool:
    text = text.removeprefix(parser.BOM)
    if len(text) < saved_parses.SAVE_FROM or len(text) > MAX_FILE_CHARS:
        return False
    if not (_utf8(path) and _utf8(text)):  # MessagePack holds no lone surrogate
        return False
    key = parser.ParseCache.key(text, path)
    return key not in parser.PARSED and not saved_parses.has(key)


def _utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _cores() -> int:
    """The cores this process may run on, and no more than its container's CPU
    quota: a container limited to one CPU on a large host sees every core."""
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:
        cores = os.cpu_count() or 1
    quota = cpu_quota()
    return cores if quota is None else max(1, min(cores, int(quota)))


def cpu_quota(cgroups: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The CPUs a cgroup quota allows (v2 `cpu.max`, else v1 `cpu.cfs_quota_us`
    over `cpu.cfs_period_us`), or None when there is none or it cannot be read."""
    try:
        limit, period = (cgroups / "cpu.max").read_text().split()[:2]
        return None if limit == "max" else int(limit) / int(period)
    except (OSError, ValueError, ZeroDivisionError):
        pass
    try:
        limit = (cgroups / "cpu" / "cpu.cfs_quota_us").read_text().strip()
        period = (cgroups / "cpu" / "cpu.cfs_period_us").read_text().strip()
        return None if int(limit) <= 0 else int(limit) / int(period)
    except (OSError, ValueError, ZeroDivisionError):
        return None


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


def _python() -> bool:
    """Whether `sys.executable` runs Python: embedded, it may be empty or the host
    application; frozen (PyInstaller and the like), it is the application."""
    return bool(sys.executable) and not getattr(sys, "frozen", False)


# The helper's first line: this process's path, as it is now (`python -m` would put
# the working folder first, where a `lark.py` would be imported instead of Lark).
_BOOT = "import sys; sys.path[:] = sys.argv[1:]; from politely.parallel_parse import main; main()"


class _Helper:
    """One helper process over its share, fed by a thread of its own (the share
    may be larger than a pipe holds). It saves what it parses; whatever goes wrong
    there is left unsaid: this process parses what the helper did not save."""

    def __init__(self, process: subprocess.Popen[bytes], share: _Share) -> None:
        self.process = process
        self.share = share
        encoded = msgspec.msgpack.encode(share)
        self.thread = threading.Thread(target=self._feed, args=(encoded,), daemon=True)
        self.thread.start()

    @classmethod
    def start(cls, share: _Share) -> _Helper | None:
        import subprocess  # not imported by a `politely check` that never needs a helper

        try:
            process = subprocess.Popen(
                [sys.executable, "-c", _BOOT, *(p for p in sys.path if isinstance(p, str))],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError:  # no process to start
            return None
        return cls(process, share)

    def _feed(self, share: bytes) -> None:
        with suppress(OSError):  # the helper ended (or was stopped) before reading it all
            self.process.communicate(share)

    def stop(self) -> None:
        """Kill the helper if it still runs, and reap it."""
        with suppress(OSError):
            self.process.kill()
        self.thread.join()
        self.process.wait()


def main() -> None:
    """A helper: parse the (path, text) pairs MessagePack'd on stdin, saving each."""
    share = msgspec.msgpack.decode(sys.stdin.buffer.read(), type=list[tuple[str, str]])
    for path, text in share:
        parser.parse(text, path)
