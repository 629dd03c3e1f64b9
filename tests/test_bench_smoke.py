"""The benchmark suite runs end to end (`bench/run.py --quick`). No timing is asserted:
the machines are shared and noisy; figures belong in the README, not in tests."""

import json
import subprocess
import sys
from pathlib import Path

from conftest import require

ROOT = Path(__file__).resolve().parent.parent


def test_the_quick_benchmark_run_completes_and_reports_every_benchmark(tmp_path: Path) -> None:
    require("rule_engine")
    require("cel")
    output = tmp_path / "latest.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for letter in "ABCDEFGHIJKLM":
        assert f"### {letter}." in result.stdout
    assert json.loads(output.read_text())
