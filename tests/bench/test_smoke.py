"""Smoke run of `make bench QUICK=1`'s runner on a fast subset, its JSON parsed (no timing is asserted).

The whole quick run takes a few minutes on a 2-core machine (it builds a 100,000-asset store first), too slow for the
suite; this runs ``python -m bench.run --quick --no-docs --only 1,10``: scenario 1 (the SDK floor over stdio, two
server processes) and scenario 10 (a SQL floor captured from the service and replayed on a bare connection), about
50 s. It writes only under tmp_path (``--out``, ``--work-dir``) and leaves docs/BENCHMARKS.md and bench/results/ as
they were.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "BENCHMARKS.md"
LATEST = ROOT / "bench" / "results" / "latest.json"


def _fingerprint(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


@pytest.mark.slow
def test_quick_bench_subset_writes_a_parseable_report(tmp_path: Path) -> None:
    docs, latest = _fingerprint(DOCS), _fingerprint(LATEST)
    out = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNIVERSE_MCP_")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--quick",
            "--no-docs",
            "--only",
            "1,10",
            "--runs",
            "2",
            "--out",
            str(out),
            "--work-dir",
            str(tmp_path / "work"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "summary:" in done.stdout
    report = json.loads(out.read_text())
    rows = {(r["scenario"], r["metric"]): r for r in report["rows"]}
    assert {s for s, _ in rows} == {"1", "10"}
    assert report["command"].startswith("make bench QUICK=1")
    assert sum(report["summary"].values()) == len(report["rows"])
    for row in report["rows"]:
        assert row["status"] in ("met", "MISSED", "n/a"), row  # an error here is a broken floor
        assert row["floor_p50_ms"] is not None and row["floor_p50_ms"] > 0
        assert row["ratio_to_floor_p50"] is not None and row["ratio_to_floor_p99"] is not None
        assert row["load"]["loadavg_before"] and row["load"]["wall_s"] >= 0
    validate = rows[("1", "cached validate_symbols, stdio")]
    assert [c["name"] for c in validate["checks"]] == ["p50 / floor p50", "p99 / floor p99"]
    assert [c["bound"] for c in validate["checks"]] == [1.25, 2.0]
    assert len(validate["ratio_p50_runs"]) == 2 and validate["ratio_p50_spread"] is not None
    [history] = [r for (s, _), r in rows.items() if s == "10"]
    assert history["floor"].startswith("the page's SQL")
    # Nothing of the repository was rewritten.
    assert _fingerprint(DOCS) == docs
    assert _fingerprint(LATEST) == latest
