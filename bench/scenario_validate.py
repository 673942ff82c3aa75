"""Scenario 1: cached `validate_symbols` with one symbol over stdio, against the SDK floor over stdio.

Both servers are subprocesses (``python -m bench.serve --transport stdio [--floor]``) driven by the official client
in this process; runs alternate floor / ours so that both see the same machine state. The server time of each
call (the envelope's ``metadata.elapsed_ms``, measured inside ``UniverseMCPServer.call_tool``) is kept too. The
same comparison in-process (``Client(server)``, no transport) is reported for reference.
"""

from __future__ import annotations

import statistics

from bench.common import (
    Config,
    Latency,
    Row,
    bench_settings,
    child_env,
    fresh_dir,
    interleaved,
    latency_row,
    percentile,
    stdio_client,
    timed_calls,
)

# Targets (issue 17): ratios to the SDK's trivial tool on the same transport, measured in the same run.
P50_MAX = 1.25
P99_MAX = 2.0
SYMBOL = "SYM00001"
ARGS = {"symbols": [SYMBOL]}


async def run_stdio(cfg: Config) -> list[Row]:
    work = fresh_dir(cfg.work_dir / "s1")
    env = child_env(work / "data")
    floor_runs: list[list[float]] = []
    our_runs: list[list[float]] = []
    server_runs: list[list[float]] = []
    async with (
        stdio_client(["-m", "bench.serve", "--transport", "stdio", "--floor"], env, work / "floor.log") as floor,
        stdio_client(["-m", "bench.serve", "--transport", "stdio"], env, work / "server.log") as ours,
    ):
        first = await ours.call_tool("validate_symbols", ARGS)  # a provider answer; every later call is cached
        assert not first.is_error, first.structured_content
        server_ms: list[float] = []

        async def ping() -> None:
            await floor.call_tool("ping", {})

        async def validate() -> None:
            result = await ours.call_tool("validate_symbols", ARGS)
            envelope = result.structured_content
            if result.is_error or not envelope["data"]["verdicts"][0]["cached"]:
                raise RuntimeError(f"validate_symbols was not a cache hit: {envelope}")
            server_ms.append(envelope["metadata"]["elapsed_ms"])

        await timed_calls(ping, 0, cfg.warmup)
        await timed_calls(validate, 0, cfg.warmup)
        for _ in range(cfg.runs):
            server_ms.clear()
            got = await interleaved({"floor": ping, "ours": validate}, cfg.calls)
            floor_runs.append(got["floor"])
            our_runs.append(got["ours"])
            server_runs.append(list(server_ms))
    return [
        latency_row(
            "1",
            "cached validate_symbols, stdio",
            our_runs,
            floor_runs,
            floor="SDK ping, stdio",
            p50_max=P50_MAX,
            p99_max=P99_MAX,
            extra={"server_ms": Latency.of(server_runs).as_dict()},
        )
    ]


async def run_in_memory(cfg: Config) -> list[Row]:
    """The same comparison without a transport (former bench/inmemory_cached_validation.py)."""
    from mcp import Client

    from bench.serve import floor_server
    from providers.catalog import CatalogProvider
    from providers.fake import FakeProvider
    from server.app import build_server

    data = fresh_dir(cfg.work_dir / "s1-in-memory")
    server = build_server(bench_settings(data), providers=[FakeProvider.with_generated(10), CatalogProvider()])
    floor_runs, our_runs = [], []
    async with Client(floor_server()) as fc, Client(server) as sc:
        await sc.call_tool("validate_symbols", ARGS)

        async def ping() -> None:
            await fc.call_tool("ping", {})

        async def validate() -> None:
            await sc.call_tool("validate_symbols", ARGS)

        await timed_calls(ping, 0, cfg.warmup)
        await timed_calls(validate, 0, cfg.warmup)
        for _ in range(cfg.runs):
            got = await interleaved({"floor": ping, "ours": validate}, cfg.calls // 2)  # a reference: half the calls
            floor_runs.append(got["floor"])
            our_runs.append(got["ours"])
    return [
        latency_row(
            "1",
            "cached validate_symbols, in-memory (reference)",
            our_runs,
            floor_runs,
            floor="SDK ping, in-memory",
            note="no target; shows the transport's share",
        )
    ]


async def run(cfg: Config, _ctx: dict) -> list[Row]:
    return [*await run_stdio(cfg), *await run_in_memory(cfg)]


def summary(values: list[float]) -> str:  # pragma: no cover - debugging aid
    return f"p50 {statistics.median(values):.3f} p99 {percentile(values, 99):.3f}"
