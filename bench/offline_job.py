"""Issue 10 item 18: how long an offline bulk-validation job takes when every symbol is known, and when two are not
(those are recorded pending at once instead of retried). Run: .venv/bin/python -m bench.offline_job"""

import asyncio
import tempfile
import time
from pathlib import Path

from mcp import Client

from providers.catalog import CatalogProvider
from server.app import build_server
from server.settings import Settings


async def main():
    known = sorted(p.symbol for p in CatalogProvider().entries() if p.symbol.isalpha())
    with tempfile.TemporaryDirectory() as d:
        settings = Settings(data_dir=Path(d), offline=True, log_level="WARNING")
        async with Client(build_server(settings)) as c:
            for label, symbols in (
                ("490 known + 2 unknown", known[:490] + ["QQZZX", "QQZZY"]),
                ("500 known", known[500:1000]),
            ):
                t = time.perf_counter()
                r = await c.call_tool("start_bulk_validation", {"symbols": symbols, "wait": True})
                dt = time.perf_counter() - t
                data = r.structured_content["data"]
                print(label, f"{dt:.2f} s", data.get("status"), data.get("counts"))


asyncio.run(main())
