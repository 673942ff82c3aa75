"""Token scopes at every entry point, over real HTTP with real tokens (issue 10 items 7, 8 and 11):

* resources, prompts and completions need the ``read`` scope like read tools;
* whatever may ask a market-data provider needs ``validate``: get_asset, and adding symbols with validation;
* get_service_health shows a tenant its own jobs and a coarse status; infrastructure detail needs ``admin``.
"""

from __future__ import annotations

import json
import secrets

import pytest
from mcp.shared.exceptions import MCPError
from mcp.types import ResourceTemplateReference

from core.settings import Settings
from tests.tenancy.conftest import Deployment, connect, envelope

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture
def sqlite_deployment(tmp_path) -> Deployment:
    # Admission does not depend on the store: one SQLite deployment keeps this file to one server start.
    return Deployment(
        "sqlite",
        {"UNIVERSE_MCP_DATA_DIR": str(tmp_path / "store")},
        Settings(data_dir=tmp_path / "store", offline=True),
    )


async def test_scopes_guard_resources_prompts_completions_provider_calls_and_health_detail(
    sqlite_deployment, tmp_path, redis_url
):
    deployment = sqlite_deployment
    owner = await deployment.token("vera")  # read, write, validate
    validate_only = await deployment.token("vera", scopes=["validate"])
    read_only = await deployment.token("vera", scopes=["read"])
    writer = await deployment.token("vera", scopes=["read", "write"])
    admin = await deployment.token("ops", scopes=["read", "admin"])
    other = await deployment.token("walt")
    # The distributed layout with no worker running: a job stays queued, so "your jobs" is deterministic, and the
    # service is degraded (no live worker), which a tenant hears about in words that name no infrastructure.
    distributed = {
        "UNIVERSE_MCP_REDIS_URL": redis_url,
        "UNIVERSE_MCP_BROKER_NAMESPACE": f"scopes-{secrets.token_hex(4)}",
    }
    with deployment.server(tmp_path / "run", **distributed) as url:
        async with connect(url, owner) as client:
            uid = envelope(await client.call_tool("create_universe", {"name": "Scoped", "symbols": ["AAPL"]}))["data"][
                "universe"
            ]["id"]
            job_id = envelope(await client.call_tool("start_bulk_validation", {"symbols": ["MSFT", "NVDA"]}))["data"][
                "job_id"
            ]

        # Item 7: a validate-only token reads no resource, prompt or completion (they are read class).
        async with connect(url, validate_only) as client:
            for uri in (f"universe://{uid}", f"universe://{uid}/assets.csv", f"jobs://{job_id}"):
                with pytest.raises(MCPError) as caught:
                    await client.read_resource(uri)
                assert caught.value.error.data["code"] == "forbidden", uri
                assert caught.value.error.data["details"]["required_scope"] == "read"
                assert "Scoped" not in json.dumps(caught.value.error.data)
            with pytest.raises(MCPError) as caught:
                await client.get_prompt("review_universe", {"universe_id": uid})
            assert caught.value.error.data["code"] == "forbidden"
            with pytest.raises(MCPError) as caught:
                await client.complete(
                    ResourceTemplateReference(type="ref/resource", uri="universe://{universe_id}"),
                    {"name": "universe_id", "value": uid[:4]},
                )
            assert caught.value.error.data["code"] == "forbidden"
            # Validation itself is what this token is for.
            assert envelope(await client.call_tool("validate_symbols", {"symbols": ["AAPL"]}))["success"]

        # Item 8: a read-only token cannot make the server ask providers.
        async with connect(url, read_only) as client:
            refused = envelope(await client.call_tool("get_asset", {"symbol": "ZZNEW1"}))
            assert refused["error"]["code"] == "forbidden"
            assert refused["error"]["details"]["required_scope"] == "validate"
            assert (await client.read_resource(f"universe://{uid}")).contents  # reading is what it may do
        # ... nor a write token without validate, unless it adds without validation.
        async with connect(url, writer) as client:
            refused = envelope(
                await client.call_tool("add_assets_to_universe", {"universe_id": uid, "symbols": ["MSFT"]})
            )
            assert refused["error"]["code"] == "forbidden" and "validate=false" in refused["error"]["hint"]
            unchanged = envelope(await client.call_tool("get_universe", {"universe_id": uid}))["data"]
            assert unchanged["universe"]["asset_count"] == 1  # the refused add changed nothing
            added = envelope(
                await client.call_tool(
                    "add_assets_to_universe", {"universe_id": uid, "symbols": ["MSFT"], "validate": False}
                )
            )
            assert added["success"], added
            assert envelope(await client.call_tool("create_universe", {"name": "Empty"}))["success"]  # nothing to ask

        # Item 11: a tenant sees a coarse status and its own jobs; an admin token sees the infrastructure.
        async with connect(url, other) as client:
            theirs = envelope(await client.call_tool("get_service_health", {}))
            data = theirs["data"]
            assert data["view"] == "tenant" and data["status"] == "degraded"
            assert data["problems"] == ["queued jobs are waiting: no job processing is running"]
            for hidden in ("store", "cache", "broker", "workers", "queues"):
                assert data[hidden] is None, hidden
            assert data["your_jobs"] == []  # vera's job is not walt's business
            text = json.dumps(theirs)
            assert "pid" not in text and "namespace" not in text and "latency_ms" not in text
        async with connect(url, owner) as client:
            mine = envelope(await client.call_tool("get_service_health", {}))
            assert mine["data"]["view"] == "tenant" and mine["data"]["workers"] is None
            assert [(j["job_id"], j["status"], j["total"]) for j in mine["data"]["your_jobs"]] == [
                (job_id, "queued", 2)
            ]
            assert mine["next_actions"][0] == {
                "tool": "get_job_status",
                "arguments": {"job_id": job_id},
                "reason": "follow your unfinished job",
            }
        async with connect(url, admin) as client:
            operator = envelope(await client.call_tool("get_service_health", {}))["data"]
            assert operator["view"] == "operator"
            assert operator["store"]["ok"] and operator["broker"]["mode"] == "distributed"
            assert operator["broker"]["namespace"] == distributed["UNIVERSE_MCP_BROKER_NAMESPACE"]
            assert operator["workers"]["alive"] == 0 and operator["queues"]["validation"]["ready"] >= 1
            assert any("universe-mcp worker" in p for p in operator["problems"])
            assert operator["your_jobs"] == []  # the ops user has no jobs of its own
