"""Another caller's latency while one caller imports a 1 MB CSV file, over streamable HTTP (issue 10, item 12).

    .venv/bin/python bench/csv_latency.py [--kind list|csv|wide] [--runs 2]

Starts `universe-mcp serve` (offline, per-owner limits off) on a free port. Client B calls list_universes in a loop
(20 ms apart) while client A imports the file: `list` (120,000 tickers one per line, 960 kB: over the row limit,
rejected), `csv` (a symbol column and a name column, 999 kB: rejected) or `wide` (9,900 rows with four columns,
accepted without validation). Prints the import's duration and B's slowest and median call during the run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx2  # noqa: E402
from mcp import Client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

from tests.support.servers import http_server  # noqa: E402


def make_file(kind: str) -> str:
    if kind == "list":
        return "".join(f"Z{i:06d}\n" for i in range(120_000))[:999_000]
    if kind == "csv":
        return ("symbol,name\n" + "".join(f"Z{i:06d},Company {i}\n" for i in range(60_000)))[:999_000]
    rows = "".join(f"Z{i:05d},Company number {i} incorporated,0.{i},{'x' * 60}\n" for i in range(9900))
    return ("symbol,name,weight,notes\n" + rows)[:999_000]


def connect(url: str) -> Client:
    return Client(streamable_http_client(url, http_client=httpx2.AsyncClient(timeout=60)))


async def run(kind: str) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="umcp-bench-csv-")) / "data"
    data_dir.mkdir()
    limits = {"UNIVERSE_MCP_RATE_LIMIT_READ": "", "UNIVERSE_MCP_RATE_LIMIT_WRITE": ""}
    with http_server(data_dir, **limits) as url:
        async with connect(url) as importer, connect(url) as other:
            created = await importer.call_tool("create_universe", {"name": "Target"})
            uid = created.structured_content["data"]["universe"]["id"]
            text = make_file(kind)
            for _ in range(5):  # warm-up
                await other.call_tool("list_universes", {})
            latencies: list[float] = []
            done = asyncio.Event()

            async def keep_calling() -> None:
                while not done.is_set():
                    started = time.perf_counter()
                    await other.call_tool("list_universes", {})
                    latencies.append(time.perf_counter() - started)
                    await asyncio.sleep(0.02)

            caller = asyncio.create_task(keep_calling())
            await asyncio.sleep(0.3)
            started = time.perf_counter()
            result = await importer.call_tool("import_universe_csv", {"universe_id": uid, "csv_text": text})
            elapsed = time.perf_counter() - started
            await asyncio.sleep(0.3)
            done.set()
            await caller
            envelope = result.structured_content
            outcome = "imported" if envelope["success"] else envelope["error"]["code"]
            print(
                f"  {kind} ({len(text):,} characters): import {elapsed:.2f} s ({outcome}); other caller during it: "
                f"slowest {max(latencies) * 1000:.0f} ms, median {statistics.median(latencies) * 1000:.0f} ms "
                f"({len(latencies)} calls)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=["list", "csv", "wide"], nargs="+", default=["list", "csv", "wide"])
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    for kind in args.kind:
        for _ in range(args.runs):
            asyncio.run(run(kind))


if __name__ == "__main__":
    main()
