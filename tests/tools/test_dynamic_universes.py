"""Dynamic universes as a model uses them, on the shipped listings snapshot: created from rules (the members are
exactly what screen_assets selects), redefined, pinned, frozen, rebalanced with a reason per change, and refused
clearly where a manual edit would be undone by the next rebalance.

Expected members come from screen_assets (the contract the issue names: create -> screen equality) or from the
store's own rows read here, never from the tool's answer under test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from mcp import Client

from core.settings import Settings
from server.app import build_server
from tests.conftest import Call

pytestmark = pytest.mark.anyio

BIG_TECH = {
    "all": [
        {"field": "sector", "op": "eq", "value": "Information Technology"},
        {"field": "market_cap", "op": "gte", "value": 2e11},
    ]
}


@pytest.fixture
async def call(whole_master: Settings) -> AsyncIterator[Call]:
    async with Client(build_server(whole_master)) as client:
        yield Call(client)


async def screened(call: Call, rules: dict[str, Any]) -> list[str]:
    """Every symbol screen_assets selects for ``rules``, largest first (all pages)."""
    symbols: list[str] = []
    args: dict[str, Any] = {"rules": rules, "limit": 200}
    while True:
        page = await call.ok("screen_assets", **args)
        symbols += [a["symbol"] for a in page["assets"]]
        if not page["next_cursor"]:
            return symbols
        args["cursor"] = page["next_cursor"]


async def members(call: Call, uid: str, *, as_of: str | None = None) -> list[str]:
    """Every member (at ``as_of``, when given), page by page."""
    symbols: list[str] = []
    args: dict[str, Any] = {"universe_id": uid, "limit": 200, **({"as_of": as_of} if as_of else {})}
    while True:
        page = await call.ok("get_universe", **args)
        symbols += [a["symbol"] for a in page["assets"]]
        if not page["next_cursor"]:
            return symbols
        args["cursor"] = page["next_cursor"]


async def test_created_from_rules_its_members_are_what_the_screen_selects_each_with_a_reason(call):
    expected = await screened(call, BIG_TECH)
    assert len(expected) >= 5  # the snapshot holds the large US chip and software makers
    created = await call.ok("create_universe", name="Big tech", rules=BIG_TECH, rebalance="monthly")
    uid = created["universe"]["id"]
    assert created["universe"]["kind"] == "dynamic"
    assert await members(call, uid) == expected  # same names, same order (largest first)
    first = created["report"]["results"][0]
    assert first["symbol"] == expected[0]
    assert "market_cap" in first["reason"] and ">= 2e11" in first["reason"]
    assert created["report"]["counts"] == {"added": len(expected)}
    detail = await call.ok("get_universe", universe_id=uid, include_assets=False)
    definition = detail["definition"]
    assert definition["rules"] == BIG_TECH and definition["rules_version"] == 1
    assert definition["rebalance"] == "monthly" and definition["next_rebalance_at"]
    assert definition["last_run"]["trigger"] == "create"
    assert definition["last_run"]["additions"] == len(expected)


async def test_a_dry_run_changes_nothing_and_applying_tighter_rules_removes_with_the_failing_condition(call):
    uid = (await call.ok("create_universe", name="Tech", rules=BIG_TECH))["universe"]["id"]
    before = await members(call, uid)
    tighter = {"all": [BIG_TECH["all"][0], {"field": "market_cap", "op": "gte", "value": 1e12}]}
    updated = await call.ok("update_universe", universe_id=uid, rules=tighter)
    assert updated["changed"] == ["rules"] and updated["rules_version"] == 2
    assert await members(call, uid) == before  # redefining alone moves no member

    dry = await call.ok("rebalance_universe", universe_id=uid)
    assert dry["dry_run"] is True and dry["run"] is None
    assert await members(call, uid) == before
    expected = await screened(call, tighter)
    leaving = [s for s in before if s not in expected]
    assert sorted(c["symbol"] for c in dry["removals"]) == sorted(leaving) and not dry["additions"]
    for change in dry["removals"]:
        assert change["reason"].startswith("market_cap ") and "< 1e12" in change["reason"]

    applied = await call.ok("rebalance_universe", universe_id=uid, dry_run=False)
    assert applied["run"]["removals"] == len(leaving) and applied["run"]["trigger"] == "manual"
    assert await members(call, uid) == expected

    # Looser again: the same names come back, each because it now matches.
    await call.ok("update_universe", universe_id=uid, rules=BIG_TECH)
    back = await call.ok("rebalance_universe", universe_id=uid, dry_run=False)
    assert sorted(c["symbol"] for c in back["additions"]) == sorted(leaving)
    assert all(">= 2e11" in c["reason"] for c in back["additions"])
    assert sorted(await members(call, uid)) == sorted(before)

    # Nothing to change: still recorded as a run.
    again = await call.ok("rebalance_universe", universe_id=uid, dry_run=False)
    assert again["run"] and again["addition_count"] == again["removal_count"] == 0


async def test_pins_hold_names_in_and_out_whatever_the_rules_say(call):
    uid = (await call.ok("create_universe", name="Pinned", rules=BIG_TECH))["universe"]["id"]
    before = await members(call, uid)
    out, keep = before[0], "KO"
    await call.ok("update_universe", universe_id=uid, include=[keep], exclude=[out])
    result = await call.ok("rebalance_universe", universe_id=uid, dry_run=False)
    assert [(c["symbol"], c["reason"]) for c in result["additions"]] == [(keep, "pinned (include)")]
    assert [(c["symbol"], c["reason"]) for c in result["removals"]] == [(out, "pinned out (exclude)")]
    now = await members(call, uid)
    assert keep in now and out not in now
    bad = await call.error("update_universe", "invalid_argument", universe_id=uid, include=["ZZZZQ"])
    assert "ZZZZQ" in bad["error"]["message"]
    both = await call.error("update_universe", "invalid_argument", universe_id=uid, include=["KO"], exclude=["KO"])
    assert "KO" in both["error"]["message"]


async def test_manual_edits_of_a_dynamic_universe_are_a_conflict_that_points_at_update_universe(call):
    uid = (await call.ok("create_universe", name="Rules only", rules=BIG_TECH))["universe"]["id"]
    before = await members(call, uid)
    for tool, args in (
        ("add_assets_to_universe", {"symbols": ["KO"], "validate": False}),
        ("remove_assets_from_universe", {"symbols": before[:1]}),
        ("import_universe_csv", {"csv_text": "symbol\nKO\n"}),
    ):
        refused = await call.error(tool, "conflict", universe_id=uid, **args)
        assert refused["error"]["hint"] and "update_universe" in refused["error"]["hint"]
        assert "update_universe" in {a["tool"] for a in refused["next_actions"]}
    assert await members(call, uid) == before


async def test_freezing_keeps_the_list_and_makes_it_static(call):
    uid = (await call.ok("create_universe", name="Freeze me", rules=BIG_TECH, rebalance="weekly"))["universe"]["id"]
    before = await members(call, uid)
    frozen = await call.ok("update_universe", universe_id=uid, kind="static")
    assert frozen["universe"]["kind"] == "static" and frozen["changed"] == ["kind"]
    assert await members(call, uid) == before
    detail = await call.ok("get_universe", universe_id=uid, include_assets=False)
    assert detail["definition"] is None
    await call.ok("add_assets_to_universe", universe_id=uid, symbols=["KO"], validate=False)
    refused = await call.error("rebalance_universe", "conflict", universe_id=uid)
    assert "static" in refused["error"]["message"]


async def test_bad_definitions_are_clear_errors_that_create_nothing(call):
    cases = [
        ({"rules": {"field": "sectr", "op": "eq", "value": "Energy"}}, "invalid_argument"),
        ({"rules": BIG_TECH, "rebalance": "hourly"}, "invalid_argument"),
        ({"rules": BIG_TECH, "symbols": ["AAPL"]}, "invalid_argument"),
        ({"symbols": ["AAPL"], "rebalance": "daily"}, "invalid_argument"),
    ]
    for i, (args, code) in enumerate(cases):
        await call.error("create_universe", code, name=f"Bad {i}", **args)
    assert (await call.ok("list_universes"))["universes"] == []
    schedule = await call.error("create_universe", "invalid_argument", name="x", rules=BIG_TECH, rebalance="hourly")
    assert "monthly" in schedule["error"]["details"]["candidates"]


async def test_rules_that_match_nothing_are_allowed_with_a_warning(call):
    nothing = {"all": [BIG_TECH["all"][0], {"field": "market_cap", "op": "gte", "value": 1e15}]}
    envelope = await call("create_universe", name="Empty", rules=nothing)
    assert envelope["success"] and envelope["data"]["universe"]["asset_count"] == 0
    assert "match no security" in envelope["message"]
    assert envelope["next_actions"][0]["tool"] == "update_universe"


async def test_rules_matching_more_than_the_member_quota_are_limit_exceeded(whole_master: Settings):
    settings = whole_master.model_copy(update={"max_members_per_universe": 50})
    async with Client(build_server(settings)) as client:
        call = Call(client)
        refused = await call.error(
            "create_universe",
            "limit_exceeded",
            name="All US",
            rules={"field": "country", "op": "eq", "value": "United States"},
        )
        assert "50" in refused["error"]["message"]
        assert (await call.ok("list_universes"))["universes"] == []


async def test_as_of_shows_the_members_before_and_after_each_rebalance(call):
    from datetime import UTC, datetime

    uid = (await call.ok("create_universe", name="Timeline", rules=BIG_TECH))["universe"]["id"]
    at_create = await members(call, uid)
    t1 = datetime.now(UTC).isoformat()
    tighter = {"all": [BIG_TECH["all"][0], {"field": "market_cap", "op": "gte", "value": 1e12}]}
    await call.ok("update_universe", universe_id=uid, rules=tighter)
    first = await call.ok("rebalance_universe", universe_id=uid, dry_run=False)
    after_first = await members(call, uid)
    t2 = datetime.now(UTC).isoformat()
    await call.ok("update_universe", universe_id=uid, exclude=[after_first[0]])
    second = await call.ok("rebalance_universe", universe_id=uid, dry_run=False)
    after_second = await members(call, uid)
    assert first["run"]["started_at"] > t1 and second["run"]["started_at"] > t2
    assert after_second == after_first[1:] and len(after_first) < len(at_create)

    async def as_of(at: str) -> list[str]:
        return sorted(await members(call, uid, as_of=at))

    assert await as_of(t1) == sorted(at_create)
    assert await as_of(first["run"]["started_at"]) == sorted(after_first)  # effective at the run's time
    assert await as_of(t2) == sorted(after_first)
    assert await as_of(datetime.now(UTC).isoformat()) == sorted(after_second)


async def test_a_screen_offers_a_dynamic_universe_of_its_rules_that_can_be_created_as_it_stands(call):
    rules = {"all": [{"field": "industry", "op": "contains", "value": "semiconductor"}, BIG_TECH["all"][1]]}
    envelope = await call("screen_assets", rules=rules, limit=5)
    offered = [a for a in envelope["next_actions"] if a["tool"] == "create_universe" and "rules" in a["arguments"]]
    assert len(offered) == 1
    created = await call.ok("create_universe", **offered[0]["arguments"])
    assert created["universe"]["kind"] == "dynamic"
    assert created["universe"]["asset_count"] == envelope["data"]["total"]
    assert sorted(await members(call, created["universe"]["id"])) == sorted(await screened(call, rules))


async def test_a_failed_scheduled_rebalance_is_shown_with_a_preview_to_run(call, whole_master: Settings):
    """What the scheduler keeps on the universe (tests/workers/test_rebalance_schedule.py) as get_universe shows it."""
    import uuid

    from sqlalchemy.orm import Session

    from storage.db import make_engine
    from storage.repositories import rebalancing as rebalancing_repo

    uid = (await call.ok("create_universe", name="Tech", rules=BIG_TECH, rebalance="weekly"))["universe"]["id"]
    assert (await call.ok("get_universe", universe_id=uid))["definition"]["last_failure"] is None
    failure = {
        "at": "2026-11-30T00:00:00+00:00",
        "trigger": "scheduled",
        "period": "2026-W49",
        "code": "limit_exceeded",
        "message": "The rules select 6,012 securities; a universe holds at most 5,000.",
    }
    engine = make_engine(whole_master.sqlalchemy_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: rebalancing_repo.note_rebalance_failure(Session(c), uuid.UUID(uid), failure))
    finally:
        await engine.dispose()

    envelope = await call("get_universe", universe_id=uid)
    shown = envelope["data"]["definition"]["last_failure"]
    assert {**shown, "at": shown["at"].replace("Z", "+00:00")} == failure
    preview = [a for a in envelope["next_actions"] if a["tool"] == "rebalance_universe"]
    assert preview and preview[0]["arguments"] == {"universe_id": uid, "dry_run": True}
    assert "scheduled rebalance of 2026-11-30 failed (limit_exceeded)" in preview[0]["reason"]
