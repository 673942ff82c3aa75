"""Scenario 2: `search_assets` over a store of 100,000 assets (plus the offline catalog).

Server time (the envelope's ``metadata.elapsed_ms``, measured inside the server process by
``UniverseMCPServer.call_tool`` around the whole tool call) against the search's SQL floor: for each query of the
mix, the statements ``storage.repositories.assets.search_assets`` executes (captured in this process from the
service's own call, bench/floors.py), executed again in one transaction on a bare connection to the same file,
interleaved with the product's calls. Target (issue 17): p99 <= 1.5x the floor's p99. The same calls' round trips
over stdio are reported against the SDK's stdio floor, and the service call alone in-process.

The query mix cycles through ticker and name searches of very different selectivity, from an exact ticker to a word
that one asset in twelve carries ("holdings"); per-query figures are in the JSON.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import (
    Config,
    Row,
    bench_settings,
    child_env,
    error_text,
    fresh_dir,
    interleaved,
    latency_row,
    percentile,
    stdio_client,
    timed_calls,
)
from bench.floors import Statement, bare_engine, capture, dispose, replay
from bench.store import copy_store

FRESH = "<fresh stem>"
QUERIES: list[dict[str, Any]] = [
    {"query": "SYM050123"},  # exact ticker
    {"query": "SYM0501"},  # ticker prefix: 100 tickers
    {"query": "AAP"},  # short ticker prefix among real tickers
    {"query": "apple"},  # a company name
    {"query": "bank of"},  # two words, the last one short
    {"query": "robotics"},  # an industry word: ~1,700 matches
    {"query": "holdings"},  # a suffix word: ~8,400 matches
    {"query": "kalo energy"},  # stem + industry
    {"query": "bank", "sector": "Financials"},  # sector filter
    {"query": "qqqzzzxx"},  # nothing
    {"query": FRESH},  # a made-up stem never searched before (~10 matches): candidates are counted afresh
]


def label(args: dict[str, Any]) -> str:
    return args["query"] + (f" [{args['sector']}]" if "sector" in args else "")


def fresh_stems(seed: int = 2) -> Iterator[str]:
    """An endless iterator of three-syllable stems, each used once."""
    from bench.store import SYLLABLES

    rng = random.Random(seed)
    seen: set[str] = set()
    while True:
        stem = "".join(rng.choice(SYLLABLES) for _ in range(3))
        if stem not in seen:
            seen.add(stem)
            yield stem


def arguments(args: dict[str, Any], stems: Iterator[str]) -> dict[str, Any]:
    return {**args, "query": next(stems)} if args["query"] == FRESH else args


async def service_times(cfg: Config, data_dir: Path) -> dict[str, list[float]]:
    """AssetService.search alone, in this process (query + conversion, no MCP)."""
    from server.lifespan import open_app_state
    from services.assets import AssetService

    per: dict[str, list[float]] = {label(q): [] for q in QUERIES}
    stems = fresh_stems(seed=3)
    async with open_app_state(bench_settings(data_dir)) as state:
        rounds = max(5, cfg.calls // (10 * len(QUERIES)))
        for i in range(rounds + 2):
            for q in QUERIES:
                args = arguments(q, stems)
                t = time.perf_counter()
                async with state.unit_of_work() as session:
                    await AssetService(session, None).search(args["query"], sector=args.get("sector"), limit=20)
                if i >= 2:  # two warm-up rounds
                    per[label(q)].append((time.perf_counter() - t) * 1000)
    return per


P99_MAX = 1.5  # server time / the search SQL's floor, at p99
SEARCH_SQL = "storage.repositories.assets.search_assets"


async def capture_queries(data_dir: Path) -> dict[str, list[Statement]]:
    """The statements of each query's search in the steady state (counts cached, statements built), per label.

    The made-up stem gets a fresh one each call, as in the mix, so its capture includes the candidate count."""
    from server.lifespan import open_app_state
    from services.assets import AssetService

    out: dict[str, list[Statement]] = {}
    stems = fresh_stems(seed=4)
    async with open_app_state(bench_settings(data_dir)) as state:
        with capture(SEARCH_SQL) as captured:
            for q in QUERIES:
                for _ in range(2):
                    args = arguments(q, stems)
                    async with state.unit_of_work() as session:
                        await AssetService(session, None).search(args["query"], sector=args.get("sector"), limit=20)
                out[label(q)] = captured.last
    return out


async def run(cfg: Config, ctx: dict) -> list[Row]:
    work = fresh_dir(cfg.work_dir / "s2")
    data_dir = copy_store(ctx["store"], work / "data")
    env = child_env(data_dir)
    sql_error: str | None = None
    engine = None
    try:
        statements = await capture_queries(data_dir)
        engine = bare_engine(bench_settings(data_dir).sqlalchemy_url)
    except Exception as exc:  # the floor failed: the row says so (an error, never a pass)
        sql_error = error_text(exc)
    sql_runs: list[list[float]] = []
    floor_runs: list[list[float]] = []
    our_runs: list[list[float]] = []
    server_runs: list[list[float]] = []
    per_query: dict[str, list[float]] = {label(q): [] for q in QUERIES}
    per_query_sql: dict[str, list[float]] = {label(q): [] for q in QUERIES}
    async with (
        stdio_client(["-m", "bench.serve", "--transport", "stdio", "--floor"], env, work / "floor.log") as floor,
        stdio_client(["-m", "bench.serve", "--transport", "stdio"], env, work / "server.log") as ours,
    ):
        position = 0
        server_ms: list[float] = []
        stems = fresh_stems()

        async def ping() -> None:
            await floor.call_tool("ping", {})

        sql_position = 0
        sql_ms: list[float] = []

        async def sql() -> None:
            nonlocal sql_position, sql_error, engine
            args = QUERIES[sql_position % len(QUERIES)]
            sql_position += 1
            if engine is None:
                return
            try:
                elapsed = await replay(engine, statements[label(args)])
            except Exception as exc:  # reported as the row's error; the product's figures still come
                sql_error, engine = error_text(exc), None
                return
            sql_ms.append(elapsed)
            per_query_sql[label(args)].append(elapsed)

        async def search() -> None:
            nonlocal position
            args = QUERIES[position % len(QUERIES)]
            position += 1
            result = await ours.call_tool("search_assets", arguments(args, stems))
            if result.is_error:
                raise RuntimeError(f"search_assets failed: {result.structured_content}")
            elapsed = result.structured_content["metadata"]["elapsed_ms"]
            server_ms.append(elapsed)
            per_query[label(args)].append(elapsed)

        await timed_calls(ping, 0, cfg.warmup)
        await timed_calls(search, 0, cfg.warmup)
        await timed_calls(sql, 0, cfg.warmup)
        for q in [*per_query.values(), *per_query_sql.values()]:
            q.clear()
        for _ in range(cfg.runs):
            server_ms.clear()
            sql_ms.clear()
            got = await interleaved({"floor": ping, "ours": search, "sql": sql}, cfg.calls)
            floor_runs.append(got["floor"])
            our_runs.append(got["ours"])
            server_runs.append(list(server_ms))
            sql_runs.append(list(sql_ms))
    if engine is not None:
        await dispose(engine)
    service = await service_times(cfg, data_dir)

    queries = {
        name: {
            "server_p50_ms": round(statistics.median(v), 3),
            "server_p99_ms": round(percentile(v, 99), 3),
            "service_p50_ms": round(statistics.median(service[name]), 3),
            "service_p99_ms": round(percentile(service[name], 99), 3),
            "sql_floor_p50_ms": round(statistics.median(per_query_sql[name]), 3) if per_query_sql[name] else None,
            "sql_floor_p99_ms": round(percentile(per_query_sql[name], 99), 3) if per_query_sql[name] else None,
        }
        for name, v in per_query.items()
    }
    slowest = max(per_query, key=lambda name: percentile(per_query[name], 99))
    all_service = [x for v in service.values() for x in v]
    server_row = latency_row(
        "2",
        f"search_assets over {cfg.store_assets:,} assets, server time",
        server_runs,
        sql_runs,
        floor="search SQL, bare connection",
        p99_max=P99_MAX,
        floor_error=sql_error,
        note=f"slowest query: {slowest!r} (p99 {queries[slowest]['server_p99_ms']:.2f} ms)",
        extra={
            "queries": queries,
            "service_only": {
                "p50_ms": round(statistics.median(all_service), 3),
                "p99_ms": round(percentile(all_service, 99), 3),
            },
        },
    )
    return [
        server_row,
        latency_row(
            "2",
            "search_assets, stdio round trip (reference)",
            our_runs,
            floor_runs,
            floor="SDK ping, stdio",
            note="no target of its own; shows the transport",
        ),
    ]
