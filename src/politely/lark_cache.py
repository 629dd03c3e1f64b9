"""Lark parsers analysed once per grammar, then loaded from the user's cache folder.

Analysing the grammar into LALR tables takes longer than checking a whole site,
and every `politely check` is a new process. Lark can pickle the analysed
parser (its `cache` option); this module says where the file lives:
`$POLITELY_CACHE_DIR`, else `$XDG_CACHE_HOME/politely`, else
`~/.cache/politely`. The file's name holds a digest of the grammar and the
versions of Lark and Python, so an edited grammar or an upgrade never reads a
stale file (Lark also checks a digest of grammar and options inside it). A
folder that cannot be written (a read-only home, a container) means building
in memory, as without a cache: the cache never fails a check.

    >>> cache_folder({"POLITELY_CACHE_DIR": "/var/cache/politely"})
    PosixPath('/var/cache/politely')
    >>> cache_folder({"XDG_CACHE_HOME": "/home/ann/.cache"})
    PosixPath('/home/ann/.cache/politely')
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

import lark
from lark import Lark

CACHE_DIR_VARIABLE = "POLITELY_CACHE_DIR"


def cache_folder(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The folder for politely's cache files, or None when there is no home to hold it."""
    if chosen := environ.get(CACHE_DIR_VARIABLE):
        return Path(chosen)
    xdg = environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):  # the XDG spec: a relative path is to be ignored
        return Path(xdg) / "politely"
    try:
        return Path.home() / ".cache" / "politely"
    except RuntimeError:  # no HOME and no password entry
        return None


def cache_file(grammar: str, label: str, folder: Path) -> Path:
    """The file for `grammar` analysed with the options `label` stands for."""
    digest = hashlib.sha256(grammar.encode("utf-8")).hexdigest()[:16]
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    return folder / f"{label}-{digest}-lark{lark.__version__}-py{python}.lark-cache"


def cached_lark(grammar: str, label: str, *, keep_grammar: bool = False, **options: Any) -> Lark:
    """`Lark(grammar, **options)`, loaded from its cache file when one was written.

    `label` names the set of options (two parsers with different options need
    different labels); options Lark does not pickle, such as `postlex`, are
    given again on loading, as Lark does for its own cache. `keep_grammar`
    also caches the unanalysed grammar (Lark's `cache_grammar`), for tools that
    read `Lark.grammar`.
    """
    folder = cache_folder()
    if folder is None:
        return Lark(grammar, **options)
    path = cache_file(grammar, label, folder)
    if keep_grammar:
        options["cache_grammar"] = True
    if path.is_file():  # Lark loads it; a damaged file is rebuilt and written again
        return Lark(grammar, cache=str(path), **options)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        options.pop("cache_grammar", None)  # Lark allows it only with a cache
        return Lark(grammar, **options)
    # Lark writes a file under a name of this thread's, moved in place in one step,
    # so a process starting at the same moment reads a whole file or none. Lark
    # itself ignores a file it cannot write.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    parser = Lark(grammar, cache=str(temporary), **options)
    try:
        os.replace(temporary, path)
    except OSError:
        with suppress(OSError):
            temporary.unlink(missing_ok=True)
    return parser
