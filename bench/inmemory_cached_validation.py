"""Cached validate_symbols (1 symbol) vs a trivial tool, both through the in-memory MCP client.

    .venv/bin/python bench/inmemory_cached_validation.py [--calls 2000]

The trivial tool is the SDK's floor: an `async def` returning a string on a bare MCPServer.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from mcp import Client
from mcp.server.mcpserver import MCPServer

from providers.catalog import CatalogProvider
from providers.fake import FakeProvider
from server.app import build_server
from server.settings import Settings


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def timed(client: Client, tool: str, args: dict, calls: int) -> list[float]:
    for _ in range(200):
        await client.call_tool(tool, args)
    out = []
    for _ in range(calls):
        t = time.perf_counter()
        await client.call_tool(tool, args)
        out.append((time.perf_counter() - t) * 1000)
    return out


async def main(calls: int, runs: int) -> None:
    floor = MCPServer("floor", log_level="WARNING")

    @floor.tool()
    async def ping() -> str:
        return "pong"

    data = Path(tempfile.mkdtemp())
    settings = Settings(data_dir=data, offline=True, log_level="WARNING", rate_limit_validate="")
    server = build_server(settings, providers=[FakeProvider.with_generated(10), CatalogProvider()])
    results: dict[str, list[tuple[float, float]]] = {"trivial tool (SDK floor)": [], "cached validate_symbols": []}
    async with Client(floor) as fc, Client(server) as sc:
        await sc.call_tool("validate_symbols", {"symbols": ["SYM00001"]})
        for _ in range(runs):
            a = await timed(fc, "ping", {}, calls)
            b = await timed(sc, "validate_symbols", {"symbols": ["SYM00001"]}, calls)
            results["trivial tool (SDK floor)"].append((statistics.median(a), percentile(a, 99)))
            results["cached validate_symbols"].append((statistics.median(b), percentile(b, 99)))
    floor_p50 = statistics.median(r[0] for r in results["trivial tool (SDK floor)"])
    print(f"{'scenario':28} {'p50 ms':>8} {'p99 ms':>8} {'x floor':>8}   (median of {runs} runs x {calls} calls)")
    for name, rows in results.items():
        p50 = statistics.median(r[0] for r in rows)
        p99 = statistics.median(r[1] for r in rows)
        print(f"{name:28} {p50:8.3f} {p99:8.3f} {p50 / floor_p50:8.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.runs))
