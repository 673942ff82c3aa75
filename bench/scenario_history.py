"""Scenario 10: `get_universe_history` pages over a long history, server time, on SQLite.

Issue 14: history pages p99 <= 10 ms. A universe is created with 1,000 members and then changed in 40 rounds (100
members out, 100 others in, each round one call), so its history holds 9,000 events in 81 runs of equal times. The
timed calls page through the whole history at 50 a page (181 pages: the first ones, the deep ones and pages cut
inside a run of equal times alike), then read windows (since/until) of it, and the turnover of the whole history.
Server time is the envelope's ``metadata.elapsed_ms``; the calls go through the in-memory MCP client.
"""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta
from typing import Any

from bench.common import Config, Row, bench_settings, fresh_dir, percentile

MEMBERS = 1_000
ROUNDS = 40
SWAP = 100


async def _ok(client: Any, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    envelope = result.structured_content or {}
    if result.is_error:
        raise RuntimeError(f"{tool} failed: {envelope.get('error')}")
    return envelope


async def _measure(cfg: Config, settings: Any) -> dict[str, list[float]]:
    from mcp import Client

    from server.app import build_server

    pool = [f"H{i:05d}" for i in range(MEMBERS + SWAP)]
    times: dict[str, list[float]] = {"history page": [], "history window": [], "turnover": []}
    async with Client(build_server(settings)) as client:
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
            arguments: dict[str, Any] | None = {"universe_id": uid}
            while arguments:
                envelope = await _ok(client, "get_universe_history", arguments)
                if p:
                    times["history page"].append(envelope["metadata"]["elapsed_ms"])
                cursor = envelope["data"]["next_cursor"]
                arguments = {"universe_id": uid, "cursor": cursor} if cursor else None
            for since, until in zip(marks, marks[1:], strict=False):
                envelope = await _ok(
                    client, "get_universe_history", {"universe_id": uid, "since": since, "until": until}
                )
                if p:
                    times["history window"].append(envelope["metadata"]["elapsed_ms"])
            envelope = await _ok(client, "get_universe_turnover", {"universe_id": uid})
            if p:
                times["turnover"].append(envelope["metadata"]["elapsed_ms"])
        since = (datetime.now().astimezone() - timedelta(days=1)).isoformat()
        assert (await _ok(client, "get_universe_turnover", {"universe_id": uid, "since": since}))["data"]["additions"]
    return times


def _rows(store: str, times: dict[str, list[float]]) -> list[Row]:
    pages = times["history page"] + times["history window"]
    p99 = percentile(pages, 99)
    turnover = times["turnover"]
    return [
        Row(
            scenario="10",
            metric=f"get_universe_history pages over {MEMBERS + 2 * ROUNDS * SWAP:,} events, server time, {store}",
            p50_ms=statistics.median(pages),
            p99_ms=p99,
            target="p99 <= 10 ms server time",
            met=p99 <= 10.0,
            note=f"{len(pages)} pages; turnover of the whole history p50 {statistics.median(turnover):.1f} ms",
            extra={
                "per_kind": {
                    kind: {"p50_ms": round(statistics.median(v), 3), "p99_ms": round(percentile(v, 99), 3)}
                    for kind, v in times.items()
                    if v
                }
            },
        )
    ]


async def run(cfg: Config, _ctx: dict) -> list[Row]:
    work = fresh_dir(cfg.work_dir / "s10")
    return _rows("SQLite", await _measure(cfg, bench_settings(work / "data", max_new_assets_per_hour=0)))
