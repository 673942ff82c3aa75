"""The path issue 13 promises a model, end to end over stdio and offline: the theme "US semiconductor companies"
becomes a validated universe of at least 20 real names in at most four tool calls, each call made only from what
the previous answers said (their next actions), never from tickers the test knows."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from tests.support.servers import ROOT, server_env

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_a_theme_becomes_a_validated_universe_in_three_calls(master_store: Path, data_dir: Path):
    shutil.copyfile(master_store, data_dir / "universe.db")
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "server", "serve", "--transport", "stdio"],
        cwd=str(ROOT),
        env=server_env(data_dir, UNIVERSE_MCP_LISTINGS_LOAD="1"),  # the snapshot is there already: not loaded again
    )
    calls = 0
    async with Client(params) as client:

        async def call(tool: str, arguments: dict) -> dict:
            nonlocal calls
            calls += 1
            result = await client.call_tool(tool, arguments)
            assert not result.is_error, result.structured_content
            return result.structured_content

        found = await call(
            "search_assets", {"query": "semiconductor", "country": "United States", "asset_type": "stock", "limit": 30}
        )
        keep = next(a for a in found["next_actions"] if a["tool"] == "create_universe")
        created = await call(keep["tool"], keep["arguments"])
        universe_id = created["data"]["universe"]["id"]
        members = (await call("get_universe", {"universe_id": universe_id, "limit": 50}))["data"]["assets"]

    assert calls <= 4
    assert len(members) >= 20 and {m["validation_status"] for m in members} == {"valid"}
    assert {"NVDA", "AMD", "INTC"} <= {m["symbol"] for m in members}  # the real chip makers, not invented names
    assert all(any("semiconductor" in (m.get(k) or "").lower() for k in ("industry", "name")) for m in members)
