"""search_assets with filters and identifiers, on the whole shipped listings snapshot: a theme becomes real names,
each filter narrows, and mistakes get the argument's name and candidates."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from mcp import Client

from core.settings import Settings
from server.app import build_server
from tests.conftest import Call

pytestmark = pytest.mark.anyio

CHIP_MAKERS = {"NVDA", "AVGO", "MU", "AMD", "INTC", "TXN", "ADI", "MCHP", "ON"}


@pytest.fixture
async def call(whole_master: Settings) -> AsyncIterator[Call]:
    """A server on a copy of the store holding the whole shipped listings snapshot."""
    async with Client(build_server(whole_master)) as client:
        yield Call(client)


async def test_semiconductor_in_the_united_states_finds_the_chip_makers(call):
    data = await call.ok("search_assets", query="semiconductor", country="United States", limit=50)
    assert CHIP_MAKERS <= {a["symbol"] for a in data["assets"]}
    assert {a["country"] for a in data["assets"]} == {"United States"}
    assert data["filters"] == {"country": "United States"}
    # A page of 50 fully described rows stays under 12 KB (issue 13). 14.8 KB before names lost their share
    # boilerplate, 12,533 bytes before whole market caps lost their ".0", 12,433 before "valid" was left out.
    size = len(json.dumps(data, separators=(",", ":")))
    print(f"\nsearch_assets page of 50 semiconductor makers: {size:,} bytes")  # pytest -s shows it
    assert size < 12_000
    assert all(type(a["market_cap"]) is int for a in data["assets"])
    assert all("validation_status" not in a and "listing_status" not in a for a in data["assets"])


async def test_semiconductor_etfs(call):
    data = await call.ok("search_assets", query="semiconductor", asset_type="etf", limit=50)
    assert {"SMH", "SOXX", "PSI"} <= {a["symbol"] for a in data["assets"]}
    assert {a["asset_type"] for a in data["assets"]} == {"etf"}


async def test_apple_is_apple_first(call):
    assert (await call.ok("search_assets", query="apple"))["assets"][0]["symbol"] == "AAPL"


@pytest.mark.parametrize(("query", "kind"), [("US0378331005", "isin"), ("320193", "cik"), ("CIK0000320193", "cik")])
async def test_an_identifier_finds_its_security(call, query, kind):
    data = await call.ok("search_assets", query=query)
    assert data["matched_by"] == kind and data["assets"][0]["symbol"] == "AAPL"


async def test_filters_alone_rank_by_market_cap(call):
    data = await call.ok("search_assets", industry="semiconductor", country="united states", min_market_cap=1e11)
    caps = [a["market_cap"] for a in data["assets"]]
    assert caps == sorted(caps, reverse=True) and min(caps) >= 1e11
    assert {"NVDA", "AVGO", "AMD"} <= {a["symbol"] for a in data["assets"]}
    energy = await call.ok("search_assets", index="S&P 500", sector="energy", limit=100)
    assert {a["sector"] for a in energy["assets"]} == {"Energy"} and "CVX" in {a["symbol"] for a in energy["assets"]}
    assert energy["filters"] == {"sector": "Energy", "index": "S&P 500"}


async def test_delisted_only_when_asked(call):
    assert "TWTR" not in {a["symbol"] for a in (await call.ok("search_assets", query="twitter"))["assets"]}
    asked = await call.ok("search_assets", query="twitter", include_delisted=True)
    assert ("TWTR", "delisted") in {(a["symbol"], a.get("listing_status", "listed")) for a in asked["assets"]}


async def test_more_and_keep_actions_can_be_called_as_they_stand(call):
    envelope = await call("search_assets", industry="semiconductor", country="United States", limit=10)
    actions = {a["tool"]: a["arguments"] for a in envelope["next_actions"]}
    more = await call.ok("search_assets", **actions["search_assets"])
    assert {a["symbol"] for a in more["assets"]}.isdisjoint(a["symbol"] for a in envelope["data"]["assets"])
    created = await call.ok("create_universe", **actions["create_universe"])
    assert created["report"]["counts"]["added"] == 10


@pytest.mark.parametrize(
    ("arguments", "says", "candidate"),
    [
        ({"country": "Untied States"}, "country: no country 'Untied States'", "United States"),
        ({"exchange": "nasdq"}, "exchange: no exchange", "NASDAQ"),
        ({"sector": "Finanse", "country": "United States"}, "sector: no sector", "Financials"),
        ({"industry": "semicondutcor"}, "industry: no industry", None),
        ({"index": "S&P 5000"}, "index: no index", "S&P 500"),
        ({"min_market_cap": 1e10, "max_market_cap": 1e9}, "min_market_cap", None),
        ({}, "Give a query or at least one filter", None),
        ({"query": "%%%"}, "no letters or digits", None),
    ],
)
async def test_bad_filters_name_the_argument(call, arguments, says, candidate):
    error = (await call.error("search_assets", "invalid_argument", **arguments))["error"]
    assert says in error["message"], error
    if candidate:
        assert candidate in error["details"]["candidates"], error


async def test_a_negative_or_infinite_market_cap_is_refused(call):
    await call.error("search_assets", "invalid_argument", min_market_cap=-1)
    await call.error("search_assets", "invalid_argument", max_market_cap=float("inf"))
