"""Large files' parse results are saved in the cache folder and read back by a later
process exactly as parsed (spans and diagnostics included), never when stale or
damaged, and within a bound."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import T0, examples
from politely import Engine, checker, parser, resources, saved_parses
from politely import nodes as n
from politely.compiler import COMPILED, compile_rules
from politely.lark_cache import CACHE_DIR_VARIABLE
from politely.parser import BOM
from test_fast_parse import SITE, exact
from test_language_properties import _PIECES as PIECES
from test_language_properties import mutated_examples

SOURCE = Path(__file__).resolve().parents[1] / "src"
LARGE = SITE + SITE.replace("rule r", "rule s")  # past SAVE_FROM
BROKEN = LARGE + "rule broken {\n  when page.dwell >= 30 seconds\n  say 'hi'\n}\n"
assert len(BROKEN) >= saved_parses.SAVE_FROM


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(tmp_path))
    parser.PARSED.clear()
    return tmp_path


def saved_files(cache: Path) -> list[Path]:
    return sorted(cache.glob("parses/*/*.msgpack"))


def everything(result: parser.ParseResult) -> Any:
    return (
        exact(result.program),
        exact(result.parsed),
        result.diagnostics,
        result.broken_defines,
    )


def never_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any) -> None:
        raise AssertionError("parsed although a saved result was there")

    monkeypatch.setattr(parser, "_Run", refuse)


def test_a_large_file_is_read_back_exactly_as_it_was_parsed(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed = parser.parse(BROKEN, "site.rules")
    assert parsed.diagnostics  # syntax errors and hints travel too
    assert len(saved_files(cache)) == 1
    parser.PARSED.clear()  # as in a new process
    never_parse(monkeypatch)
    assert everything(parser.parse(BROKEN, "site.rules")) == everything(parsed)


def test_another_path_or_text_is_not_answered_by_a_saved_result(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parser.parse(LARGE, "a.rules")
    parser.PARSED.clear()
    other_path = parser.parse(LARGE, "b.rules")
    other_text = parser.parse(LARGE + "\n", "a.rules")
    assert len(saved_files(cache)) == 3
    assert other_path.program is not None
    assert other_text.program is not None


def test_a_small_file_is_never_saved(cache: Path) -> None:
    parser.parse('rule r { when page.dwell >= 1s say "Hi" }', "small.rules")
    assert saved_files(cache) == []


def test_a_later_process_reads_what_an_earlier_one_saved(cache: Path, tmp_path: Path) -> None:
    site = tmp_path / "site.rules"
    site.write_text(BROKEN, encoding="utf-8")
    script = (
        "import sys; from politely import parser, saved_parses\n"
        "key = parser.ParseCache.key(open(sys.argv[1]).read(), sys.argv[1])\n"
        "print(saved_parses.load(key) is not None)\n"
        "parser.parse(open(sys.argv[1]).read(), sys.argv[1])\n"
    )
    assert in_new_process(script, site, cache) == "False"  # finds nothing, parses, saves
    assert in_new_process(script, site, cache) == "True"  # finds the first's result


def in_new_process(script: str, argument: Path, cache: Path) -> str:
    """What `script` prints, run by a new interpreter with `argument` and `cache`."""
    env = {**os.environ, CACHE_DIR_VARIABLE: str(cache), "PYTHONPATH": str(SOURCE)}
    done = subprocess.run(
        [sys.executable, "-c", script, str(argument)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize(
    "damage",
    [b"", b"\x00garbage", b"\x93\x01\x02\x03", "truncated"],
    ids=["empty", "garbage", "another shape", "truncated"],
)
def test_a_damaged_file_is_parsed_again_and_replaced(cache: Path, damage: bytes | str) -> None:
    parsed = parser.parse(BROKEN, "site.rules")
    (saved,) = saved_files(cache)
    whole = saved.read_bytes()
    saved.write_bytes(whole[: len(whole) // 2] if damage == "truncated" else damage)  # type: ignore[arg-type]
    parser.PARSED.clear()
    assert everything(parser.parse(BROKEN, "site.rules")) == everything(parsed)
    assert saved.read_bytes() == whole  # saved again, whole


def test_another_version_reads_none_of_the_files_and_removes_them(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parser.parse(LARGE, "site.rules")
    (old,) = saved_files(cache)
    for path in (old, old.parent):
        os.utime(path, (0, 0))  # last used long ago
    monkeypatch.setattr(saved_parses, "version_digest", lambda: "0123456789abcdef")
    parser.PARSED.clear()
    assert saved_parses.load(parser.ParseCache.key(LARGE, "site.rules")) is None
    parser.parse(LARGE, "site.rules")
    (new,) = saved_files(cache)
    assert new.parent.name == "0123456789abcdef"
    assert not old.exists()


@pytest.mark.parametrize("edited", ["nodes.py", "grammar"])
def test_the_version_digest_covers_politely_s_source_and_grammar(
    tmp_path: Path, edited: str
) -> None:
    """An edited checkout is another version: the digest reads the package's files
    and the grammar the parser reads (in a checkout, `grammar/` beside `src/`)."""
    package = Path(saved_parses.__file__).resolve().parent
    copy = tmp_path / "src" / "politely"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__", "*.lark"))
    (tmp_path / "grammar").mkdir()
    grammar = tmp_path / "grammar" / "politely.lark"
    grammar.write_text(resources.grammar_text(), encoding="utf-8")
    script = "from politely import saved_parses; print(saved_parses.version_digest())"

    def digest() -> str:
        done = subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONPATH": str(copy.parent)},
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    before = digest()
    changed = copy / "nodes.py" if edited == "nodes.py" else grammar
    changed.write_text(changed.read_text(encoding="utf-8") + "\n// edited\n", encoding="utf-8")
    assert digest() != before


def test_the_version_digest_covers_the_python_that_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two Pythons sharing a checkout and a cache folder do not share results: `re`
    and `str` follow each Python's own Unicode tables."""
    before = saved_parses.version_digest.__wrapped__()
    monkeypatch.setattr(sys, "version", sys.version + " (another build)")
    assert saved_parses.version_digest.__wrapped__() != before


def test_a_package_without_its_source_saves_nothing(
    cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Zipped or shipped as bytecode only, politely has no source to digest: two of
    its versions would share a folder, so nothing is saved or read."""
    sourceless = tmp_path / "sourceless" / "politely"
    sourceless.mkdir(parents=True)
    monkeypatch.setattr(saved_parses, "__file__", str(sourceless / "saved_parses.pyc"))
    monkeypatch.setattr(saved_parses, "version_digest", saved_parses.version_digest.__wrapped__)
    assert saved_parses.folder() is None
    assert parser.parse(LARGE, "site.rules").program is not None
    assert saved_files(cache) == []


def test_the_least_recently_used_files_go_past_the_bound(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(saved_parses, "MAX_SAVED", 2)
    texts = [LARGE + "\n" * i for i in range(3)]
    keys = [parser.ParseCache.key(t, "site.rules") for t in texts]
    parser.parse(texts[0], "site.rules")
    parser.parse(texts[1], "site.rules")
    for key, when in zip(keys[:2], (0, 100), strict=True):  # the first the older, long ago
        (path,) = cache.glob(f"parses/*/{key.hex()}.msgpack")
        os.utime(path, (when, when))
    assert saved_parses.load(keys[0]) is not None  # read: used now
    parser.parse(texts[2], "site.rules")
    assert saved_parses.load(keys[1]) is None  # the least recently used went
    assert saved_parses.load(keys[0]) is not None
    assert saved_parses.load(keys[2]) is not None


def test_a_folder_that_cannot_be_written_parses_as_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would be", encoding="utf-8")
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(blocker))
    parser.PARSED.clear()
    assert parser.parse(LARGE, "site.rules").program is not None
    assert saved_parses.load(parser.ParseCache.key(LARGE, "site.rules")) is None


def test_a_site_read_back_checks_and_decides_as_the_site_parsed(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing downstream tells a read-back tree from a parsed one: the same
    diagnostics (spans, pestering warnings) and the same decisions."""
    valid = SITE + SITE.split("\n", 1)[1].replace("rule r", "rule s")
    broken = {"a.rules": BROKEN, "b.rules": valid.replace("page.dwell >= 1", "page.dwel >= 1")}

    def load() -> tuple[Any, ...]:
        checker.CHECKED.clear()
        COMPILED.clear()
        result = checker.check_sources({"site.rules": valid})
        engine = Engine(compile_rules(result), clock=lambda: T0)
        decisions = [
            engine.evaluate({"visitor": "v", "event": event, "url": url, "at": T0 + second})
            for second, event, url in [
                *((second, "page_view", "/p1/x") for second in range(3)),  # engaged: 3 views
                (40, "tick", "/p1/x"),
            ]
        ]
        return (
            result.diagnostics,
            checker.check_sources(broken).diagnostics,
            [d.model_dump() for d in decisions],
        )

    parsed = load()
    assert parsed[1]  # errors to compare
    assert any(d.severity == "warning" for d in parsed[0] + parsed[1])
    assert any(d["invitation"] for d in parsed[2])  # an invitation to compare
    parser.PARSED.clear()
    never_parse(monkeypatch)
    assert load() == parsed


def strictly(value: Any) -> Any:
    """Everything a value holds with the type of every part, so `1` and `1.0`, `0.0`
    and `-0.0`, a tuple and a list, or NaN and NaN are told apart (`repr`) or matched."""
    if isinstance(value, msgspec.Struct):
        fields = (strictly(getattr(value, name)) for name in value.__struct_fields__)
        return (type(value).__qualname__, *fields)
    if isinstance(value, tuple | list):
        return (type(value).__qualname__, *(strictly(v) for v in value))
    if isinstance(value, frozenset):
        return ("frozenset", *sorted(repr(v) for v in value))
    return (type(value).__qualname__, repr(value))


def read_back(result: parser.ParseResult, path: str, text: str) -> parser.ParseResult | None:
    key = parser.ParseCache.key(text, path)
    saved_parses.save(key, result)
    return saved_parses.load(key)


_lone_surrogates = st.characters(categories=["Cs"])
_texts = st.one_of(
    st.builds(lambda code: code.replace("rule r", "rule hi"), st.sampled_from([SITE[:2000]])),
    st.text(max_size=80),
    st.lists(st.sampled_from(PIECES) | st.text(max_size=3) | _lone_surrogates, max_size=40).map(
        " ".join
    ),
    st.lists(
        st.sampled_from(["1", "1.0", "-0.0", "0.0", "1e400", "999999999999999", '"\\ud800"'])
        | st.sampled_from(PIECES),
        max_size=30,
    ).map(" ".join),
)
_paths = st.one_of(st.just("site.rules"), st.text(min_size=1, max_size=8) | _lone_surrogates)


@settings(max_examples=examples(150), deadline=None)
@given(
    source=st.one_of(_texts, mutated_examples()),
    path=_paths,
    crlf=st.booleans(),
    bom=st.booleans(),
)
def test_whatever_is_read_back_is_what_parsing_gave(
    source: str, path: str, crlf: bool, bom: bool
) -> None:
    """Any text (lone surrogates, CRLF, a BOM, odd numbers) and any path: saving never
    raises, and a result that is read back at all is, to the type of every number and
    string, what the parse gave."""
    text = (BOM if bom else "") + (source.replace("\n", "\r\n") if crlf else source)
    parsed = parser.parse(text, path)
    with tempfile.TemporaryDirectory() as folder, _cache_folder(folder):
        found = read_back(parsed, path, text.removeprefix(BOM))
    assert found is None or strictly(found) == strictly(parsed)


@contextmanager
def _cache_folder(folder: str) -> Iterator[None]:
    before = os.environ.get(CACHE_DIR_VARIABLE)
    os.environ[CACHE_DIR_VARIABLE] = folder
    try:
        yield
    finally:
        if before is None:
            del os.environ[CACHE_DIR_VARIABLE]
        else:
            os.environ[CACHE_DIR_VARIABLE] = before


def test_a_large_file_named_with_a_lone_surrogate_parses_and_is_not_saved(cache: Path) -> None:
    """A file name that is not UTF-8 reaches Python with lone surrogates
    (surrogateescape); MessagePack holds only UTF-8, so the result is not saved
    rather than the parse failing."""
    path = "site-\udcff.rules"
    parsed = parser.parse(BROKEN, path)
    assert parsed.diagnostics[0].path == path
    assert saved_files(cache) == []


def test_a_file_nested_past_the_decoder_s_depth_is_parsed_again(cache: Path) -> None:
    """A damaged or hostile saved file nested deeper than msgspec decodes (a
    RecursionError, not a DecodeError) is not a failed load."""
    parser.parse(LARGE, "site.rules")
    (saved,) = saved_files(cache)
    leaf = n.Compare(n.Field(("page", "dwell")), ">=", n.Duration(1))
    shallow = n.Not(leaf)
    program = n.Program((n.Define(n.Name("d"), shallow),))
    whole = msgspec.msgpack.encode(parser.ParseResult(program, (), program))
    depth = 100_000
    deep = b"\x93\xa3Not" * depth + msgspec.msgpack.encode(leaf)
    deep += msgspec.msgpack.encode(n.NO_SPAN) * depth
    assert whole.count(msgspec.msgpack.encode(shallow)) == 2
    deep = whole.replace(msgspec.msgpack.encode(shallow), deep)
    key = parser.ParseCache.key(LARGE, "site.rules")
    saved.write_bytes(saved_parses._check(key, deep) + deep)  # whole, as saved: no damage seen
    parser.PARSED.clear()
    assert parser.parse(LARGE, "site.rules").program is not None


def other_version(cache: Path, used: float) -> Path:
    """Another version's folder, holding one file last used at `used`."""
    other = cache / "parses" / "0123456789abcdef"
    other.mkdir(parents=True)
    (other / "x.msgpack").write_bytes(b"")
    for path in (other / "x.msgpack", other):
        os.utime(path, (used, used))
    return other


def test_the_first_save_of_a_version_removes_versions_left_unused(cache: Path) -> None:
    other = other_version(cache, used=0)
    parser.parse(LARGE, "site.rules")
    assert not other.exists()


def test_another_version_in_use_keeps_its_folder(cache: Path) -> None:
    """Two versions running at once (a service on a wheel, a checkout's `politely
    check`) do not remove each other's folders, with files being written in them."""
    other = other_version(cache, used=time.time())
    parser.parse(LARGE, "site.rules")
    assert (other / "x.msgpack").exists()


def test_a_version_folder_made_before_the_first_save_still_removes_the_others(
    cache: Path,
) -> None:
    """Whoever makes the folder first (`politely.parallel_parse` checks it can be
    written before starting helpers) removes the other versions'."""
    other = other_version(cache, used=0)
    assert saved_parses.prepared() == saved_parses.folder()
    assert not other.exists()
    parser.parse(LARGE, "site.rules")
    assert len(saved_files(cache)) == 1


def test_a_temporary_file_left_by_a_killed_process_goes_in_time(cache: Path) -> None:
    parser.parse(LARGE, "site.rules")
    (saved,) = saved_files(cache)
    left = saved.with_name(f".{saved.name}.1.2")
    writing = saved.with_name(f".{saved.name}.3.4")
    left.write_bytes(b"half")
    writing.write_bytes(b"half")
    os.utime(left, (0, 0))
    parser.parse(LARGE + "\n", "site.rules")
    assert not left.exists()
    assert writing.exists()  # another process may be writing it now


@pytest.mark.parametrize("damage", ["a changed letter", "another file's result"])
def test_a_file_that_still_decodes_but_is_not_what_was_saved_is_parsed_again(
    cache: Path, damage: str
) -> None:
    """A damaged file can still decode into a tree, a wrong one (a letter of a
    message, a digit of a threshold), and a file copied under another's name
    decodes into the other file's tree: neither is read back."""
    parsed = parser.parse(BROKEN, "site.rules")
    (saved,) = saved_files(cache)
    if damage == "a changed letter":
        whole = saved.read_bytes()
        assert whole.count(b"Need a hand?") > 1
        saved.write_bytes(whole.replace(b"Need a hand?", b"Need a band?", 1))
    else:
        parser.parse(LARGE, "other.rules")
        (other,) = (path for path in saved_files(cache) if path != saved)
        saved.write_bytes(other.read_bytes())
    parser.PARSED.clear()
    assert everything(parser.parse(BROKEN, "site.rules")) == everything(parsed)
