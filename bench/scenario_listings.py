"""Scenario 7: the security master — the shipped snapshot loaded on first start, a later start, and the accuracy
of verdicts through the real validation path (docs/BENCHMARKS.md, issue 12).

* first start: ``open_app_state`` on an empty data directory (migrations, the snapshot's check, parse and load into
  the store, the catalog's seeding), median of ``runs`` fresh directories; target <= 5 s.
* later start: the same directory again (the snapshot's checksum matches the store's last load: skipped);
  target <= 0.3 s.
* accuracy: every case of bench/data/accuracy_cases.json, offline — undated ones through
  ``ValidationService.validate`` (what validate_symbols and universe adds use), dated ones through the master
  lookup get_asset uses — scored by bench.accuracy.judge, by category; target >= 99.5 %.
"""

from __future__ import annotations

import statistics
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from bench.accuracy import TARGET, Report, load_cases, score, verdict_resolution
from bench.common import Check, Config, Row, bench_settings, fresh_dir

if TYPE_CHECKING:
    from services.security_master.resolver import Resolution


async def _start(data_dir: Path) -> tuple[float, float]:
    from server.lifespan import open_app_state

    wall, cpu = time.perf_counter(), time.process_time()
    async with open_app_state(bench_settings(data_dir, listings_load=True)):
        pass
    return time.perf_counter() - wall, time.process_time() - cpu


async def accuracy(data_dir: Path) -> Report:
    """Score every labelled case through the validation path of a store holding the shipped snapshot."""
    from server.lifespan import open_app_state
    from services.symbols import normalise_symbol

    cases = load_cases()
    async with open_app_state(bench_settings(data_dir, listings_load=True)) as state:
        validation = state.validation
        answers: dict[tuple[str, str | None], Resolution] = {}
        assert validation.master is not None, "open_app_state gives validation the security master"
        async with state.unit_of_work() as session:
            data_as_of = await validation.master.data_as_of(session)
            assert data_as_of is not None, "the shipped snapshot is loaded"
            for case in cases:
                as_of = date.fromisoformat(case["as_of"]) if case.get("as_of") else None
                symbol = normalise_symbol(case["query"])
                answer: Resolution | None
                if as_of is None:
                    verdict = (await validation.validate(session, [symbol]))[0]
                    answer = verdict_resolution(case["query"], None, verdict, data_as_of)
                else:
                    answer = await validation.resolve(session, symbol, as_of)
                    if answer is None:
                        verdict = (await validation.validate(session, [symbol]))[0]
                        answer = verdict_resolution(case["query"], as_of, verdict, data_as_of)
                answers[(case["query"], case.get("as_of"))] = answer
    return score(cases, lambda query, as_of: answers[(query, as_of.isoformat() if as_of else None)])


async def run(cfg: Config, ctx: dict) -> list[Row]:
    work = fresh_dir(cfg.work_dir / "s7")
    firsts, cpus, laters = [], [], []
    for i in range(1 if cfg.quick else cfg.runs):  # each first start loads ~29,400 securities (5-10 s)
        data_dir = work / f"run{i}"
        wall, cpu = await _start(data_dir)
        firsts.append(wall)
        cpus.append(cpu)
        laters.append((await _start(data_dir))[0])
    first, later = statistics.median(firsts), statistics.median(laters)
    report = await accuracy(work / "run0")
    by_category = ", ".join(f"{c} {r}/{t}" for c, (r, t) in report.by_category.items())
    misses = "; ".join(f"{f['query']}: {f['problem']}" for f in report.failures[:5])
    return [
        Row(
            scenario="7",
            metric="listings snapshot (~29,400 securities) loaded on first start",
            value=round(first, 2),
            unit="s",
            target="<= 5 s",
            checks=[Check("seconds", first, "<=", 5.0)],
            note=f"median of {len(firsts)} fresh stores (each {', '.join(f'{x:.1f}' for x in firsts)} s); "
            f"CPU {statistics.median(cpus):.1f} s",
            extra={"first_start_s": [round(x, 3) for x in firsts], "cpu_s": [round(x, 3) for x in cpus]},
        ),
        Row(
            scenario="7",
            metric="later start with the same snapshot (skipped)",
            value=round(later, 3),
            unit="s",
            target="<= 0.3 s",
            checks=[Check("seconds", later, "<=", 0.3)],
            extra={"later_start_s": [round(x, 4) for x in laters]},
        ),
        Row(
            scenario="7",
            metric=f"validation accuracy on {report.total} labelled cases (offline, the validation path)",
            value=round(report.accuracy * 100, 2),
            unit="%",
            target=f">= {TARGET * 100:.1f} %",
            checks=[Check("accuracy", report.accuracy, ">=", TARGET)],
            note=by_category + (f"; misses: {misses}" if misses else ""),
            extra={"by_category": {c: list(v) for c, v in report.by_category.items()}},
        ),
    ]
