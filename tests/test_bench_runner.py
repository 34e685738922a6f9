"""`python -m bench` runs a benchmark script as a subprocess and reports its JSON or its absence."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.__main__ import BENCHMARKS, Benchmark, rows_of, run, table  # noqa: E402


def test_the_runner_collects_a_benchmarks_json_result() -> None:
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", "soak", "--json"],
                          cwd=REPO, capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    assert list(document["results"]) == ["soak"]
    soak = document["results"]["soak"]
    assert soak["mismatches"] == [] and soak["truth"]["runs"] > 0


def test_a_missing_script_is_not_available_and_a_failing_one_is_reported() -> None:
    soak = next(b for b in BENCHMARKS if b.name == "soak")
    missing = Benchmark("gone", "no_such_script.py", (), (), soak.rows, "absent")
    assert run(missing, quick=True) == {"available": False}
    assert rows_of(missing, {"available": False})[0][1] == "not available"
    failing = Benchmark("bad", "soak.py", ("--hours", "-x"), ("--hours", "-x"), soak.rows, "bad")
    result = run(failing, quick=True)
    assert "error" in result and "--hours" in result["error"]
    assert "FAILED" in table(rows_of(failing, result))
