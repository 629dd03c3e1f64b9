"""Lark parsers analysed once per grammar, then loaded from the user's cache folder.

Analysing the grammar into LALR tables takes longer than checking a whole site,
and every `politely check` is a new process. So the analysed parser is saved
with Lark's own `Lark.save` and read back with `Lark.load` (its pickle keeps
the options, a post-lexer included), in a file of the user's cache folder:
`$POLITELY_CACHE_DIR`, else `$XDG_CACHE_HOME/politely`, else
`~/.cache/politely`. The file's name holds a digest of the grammar and the
options and the versions of Lark and Python, so an edited grammar or an
upgrade never reads a stale file. The file is written under a name of its own
and moved in place in one step, so a process starting at the same moment reads
a whole file or none. A folder that cannot be written (a read-only home, a
container) or a damaged file means analysing in memory, as without a cache:
the cache never fails a check.

(Lark's `cache=` option would write the file itself, but not atomically, and
its digest covers the file's own path, so a file written elsewhere and moved
in place is never read.)

Lark itself is imported only to analyse or load a parser: `lark_version` reads
the version from Lark's package without importing it, so a process that never
needs Lark (`politely.fast_tables`: a check of files without syntax errors)
does not pay for the import.

    >>> cache_folder({"POLITELY_CACHE_DIR": "/var/cache/politely"})
    PosixPath('/var/cache/politely')
    >>> cache_folder({"XDG_CACHE_HOME": "/home/ann/.cache"})
    PosixPath('/home/ann/.cache/politely')
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import threading
from collections.abc import Mapping
from contextlib import suppress
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from politely.digest import sha256

if TYPE_CHECKING:
    from lark import Lark

CACHE_DIR_VARIABLE = "POLITELY_CACHE_DIR"
# How Lark's `__init__.py` states its version (`__version__: str = "1.3.1"`).
_VERSION = re.compile(r"""^__version__\s*(?::\s*str\s*)?=\s*["']([^"'\s]+)["']""", re.M)


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


def cache_file(grammar: str, options: Mapping[str, Any], folder: Path) -> Path:
    """The file for `grammar` analysed with `options` (objects such as a post-lexer
    count by their class: they are pickled by reference)."""
    return folder / f"parser-{cache_name(grammar, options)}.lark-cache"


def cache_name(grammar: str, options: Mapping[str, Any]) -> str:
    """What names a file made from `grammar` analysed with `options`: a digest of
    both, and the versions of Lark and Python."""
    described = sorted(
        (name, value if isinstance(value, str | int | float | bool | None) else _named(value))
        for name, value in options.items()
    )
    digest = sha256(f"{grammar}\0{described!r}".encode()).hexdigest()[:16]
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    return f"{digest}-lark{lark_version()}-py{python}"


@cache
def lark_version() -> str:
    """Lark's version, read from its package's `__init__.py` without running it
    (importing Lark takes a fifth of a small site's `politely check`); imported
    when the file cannot be found or does not say."""
    with suppress(ImportError, ValueError, OSError):
        spec = importlib.util.find_spec("lark")
        if spec is not None and spec.origin is not None:
            found = _VERSION.search(Path(spec.origin).read_text(encoding="utf-8"))
            if found is not None:
                return found[1]
    import lark

    return str(lark.__version__)


def _named(value: object) -> str:
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}"


def cached_lark(grammar: str, **options: Any) -> Lark:
    """`Lark(grammar, **options)`, loaded from its cache file when one was written."""
    from lark import Lark

    folder = cache_folder()
    if folder is None:
        return Lark(grammar, **options)
    path = cache_file(grammar, options, folder)
    parser = _load(path)
    if parser is None:
        parser = Lark(grammar, **options)
        _save(parser, path)
    return parser


def _load(path: Path) -> Lark | None:
    """The parser saved at `path`; None when there is none or it cannot be read."""
    from lark import Lark

    try:
        with path.open("rb") as file:
            return Lark.load(file)
    except Exception:  # none yet, unreadable, or damaged: unpickling can raise almost anything
        return None


def _save(parser: Lark, path: Path) -> None:
    """Write the parser to `path` in one step; a folder that cannot be written stays as it is."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with temporary.open("wb") as file:
            parser.save(file)
        os.replace(temporary, path)
    except OSError:
        with suppress(OSError):
            temporary.unlink(missing_ok=True)
