"""A dynamic universe's history and turnover after real rebalances (rebalance_universe), on the shipped listings.

The worked example: created from rules (big IT companies, market cap >= 2e11), then tightened to >= 1e12 and
rebalanced, then the largest remaining name pinned out and rebalanced again. Expected figures come from the members
read with get_universe between the steps, never from the answers under test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from mcp import Client

from core.settings import Settings
from server.app import build_server
from tests.conftest import Call
from tests.services.test_history import all_pages
from tests.tools.test_dynamic_universes import BIG_TECH, members

pytestmark = pytest.mark.anyio


@pytest.fixture
async def call(whole_master: Settings) -> AsyncIterator[Call]:
    async with Client(build_server(whole_master)) as client:
        yield Call(client)


async def test_rebalances_show_in_the_history_and_the_turnover(call):
    created = await call.ok("create_universe", name="Timeline", rules=BIG_TECH)
    uid = created["universe"]["id"]
    at_create = await members(call, uid)
    tighter = {"all": [BIG_TECH["all"][0], {"field": "market_cap", "op": "gte", "value": 1e12}]}
    await call.ok("update_universe", universe_id=uid, rules=tighter)
    first = (await call.ok("rebalance_universe", universe_id=uid, dry_run=False))["run"]
    after_first = await members(call, uid)
    await call.ok("update_universe", universe_id=uid, exclude=[after_first[0]])
    second = (await call.ok("rebalance_universe", universe_id=uid, dry_run=False))["run"]
    after_second = await members(call, uid)
    left_first = sorted(set(at_create) - set(after_first))
    assert left_first and after_second == after_first[1:]

    events, runs, pages = await all_pages(call, uid, limit=7)
    # Newest first: the pinned-out name, the first rebalance's removals, the creation's additions.
    assert [(e["action"], e["symbol"]) for e in events[:1]] == [("removed", after_first[0])]
    assert sorted(e["symbol"] for e in events[1 : 1 + len(left_first)]) == left_first
    assert sorted(e["symbol"] for e in events[1 + len(left_first) :]) == sorted(at_create)
    assert {e["action"] for e in events[1 + len(left_first) :]} == {"added"}
    assert events[0]["run_id"] == second["id"]
    assert {e["run_id"] for e in events[1 : 1 + len(left_first)]} == {first["id"]}
    # Every run once, newest first: the second, the first, and the creation's.
    assert [r["id"] for r in runs] == [second["id"], first["id"], runs[-1]["id"]]
    assert [r["trigger"] for r in runs] == ["manual", "manual", "create"]
    assert runs[-1]["additions"] == len(at_create)
    # Every change of definition once, newest first, beside the runs: the pin, the tighter rules, the creation.
    versions = [d for p in pages for d in p["definitions"]]
    assert [(d["version"], d["change"]) for d in versions] == [
        (3, "changed exclude"),
        (2, "changed rules"),
        (1, "created"),
    ]
    assert versions[0]["changed_at"] < second["started_at"] and versions[1]["changed_at"] < first["started_at"]
    # A run is listed with the first page that reaches its time: the creation's with the first creation events.
    created_at = events[-1]["effective_at"]
    reaching = next(p for p in pages if p["events"][-1]["effective_at"] == created_at)
    assert [r["trigger"] for r in reaching["rebalances"]] == ["create"]
    assert (runs[1]["removals"], runs[1]["size_before"], runs[1]["size_after"]) == (
        len(left_first),
        len(at_create),
        len(after_first),
    )

    # From the creation: the first members are not additions; the creation's run is at the window's start.
    report = await call.ok("get_universe_turnover", universe_id=uid)
    removals = len(left_first) + 1
    average = (len(at_create) + len(after_second)) / 2
    assert (report["additions"], report["removals"]) == (0, removals)
    assert (report["size_start"], report["size_end"]) == (len(at_create), len(after_second))
    assert report["one_way_turnover"] == 0.0  # nothing replaced a name that left
    assert report["turnover"] == round(removals / (2 * average), 6)
    assert sorted(c["symbol"] for c in report["removed"]) == sorted([*left_first, after_first[0]])
    assert report["added"] == []
    assert [r["id"] for r in report["rebalances"]] == [second["id"], first["id"]]


async def test_history_names_the_ticker_a_security_traded_under_at_each_change(call):
    """FB became META on 2022-06-09 and is an ETF's ticker today (the shipped master's ticker history). A dated file
    that says FB in 2021 means Meta, not today's ETF: the change is Meta's, its history shows FB beside today's
    ticker, a change after the rename shows META alone, and a security never renamed its ticker alone."""
    dated = "symbol,date,action\nFB,2021-01-04,added\nAAPL,2021-01-04,added\nMETA,2023-03-01,removed\n"
    imported = await call.ok("import_universe_csv", csv_text=dated, name="Renamed in between")
    assert imported["backdated"] == 3, imported["rows"]
    fb = next(r for r in imported["rows"] if r["input"] == "FB")
    assert fb["reason"] == "FB on 2021-01-04 was the ticker of today's META"
    history = await call.ok("get_universe_history", universe_id=imported["universe"]["id"])
    events = {(e["effective_at"][:10], e["symbol"], e["action"]): e.get("symbol_then") for e in history["events"]}
    assert events == {
        ("2023-03-01", "META", "removed"): None,
        ("2021-01-04", "META", "added"): "FB",
        ("2021-01-04", "AAPL", "added"): None,
    }
