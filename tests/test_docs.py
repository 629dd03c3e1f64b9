"""Every example in docs/ is real: rules check and are canonical, commands print what is shown."""

import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_docs_example_holds() -> None:
    result = subprocess.run(
        [sys.executable, str(DOCS / "check_examples.py")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
