"""`make bench`: every performance target (docs/BENCHMARKS.md), measured against the SDK's own floor in the same run.

    python -m bench.run [--quick] [--only 1,2,...] [--runs N] [--no-docs] [--out FILE] [--work-dir DIR]

Prints a table and a summary of the verdicts, writes bench/results/bench-<time>.json and bench/results/latest.json
(git-ignored; ``--out`` writes the JSON to that one file instead), and, after a full run (not --quick, not --only,
not --no-docs), rewrites the measured section of docs/BENCHMARKS.md. Every target is a ratio to a floor measured in
the same run (docs/BENCHMARKS.md, "Floors and targets"); each row says met, MISSED, error (a figure or its floor
could not be measured: never a pass) or n/a (a reference row). The exit status is 0 when every scenario ran, MISSED
rows included (the summary names them), and 1 when a scenario or a floor failed to run. Scenarios:

1. cached validate_symbols (1 symbol) over stdio          (scenario_validate.py)
2. search_assets over 100,000 assets                        (scenario_search.py)
3. add_assets_to_universe with 1,000 cached symbols         (scenario_add.py)
4. 10,000-symbol bulk validation job, 1 and 2 workers       (scenario_jobs.py)
5. 32 concurrent streamable-HTTP clients for 30 s           (scenario_http.py)
6. server RSS with 100,000 assets                           (scenario_memory.py)
7. the listings snapshot: first and later start, accuracy   (scenario_listings.py)
8. screen_assets / search_assets with filters, SQLite + PG  (scenario_screen.py)
9. dynamic universes: a rebalance, a scheduler tick          (scenario_rebalance.py)
10. get_universe_history pages over 9,000 events           (scenario_history.py)

All load stays on 127.0.0.1; every server process is started and stopped here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.common import RESULTS, ROOT, Check, Config, LoadSampler, Row, error_text, quiet_logging

DOCS = ROOT / "docs" / "BENCHMARKS.md"
BEGIN, END = "<!-- bench:results:begin -->", "<!-- bench:results:end -->"
NEEDS_STORE = {"2", "5", "6", "8", "9"}


def scenarios() -> dict[str, Callable[[Config, dict], Awaitable[list[Row]]]]:
    from bench import (
        scenario_add,
        scenario_history,
        scenario_http,
        scenario_jobs,
        scenario_listings,
        scenario_memory,
        scenario_rebalance,
        scenario_screen,
        scenario_search,
        scenario_validate,
    )

    return {
        "1": scenario_validate.run,
        "2": scenario_search.run,
        "3": scenario_add.run,
        "4": scenario_jobs.run,
        "5": scenario_http.run,
        "6": scenario_memory.run,
        "7": scenario_listings.run,
        "8": scenario_screen.run,
        "9": scenario_rebalance.run,
        "10": scenario_history.run,
    }


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "mcp": metadata.version("mcp"),
        "sqlite": sqlite3.sqlite_version,
        "os": f"{platform.system()} {platform.release()}",
    }


def fmt(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def verdict(row: Row) -> str:
    return row.status


def ratio_cell(values: list[float], median: float | None) -> str:
    """The median ratio of the runs, with their range when there were several: "1.31 (1.22-1.40)"."""
    if median is None:
        return ""
    if len(values) > 1:
        return f"{median:.2f} ({min(values):.2f}-{max(values):.2f})"
    return f"{median:.2f}"


def table(rows: list[Row], markdown: bool = False) -> str:
    head = [
        "#",
        "scenario",
        "p50 ms",
        "p99 ms",
        "floor p50",
        "floor p99",
        "x floor p50",
        "x floor p99",
        "value",
        "target",
        "load",
        "result",
    ]
    body = []
    for r in rows:
        value = f"{r.value:g} {r.unit}".strip() if r.value is not None else ""
        body.append(
            [
                r.scenario,
                r.metric,
                fmt(r.p50_ms),
                fmt(r.p99_ms),
                fmt(r.floor_p50_ms),
                fmt(r.floor_p99_ms),
                ratio_cell(r.ratio_p50_runs, r.ratio),
                ratio_cell(r.ratio_p99_runs, r.ratio_p99),
                value,
                r.target,
                LoadSampler.describe(r.load),
                verdict(r),
            ]
        )
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
        notes = [f"- **{r.scenario}. {r.metric}**: {note}" for r in rows if (note := row_note(r))]
        return "\n".join(lines + ([""] + notes if notes else []))
    widths = [max(len(str(x)) for x in column) for column in zip(head, *body, strict=False)]
    widths[1] = min(widths[1], 58)
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    for cells in body:
        out.append("  ".join(str(c)[:w].ljust(w) for c, w in zip(cells, widths, strict=True)))
    out += [f"  {r.scenario}. {note}" for r in rows if (note := row_note(r))]
    return "\n".join(out)


def row_note(row: Row) -> str:
    parts = []
    if row.error:
        parts.append(f"ERROR: {row.error}")
    failed = [c.describe() for c in row.checks if c.ok is False]
    if failed:
        parts.append("missed: " + "; ".join(failed))
    if row.note:
        parts.append(row.note)
    return " | ".join(parts)


def summary(rows: list[Row]) -> str:
    """The verdicts in a few lines: counts, then each MISSED and error row by name."""
    counts = {status: sum(r.status == status for r in rows) for status in ("met", "MISSED", "error", "n/a")}
    lines = [
        "summary: " + ", ".join(f"{n} {status}" for status, n in counts.items() if n),
    ]
    for r in rows:
        if r.status in ("MISSED", "error"):
            lines.append(f"  {r.status:6} {r.scenario}. {r.metric}: {row_note(r)[:300]}")
    return "\n".join(lines)


def update_docs(report: dict[str, Any], rows: list[Row]) -> None:
    m = report["machine"]
    section = "\n".join(
        [
            BEGIN,
            f"Measured {report['finished']} by `{report['command']}` in {report['duration_s'] / 60:.1f} min "
            f"(medians of {report['config']['runs']} runs).",
            "",
            f"Machine: {m['nproc']} CPU ({m['cpu']}), {m['os']}, Python {m['python']}, mcp {m['mcp']}, "
            f"SQLite {m['sqlite']}. The load column is the 1-minute load average while each scenario ran: median "
            "(min-max) of /proc/loadavg sampled every second.",
            "",
            table(rows, markdown=True),
            "",
            "```",
            summary(rows),
            "```",
            END,
        ]
    )
    text = DOCS.read_text() if DOCS.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text = text.rstrip() + f"\n\n{BEGIN}\n{END}\n"
    start, end = text.index(BEGIN), text.index(END) + len(END)
    DOCS.write_text(text[:start] + section + text[end:])


async def main(args: argparse.Namespace) -> int:
    quiet_logging()
    cfg = Config.make(args.quick, args.runs)
    if args.work_dir:
        cfg.work_dir = Path(args.work_dir)
    cfg.work_dir.mkdir(parents=True, exist_ok=True)
    chosen = [s.strip() for s in args.only.split(",")] if args.only else list(scenarios())
    started = time.monotonic()
    ctx: dict[str, Any] = {}
    if NEEDS_STORE & set(chosen):
        from bench.store import build_store

        print(f"building a store of {cfg.store_assets:,} assets ...", flush=True)
        ctx["store"] = cfg.work_dir / "store"
        ctx["store_build_s"] = await asyncio.to_thread(build_store, ctx["store"], cfg.store_assets)
        print(f"  done in {ctx['store_build_s']:.1f} s", flush=True)
    rows: list[Row] = []
    crashed = False
    for key in chosen:
        run = scenarios()[key]
        print(f"scenario {key} ...", flush=True)
        t = time.monotonic()
        with LoadSampler() as load:
            got = await run_one(key, run, cfg, ctx)
        for row in got:
            row.extra["scenario_seconds"] = round(time.monotonic() - t, 1)
            row.load = load.result
        crashed = crashed or any(r.status == "error" for r in got)
        rows += got
        print(table(got), flush=True)
    duration = time.monotonic() - started
    command = (
        "make bench" + (" QUICK=1" if args.quick else "") + (f" BENCH_ARGS='--only {args.only}'" if args.only else "")
    )
    report = {
        "command": command,
        "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "duration_s": round(duration, 1),
        "machine": machine(),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(cfg).items()},
        "store_build_s": ctx.get("store_build_s"),
        "rows": [r.as_dict() for r in rows],
    }
    report["summary"] = {status: sum(r.status == status for r in rows) for status in ("met", "MISSED", "error", "n/a")}
    if args.out:
        paths = [Path(args.out)]
    else:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        paths = [RESULTS / f"bench-{stamp}.json", RESULTS / "latest.json"]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2, default=str))
    print()
    print(table(rows))
    print()
    print(summary(rows))
    print(f"\n{len(rows)} figures in {duration / 60:.1f} min; JSON: {paths[-1]}")
    if not args.quick and not args.only and not args.no_docs:
        update_docs(report, rows)
        print(f"updated {DOCS.relative_to(ROOT)}")
    return 1 if crashed else 0


def rows_of(report: dict[str, Any]) -> list[Row]:
    """The rows of a saved JSON report (``--docs-from``)."""
    fields = set(Row.__dataclass_fields__)
    rows = []
    for data in report["rows"]:
        row = Row(**{k: v for k, v in data.items() if k in fields and k != "checks"})
        row.checks = [Check(**{k: c[k] for k in ("name", "value", "op", "bound")}) for c in data.get("checks", [])]
        rows.append(row)
    return rows


async def run_one(
    key: str, run: Callable[[Config, dict], Awaitable[list[Row]]], cfg: Config, ctx: dict[str, Any]
) -> list[Row]:
    """One scenario's rows; a scenario that raises (its floor included) gives an error row, never a pass."""
    try:
        got = await run(cfg, ctx)
    except Exception as exc:  # one broken scenario must not hide the others' figures
        traceback.print_exc()
        return [Row(scenario=key, metric="(failed to run)", error=error_text(exc))]
    if not got:
        return [Row(scenario=key, metric="(no figures)", error="the scenario returned no rows")]
    return got


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: fewer calls, 5 s of HTTP load, 1,000-symbol "
        "jobs (figures are indicative only; docs are not updated)",
    )
    parser.add_argument("--only", help="comma-separated scenario numbers, e.g. 1,2")
    parser.add_argument("--runs", type=int, help="repetitions of each latency measurement (default 3, quick 2)")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/BENCHMARKS.md")
    parser.add_argument("--out", help="write the JSON report to this file only (not bench/results/)")
    parser.add_argument("--work-dir", help="scratch directory for stores and logs (default bench/results/work)")
    parser.add_argument(
        "--docs-from", help="rewrite docs/BENCHMARKS.md's measured section from a saved JSON report, run nothing"
    )
    parsed = parser.parse_args()
    if parsed.docs_from:
        saved = json.loads(Path(parsed.docs_from).read_text())
        update_docs(saved, rows_of(saved))
        sys.exit(0)
    # Absolute before any scenario runs: servers and workers start with the repository as their directory.
    parsed.out = parsed.out and os.path.abspath(parsed.out)
    parsed.work_dir = parsed.work_dir and os.path.abspath(parsed.work_dir)
    code = asyncio.run(main(parsed))
    sys.stdout.flush()
    sys.exit(code)
