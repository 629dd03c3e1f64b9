"""SHA-256 without OpenSSL's start-up for small inputs: the same digests either way,
and a `politely check` of a small site never imports hashlib (nor `fractions`, which
only a duration hint needs): each costs every check a few milliseconds."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

import politely
from politely import digest
from politely.lark_cache import CACHE_DIR_VARIABLE

SOURCE = Path(politely.__file__).resolve().parent.parent
RULES = SOURCE.parent / "rules"

_CHECK = """
import sys
from politely.cli import main
code = main(["check", *sys.argv[1:]])
print(*[m for m in ("hashlib", "fractions") if m in sys.modules], file=sys.stderr)
sys.exit(code)
"""


@given(st.lists(st.binary(max_size=300), max_size=4), st.integers(0, 2 * digest.OPENSSL_FROM))
def test_the_digest_is_sha256_whichever_implementation_takes_it(
    parts: list[bytes], more: int
) -> None:
    first, *rest = [*parts, b""]
    ours = digest.sha256(first, more=more)
    theirs = hashlib.sha256(first)
    for part in rest:
        ours.update(part)
        theirs.update(part)
    assert (ours.digest(), ours.hexdigest()) == (theirs.digest(), theirs.hexdigest())


def test_small_inputs_use_pythons_own_sha256_and_large_ones_openssls() -> None:
    code = (
        "import sys; from politely.digest import sha256, OPENSSL_FROM\n"
        "sha256(b'x' * 1000, more=OPENSSL_FROM - 1001)\n"
        "print('hashlib' in sys.modules)\n"
        "sha256(more=OPENSSL_FROM)\n"
        "print('hashlib' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SOURCE)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.stdout.split() == ["False", "True"], result.stderr


def test_a_check_of_a_small_site_imports_neither_hashlib_nor_fractions(tmp_path: Path) -> None:
    env = {**os.environ, CACHE_DIR_VARIABLE: str(tmp_path), "PYTHONPATH": str(SOURCE)}
    runs = [
        subprocess.run(
            [sys.executable, "-c", _CHECK, str(RULES)],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        for _ in range(2)  # the first builds the parser with Lark (which imports hashlib)
    ]
    assert runs[0].returncode == 0, runs[0].stderr
    assert (runs[1].returncode, runs[1].stderr) == (0, "\n")  # neither was imported
