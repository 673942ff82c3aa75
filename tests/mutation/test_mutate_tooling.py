"""`make mutate` keeps working: scripts/mutate.py runs mutmut on one small module and reports a score.

The run uses a deliberately thin test selection (one test of tests/services/test_symbols.py), so the report must
show both killed and surviving mutants, each survivor with its diff: a tooling change that silently reports
everything killed (or nothing run) fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

THIN_TARGET = """
[[target]]
module = "services/symbols.py"
tests = ["tests/services/test_symbols.py::test_real_ticker_shapes_pass"]
functions = ["symbol_problem"]

[[target.equivalent]]
function = "symbol_problem"
line = 'return "XXemptyXX"'
reason = "declared here to check that the report counts declared equivalents apart"
"""


def test_mutate_reports_a_score_and_the_surviving_mutants(tmp_path: Path):
    targets = tmp_path / "targets.toml"
    targets.write_text(THIN_TARGET)
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "scripts/mutate.py", "--targets", str(targets), "--out", str(out), "--max-children", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    report = json.loads((out / "report.json").read_text())
    (module,) = report["modules"]
    assert module["module"] == "services/symbols.py" and module["error"] is None
    counts = module["counts"]
    killed, survived = counts.get("killed", 0), counts.get("survived", 0)
    # Valid tickers only: mutants that break acceptance die, mutants of the rejection messages live.
    assert killed > 0 and survived > 0, counts
    assert module["equivalent"] == 1
    assert module["score"] == round(100 * killed / (sum(counts.values()) - 1), 1)
    survivors = [s for s in module["survivors"] if not s["equivalent_because"]]
    assert len(survivors) == sum(counts.values()) - killed - 1
    assert all(s["function"] == "symbol_problem" and s["diff"].startswith("---") for s in survivors)
    assert "| services/symbols.py |" in (out / "report.md").read_text()
    assert "services/symbols.py: score" in done.stdout

    # --report-only summarises what the workspace holds without running anything: the same counts and score.
    again = subprocess.run(
        [sys.executable, "scripts/mutate.py", "--targets", str(targets), "--out", str(out), "--report-only"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    (reread,) = json.loads((out / "report.json").read_text())["modules"]
    assert (reread["counts"], reread["score"], reread["equivalent"]) == (counts, module["score"], 1)
    assert [s["name"] for s in reread["survivors"]] == [s["name"] for s in module["survivors"]]
    # With no workspace there is nothing to report: an error, never a score.
    empty = subprocess.run(
        [
            sys.executable,
            "scripts/mutate.py",
            "--targets",
            str(targets),
            "--out",
            str(tmp_path / "none"),
            "--report-only",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert empty.returncode == 1 and "no mutation results" in empty.stdout, empty.stdout
