"""Size budgets (issue 16): what the tool list and bulk results cost a client's context.

Sizes are bytes of compact JSON, as a client receives them. ``tools/list`` is measured whole and in its model-facing
part (name, description, input schema: what hosts put in the model's context). A result is measured as its
structured content, the envelope; the result's second text block is that same JSON (server/errors.py), so it is
also what a model that reads text sees.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from mcp import Client
from mcp.types import TextResourceContents

from providers.catalog import CatalogProvider
from server.app import build_server
from tests.conftest import Call

pytestmark = pytest.mark.anyio

# 48 KB for the 20 tools of issue 16; screen_assets (issue 13) adds a rule schema and a page schema; issue 14 adds
# rebalance_universe, the dynamic definition in get_universe and the dashboard, get_universe_history (a page of events
# and runs) and turnover's names and runs: 65.2 KB for 23 tools on 2026-12-02.
TOOLS_LIST_MAX = 68 * 1024
MODEL_FACING_MAX = 24 * 1024
RESULT_MAX = 16 * 1024


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


async def test_tools_list_with_every_toolset_fits_its_budget(make_settings, capsys):
    settings = make_settings()
    assert set(settings.toolsets) >= {"universes", "assets", "jobs", "dashboard", "health"}
    async with Client(build_server(settings)) as client:
        result = await client.list_tools()
    tools = result.tools
    total = _size(result.model_dump(mode="json", by_alias=True, exclude_none=True))
    model_facing = sum(
        _size({"name": t.name, "description": t.description, "inputSchema": t.input_schema}) for t in tools
    )
    with capsys.disabled():
        print(
            f"\ntools/list: {len(tools)} tools, {total / 1024:.1f} KB in all, "
            f"{model_facing / 1024:.1f} KB model-facing (name, description, input schema)"
        )
    assert len(tools) == 23
    assert total <= TOOLS_LIST_MAX, f"tools/list is {total:,} bytes"
    assert model_facing <= MODEL_FACING_MAX, f"the model-facing part is {model_facing:,} bytes"


def _catalog_symbols() -> list[str]:
    return sorted(e.symbol for e in CatalogProvider().entries())


async def _read_json(client: Client, uri: str) -> dict[str, Any]:
    contents = (await client.read_resource(uri)).contents[0]
    assert isinstance(contents, TextResourceContents)
    return json.loads(contents.text)


async def test_a_5000_row_import_answers_in_16_kb_with_counts_and_every_row_reachable(make_settings, capsys):
    known = random.Random(16).sample(_catalog_symbols(), 3_000)
    made_up = [f"QZ{i:04d}X" for i in range(1_900)]
    formulas = [f'=HYPERLINK("x{i}")' for i in range(50)]
    lines = known + made_up + formulas + known[:50]  # 50 repeated rows: duplicates
    async with Client(build_server(make_settings())) as client:
        call = Call(client)
        envelope = await call("import_universe_csv", csv_text="symbol\n" + "\n".join(lines), name="Five thousand")
        size = _size(envelope)
        with capsys.disabled():
            print(f"\nimport_universe_csv, 5,000 rows: {size / 1024:.1f} KB")
        assert size <= RESULT_MAX, f"{size:,} bytes"
        data = envelope["data"]
        assert data["counts"] == {"added": 4_900, "duplicate": 50, "invalid": 50}
        assert "4900 added, 50 duplicate, 50 invalid" in envelope["message"]
        assert data["rows_truncated"] and 0 < len(data["rows"]) < 5_000
        # Problems first: the listed rows start with the 50 invalid ones (the formulas), in file order.
        assert [r["verdict"] for r in data["rows"][:50]] == ["invalid"] * 50
        assert data["rows"][0]["line"] == 2 + 3_000 + 1_900
        # The rest: every row's verdict in the report resource, named in the answer and its message.
        assert data["report_uri"] and data["report_uri"] in envelope["message"]
        report = await _read_json(client, data["report_uri"])
        assert len(report["rows"]) == 5_000 and report["counts"] == data["counts"]
        assert [r["line"] for r in report["rows"]] == list(range(2, 5_002))
        # The added members themselves are the universe's, page by page; the unchecked ones are in the job.
        assert data["universe"]["asset_count"] == 4_900 and data["job_id"]


async def test_a_1000_symbol_add_answers_in_16_kb_with_counts_and_every_outcome_reachable(make_settings, capsys):
    known = random.Random(17).sample(_catalog_symbols(), 950)
    made_up = [f"QZ{i:03d}Y" for i in range(50)]
    async with Client(build_server(make_settings())) as client:
        call = Call(client)
        universe = (await call.ok("create_universe", name="Thousand"))["universe"]
        envelope = await call("add_assets_to_universe", universe_id=universe["id"], symbols=known + made_up)
        size = _size(envelope)
        with capsys.disabled():
            print(f"\nadd_assets_to_universe, 1,000 symbols: {size / 1024:.1f} KB")
        assert size <= RESULT_MAX, f"{size:,} bytes"
        report = envelope["data"]["report"]
        assert sum(report["counts"].values()) == 1_000 and report["asset_count"] == report["counts"]["added"]
        assert f"{report['counts']['added']} added" in envelope["message"]
        assert report["truncated"] and 0 < len(report["results"]) < 1_000
        # Those needing attention first: none valid while pending (or rejected) ones remain unlisted.
        ranks = [
            0 if r["outcome"] == "rejected" else 1 if r["validation_status"] != "valid" else 2
            for r in report["results"]
        ]
        assert ranks == sorted(ranks) and ranks[0] < 2
        full = await _read_json(client, report["report_uri"])
        assert [r["symbol"] for r in full["results"]] == known + made_up
        assert full["counts"] == report["counts"]

        # The same for create_universe with its initial symbols.
        created = await call("create_universe", name="Thousand too", symbols=known + made_up, validate=False)
        assert _size(created) <= RESULT_MAX
        assert created["data"]["report"]["counts"] == {"added": 1_000}
        assert len((await _read_json(client, created["data"]["report"]["report_uri"]))["results"]) == 1_000


async def test_a_report_is_only_its_owners(make_settings):
    async with Client(build_server(make_settings())) as client:
        call = Call(client)
        universe = (await call.ok("create_universe", name="Mine"))["universe"]
        symbols = _catalog_symbols()[:300]
        report = (await call.ok("add_assets_to_universe", universe_id=universe["id"], symbols=symbols, validate=False))[
            "report"
        ]
        assert report["report_uri"].startswith("reports://")
        # Another id (unknown, malformed) reads as missing, never as someone else's report.
        from mcp.shared.exceptions import MCPError

        for uri in ("reports://" + "0" * 32, "reports://..%2F..%2Fx"):
            with pytest.raises(MCPError):
                await client.read_resource(uri)


async def test_validate_symbols_and_a_universe_page_fit_by_default(make_settings):
    symbols = _catalog_symbols()[:45] + [f"QZ{i}Z" for i in range(5)]
    async with Client(build_server(make_settings())) as client:
        call = Call(client)
        envelope = await call("validate_symbols", symbols=symbols)
        assert _size(envelope) <= RESULT_MAX
        data = envelope["data"]
        assert sum(data["counts"].values()) == 50
        listed = [v["symbol"] for v in data["verdicts"]]
        assert sorted(listed + data["unlisted"]) == sorted(symbols)
        # Fifty full verdicts do not fit: the ones that matter most come first, the rest are one call away,
        # answered from the cache.
        assert data["unlisted"] and data["verdicts"][0]["status"] != "valid"
        action = next(a for a in envelope["next_actions"] if a["arguments"].get("symbols") == data["unlisted"])
        again = await call.ok(action["tool"], **action["arguments"])
        assert {v["symbol"] for v in again["verdicts"]} | set(again["unlisted"]) == set(data["unlisted"])

        universe = (await call.ok("create_universe", name="Big", symbols=_catalog_symbols()[:400], validate=False))[
            "universe"
        ]
        page = await call("get_universe", universe_id=universe["id"])
        assert _size(page) <= RESULT_MAX and page["data"]["next_cursor"]
        state = await call("open_universe_dashboard", universe_id=universe["id"])
        assert _size(state) <= RESULT_MAX and state["data"]["selected"]["next_cursor"]


async def test_a_4800_member_export_pages_under_16_kb_and_joins_to_the_whole_file(make_settings, capsys):
    known = _catalog_symbols()  # with their names, sectors ...: rows as long as real ones
    symbols = known + [f"QZ{i:04d}W" for i in range(4_800 - len(known))]
    async with Client(build_server(make_settings())) as client:
        call = Call(client)
        imported = await call.ok("import_universe_csv", csv_text="\n".join(symbols), name="Large", validate=False)
        uid = imported["universe"]["id"]
        whole = (await client.read_resource(f"universe://{uid}/assets.csv")).contents[0].text
        pages, sizes, cursor, arguments = [], [], None, {"universe_id": uid}
        while True:
            envelope = await call("export_universe_csv", **arguments)
            sizes.append(_size(envelope))
            data = envelope["data"]
            assert data["total_rows"] == 4_800 and data["offset"] == sum(p["row_count"] for p in pages)
            assert data["resource_uri"] == f"universe://{uid}/assets.csv"
            assert data["csv_text"].startswith("symbol,") == (cursor is None)  # the header on the first page only
            pages.append(data)
            cursor = data["next_cursor"]
            if cursor is None:
                assert envelope["next_actions"] == []
                break
            # The next page is one ready call away.
            (action,) = envelope["next_actions"]
            assert action["tool"] == "export_universe_csv" and action["arguments"]["cursor"] == cursor
            arguments = action["arguments"]
        with capsys.disabled():
            print(
                f"\nexport_universe_csv, 4,800 members: {len(pages)} pages of {min(sizes) / 1024:.1f}-"
                f"{max(sizes) / 1024:.1f} KB; the whole CSV {len(whole.encode()) / 1024:.0f} KB"
            )
        assert max(sizes) <= RESULT_MAX, f"{max(sizes):,} bytes"
        assert "".join(p["csv_text"] for p in pages) == whole  # joined in order: exactly the resource's file
        assert sum(p["row_count"] for p in pages) == 4_800 and len(pages) > 1

        # limit caps the rows of a page and carries over in the next call; cursors stay the universe's own.
        first = await call("export_universe_csv", universe_id=uid, limit=3)
        assert first["data"]["row_count"] == 3 and first["next_actions"][0]["arguments"]["limit"] == 3
        second = await call.ok(**{"tool": "export_universe_csv", **first["next_actions"][0]["arguments"]})
        assert first["data"]["csv_text"] + second["csv_text"] == "".join(whole.splitlines(keepends=True)[:7])
        cursor = first["data"]["next_cursor"]
        await call.error("export_universe_csv", "invalid_argument", universe_id=uid, cursor="made-up")

        # A long name and description leave less room for the CSV: the pages shrink, the answers stay bounded.
        other = await call.ok(
            "create_universe", name="Ω" * 200, description="🦄" * 2_000, symbols=known[:600], validate=False
        )
        oid = other["universe"]["id"]
        await call.error("export_universe_csv", "invalid_argument", universe_id=oid, cursor=cursor)  # not its cursor
        texts, arguments = [], {"universe_id": oid}
        while arguments:
            envelope = await call("export_universe_csv", **arguments)
            assert _size(envelope) <= RESULT_MAX, f"{_size(envelope):,} bytes"
            texts.append(envelope["data"]["csv_text"])
            arguments = envelope["next_actions"][0]["arguments"] if envelope["next_actions"] else None
        assert "".join(texts) == (await client.read_resource(f"universe://{oid}/assets.csv")).contents[0].text


async def test_the_dashboard_of_an_owner_with_200_universes_fits_and_lists_the_rest(make_settings, capsys):
    symbols = _catalog_symbols()
    async with Client(build_server(make_settings())) as client:
        call = Call(client)
        for i in range(200):
            await call.ok(
                "create_universe",
                name=f"Universe {i:03d} with a fairly descriptive name",
                description="Screened for liquidity and quality; rebalanced each quarter.",
                symbols=symbols[i * 3 : i * 3 + 30],
                validate=False,
            )
        for tool in ("open_universe_dashboard", "get_dashboard_state"):
            envelope = await call(tool)
            size = _size(envelope)
            with capsys.disabled():
                print(f"\n{tool}, 200 universes: {size / 1024:.1f} KB, {len(envelope['data']['universes'])} listed")
            assert size <= RESULT_MAX, f"{size:,} bytes"
        data = envelope["data"]
        assert data["more_universes"] and data["universes_next_cursor"] and data["selected"]["next_cursor"]
        # The rest: list_universes from the dashboard's cursor, page by page, in the same order.
        names, cursor = [u["name"] for u in data["universes"]], data["universes_next_cursor"]
        while cursor:
            page = await call("list_universes", cursor=cursor)
            assert _size(page) <= RESULT_MAX
            names += [u["name"] for u in page["data"]["universes"]]
            cursor = page["data"]["next_cursor"]
        assert names == [f"Universe {i:03d} with a fairly descriptive name" for i in range(200)]
