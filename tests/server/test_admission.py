"""Admission in process: the local user's rate limits (off by default, configurable on), and resources, prompts
and completions spending the read budget like read tools. Scopes over HTTP with real tokens: tests/tenancy."""

from __future__ import annotations

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import ResourceTemplateReference

from server.app import build_server
from tests.conftest import Call

pytestmark = pytest.mark.anyio


async def test_the_local_user_is_not_rate_limited_by_default(make_settings):
    # A scripted harness on auth=none: 200 validations in well under a minute, over the default 120/minute budget.
    settings = make_settings()
    assert settings.auth == "none" and settings.rate_limit_validate.startswith("120/minute")
    async with Client(build_server(settings)) as client:
        call = Call(client)
        outcomes = [await call("validate_symbols", symbols=["AAPL", "MSFT"]) for _ in range(200)]
    refused = [e["error"] for e in outcomes if not e["success"]]
    assert refused == []


async def test_local_rate_limits_can_be_switched_on(make_settings):
    settings = make_settings(local_rate_limits=True, rate_limit_validate="3/minute")
    async with Client(build_server(settings)) as client:
        call = Call(client)
        for _ in range(3):
            await call.ok("validate_symbols", symbols=["AAPL"])
        limited = await call.error("validate_symbols", "rate_limited", symbols=["AAPL"])
        assert limited["error"]["details"]["tool_class"] == "validate"


async def test_resources_prompts_and_completions_spend_the_read_budget(make_settings):
    settings = make_settings(local_rate_limits=True, rate_limit_read="6/minute")
    async with Client(build_server(settings)) as client:
        call = Call(client)
        uid = (await call.ok("create_universe", name="Budget", symbols=["AAPL"], validate=False))["universe"]["id"]
        await call.ok("get_universe", universe_id=uid)  # 1
        await client.read_resource(f"universe://{uid}")  # 2
        await client.read_resource(f"universe://{uid}/assets.csv")  # 3
        await client.get_prompt("review_universe", {"universe_id": uid})  # 4
        await client.complete(
            ResourceTemplateReference(type="ref/resource", uri="universe://{universe_id}"),
            {"name": "universe_id", "value": uid[:4]},
        )  # 5
        await call.ok("list_universes")  # 6: the budget is spent
        for attempt in (
            lambda: client.read_resource(f"universe://{uid}"),
            lambda: client.read_resource(f"universe://{uid}/assets.csv"),
            lambda: client.get_prompt("build_universe", {"theme": "water"}),
            lambda: client.complete(
                ResourceTemplateReference(type="ref/resource", uri="universe://{universe_id}"),
                {"name": "universe_id", "value": uid[:4]},
            ),
        ):
            with pytest.raises(MCPError) as caught:
                await attempt()
            data = caught.value.error.data
            assert data["code"] == "rate_limited" and data["details"]["retry_after_s"] > 0, data
        limited = await call.error("get_universe", "rate_limited", universe_id=uid)
        assert limited["error"]["details"]["tool_class"] == "read"
