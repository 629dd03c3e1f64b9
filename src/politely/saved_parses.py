"""Large files' parse results, saved between processes in the user's cache folder.

Every `politely check`, `politely simulate` and `politely serve` is a new
process, and parsing is most of loading a large site: a 1,000-rule file takes
about half a second to parse and some 40 ms to read back. So once a file of at
least `SAVE_FROM` characters is parsed, its result is saved under the digest of
its path and text (`politely.parser.ParseCache.key`), and a later process that
meets the same file reads the result instead of parsing it again. Smaller files
parse faster than a file is read, and are never saved.

- MessagePack through msgspec, decoded into the very classes the parser makes
  (every node is a tagged Struct): decoding runs no code from the file, as
  unpickling would, and a file that does not decode into a `ParseResult` is
  not used. Each file starts with a SHA-256 of its key and its MessagePack, so
  one damaged in a way that still decodes, or copied under another file's
  name, is not used either.
- Never stale: the files sit in a folder named by a digest of politely's own
  source and grammar (and of msgspec's, Lark's and Python's versions), taken
  the first time this process saves or reads. Another version, or an edited
  checkout, reads none of them (a package without its source, zipped or
  sourceless, saves none); the first save of a version removes the other
  versions' folders that no process used for an hour (one running beside it
  keeps its own).
- Bounded: at most `MAX_SAVED` parses; saving one more removes the least
  recently used ones (reading a file marks it used).
- Written under a name of its own and moved in place in one step, so a process
  starting at the same moment reads a whole file or none.
- Never fails a load: no cache folder, one that cannot be written, or a damaged
  file mean parsing as without it.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import suppress
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import msgspec

from politely import resources
from politely.digest import OPENSSL_FROM, sha256
from politely.lark_cache import cache_folder, lark_version

if TYPE_CHECKING:
    from politely.parser import ParseResult

_T = TypeVar("_T")

SAVE_FROM = 20_000  # characters: smaller files are parsed faster than a saved one is read
MAX_SAVED = 256  # files (a 1,000-rule file's result is about 2.3 MB)
_SUFFIX = ".msgpack"  # a saved parse's (a saved check's: `politely.saved_checks`)
# Seconds: another version's folder or a temporary file untouched this long is left over.
LEFT_AFTER = 3600.0
_CHECK = 32  # bytes of SHA-256 before the MessagePack


@cache
def version_digest() -> str | None:
    """A digest of politely's source files, of the grammar the parser reads (in a
    checkout, `grammar/` beside the source tree, not the package), and of
    msgspec's, Lark's and Python's versions (`re` and `str` follow Python's
    Unicode tables): any of them may change what a parse gives."""
    package = Path(__file__).resolve().parent
    versions = f"{msgspec.__version__}\0{lark_version()}\0{sys.version}\0"
    digest = sha256(versions.encode(), more=OPENSSL_FROM)  # politely's own code
    digest.update(resources.grammar_text().encode())
    sources = sorted(p for p in package.rglob("*") if p.suffix in (".py", ".lark"))
    if not sources:  # zipped or sourceless: nothing would tell two versions apart
        return None
    for source in sources:
        digest.update(source.relative_to(package).as_posix().encode())
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def folder() -> Path | None:
    """This version's folder of saved parses, or None when there is no cache folder
    or no source to tell this version by (a zipped or sourceless package)."""
    base = cache_folder()
    if base is None:
        return None
    version = version_digest()
    return None if version is None else base / "parses" / version


def has(key: bytes) -> bool:
    """Whether a result is saved under `key` (whether it can be read is `load`'s to say)."""
    saved = folder()
    try:
        return saved is not None and _file(saved, key, _SUFFIX).is_file()
    except OSError:  # a folder that cannot be entered: Python 3.11 says so (EACCES)
        return False


def touch(key: bytes) -> None:
    """Mark the result saved under `key` used, as reading it would."""
    saved = folder()
    if saved is not None:
        _mark_used(_file(saved, key, _SUFFIX))


def load(key: bytes) -> ParseResult | None:
    """The result saved under `key`, or None when there is none or it cannot be read
    (damaged, another file's, another shape)."""
    data = read_bytes(key, _SUFFIX)
    return None if data is None else decode(_decoder(), data)


def save(key: bytes, result: ParseResult) -> None:
    """Save `result` under `key` in one step, then keep the folder within its bound."""
    write(key, _SUFFIX, result, MAX_SAVED)


def read_bytes(key: bytes, suffix: str) -> memoryview | None:
    """The MessagePack `write` saved under `key` and `suffix`, whole (its digest
    holds), or None when there is none or it cannot be read."""
    saved = folder()
    if saved is None:
        return None
    path = _file(saved, key, suffix)
    try:
        data = memoryview(path.read_bytes())
    except OSError:  # none yet, or unreadable
        return None
    if data[:_CHECK] != _check(key, data[_CHECK:]):  # damaged, or another file's
        return None
    _mark_used(path)
    return data[_CHECK:]


def _mark_used(path: Path) -> None:
    """Used now: the last to be removed past the bound."""
    with suppress(OSError):  # none saved, or it cannot be reached
        os.utime(path)


def decode(decoder: msgspec.msgpack.Decoder[_T], data: memoryview) -> _T | None:
    """`data` decoded, or None when it has another shape or is nested past what
    msgspec decodes."""
    try:
        return decoder.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return None


def write(key: bytes, suffix: str, value: object, keep: int) -> None:
    """Save `value` (msgspec-encodable) under `key` and `suffix` in one step, then
    remove the least recently used files with that suffix past `keep`. Nothing is
    saved when it cannot be."""
    try:
        encoded = msgspec.msgpack.encode(value)
    # A number past MessagePack's 64 bits, or a lone surrogate (a file name that is not
    # UTF-8, read with surrogateescape) where MessagePack holds only UTF-8: parse it
    # again next time.
    except (OverflowError, UnicodeEncodeError):
        return
    saved = prepared()
    if saved is None:
        return
    path = _file(saved, key, suffix)
    temporary = saved / f".{path.name}.{os.getpid()}.{threading.get_ident()}"
    try:
        temporary.write_bytes(_check(key, encoded) + encoded)
        os.replace(temporary, path)
        _keep_bound(saved, suffix, keep)
    except OSError:
        with suppress(OSError):
            temporary.unlink(missing_ok=True)


def _file(saved: Path, key: bytes, suffix: str) -> Path:
    return saved / (key.hex() + suffix)


def _check(key: bytes, encoded: bytes | memoryview) -> bytes:
    """The digest a file starts with: of its key and its MessagePack, so a damaged
    file that still decodes (a changed digit) or a file under another's name is not
    read back as a wrong tree. SHA-256: about 1 ms for a 1,000-rule file, 1% of decoding."""
    digest = sha256(key, more=len(encoded))
    digest.update(encoded)
    return digest.digest()


@cache
def _decoder() -> msgspec.msgpack.Decoder[ParseResult]:
    from politely.parser import ParseResult

    return msgspec.msgpack.Decoder(ParseResult)


def prepared() -> Path | None:
    """This version's folder, made if need be (then removing the other versions'
    folders that no process used for `LEFT_AFTER`), or None when there is no cache
    folder or it cannot be made."""
    saved = folder()
    if saved is None:
        return None
    try:
        made = saved.is_dir()
        if not made:
            saved.mkdir(parents=True, exist_ok=True)
    except OSError:  # cannot be made, or a folder above it cannot be entered
        return None
    if not made:
        _remove_other_versions(saved)
    return saved


def _remove_other_versions(saved: Path) -> None:
    """Remove other versions' folders, but not one in use: two versions may run at
    once (a service, a checkout's `politely check`), each writing in its folder."""
    import shutil  # here: a check that saves nothing need not import it (~4 ms)

    left = time.time() - LEFT_AFTER
    with suppress(OSError):
        for other in saved.parent.iterdir():
            if other != saved and _last_used(other) < left:
                shutil.rmtree(other, ignore_errors=True)


def _last_used(other: Path) -> float:
    """When a file in `other` was last saved or read (0 when it cannot be told)."""
    with suppress(OSError):
        return max([other.stat().st_mtime, *(p.stat().st_mtime for p in other.iterdir())])
    return 0.0


def _keep_bound(saved: Path, suffix: str, keep: int) -> None:
    """Remove the least recently used files with `suffix` past `keep`, and the
    temporary files of processes killed while writing."""
    left = time.time() - LEFT_AFTER
    files: list[Path] = []
    for path in saved.iterdir():
        if path.suffix == suffix:
            files.append(path)
        elif path.name.startswith("."):
            with suppress(OSError):
                if path.stat().st_mtime < left:
                    path.unlink()
    if len(files) <= keep:
        return
    used: list[tuple[float, Path]] = []
    for path in files:
        with suppress(OSError):  # removed by another process meanwhile
            used.append((path.stat().st_mtime, path))
    used.sort()
    for _, path in used[: len(used) - keep]:
        with suppress(OSError):
            path.unlink()
