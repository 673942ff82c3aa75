"""The benchmark harness itself (bench/common.py, bench/run.py, bench/floors.py): statistics on known inputs, verdicts
against ratio targets, and a floor that fails reported as an error, never a pass. No timing is asserted."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from bench import run as bench_run
from bench.common import (
    Check,
    Config,
    Latency,
    LoadSampler,
    Row,
    latency_row,
    percentile,
    ratio,
    run_ratios,
    spread,
    stat,
    verdict_of,
)
from bench.floors import bare_engine, capture, dispose, replay
from bench.scenario_http import _load_row
from bench.scenario_jobs import job_row

ONE_TO_HUNDRED = [float(x) for x in range(1, 101)]


# --- statistics ---------------------------------------------------------------------------------------------------
def test_percentile_is_nearest_rank() -> None:
    assert percentile(ONE_TO_HUNDRED, 99) == 99.0
    assert percentile(ONE_TO_HUNDRED, 50) == 51.0  # round(0.5 * 99) = 50 -> the 51st value
    assert percentile(ONE_TO_HUNDRED, 0) == 1.0
    assert percentile(ONE_TO_HUNDRED, 100) == 100.0
    assert percentile([3.0, 1.0, 2.0], 100) == 3.0  # unsorted input
    assert math.isnan(percentile([], 99))


def test_stat_p50_is_the_median() -> None:
    assert stat([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert stat(ONE_TO_HUNDRED, 99) == 99.0


def test_ratio_needs_both_figures_and_a_positive_floor() -> None:
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(None, 2.0) is None
    assert ratio(3.0, None) is None
    assert ratio(3.0, 0.0) is None
    assert ratio(float("nan"), 1.0) is None


def test_spread_is_min_median_max() -> None:
    assert spread([3.0, 1.0, 2.0]) == [1.0, 2.0, 3.0]
    assert spread([]) is None


def test_run_ratios_pair_runs_in_order() -> None:
    ours = [[2.0, 4.0, 6.0], [10.0, 10.0, 10.0]]
    floor = [[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]]
    assert run_ratios(ours, floor, 50) == [2.0, 2.0]
    assert run_ratios(ours, floor, 99) == [2.0, 2.0]
    # A run without floor figures gives no ratio (never a division by nothing).
    assert run_ratios(ours, [[1.0], []], 50) == [4.0]


def test_latency_is_the_median_of_runs_with_their_spread() -> None:
    runs = [ONE_TO_HUNDRED, [x * 2 for x in ONE_TO_HUNDRED], [x * 3 for x in ONE_TO_HUNDRED]]
    lat = Latency.of(runs)
    assert lat.p50 == 101.0  # the runs' medians are 50.5, 101, 151.5
    assert (lat.p50_min, lat.p50_max) == (50.5, 151.5)
    assert lat.p99 == 198.0 and (lat.p99_min, lat.p99_max) == (99.0, 297.0)
    assert (lat.runs, lat.calls_per_run) == (3, 100)
    with pytest.raises(ValueError):
        Latency.of([[]])


# --- verdicts -----------------------------------------------------------------------------------------------------
def test_checks_of_both_kinds() -> None:
    assert Check("x", 1.25, "<=", 1.25).ok is True
    assert Check("x", 1.26, "<=", 1.25).ok is False
    assert Check("x", 0.5, ">=", 0.5).ok is True
    assert Check("x", 0.49, ">=", 0.5).ok is False
    assert Check("x", None, "<=", 1.0).ok is None
    assert Check("x", float("nan"), ">=", 1.0).ok is None
    with pytest.raises(ValueError):
        Check("x", 1.0, "<", 2.0)


def test_verdicts() -> None:
    met, missed, unmeasured = Check("a", 1.0, "<=", 2.0), Check("b", 3.0, "<=", 2.0), Check("c", None, ">=", 1.0)
    assert verdict_of([met]) == "met"
    assert verdict_of([met, missed]) == "MISSED"
    assert verdict_of([met, missed, unmeasured]) == "error"  # a figure that could not be measured is no pass
    assert verdict_of([met], error="the floor raised") == "error"
    assert verdict_of([]) == "n/a"
    row = Row("1", "m", checks=[met])
    assert (row.status, row.met) == ("met", True)
    assert Row("1", "m", checks=[met, missed]).met is False
    assert Row("1", "m", checks=[met], error="boom").met is False
    assert Row("1", "m").met is None


def test_latency_row_ratio_targets_at_p50_and_p99() -> None:
    ours = [[2.0] * 90 + [10.0] * 10, [2.6] * 90 + [10.0] * 10]
    floor = [[2.0] * 90 + [5.0] * 10, [2.0] * 90 + [5.0] * 10]
    row = latency_row("1", "m", ours, floor, floor="SDK ping", p50_max=1.25, p99_max=2.0)
    assert row.ratio_p50_runs == [1.0, 1.3]
    assert row.ratio == pytest.approx(1.15)
    assert row.ratio_p99 == pytest.approx(2.0)
    assert row.status == "met"
    tighter = latency_row("1", "m", ours, floor, floor="SDK ping", p50_max=1.1, p99_max=2.0)
    assert tighter.status == "MISSED"
    assert [c.ok for c in tighter.checks] == [False, True]
    out = tighter.as_dict()
    assert out["status"] == "MISSED" and out["met"] is False
    assert out["ratio_to_floor_p50"] == 1.15 and out["ratio_p50_spread"] == [1.0, 1.15, 1.3]
    assert [c["ok"] for c in out["checks"]] == [False, True]


def test_a_floor_that_failed_is_an_error_not_a_pass() -> None:
    ours = [[1.0, 1.0, 1.0]]
    failed = latency_row("2", "m", ours, [[0.9, 0.9]], floor="SQL", p99_max=1.5, floor_error="OperationalError: x")
    assert (failed.status, failed.met) == ("error", False)
    assert failed.floor_p50_ms is None and failed.ratio is None
    empty = latency_row("2", "m", ours, [[]], floor="SQL", p99_max=1.5)
    assert (empty.status, empty.met) == ("error", False)
    # A reference row (no target) whose floor failed still says so.
    assert latency_row("2", "m", ours, None, floor="SQL", floor_error="boom").status == "error"


def test_http_row_ratio_targets_and_a_floor_without_throughput() -> None:
    cfg = Config.make(quick=True)
    floor = {"throughput_per_s": 400.0, "p50_ms": 50.0, "p99_ms": 100.0}
    ours: dict[str, Any] = {
        "throughput_per_s": 200.0,
        "p50_ms": 100.0,
        "p99_ms": 900.0,
        "max_ms": 990.0,
        "calls": 10,
        "errors": 0,
        "error_samples": [],
    }
    assert _load_row(cfg, "PostgreSQL (app role, RLS)", ours, floor, 100.0).status == "met"  # 0.5x >= 0.5
    assert _load_row(cfg, "SQLite", {**ours, "throughput_per_s": 150.0}, floor, 100.0).status == "MISSED"  # 0.375x
    assert _load_row(cfg, "SQLite", {**ours, "max_ms": 1500.0}, floor, 100.0).status == "MISSED"  # a call over 1 s
    assert _load_row(cfg, "SQLite", {**ours, "p99_ms": 1001.0}, floor, 100.0).status == "MISSED"  # p99 over 10x
    assert _load_row(cfg, "SQLite", {**ours, "errors": 1}, floor, 100.0).status == "MISSED"
    broken = _load_row(cfg, "SQLite", ours, {**floor, "throughput_per_s": 0.0}, 100.0)
    assert (broken.status, broken.met) == ("error", False)


def test_jobs_are_judged_against_the_in_flight_bound() -> None:
    # 10,000 symbols x 20 ms over 1 x 8 threads x 8 in flight = 3.125 s; 80 % of it is 3.90625 s.
    row = job_row(1, 10_000, 0.020, [3.90625, 3.0, 5.0])
    assert row.extra["in_flight_bound_s"] == 3.125
    assert row.value == 80.0 and row.status == "met"
    assert job_row(1, 10_000, 0.020, [4.0, 4.0]).status == "MISSED"
    assert job_row(2, 10_000, 0.020, [1.5625]).value == 100.0


# --- the runner ---------------------------------------------------------------------------------------------------
def test_a_scenario_that_raises_gives_an_error_row() -> None:
    async def broken(_cfg: Config, _ctx: dict) -> list[Row]:
        raise RuntimeError("the floor's server did not start")

    async def nothing(_cfg: Config, _ctx: dict) -> list[Row]:
        return []

    cfg = Config.make(quick=True)
    [row] = asyncio.run(bench_run.run_one("5", broken, cfg, {}))
    assert (row.status, row.met) == ("error", False)
    assert "did not start" in (row.error or "")
    [row] = asyncio.run(bench_run.run_one("5", nothing, cfg, {}))
    assert row.status == "error"


def test_table_and_summary_name_every_verdict() -> None:
    rows = [
        Row(
            "1",
            "validate",
            p50_ms=2.0,
            floor_p50_ms=1.0,
            ratio_p50_runs=[2.0, 1.9],
            checks=[Check("r", 2.0, "<=", 1.25)],
        ),
        Row("2", "search", checks=[Check("r", 1.0, "<=", 1.5)]),
        Row("3", "add", error="OperationalError: locked", checks=[Check("r", None, "<=", 2.0)]),
        Row("5", "reference"),
    ]
    out = bench_run.summary(rows)
    assert out.splitlines()[0] == "summary: 1 met, 1 MISSED, 1 error, 1 n/a"
    assert "MISSED 1. validate" in out and "error  3. add" in out and "OperationalError" in out
    text_table = bench_run.table(rows)
    assert "1.95 (1.90-2.00)" in text_table
    assert "| 3 | add |" in bench_run.table(rows, markdown=True)


def test_load_sampler_reports_the_load_and_cpu() -> None:
    with LoadSampler(every_s=0.01) as load:
        sum(range(10_000))
        import time

        time.sleep(0.05)
    assert len(load.result["loadavg_before"]) == 3
    assert load.result["load1_samples"] >= 1
    assert load.result["bench_cpu_s"] >= 0
    assert LoadSampler.describe(load.result)


# --- storage floors -----------------------------------------------------------------------------------------------
async def read_two(session: AsyncSession, wanted: int) -> list[Any]:
    """A stand-in repository function (captured by its dotted name below)."""
    first = (await session.execute(text("SELECT count(*) FROM t WHERE a <= :n"), {"n": wanted})).scalar_one()
    rows = (await session.execute(text("SELECT a FROM t ORDER BY a LIMIT :n"), {"n": wanted})).all()
    return [first, rows]


def test_capture_and_replay_on_a_bare_connection(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'floor.db'}"

    async def scenario() -> tuple[int, float]:
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (a INTEGER)"))
            await conn.execute(text("INSERT INTO t VALUES (:a)"), [{"a": i} for i in range(10)])
        with capture("tests.bench.test_harness.read_two") as captured:
            async with AsyncSession(engine) as session:
                assert await globals()["read_two"](session, 3) is not None
                await session.execute(text("SELECT 1"))  # outside the wrapped call: not captured
        await engine.dispose()
        assert read_two.__name__ == "read_two"  # the original is back
        [statements] = captured.calls
        assert [s.params for s in statements] == [{"n": 3}, {"n": 3}]
        bare = bare_engine(url)
        try:
            elapsed = await replay(bare, statements)
        finally:
            await dispose(bare)
        return len(statements), elapsed

    count, elapsed = asyncio.run(scenario())
    assert count == 2 and elapsed >= 0


def test_replay_of_a_broken_statement_raises(tmp_path: Path) -> None:
    from bench.floors import Statement

    bare = bare_engine(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(Exception, match="no such table"):
        asyncio.run(replay(bare, [Statement(text("SELECT * FROM missing"), None)]))
    asyncio.run(dispose(bare))


def test_capture_of_a_function_that_is_gone_fails_loudly() -> None:
    with pytest.raises(AttributeError, match="follow the code"), capture("storage.repositories.assets.no_such_search"):
        pass


def test_a_saved_report_gives_back_its_rows_and_verdicts() -> None:
    rows = [
        latency_row("1", "m", [[2.0, 2.0]], [[1.0, 1.0]], floor="SDK ping", p50_max=1.25),
        Row("3", "add", error="boom", checks=[Check("r", None, "<=", 2.0)]),
        Row("7", "accuracy", value=100.0, unit="%", checks=[Check("accuracy", 1.0, ">=", 0.995)]),
    ]
    again = bench_run.rows_of({"rows": [r.as_dict() for r in rows]})
    assert [r.status for r in again] == ["MISSED", "error", "met"]
    assert again[0].ratio == 2.0 and again[0].ratio_p50_runs == [2.0]
