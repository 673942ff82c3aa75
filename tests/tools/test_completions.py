"""Completions of the security master's vocabulary (issue 13): the find_securities prompt's sector, industry and
country, and rule fields and ops, spelled as the store holds them, so that what a client completes is what
screen_assets and search_assets accept."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from mcp import Client
from mcp.types import PromptReference

from core.settings import Settings
from server.app import build_server

pytestmark = pytest.mark.anyio

PROMPT = PromptReference(type="ref/prompt", name="find_securities")


@pytest.fixture
async def client(whole_master: Settings) -> AsyncIterator[Client]:
    async with Client(build_server(whole_master)) as c:
        yield c


async def values(client: Client, name: str, typed: str, context: dict[str, str] | None = None) -> list[str]:
    result = await client.complete(PROMPT, {"name": name, "value": typed}, context_arguments=context)
    return result.completion.values


async def test_the_prompt_completes_sector_industry_and_country_as_the_store_spells_them(client: Client):
    prompts = {p.name for p in (await client.list_prompts()).prompts}
    assert "find_securities" in prompts
    assert await values(client, "sector", "inf") == ["Information Technology"]
    industries = await values(client, "industry", "semicond")
    assert "Semiconductors" in industries and all("semicond" in i.lower() for i in industries)
    countries = await values(client, "country", "united")
    assert "United States" in countries and all(c.lower().startswith("united") for c in countries)
    # Starting with the text first, then containing it.
    assert (await values(client, "exchange", "nyse"))[0].startswith("NYSE")
    assert "S&P 500" in await values(client, "index", "s&p")


async def test_every_completed_value_is_accepted_by_screen_assets(client: Client):
    for name, typed in (("industry", "semicond"), ("country", "united"), ("exchange", "nyse"), ("index", "s&p")):
        for value in (await values(client, name, typed))[:3]:
            rule = {"field": name, "op": "eq", "value": value}
            result = await client.call_tool("screen_assets", {"rules": rule, "limit": 1})
            assert not result.is_error, (rule, result.structured_content)


async def test_rule_fields_and_each_fields_ops(client: Client):
    assert await values(client, "field", "mar") == ["market_cap"]
    cap_ops = await values(client, "op", "", {"field": "market_cap"})
    assert "between" in cap_ops and "contains" not in cap_ops
    name_ops = await values(client, "op", "", {"field": "name"})
    assert "contains" in name_ops and "between" not in name_ops
    assert await values(client, "theme", "x") == []  # no vocabulary: nothing offered
