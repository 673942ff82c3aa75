"""screen_assets as a model calls it, on the shipped listings snapshot: themes become real names, mistakes become
small structured errors that say where and what to write instead, and the next actions can be called as they stand."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from typing import Any

import pytest
from mcp import Client

from core.settings import Settings
from server.app import build_server
from tests.conftest import Call

pytestmark = pytest.mark.anyio


@pytest.fixture
async def call(whole_master: Settings) -> AsyncIterator[Call]:
    """A server on a copy of the store holding the whole shipped listings snapshot."""
    async with Client(build_server(whole_master)) as client:
        yield Call(client)


SEMICONDUCTORS_US = {
    "all": [
        {"field": "industry", "op": "contains", "value": "Semiconductor"},
        {"field": "country", "op": "eq", "value": "united states"},
    ]
}


async def test_us_semiconductor_companies_are_the_real_chip_makers_largest_first(call):
    data = await call.ok("screen_assets", rules=SEMICONDUCTORS_US, limit=50)
    symbols = [a["symbol"] for a in data["assets"]]
    assert {"NVDA", "AVGO", "MU", "AMD", "INTC", "TXN", "ADI", "MCHP", "ON"} <= set(symbols)
    assert data["total"] >= 29 and len(symbols) == 50
    caps = [a["market_cap"] for a in data["assets"] if a["market_cap"] is not None]
    assert caps == sorted(caps, reverse=True) and symbols[0] == "NVDA"
    for asset in data["assets"]:
        assert asset["country"] == "United States" and "semiconductor" in asset["industry"].lower()
        assert asset.get("listing_status", "listed") == "listed"
    # The rules come back as applied: the country in its stored spelling.
    assert data["rules"]["all"][1] == {"field": "country", "op": "eq", "value": "United States"}
    assert data["data_as_of"]


async def test_next_actions_page_on_and_offer_a_universe_that_can_be_created_as_it_stands(call):
    envelope = await call("screen_assets", rules=SEMICONDUCTORS_US, limit=25)
    actions = {a["tool"]: a["arguments"] for a in envelope["next_actions"]}
    assert len(json.dumps(envelope)) < 24_000
    more = await call.ok("screen_assets", **actions["screen_assets"])
    first = {a["symbol"] for a in envelope["data"]["assets"]}
    assert first.isdisjoint(a["symbol"] for a in more["assets"]) and len(more["assets"]) == 25
    created = await call.ok("create_universe", **actions["create_universe"])
    assert created["universe"]["name"].startswith("Screen: industry contains Semiconductor")
    assert created["report"]["counts"]["added"] == 25


async def test_index_and_sector_together(call):
    data = await call.ok(
        "screen_assets",
        rules={
            "all": [
                {"field": "index", "op": "eq", "value": "S&P 500"},
                {"field": "sector", "op": "eq", "value": "Energy"},
            ]
        },
        limit=100,
    )
    assert 15 <= data["total"] <= 40, data["total"]  # the S&P 500 holds about two dozen energy companies
    assert {"CVX", "COP", "EOG", "OXY"} <= {a["symbol"] for a in data["assets"]}
    assert {a["sector"] for a in data["assets"]} == {"Energy"}


def _cond(field: str, op: str, value: Any) -> dict[str, Any]:
    return {"field": field, "op": op, "value": value}


def _nested(depth: int) -> dict[str, Any]:
    rule: dict[str, Any] = _cond("sector", "eq", "Energy")
    for _ in range(depth):
        rule = {"all": [rule]}
    return rule


@pytest.mark.parametrize(
    ("rules", "path", "says", "candidate"),
    [
        ({}, "rules", "empty", None),
        (_cond("sectr", "eq", "Energy"), "rules.field", "unknown field 'sectr'", "sector"),
        (_cond("market_cap", "contains", "1"), "rules.op", "market_cap takes the ops", None),
        (_cond("market_cap", "gt", "big"), "rules.value", "numbers", None),
        (_cond("market_cap", "gt", -5), "rules.value", "≥ 0", None),
        (_cond("market_cap", "gt", True), "rules.value", "numbers", None),
        (_cond("market_cap", "between", [2e10, 1e9]), "rules.value", "reversed", None),
        (_cond("ipo_year", "eq", 2019.5), "rules.value", "whole years", None),
        (_cond("sector", "eq", "Finanse"), "rules.value", "no sector 'Finanse'", "Financials"),
        (_cond("country", "in", ["United States", "Untied Kingdom"]), "rules.value[1]", "no country", "United Kingdom"),
        (_cond("industry", "contains", "semicondutcor"), "rules.value", "contains 'semicondutcor'", None),
        (_cond("sector", "in", []), "rules.value", "non-empty list", None),
        (_cond("sector", "in", ["Energy"] * 501), "rules.value", "at most 500", None),
        ({"all": [_cond("sector", "eq", "Energy")] * 51}, "rules.all[50]", "at most 50 conditions", None),
        (_nested(9), "rules" + ".all[0]" * 8, "at most 8 levels", None),
        ({"all": []}, "rules.all", "non-empty list", None),
        ({"al": [_cond("sector", "eq", "Energy")]}, "rules", "not a rule", "all"),
        ({"all": [_cond("sector", "eq", "Energy")], "any": []}, "rules", "holds only", None),
        ({"field": "sector", "op": "eq"}, "rules.value", "missing", None),
        ({"not": "sector"}, "rules.not", "expected an object", None),
    ],
)
async def test_bad_rules_are_refused_with_the_place_and_what_to_write(call, rules, path, says, candidate):
    envelope = await call.error("screen_assets", "invalid_argument", rules=rules)
    error = envelope["error"]
    assert error["details"]["path"] == path and says in error["message"], error
    if candidate:
        assert candidate in error["details"]["candidates"], error
    assert len(json.dumps(envelope)) < 4_000  # a 500-value list is never echoed back


async def test_at_most_eight_levels_are_accepted(call):
    assert (await call.ok("screen_assets", rules=_nested(8), limit=1))["total"] > 0


async def test_an_unknown_sort_or_a_foreign_cursor_is_refused(call):
    envelope = await call.error(
        "screen_assets", "invalid_argument", rules=_cond("sector", "eq", "Energy"), sort_by="cap"
    )
    assert "market_cap" in envelope["error"]["details"]["candidates"]
    search = await call.ok("search_assets", query="bank", limit=1)
    await call.error(
        "screen_assets", "invalid_argument", rules=_cond("sector", "eq", "Energy"), cursor=search["next_cursor"]
    )


async def test_delisted_securities_only_when_the_rules_ask(call):
    listed = await call.ok("screen_assets", rules=_cond("symbol", "eq", "TWTR"))
    assert listed["total"] == 0
    asked = await call.ok(
        "screen_assets",
        rules={"all": [_cond("symbol", "eq", "TWTR"), _cond("listing_status", "eq", "delisted")]},
    )
    assert [(a["symbol"], a.get("listing_status", "listed")) for a in asked["assets"]] == [("TWTR", "delisted")]
    assert not any(
        a["tool"] == "create_universe" for a in (await call("screen_assets", rules=asked["rules"]))["next_actions"]
    )


async def test_nan_and_infinity_are_refused(call):
    for value in (math.inf, -math.inf):
        await call.error("screen_assets", "invalid_argument", rules=_cond("market_cap", "gt", value))


async def test_list_sectors_names_the_industries_that_screens_then_count_alike(call):
    sectors = {s["sector"]: s for s in (await call.ok("list_sectors"))["sectors"]}
    assert len(sectors) == 11
    tech = sectors["Information Technology"]
    assert "Semiconductors" in {i["industry"] for i in tech["industries"]}
    for sector in sectors.values():
        counts = [i["asset_count"] for i in sector["industries"]]
        assert counts == sorted(counts, reverse=True) and sum(counts) <= sector["asset_count"]
    top = tech["industries"][0]
    rules = {
        "all": [
            {"field": "sector", "op": "eq", "value": "Information Technology"},
            {"field": "industry", "op": "eq", "value": top["industry"]},
        ]
    }
    assert (await call.ok("screen_assets", rules=rules, limit=1))["total"] == top["asset_count"]
    whole = await call.ok("screen_assets", rules={"field": "sector", "op": "eq", "value": "Energy"}, limit=1)
    assert whole["total"] == sectors["Energy"]["asset_count"]
