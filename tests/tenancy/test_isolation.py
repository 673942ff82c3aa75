"""Two users on one server over real HTTP with bearer tokens: nothing crosses the tenant line (issue 5).

Runs on SQLite and on PostgreSQL, where the server connects as a role that does not own the tables, so the
row-level-security policies are a second wall behind the service layer's owner filters.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from mcp.shared.exceptions import MCPError
from mcp.types import ResourceTemplateReference

from tests.tenancy.conftest import connect, envelope

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_nothing_crosses_the_tenant_line(deployment, tmp_path):
    alice_token = await deployment.token("alice")
    bob_token = await deployment.token("bob")
    with deployment.server(tmp_path / "run") as url:
        async with connect(url, alice_token) as alice:
            created = envelope(
                await alice.call_tool(
                    "create_universe", {"name": "Alice core", "description": "mine", "symbols": ["AAPL", "MSFT"]}
                )
            )
            uid = created["data"]["universe"]["id"]
            names = {t.name for t in (await alice.list_tools()).tools}
            job = envelope(await alice.call_tool("start_bulk_validation", {"symbols": ["AAPL", "MSFT"]}))
            job_id = job["data"]["job_id"]
            before = envelope(await alice.call_tool("get_universe", {"universe_id": uid}))["data"]

        attempts: list[tuple[str, dict]] = [
            ("get_universe", {"universe_id": uid}),
            ("update_universe", {"universe_id": uid, "name": "Stolen"}),
            ("delete_universe", {"universe_id": uid}),
            ("add_assets_to_universe", {"universe_id": uid, "symbols": ["NVDA"]}),
            ("remove_assets_from_universe", {"universe_id": uid, "symbols": ["AAPL"]}),
            ("get_universe_turnover", {"universe_id": uid}),
            ("get_universe_history", {"universe_id": uid}),
        ]
        attempts += [
            ("get_job_status", {"job_id": job_id}),
            ("get_job_status", {"job_id": job_id, "include_items": True}),
            ("cancel_job", {"job_id": job_id}),
            ("start_bulk_validation", {"universe_id": uid}),
            ("export_universe_csv", {"universe_id": uid}),
            ("import_universe_csv", {"universe_id": uid, "csv_text": "symbol\nNVDA\n"}),
            ("open_universe_dashboard", {"universe_id": uid}),
        ]
        attempts += [(n, {"universe_id": uid}) for n in sorted(names) if n == "get_dashboard_state"]
        async with connect(url, bob_token) as bob:
            listed = envelope(await bob.call_tool("list_universes", {}))["data"]["universes"]
            assert listed == []
            for tool, args in attempts:
                result = envelope(await bob.call_tool(tool, args))
                assert not result["success"], f"bob could call {tool} on alice's data"
                assert result["error"]["code"] == "not_found", (tool, result["error"])
                assert "Alice core" not in json.dumps(result)
            # Bob's own universe may reuse the name: names are unique per owner only.
            mine = envelope(await bob.call_tool("create_universe", {"name": "Alice core"}))
            assert mine["success"]
            resources = [f"universe://{uid}", f"jobs://{job_id}", f"universe://{uid}/assets.csv"]
            for uri in resources:
                with pytest.raises(MCPError) as caught:
                    await bob.read_resource(uri)
                assert "Alice" not in str(caught.value)
            completion = await bob.complete(
                ResourceTemplateReference(type="ref/resource", uri="universe://{universe_id}"),
                {"name": "universe_id", "value": uid[:6]},
            )
            assert uid not in completion.completion.values
            by_name = await bob.complete(
                ResourceTemplateReference(type="ref/resource", uri="universe://{universe_id}"),
                {"name": "universe_id", "value": "alice"},
            )
            assert uid not in by_name.completion.values

        async with connect(url, alice_token) as alice:
            after = envelope(await alice.call_tool("get_universe", {"universe_id": uid}))["data"]
            assert after == before  # nothing bob did changed anything
            # Alice's job runs to the end on this store (on PostgreSQL: the server's role under row-level security,
            # the job runtime as the table owner acting for her), untouched by bob's cancel_job.
            deadline = time.monotonic() + 30
            while (status := envelope(await alice.call_tool("get_job_status", {"job_id": job_id}))["data"])[
                "status"
            ] in ("queued", "running"):
                assert time.monotonic() < deadline, status
                await asyncio.sleep(0.1)
            assert status["status"] == "completed", status
            assert (status["counts"]["valid"], status["counts"]["processed"]) == (2, 2), status["counts"]
            items = envelope(await alice.call_tool("get_job_status", {"job_id": job_id, "include_items": True}))
            assert [(i["symbol"], i["status"], i["source"]) for i in items["data"]["items"]] == [
                ("AAPL", "valid", "catalog"),
                ("MSFT", "valid", "catalog"),
            ]
            listed = envelope(await alice.call_tool("list_universes", {}))["data"]["universes"]
            assert [u["name"] for u in listed] == ["Alice core"]
            resource = await alice.read_resource(f"universe://{uid}")
            assert "Alice core" in resource.contents[0].text


async def test_missing_wrong_expired_and_revoked_tokens_get_401(deployment, tmp_path):
    import asyncio

    good = await deployment.token("dave")
    expired = await deployment.token("dave", expires="1s")
    revoked = await deployment.token("dave")
    await deployment.revoke(revoked)
    await asyncio.sleep(1.2)
    with deployment.server(tmp_path / "run") as url:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        headers = {
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
            "mcp-protocol-version": "2025-11-25",
        }
        for token in (None, "umcp_wrong", "Bearer-less", expired, revoked):
            h = dict(headers) | ({"authorization": f"Bearer {token}"} if token else {})
            response = httpx.post(url, json=body, headers=h, timeout=10)
            assert response.status_code == 401, token
            assert "WWW-Authenticate" in response.headers
        ok = httpx.post(url, json=body, headers=headers | {"authorization": f"Bearer {good}"}, timeout=10)
        assert ok.status_code == 200
        assert httpx.get(url.replace("/mcp", "/healthz"), timeout=5).status_code == 200  # no auth needed
        ready = httpx.get(url.replace("/mcp", "/readyz"), timeout=5)
        assert ready.status_code == 200 and ready.json()["checks"]["store"] == "up"
        # A token revoked while the server runs stops working within the verification cache's lifetime.
        async with connect(url, good) as client:
            assert not (await client.call_tool("list_universes", {})).is_error
        await deployment.revoke(good)
        await asyncio.sleep(deployment.settings.token_cache_s + 0.5)
        late = httpx.post(url, json=body, headers=headers | {"authorization": f"Bearer {good}"}, timeout=10)
        assert late.status_code == 401


async def test_read_only_token_is_forbidden_on_every_write_tool(deployment, tmp_path):
    writer = await deployment.token("erin")
    reader = await deployment.token("erin", scopes=["read"])
    with deployment.server(tmp_path / "run") as url:
        async with connect(url, writer) as client:
            uid = envelope(await client.call_tool("create_universe", {"name": "E"}))["data"]["universe"]["id"]
        async with connect(url, reader) as client:
            tools = (await client.list_tools()).tools
            writes = [t for t in tools if not t.annotations.read_only_hint]
            assert {"create_universe", "delete_universe", "add_assets_to_universe"} <= {t.name for t in writes}
            for tool in writes:
                args = {
                    "universe_id": uid,
                    "name": "x",
                    "symbols": ["AAPL"],
                    "job_id": uid,
                    "csv_text": "symbol\nAAPL\n",
                }
                allowed = set(tool.input_schema.get("properties", {}))
                result = envelope(await client.call_tool(tool.name, {k: v for k, v in args.items() if k in allowed}))
                assert result["error"]["code"] == "forbidden", (tool.name, result["error"])
            assert envelope(await client.call_tool("list_universes", {}))["success"]
            detail = envelope(await client.call_tool("get_universe", {"universe_id": uid}))
            assert detail["success"] and detail["data"]["universe"]["name"] == "E"


async def test_rate_limit_trips_with_retry_after_over_http(tmp_path):
    from core.settings import Settings
    from tests.tenancy.conftest import Deployment

    deployment = Deployment(
        "sqlite",
        {"UNIVERSE_MCP_DATA_DIR": str(tmp_path / "store")},
        Settings(data_dir=tmp_path / "store", offline=True),
    )
    token = await deployment.token("frank")
    with deployment.server(tmp_path / "run", UNIVERSE_MCP_RATE_LIMIT_WRITE="3/minute") as url:
        async with connect(url, token) as client:
            for i in range(3):
                assert envelope(await client.call_tool("create_universe", {"name": f"U{i}"}))["success"]
            limited = envelope(await client.call_tool("create_universe", {"name": "U4"}))
            assert limited["error"]["code"] == "rate_limited"
            assert 0 < limited["error"]["details"]["retry_after_s"] <= 60
            assert envelope(await client.call_tool("list_universes", {}))["success"]
