"""The universes toolset through the in-memory MCP client: every tool, happy paths and idempotence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

pytestmark = pytest.mark.anyio


async def test_create_universe_normalises_symbols_and_reports_each(call):
    data = await call.ok(
        "create_universe",
        name="  AI   leaders ",
        description="Big AI names",
        symbols=[" zzqa", "ZZQB", "zzqb", "zz.b"],
        validate=False,
    )
    universe = data["universe"]
    assert universe["name"] == "AI leaders"
    assert universe["description"] == "Big AI names"
    assert universe["asset_count"] == 3
    assert [(r["symbol"], r["outcome"], r["validation_status"]) for r in data["report"]["results"]] == [
        ("ZZQA", "added", "unknown"),
        ("ZZQB", "added", "unknown"),
        ("ZZ.B", "added", "unknown"),
    ]
    assert data["report"]["counts"] == {"added": 3}

    detail = await call.ok("get_universe", universe_id=universe["id"])
    assert [(a["symbol"], a["position"]) for a in detail["assets"]] == [("ZZQA", 0), ("ZZQB", 1), ("ZZ.B", 2)]
    assert detail["counts_by_status"] == {"unknown": 3}


async def test_create_without_symbols_suggests_adding_some(call):
    envelope = await call("create_universe", name="Empty")
    assert envelope["data"]["universe"]["asset_count"] == 0
    # Never changed since it was created: one time for both.
    assert envelope["data"]["universe"]["updated_at"] == envelope["data"]["universe"]["created_at"]
    assert envelope["next_actions"][0] == {
        "tool": "search_assets",
        "arguments": {"query": "Empty"},
        "reason": "find real tickers for this universe, then add them with add_assets_to_universe",
    }
    assert envelope["metadata"]["elapsed_ms"] > 0  # measured, not a placeholder (a call takes more than 1 us)


async def test_add_and_remove_are_idempotent(call):
    uid = (await call.ok("create_universe", name="Core", symbols=["AAPL"], validate=False))["universe"]["id"]
    first = await call.ok("add_assets_to_universe", universe_id=uid, symbols=["aapl", "MSFT", "GOOGL"], validate=False)
    assert {r["symbol"]: r["outcome"] for r in first["report"]["results"]} == {
        "AAPL": "already_present",
        "MSFT": "added",
        "GOOGL": "added",
    }
    again = await call.ok("add_assets_to_universe", universe_id=uid, symbols=["MSFT", "GOOGL"], validate=False)
    assert again["report"]["counts"] == {"already_present": 2}
    assert again["universe"]["asset_count"] == 3

    removed = await call.ok("remove_assets_from_universe", universe_id=uid, symbols=["msft", "TSLA"])
    assert {r["symbol"]: r["outcome"] for r in removed["report"]["results"]} == {
        "MSFT": "removed",
        "TSLA": "not_present",
    }
    assert removed["universe"]["asset_count"] == 2
    twice = await call.ok("remove_assets_from_universe", universe_id=uid, symbols=["MSFT"])
    assert twice["report"]["counts"] == {"not_present": 1}

    # Re-adding after removal appends at the end: order is kept as position.
    await call.ok("add_assets_to_universe", universe_id=uid, symbols=["MSFT"], validate=False)
    detail = await call.ok("get_universe", universe_id=uid)
    assert [a["symbol"] for a in detail["assets"]] == ["AAPL", "GOOGL", "MSFT"]


async def test_universes_sharing_a_symbol_keep_their_memberships_apart(call):
    # One asset, many universes: being a member of one says nothing about another, and a removal is local.
    first = (await call.ok("create_universe", name="First", symbols=["AAPL", "MSFT"], validate=False))["universe"]["id"]
    second = (await call.ok("create_universe", name="Second", validate=False))["universe"]["id"]
    added = await call.ok("add_assets_to_universe", universe_id=second, symbols=["AAPL"], validate=False)
    assert added["report"]["counts"] == {"added": 1} and added["universe"]["asset_count"] == 1
    removed = await call.ok("remove_assets_from_universe", universe_id=second, symbols=["AAPL", "MSFT"])
    assert {r["symbol"]: r["outcome"] for r in removed["report"]["results"]} == {
        "AAPL": "removed",
        "MSFT": "not_present",
    }
    assert [a["symbol"] for a in (await call.ok("get_universe", universe_id=first))["assets"]] == ["AAPL", "MSFT"]
    assert (await call.ok("get_universe", universe_id=second))["assets"] == []

    # Emptied by removals (members gone, history kept), a universe takes members again.
    again = await call.ok("add_assets_to_universe", universe_id=second, symbols=["MSFT", "AAPL"], validate=False)
    assert again["report"]["counts"] == {"added": 2} and again["universe"]["asset_count"] == 2
    assert [a["symbol"] for a in (await call.ok("get_universe", universe_id=second))["assets"]] == ["MSFT", "AAPL"]


async def test_list_universes_paginates_with_cursor_and_filters_by_name(call):
    for i in range(7):
        await call.ok("create_universe", name=f"Universe {i:02d}")
    await call.ok("create_universe", name="Dividend payers")
    seen = []
    cursor = None
    while True:
        args = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        envelope = await call("list_universes", **args)
        page = envelope["data"]
        seen += [u["name"] for u in page["universes"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
        assert envelope["next_actions"][0] == {
            "tool": "list_universes",
            "arguments": {"cursor": cursor},
            "reason": "get the next page",
        }
    assert seen == ["Dividend payers"] + [f"Universe {i:02d}" for i in range(7)]
    filtered = await call.ok("list_universes", name_contains="DIVID")
    assert [u["name"] for u in filtered["universes"]] == ["Dividend payers"]
    assert (await call.ok("list_universes", name_contains="%"))["universes"] == []


async def test_get_universe_paginates_assets(call):
    symbols = [f"S{i:03d}" for i in range(25)]
    uid = (await call.ok("create_universe", name="Big", symbols=symbols, validate=False))["universe"]["id"]
    got, cursor = [], None
    while True:
        page = await call.ok("get_universe", universe_id=uid, limit=10, **({"cursor": cursor} if cursor else {}))
        got += [a["symbol"] for a in page["assets"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert got == symbols
    bare = await call.ok("get_universe", universe_id=uid, include_assets=False)
    assert bare["assets"] is None and bare["universe"]["asset_count"] == 25


async def test_update_universe_renames_and_reports_no_op(call):
    uid = (await call.ok("create_universe", name="Old"))["universe"]["id"]
    data = await call.ok("update_universe", universe_id=uid, name="New", description="d")
    assert data["changed"] == ["name", "description"] and data["universe"]["name"] == "New"
    same = await call("update_universe", universe_id=uid, name="New")
    assert same["data"]["changed"] == [] and "nothing changed" in same["message"]
    # Changing only the case of its own name is allowed.
    assert (await call.ok("update_universe", universe_id=uid, name="NEW"))["changed"] == ["name"]
    cleared = await call.ok("update_universe", universe_id=uid, description="")
    assert cleared["universe"]["description"] is None


async def test_delete_universe_then_it_is_gone(call):
    uid = (await call.ok("create_universe", name="Temp", symbols=["AAPL"], validate=False))["universe"]["id"]
    deleted = await call.ok("delete_universe", universe_id=uid)
    assert (deleted["deleted"]["name"], deleted["deleted"]["asset_count"]) == ("Temp", 1)
    await call.error("get_universe", "not_found", universe_id=uid)
    await call.error("delete_universe", "not_found", universe_id=uid)
    # The name is free again.
    await call.ok("create_universe", name="Temp")


async def test_turnover_and_point_in_time_membership_from_events(call):
    uid = (await call.ok("create_universe", name="T", symbols=["A1", "B1", "C1", "D1"], validate=False))["universe"][
        "id"
    ]
    after_create = datetime.now(UTC)
    await call.ok("remove_assets_from_universe", universe_id=uid, symbols=["A1"])
    await call.ok("add_assets_to_universe", universe_id=uid, symbols=["E1", "F1"], validate=False)

    window = await call.ok("get_universe_turnover", universe_id=uid, since=after_create.isoformat())
    assert (window["additions"], window["removals"], window["size_start"], window["size_end"]) == (2, 1, 4, 5)
    assert window["average_size"] == 4.5
    assert window["turnover"] == pytest.approx(3 / 9, rel=1e-5)
    assert window["addition_rate"] == pytest.approx(2 / 4.5, rel=1e-5)

    whole = await call.ok("get_universe_turnover", universe_id=uid)  # from the creation: A1-D1 are not additions
    assert (whole["additions"], whole["removals"], whole["size_start"], whole["size_end"]) == (2, 1, 4, 5)
    assert whole["one_way_turnover"] == pytest.approx(1 / 4.5, rel=1e-5)
    assert [c["symbol"] for c in whole["removed"]] == ["A1"]
    assert sorted(c["symbol"] for c in whole["added"]) == ["E1", "F1"]

    then = await call.ok("get_universe", universe_id=uid, as_of=after_create.isoformat())
    assert [a["symbol"] for a in then["assets"]] == ["A1", "B1", "C1", "D1"]
    assert then["universe"]["asset_count"] == 4 and then["as_of"]
    before = await call.ok("get_universe", universe_id=uid, as_of=(after_create - timedelta(days=1)).isoformat())
    assert before["assets"] == []

    empty = (await call.ok("create_universe", name="Nothing"))["universe"]["id"]
    assert (await call.ok("get_universe_turnover", universe_id=empty))["turnover"] is None


async def test_turnover_rejects_inverted_window_and_naive_times(call):
    uid = (await call.ok("create_universe", name="W"))["universe"]["id"]
    now = datetime.now(UTC)
    await call.error(
        "get_universe_turnover",
        "invalid_argument",
        universe_id=uid,
        since=now.isoformat(),
        until=(now - timedelta(hours=1)).isoformat(),
    )
    await call.error("get_universe_turnover", "invalid_argument", universe_id=uid, since="2026-01-01T00:00:00")


async def test_universe_resource_and_prompts_and_completions(client, call):
    from mcp.types import ResourceTemplateReference

    uid = (await call.ok("create_universe", name="AI leaders", symbols=["NVDA"], validate=False))["universe"]["id"]
    resource = await client.read_resource(f"universe://{uid}")
    assert '"symbol":"NVDA"' in resource.contents[0].text

    ref = ResourceTemplateReference(type="ref/resource", uri="universe://{universe_id}")
    by_prefix = await client.complete(ref, {"name": "universe_id", "value": uid[:4]})
    assert uid in by_prefix.completion.values
    by_name = await client.complete(ref, {"name": "universe_id", "value": "ai le"})
    assert by_name.completion.values == [uid]

    prompts = {p.name for p in (await client.list_prompts()).prompts}
    assert {"build_universe", "review_universe"} <= prompts
    prompt = await client.get_prompt("review_universe", {"universe_id": uid})
    assert uid in prompt.messages[0].content.text


async def test_a_rename_moves_the_name_and_stamps_the_change(call):
    created = (await call.ok("create_universe", name="Old name", description="first", symbols=["AAPL"]))["universe"]
    uid = created["id"]
    renamed = await call.ok("update_universe", universe_id=uid, name="New name", description="second")
    assert renamed["universe"]["description"] == "second" and renamed["universe"]["asset_count"] == 1
    assert renamed["universe"]["updated_at"] > created["updated_at"]
    assert (await call.ok("get_universe", universe_id=uid))["universe"]["description"] == "second"
    # The old name is free for another universe and the new one is taken, whatever its case.
    await call.ok("create_universe", name="old NAME")
    taken = await call.error("create_universe", "already_exists", name="NEW name")
    assert taken["error"]["details"]["existing_id"] == uid
    # Names sort by their normalised form: the renamed universe lists under its new name.
    listed = await call.ok("list_universes", name_contains="name")
    assert [u["name"] for u in listed["universes"]] == ["New name", "old NAME"]
    # A call that changes nothing leaves the change time alone.
    same = await call.ok("update_universe", universe_id=uid, name="New name", description="second")
    assert same["changed"] == [] and same["universe"]["updated_at"] == renamed["universe"]["updated_at"]


async def test_pages_that_end_exactly_at_the_limit_offer_no_next_page(call):
    # Each list fetches one row more than the page to know whether there is a next page: a last page exactly as
    # long as the limit must not point at an empty one.
    for i in range(4):
        await call.ok("create_universe", name=f"Exact {i}")
    first = await call.ok("list_universes", limit=2)
    second = await call.ok("list_universes", limit=2, cursor=first["next_cursor"])
    assert [u["name"] for u in first["universes"] + second["universes"]] == [f"Exact {i}" for i in range(4)]
    assert second["next_cursor"] is None
    assert (await call.ok("list_universes", limit=4))["next_cursor"] is None

    symbols = ["AAPL", "AMZN", "MSFT", "NVDA"]  # in symbol order: as_of orders members added together by symbol
    uid = (await call.ok("create_universe", name="Four", symbols=symbols, validate=False))["universe"]["id"]
    page = await call.ok("get_universe", universe_id=uid, limit=2)
    last = await call.ok("get_universe", universe_id=uid, limit=2, cursor=page["next_cursor"])
    assert [a["symbol"] for a in page["assets"] + last["assets"]] == symbols and last["next_cursor"] is None
    assert (await call.ok("get_universe", universe_id=uid, limit=4))["next_cursor"] is None

    at = datetime.now(UTC).isoformat()
    then = await call.ok("get_universe", universe_id=uid, as_of=at, limit=2)
    then_last = await call.ok("get_universe", universe_id=uid, as_of=at, limit=2, cursor=then["next_cursor"])
    assert [a["symbol"] for a in then["assets"] + then_last["assets"]] == symbols
    assert then_last["next_cursor"] is None
    assert (await call.ok("get_universe", universe_id=uid, as_of=at, limit=4))["next_cursor"] is None


async def test_as_of_without_assets_still_counts_the_members_then(call):
    uid = (await call.ok("create_universe", name="Counted", symbols=["AAPL", "ZZQA", "ZZQB"], validate=False))[
        "universe"
    ]["id"]
    at = datetime.now(UTC)
    await call.ok("remove_assets_from_universe", universe_id=uid, symbols=["ZZQA"])
    bare = await call.ok("get_universe", universe_id=uid, as_of=at.isoformat(), include_assets=False)
    assert bare["assets"] is None and bare["next_cursor"] is None
    assert bare["universe"]["asset_count"] == 3 and bare["counts_by_status"] == {"valid": 1, "unknown": 2}
    assert datetime.fromisoformat(bare["as_of"]) == at
    now = await call.ok("get_universe", universe_id=uid, include_assets=False)
    assert now["universe"]["asset_count"] == 2 and now["counts_by_status"] == {"valid": 1, "unknown": 1}
    assert now["as_of"] is None and now["delisted_members"] == []  # none of them is delisted


async def test_name_filter_collapses_spaces_like_names_do(call):
    await call.ok("create_universe", name="  Dividend    payers ")
    await call.ok("create_universe", name="Dividend growers")
    found = await call.ok("list_universes", name_contains="  dividend    PAYERS ")
    assert [u["name"] for u in found["universes"]] == ["Dividend payers"]
    assert len((await call.ok("list_universes", name_contains="dividend"))["universes"]) == 2
    # An empty filter filters nothing.
    assert len((await call.ok("list_universes", name_contains=""))["universes"]) == 2


async def test_validate_false_asks_no_provider_anywhere(make_settings):
    from providers.base import AssetProfile
    from providers.fake import FakeProvider
    from tests.conftest import Call
    from tests.support.stores import serve

    provider = FakeProvider(known={"ZZQV": AssetProfile(symbol="ZZQV")})
    async with serve(make_settings(), providers=[provider]) as client:
        call = Call(client)
        created = await call.ok("create_universe", name="Unchecked", symbols=["ZZQU"], validate=False)
        uid = created["universe"]["id"]
        added = await call.ok("add_assets_to_universe", universe_id=uid, symbols=["ZZQV", "ZZQW"], validate=False)
        imported = await call.ok("import_universe_csv", universe_id=uid, csv_text="symbol\nZZQX\n", validate=False)
        assert provider.calls == 0
        statuses = [
            (r["symbol"], r["outcome"], r["validation_status"])
            for r in created["report"]["results"] + added["report"]["results"]
        ]
        assert statuses == [("ZZQU", "added", "unknown"), ("ZZQV", "added", "unknown"), ("ZZQW", "added", "unknown")]
        assert imported["counts"]["added"] == 1
        # Asked, the provider confirms what it lists.
        checked = await call.ok("add_assets_to_universe", universe_id=uid, symbols=["ZZQV"])
        assert provider.calls == 1 and checked["report"]["results"][0]["validation_status"] == "valid"


async def test_updated_at_moves_exactly_when_the_universe_changes(call):
    uid = (await call.ok("create_universe", name="Stamped", symbols=["AAPL", "MSFT"], validate=False))["universe"]["id"]

    async def stamp() -> str:
        return (await call.ok("get_universe", universe_id=uid, include_assets=False))["universe"]["updated_at"]

    async def changes(tool: str, **arguments) -> bool:
        before = await stamp()
        answered = await call.ok(tool, universe_id=uid, **arguments)
        after = await stamp()
        assert answered["universe"]["updated_at"] == after  # the answer shows the stored time
        return after != before

    # Nothing changes: no new time.
    assert not await changes("add_assets_to_universe", symbols=["AAPL"], validate=False)
    assert not await changes("remove_assets_from_universe", symbols=["NVDA"])
    assert not await changes("import_universe_csv", csv_text="symbol\nMSFT\n", validate=False)
    # Members added or removed, by a call or an import (replace that only removes, too): a new time.
    assert await changes("add_assets_to_universe", symbols=["NVDA"], validate=False)
    assert await changes("remove_assets_from_universe", symbols=["NVDA"])
    assert await changes("import_universe_csv", csv_text="symbol\nKO\n", validate=False)
    assert await changes("import_universe_csv", csv_text="symbol\nAAPL\nMSFT\n", mode="replace", validate=False)
    assert [a["symbol"] for a in (await call.ok("get_universe", universe_id=uid))["assets"]] == ["AAPL", "MSFT"]


async def test_each_symbols_outcome_says_what_happened_and_why(make_settings):
    from providers.base import AssetProfile
    from providers.fake import FakeProvider
    from tests.conftest import Call
    from tests.support.stores import serve

    def outcomes(data: dict) -> list[tuple]:
        return [
            (r["symbol"], r["outcome"], r["validation_status"], r["source"], r["reason"])
            for r in data["report"]["results"]
        ]

    provider = FakeProvider(known={"ZZQA": AssetProfile(symbol="ZZQA")}, fail_symbols=["ZZQP"])
    async with serve(make_settings(), providers=[provider]) as client:
        call = Call(client)
        first = await call.ok("create_universe", name="Checked", symbols=["ZZQA", "ZZQX", "ZZQP"])
        assert outcomes(first) == [
            ("ZZQA", "added", "valid", "fake", None),
            ("ZZQX", "rejected", "invalid", "fake", "fake does not list ZZQX"),
            ("ZZQP", "added", "pending", None, "no provider could answer (fake: simulated outage)"),
        ]
        assert first["universe"]["asset_count"] == 2

        # Unchecked, each member says what the store knows of it.
        uid = (await call.ok("create_universe", name="Unchecked"))["universe"]["id"]
        second = await call.ok(
            "add_assets_to_universe", universe_id=uid, symbols=["ZZQP", "ZZQA", "ZZQN", "ZZQX"], validate=False
        )
        assert outcomes(second) == [
            ("ZZQP", "added", "pending", None, "no provider could answer yet; re-checked in the background"),
            ("ZZQA", "added", "valid", "fake", None),
            ("ZZQN", "added", "unknown", None, "added without validation"),
            # The rejected symbol left no asset behind: unchecked, it is as new as any.
            ("ZZQX", "added", "unknown", None, "added without validation"),
        ]
        again = await call.ok("add_assets_to_universe", universe_id=uid, symbols=["ZZQA", "ZZQN"], validate=False)
        assert outcomes(again) == [
            ("ZZQA", "already_present", "valid", "fake", None),
            ("ZZQN", "already_present", "unknown", None, None),
        ]
        assert again["universe"]["asset_count"] == 4


async def test_a_page_of_universes_resumes_after_its_last_row_whatever_the_ids(call):
    # The cursor holds the last row's name and id; names are unique, so the id only breaks a tie with that very row.
    # Names given in id order make every row's id larger than the one before it: a cursor holding any other row's
    # id would show the page's last universe again.
    ids = sorted([(await call.ok("create_universe", name=f"tmp {i}"))["universe"]["id"] for i in range(5)])
    for i, uid in enumerate(ids):
        await call.ok("update_universe", universe_id=uid, name=f"Paged {i}")
    seen, cursor = [], None
    while True:
        page = await call.ok("list_universes", limit=3, **({"cursor": cursor} if cursor else {}))
        seen += [u["id"] for u in page["universes"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == ids
