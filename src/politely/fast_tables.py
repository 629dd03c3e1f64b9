"""The fast path's tables (`politely.lalr.FastTables`), saved in the user's cache folder.

Reading them from Lark's parser (`politely.lalr_tables`) means importing Lark
and loading its parser first, which together take longer than checking a small
site; so the tables are saved once, beside the parser Lark's cache keeps
(`politely.lark_cache`, the same folder), and read back without Lark: then a
`politely check` of files without syntax errors never imports it.

- MessagePack through msgspec, decoded into `FastTables` itself: a file that
  does not decode into one is not used, and decoding runs no code from the file.
  The file starts with a SHA-256 of the rest, so one damaged in a way that still
  decodes is not used either.
- Never stale: the file's name holds a digest of the grammar and the parser's
  options, the versions of Lark and Python (`lark_cache.cache_name`, as Lark's
  own cache file) and a digest of the code that writes and reads the tables
  (`code_digest`), so an edit of that code, or another politely on the same
  machine, never reads this one's file.
- Written under a name of its own and moved in place in one step, so a process
  starting at the same moment reads a whole file or none.
- Never fails a check: no cache folder, one that cannot be written, or a damaged
  file mean reading the tables from Lark's parser, as without it; so do tables
  that decode but fail to run (`politely.parser` then discards the file).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from contextlib import suppress
from functools import cache
from pathlib import Path
from typing import Any

import msgspec

from politely.digest import sha256
from politely.lalr import FastTables
from politely.lark_cache import cache_folder, cache_name

_CHECK = 32  # bytes of SHA-256 before the MessagePack
# The modules that make the tables and give them their meaning.
_CODE = ("lalr.py", "lalr_tables.py", "regex_starts.py", "fast_tables.py")


def table_file(grammar: str, options: Mapping[str, Any], folder: Path) -> Path:
    """The file for the tables of `grammar` analysed with `options`."""
    return folder / f"fast-parse-{cache_name(grammar, options)}-code{code_digest()}.msgpack"


def discard(grammar: str, options: Mapping[str, Any]) -> None:
    """Remove the tables saved for `grammar` and `options`, if any."""
    folder = cache_folder()
    if folder is not None:
        with suppress(OSError):
            table_file(grammar, options, folder).unlink(missing_ok=True)


@cache
def code_digest() -> str:
    """A digest of the code that writes and reads the tables (`_CODE`)."""
    package = Path(__file__).resolve().parent
    digest = sha256()  # the modules' code: some 40 KB
    for name in _CODE:
        with suppress(OSError):  # a module not kept as a file: the others still count
            digest.update((package / name).read_bytes())
    return digest.hexdigest()[:12]


def load(grammar: str, options: Mapping[str, Any]) -> FastTables | None:
    """The tables saved for `grammar` and `options`; None when there are none or
    they cannot be read."""
    folder = cache_folder()
    if folder is None:
        return None
    try:
        data = memoryview(table_file(grammar, options, folder).read_bytes())
        if data[:_CHECK] != sha256(data[_CHECK:]).digest():
            return None
        return _decoder().decode(data[_CHECK:])
    except (OSError, msgspec.DecodeError):  # none yet, unreadable, or another shape
        return None


def save(grammar: str, options: Mapping[str, Any], tables: FastTables) -> None:
    """Write the tables in one step; a folder that cannot be written stays as it is."""
    folder = cache_folder()
    if folder is None:
        return
    path = table_file(grammar, options, folder)
    encoded = msgspec.msgpack.encode(tables)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temporary.write_bytes(sha256(encoded).digest() + encoded)
        os.replace(temporary, path)
    except OSError:
        with suppress(OSError):
            temporary.unlink(missing_ok=True)


@cache
def _decoder() -> msgspec.msgpack.Decoder[FastTables]:
    return msgspec.msgpack.Decoder(FastTables)
