"""The dashboard's server side in process: the Apps binding, the text fallback, owner checks on View calls, the page."""

from __future__ import annotations

import re

import httpx
import pytest
from mcp import Client
from mcp.client.extension import advertise
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID
from mcp.shared.exceptions import MCPError

from server.app import build_server
from server.lifespan import open_app_state
from server.transports import http_app
from services.schemas import Caller
from services.universes import UniverseService
from storage.repositories.users import get_or_create_user
from tests.conftest import Call
from tools.dashboard import VIEW_URI

pytestmark = pytest.mark.anyio

APPS = [advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})]


async def test_the_tools_are_bound_to_the_view_and_the_view_is_an_mcp_app(client):
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert tools["open_universe_dashboard"].meta == {"ui": {"resourceUri": VIEW_URI}}
    assert tools["get_dashboard_state"].meta == {"ui": {"resourceUri": VIEW_URI, "visibility": ["app"]}}
    content = (await client.read_resource(VIEW_URI)).contents[0]
    assert content.mime_type == APP_MIME_TYPE
    assert content.meta == {"ui": {"csp": {}, "prefersBorder": True}}  # no outside domains at all
    html = content.text
    # One self-contained file: a single inline module script, no external scripts, styles or fetches.
    assert html.count("<script") == 1 and '<script type="module" crossorigin>' in html
    assert not re.search(r"""<(script|link|img|iframe)[^>]+(src|href)=["']?(https?:)?//""", html)
    assert "fetch(" not in html and "XMLHttpRequest" not in html and "WebSocket(" not in html


async def test_clients_without_apps_get_a_markdown_table_and_next_actions(call):
    uid = (await call.ok("create_universe", name="Tech | AI", symbols=["NVDA", "MSFT"]))["universe"]["id"]
    await call.ok("create_universe", name="Empty one")
    result = await call.client.call_tool("open_universe_dashboard", {})
    text = result.content[0].text
    assert "| Universe | Assets | Updated | id |" in text
    assert "| Tech \\| AI | 2 |" in text and uid in text  # user text cannot break the table
    assert "| NVDA | Nvidia | Information Technology | valid |" not in text  # "Empty one" sorts first
    envelope = result.structured_content
    assert envelope["data"]["selected"]["universe"]["name"] == "Empty one"
    assert [a["tool"] for a in envelope["next_actions"]] == ["get_universe", "export_universe_csv"]

    text = (await call.client.call_tool("open_universe_dashboard", {"universe_id": uid})).content[0].text
    assert "| NVDA | Nvidia | Information Technology | valid |" in text
    assert "Tech | AI: 2 assets (2 valid)." in text


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_clients_with_apps_get_one_line_and_the_full_data(settings, mode):
    async with Client(build_server(settings), mode=mode, extensions=APPS) as client:
        call = Call(client)
        await call.ok("create_universe", name="Core", symbols=["KO"])
        result = await client.call_tool("open_universe_dashboard", {})
        assert result.content[0].text.startswith("Opened the universe dashboard: 1 universe(s), showing 'Core'.")
        data = result.structured_content["data"]
        assert data["selected"]["assets"][0]["symbol"] == "KO"
        assert {"import_universe_csv", "export_universe_csv", "get_dashboard_state"} <= set(data["tools"])
        assert data["read_only"] is False and data["limits"]["csv_max_rows"] == 10_000


async def test_empty_store_suggests_creating_a_universe(call):
    envelope = await call("open_universe_dashboard")
    assert envelope["data"]["universes"] == [] and envelope["data"]["selected"] is None
    assert "create_universe" in envelope["message"]
    assert envelope["next_actions"][0]["tool"] == "create_universe"


async def test_view_calls_with_another_owners_id_fail_and_change_nothing(settings):
    async with open_app_state(settings) as state, state.unit_of_work() as session:
        other = await get_or_create_user(session, "someone-else")
        theirs, _ = await UniverseService(session, Caller(owner_id=other.id, name="someone-else")).create(
            "Theirs", symbols=["AAPL"], validate=False
        )
    async with Client(build_server(settings), extensions=APPS) as client:
        call = Call(client)
        for tool, args in [
            ("open_universe_dashboard", {}),
            ("get_dashboard_state", {}),
            ("export_universe_csv", {}),
            ("get_universe", {}),
            ("import_universe_csv", {"csv_text": "KO", "mode": "replace"}),
            ("delete_universe", {}),
        ]:
            envelope = await call.error(tool, "not_found", universe_id=theirs.id, **args)
            assert theirs.id in envelope["error"]["message"] and "Theirs" not in str(envelope)
        with pytest.raises(MCPError, match="No universe"):
            await client.read_resource(f"universe://{theirs.id}/assets.csv")
        assert (await call.ok("get_dashboard_state"))["universes"] == []  # nothing of theirs leaks into lists
    async with open_app_state(settings) as state, state.unit_of_work() as session:
        detail = await UniverseService(session, Caller(owner_id=other.id, name="someone-else")).get(theirs.id)
        assert [a.symbol for a in detail.assets] == ["AAPL"]  # untouched


async def test_read_only_servers_say_so_to_the_view(make_settings):
    async with Client(build_server(make_settings(read_only=True)), extensions=APPS) as client:
        data = await Call(client).ok("get_dashboard_state")
        assert data["read_only"] is True
        assert "import_universe_csv" not in data["tools"] and "export_universe_csv" in data["tools"]


async def test_the_page_at_root_hosts_the_view_with_a_strict_policy(settings):
    transport = httpx.ASGITransport(app=http_app(build_server(settings), settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        page = await http.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-eval" not in csp
    assert page.headers["referrer-policy"] == "no-referrer" and page.headers["cache-control"] == "no-store"
    assert "access-control-allow-origin" not in page.headers
    assert 'id="token"' in page.text and 'type="password"' in page.text  # the token is typed in, not put in the URL


async def test_without_the_dashboard_toolset_there_is_no_view_and_no_page(make_settings):
    settings = make_settings(toolsets=["universes", "assets"])
    server = build_server(settings)
    async with Client(server) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert "open_universe_dashboard" not in names and "import_universe_csv" in names
        assert VIEW_URI not in {str(r.uri) for r in (await client.list_resources()).resources}
    transport = httpx.ASGITransport(app=http_app(server, settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        assert (await http.get("/")).status_code == 404


async def _drive(client: Client, n: int) -> int:
    """Call each CSV and dashboard tool; check every hinted call against the live tool list. Returns how many."""
    import jsonschema

    schemas = {t.name: t.input_schema for t in (await client.list_tools()).tools}
    seen = 0

    async def run(tool: str, **args):
        nonlocal seen
        if tool not in schemas:
            return None
        envelope = (await client.call_tool(tool, args)).structured_content
        for action in envelope["next_actions"]:
            assert action["tool"] in schemas, action
            jsonschema.validate(action["arguments"], schemas[action["tool"]])
            seen += 1
        return envelope

    await run("open_universe_dashboard")
    made = await run("import_universe_csv", csv_text="symbol\nKO\nAAPLL\nZZZZQ\n=1\n", name=f"U{n}")
    uid = made["data"]["universe"]["id"] if made else "00000000-0000-0000-0000-000000000000"
    await run("import_universe_csv", csv_text="", universe_id=uid)
    await run("open_universe_dashboard", universe_id=uid)
    await run("get_dashboard_state", universe_id=uid)
    await run("export_universe_csv", universe_id=uid)
    await run("export_universe_csv", universe_id="nope")
    return seen


async def test_next_actions_of_the_csv_and_dashboard_tools_are_valid_calls(make_settings):
    configs = ({}, {"toolsets": ["universes", "dashboard"]}, {"read_only": True}, {"csv_job_threshold": 2})
    for n, overrides in enumerate(configs):  # one store for all: each run makes its own universe
        async with Client(build_server(make_settings(**overrides))) as client:
            assert await _drive(client, n) > 0


async def test_the_state_carries_the_composition_of_every_member_not_only_the_first_page(master_settings):
    """The charts' numbers: counted over all members (here more than one page of the service), from the store."""
    from collections import Counter

    from services import composition

    symbols = ["AAPL", "MSFT", "NVDA", "AMD", "KO", "JPM", "BRK.B", "TSLA", "ZZZQX"]
    async with Client(build_server(master_settings), extensions=APPS) as client:
        call = Call(client)
        uid = (await call.ok("create_universe", name="Mixed", symbols=symbols))["universe"]["id"]
        members: list[dict] = []
        cursor = None
        while True:
            page = await call.ok("get_universe", universe_id=uid, limit=4, **({"cursor": cursor} if cursor else {}))
            members += page["assets"]
            if not (cursor := page["next_cursor"]):
                break
        original = composition.COMPOSITION_MAX
        data = await call.ok("get_dashboard_state", universe_id=uid)
        try:
            composition.COMPOSITION_MAX = 4  # a larger universe is charted from its first members, and says so
            partial = (await call.ok("get_dashboard_state", universe_id=uid))["composition"]
        finally:
            composition.COMPOSITION_MAX = original
    c = data["composition"]
    assert c["members"] == len(members) == len(symbols) and c["partial"] is False
    assert {s["name"]: s["count"] for s in c["sectors"]} == Counter(m["sector"] or "Unknown" for m in members)
    caps = Counter()
    for m in members:
        caps[m["sector"] or "Unknown"] += m["market_cap"] or 0
    assert {s["name"]: s["market_cap"] for s in c["sectors"]} == pytest.approx(dict(caps))
    assert c["market_cap"] == pytest.approx(sum(m["market_cap"] or 0 for m in members))
    assert [s["count"] for s in c["sectors"]] == sorted((s["count"] for s in c["sectors"]), reverse=True)
    industries = Counter(m["industry"] for m in members if m["industry"])
    assert {i["name"]: i["count"] for i in c["industries"]} == dict(industries.most_common(8))
    bands = {b["label"]: b["count"] for b in c["market_caps"]}
    assert list(bands) == ["Mega", "Large", "Mid", "Small", "Micro", "Unknown"]
    assert bands["Unknown"] == sum(m["market_cap"] is None for m in members) and sum(bands.values()) == len(members)
    assert bands["Mega"] == sum((m["market_cap"] or 0) >= 200e9 for m in members)
    assert c["validation"] == Counter(m["validation_status"] for m in members)
    assert c["listing"] == {"listed": len(members), "delisted": 0, "renamed": 0}
    assert (partial["members"], partial["partial"]) == (4, True)
