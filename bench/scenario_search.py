"""Scenario 2: `search_assets` over a store of 100,000 assets (plus the offline catalog).

Server time is the target (p99 <= 5 ms): the envelope's ``metadata.elapsed_ms``, measured inside the server process by
``UniverseMCPServer.call_tool`` around the whole tool call. The same calls' round trips over stdio are reported
against the stdio floor, and the service call alone (``AssetService.search`` in one unit of work) in-process.

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
    Latency,
    Row,
    bench_settings,
    child_env,
    fresh_dir,
    interleaved,
    percentile,
    stdio_client,
    timed_calls,
)
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


async def run(cfg: Config, ctx: dict) -> list[Row]:
    work = fresh_dir(cfg.work_dir / "s2")
    data_dir = copy_store(ctx["store"], work / "data")
    env = child_env(data_dir)
    floor_runs: list[list[float]] = []
    our_runs: list[list[float]] = []
    server_runs: list[list[float]] = []
    per_query: dict[str, list[float]] = {label(q): [] for q in QUERIES}
    async with (
        stdio_client(["-m", "bench.serve", "--transport", "stdio", "--floor"], env, work / "floor.log") as floor,
        stdio_client(["-m", "bench.serve", "--transport", "stdio"], env, work / "server.log") as ours,
    ):
        position = 0
        server_ms: list[float] = []
        stems = fresh_stems()

        async def ping() -> None:
            await floor.call_tool("ping", {})

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
        for q in per_query.values():
            q.clear()
        for _ in range(cfg.runs):
            server_ms.clear()
            got = await interleaved({"floor": ping, "ours": search}, cfg.calls)
            floor_runs.append(got["floor"])
            our_runs.append(got["ours"])
            server_runs.append(list(server_ms))
    service = await service_times(cfg, data_dir)

    server = Latency.of(server_runs)
    floor, ours = Latency.of(floor_runs), Latency.of(our_runs)
    queries = {
        name: {
            "server_p50_ms": round(statistics.median(v), 3),
            "server_p99_ms": round(percentile(v, 99), 3),
            "service_p50_ms": round(statistics.median(service[name]), 3),
            "service_p99_ms": round(percentile(service[name], 99), 3),
        }
        for name, v in per_query.items()
    }
    slowest = max(queries, key=lambda name: queries[name]["server_p99_ms"])
    all_service = [x for v in service.values() for x in v]
    return [
        Row(
            scenario="2",
            metric=f"search_assets over {cfg.store_assets:,} assets, server time",
            p50_ms=server.p50,
            p99_ms=server.p99,
            target="p99 <= 5 ms server time",
            met=server.p99 <= 5.0,
            note=f"slowest query: {slowest!r} (p99 {queries[slowest]['server_p99_ms']:.2f} ms)",
            extra={
                "server_ms": server.as_dict(),
                "queries": queries,
                "service_only": {
                    "p50_ms": round(statistics.median(all_service), 3),
                    "p99_ms": round(percentile(all_service, 99), 3),
                },
            },
        ),
        Row(
            scenario="2",
            metric="search_assets, stdio round trip",
            p50_ms=ours.p50,
            p99_ms=ours.p99,
            floor_p50_ms=floor.p50,
            floor_p99_ms=floor.p99,
            note="no target of its own; shows the transport",
            extra={"floor": floor.as_dict(), "ours": ours.as_dict()},
        ),
    ]
