"""Scenario 6: resident memory of the server with 100,000 assets and the security master in its store.

The product entry itself (``python -m server serve --transport stdio``, offline, on a copy of the 100,000-asset
store, with the shipped listings snapshot loaded into it at start-up as a default deployment does:
UNIVERSE_MCP_LISTINGS_LOAD=1, which the other scenarios turn off) is driven through every kind of read over the whole store (sector counts, searches of every selectivity,
asset lookups) and a 1,000-member universe; then its RSS is read from /proc. The peak (VmHWM) is reported too.
"""

from __future__ import annotations

import asyncio

from bench.common import Check, Config, Row, child_env, children_matching, fresh_dir, rss_mb, stdio_client
from bench.scenario_search import QUERIES, arguments, fresh_stems
from bench.store import copy_store, synthetic_symbol


async def run(cfg: Config, ctx: dict) -> list[Row]:
    work = fresh_dir(cfg.work_dir / "s6")
    data_dir = copy_store(ctx["store"], work / "data")
    env = child_env(data_dir, UNIVERSE_MCP_LISTINGS_LOAD="1")  # the security master too (issue 17)
    n = cfg.store_assets
    async with stdio_client(["-m", "server", "serve", "--transport", "stdio"], env, work / "server.log") as client:
        [pid] = children_matching("server serve")
        idle, _ = rss_mb(pid)
        stems = fresh_stems(seed=11)
        for _ in range(3):
            assert not (await client.call_tool("list_sectors", {})).is_error
        for _ in range(5):
            for q in QUERIES:
                assert not (await client.call_tool("search_assets", {**arguments(q, stems), "limit": 200})).is_error
        symbols = [synthetic_symbol(i, n) for i in range(1, n + 1, max(1, n // 1000))][:1000]
        created = await client.call_tool("create_universe", {"name": "Memory", "symbols": symbols, "validate": False})
        universe_id = created.structured_content["data"]["universe"]["id"]
        for _ in range(5):
            assert not (await client.call_tool("get_universe", {"universe_id": universe_id, "limit": 200})).is_error
        for symbol in ("AAPL", "MSFT", symbols[0], symbols[-1]):
            await client.call_tool("get_asset", {"symbol": symbol})
        await client.call_tool("validate_symbols", {"symbols": ["AAPL", "MSFT", "NVDA"]})
        await asyncio.sleep(0.5)
        rss, peak = rss_mb(pid)
    return [
        Row(
            scenario="6",
            metric=f"server RSS with {n:,} assets and the security master (after reads over all of them)",
            value=rss,
            unit="MB",
            target="<= 200 MB",
            checks=[Check("RSS MB", rss, "<=", 200.0)],
            note=f"peak {peak:.0f} MB; {idle:.0f} MB before the first call",
            extra={"rss_mb": round(rss, 1), "peak_rss_mb": round(peak, 1), "idle_rss_mb": round(idle, 1)},
        )
    ]
