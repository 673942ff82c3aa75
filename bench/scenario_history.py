"""Scenario 10: `get_universe_history` pages over a long history, server time, on SQLite.

Issue 14: history pages p99 <= 10 ms. A universe is created with 1,000 members and then changed in 40 rounds (100
members out, 100 others in, each round one call), so its history holds 9,000 events in 81 runs of equal times. The
timed calls page through the whole history at 50 a page (181 pages: the first ones, the deep ones and pages cut
inside a run of equal times alike), then read windows (since/until) of it, and the turnover of the whole history.
Server time is the envelope's ``metadata.elapsed_ms``; the calls go through the in-memory MCP client.

Its floor (issue 17): the statements of the page's service call (``services.history.HistoryService.history``: the
owner check, the page, the runs and definitions it reads), captured while the call runs and executed again right
after it in one transaction on a bare connection to the same file (bench/floors.py). The target stays p99 <= 10 ms;
the ratio to the floor is reported beside it (one pass over the history is one run).
"""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta
from typing import Any

from bench.common import Check, Config, Row, bench_settings, error_text, fresh_dir, latency_row, percentile
from bench.floors import capture, dispose, floor_engine, replay

MEMBERS = 1_000
ROUNDS = 40
SWAP = 100


async def _ok(client: Any, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    envelope = result.structured_content or {}
    if result.is_error:
        raise RuntimeError(f"{tool} failed: {envelope.get('error')}")
    return envelope


HISTORY_CALL = "services.history.HistoryService.history"
P99_TARGET_MS = 10.0


async def _measure(cfg: Config, settings: Any) -> dict[str, Any]:
    from mcp import Client

    from server.app import build_server

    pool = [f"H{i:05d}" for i in range(MEMBERS + SWAP)]
    times: dict[str, list[float]] = {"history page": [], "history window": [], "turnover": []}
    ours_runs: list[list[float]] = []  # pages and windows, one list per pass
    floor_runs: list[list[float]] = []
    engine, floor_error = floor_engine(settings.sqlalchemy_url)
    with capture(HISTORY_CALL) as captured:
        async with Client(build_server(settings)) as client:

            async def page(arguments: dict[str, Any], timed: bool) -> dict[str, Any]:
                """One history call, then its statements again on the bare connection."""
                nonlocal floor_error, engine
                before = len(captured.calls)
                envelope = await _ok(client, "get_universe_history", arguments)
                if timed:
                    ours_runs[-1].append(envelope["metadata"]["elapsed_ms"])
                if engine is not None:
                    try:
                        if len(captured.calls) == before:
                            raise RuntimeError(f"no {HISTORY_CALL} call captured")
                        elapsed = await replay(engine, captured.last)
                        if timed:
                            floor_runs[-1].append(elapsed)
                    except Exception as exc:  # the row reports it; the product's figures still come
                        floor_error, engine = error_text(exc), None
                return envelope

            created = await _ok(
                client, "create_universe", {"name": "History bench", "symbols": pool[:MEMBERS], "validate": False}
            )
            uid = created["data"]["universe"]["id"]
            out, spare = pool[:SWAP], pool[MEMBERS:]
            marks: list[str] = []
            for i in range(ROUNDS):
                await _ok(client, "remove_assets_from_universe", {"universe_id": uid, "symbols": out})
                await _ok(client, "add_assets_to_universe", {"universe_id": uid, "symbols": spare, "validate": False})
                out, spare = spare, out
                if i % 10 == 9:
                    marks.append(datetime.now().astimezone().isoformat())
            passes = 1 if cfg.quick else 3
            for p in range(passes + 1):  # one warm-up pass: statements compiled, pages cached
                if p:
                    ours_runs.append([])
                    floor_runs.append([])
                arguments: dict[str, Any] | None = {"universe_id": uid}
                while arguments:
                    envelope = await page(arguments, bool(p))
                    if p:
                        times["history page"].append(envelope["metadata"]["elapsed_ms"])
                    cursor = envelope["data"]["next_cursor"]
                    arguments = {"universe_id": uid, "cursor": cursor} if cursor else None
                for since, until in zip(marks, marks[1:], strict=False):
                    envelope = await page({"universe_id": uid, "since": since, "until": until}, bool(p))
                    if p:
                        times["history window"].append(envelope["metadata"]["elapsed_ms"])
                envelope = await _ok(client, "get_universe_turnover", {"universe_id": uid})
                if p:
                    times["turnover"].append(envelope["metadata"]["elapsed_ms"])
            since = (datetime.now().astimezone() - timedelta(days=1)).isoformat()
            turnover = await _ok(client, "get_universe_turnover", {"universe_id": uid, "since": since})
            assert turnover["data"]["additions"]
    if engine is not None:
        await dispose(engine)
    return {"times": times, "ours_runs": ours_runs, "floor_runs": floor_runs, "floor_error": floor_error}


def _rows(store: str, measured: dict[str, Any]) -> list[Row]:
    times = measured["times"]
    pages = times["history page"] + times["history window"]
    p99 = percentile(pages, 99)
    turnover = times["turnover"]
    row = latency_row(
        "10",
        f"get_universe_history pages over {MEMBERS + 2 * ROUNDS * SWAP:,} events, server time, {store}",
        measured["ours_runs"],
        measured["floor_runs"],
        floor="the page's SQL, bare connection",
        floor_error=measured["floor_error"],
        note=f"{len(pages)} pages; turnover of the whole history p50 {statistics.median(turnover):.1f} ms",
        extra={
            "per_kind": {
                kind: {"p50_ms": round(statistics.median(v), 3), "p99_ms": round(percentile(v, 99), 3)}
                for kind, v in times.items()
                if v
            }
        },
    )
    # The target stays absolute (issue 14); the ratio to the floor is reported beside it, and a floor that failed
    # still makes the row an error.
    row.checks.append(Check("p99 ms", p99, "<=", P99_TARGET_MS))
    row.target = f"p99 <= {P99_TARGET_MS:g} ms server time (ratio to {row.floor}: reported)"
    row.error = measured["floor_error"]
    return [row]


async def run(cfg: Config, _ctx: dict) -> list[Row]:
    work = fresh_dir(cfg.work_dir / "s10")
    return _rows("SQLite", await _measure(cfg, bench_settings(work / "data", max_new_assets_per_hour=0)))
