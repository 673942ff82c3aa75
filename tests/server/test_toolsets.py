"""Toolsets as data (tools/_toolset.py): the server's instructions come from the enabled toolsets, limits quoted in
descriptions come from the settings, every toolset named in the settings exists, and resources share one error
mapping."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS

from core.settings import TOOLSET_NAMES
from server.app import build_server
from tools import ALL_TOOLSETS

pytestmark = pytest.mark.anyio

PLACEHOLDER = re.compile(r"\{settings\.")


def _descriptions(schema: Any) -> list[str]:
    if isinstance(schema, dict):
        found = [v for k, v in schema.items() if k == "description" and isinstance(v, str)]
        return found + [d for v in schema.values() for d in _descriptions(v)]
    if isinstance(schema, list):
        return [d for v in schema for d in _descriptions(v)]
    return []


def test_the_settings_name_exactly_the_declared_toolsets_once_each():
    ids = [t.id for t in ALL_TOOLSETS]
    assert len(ids) == len(set(ids)), ids  # one declaration per toolset (the CSV tools are part of `universes`)
    assert set(ids) == set(TOOLSET_NAMES)
    csv_tools = {"import_universe_csv", "export_universe_csv"}
    assert csv_tools <= {s.name for t in ALL_TOOLSETS if t.id == "universes" for s in t.tools}


async def test_limits_in_descriptions_follow_the_settings(make_settings):
    settings = make_settings(max_bulk_symbols=2_500, job_wait_s=30, page_size_max=120, max_symbols_per_call=700)
    server = build_server(settings)
    async with Client(server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        templates = {t.uri_template: t for t in (await client.list_resource_templates()).resource_templates}
    start = tools["start_bulk_validation"]
    assert "(up to 2,500)" in start.description and "10,000" not in start.description
    assert "up to 2,500 (AAPL" in start.input_schema["properties"]["symbols"]["description"]
    assert "(at most about 30 s)" in start.input_schema["properties"]["wait"]["description"]
    assert "at most 120" in tools["get_job_status"].input_schema["properties"]["limit"]["description"]
    assert "at most 700." in tools["add_assets_to_universe"].input_schema["properties"]["symbols"]["description"]
    assert "first 120 per-symbol outcomes" in templates["jobs://{job_id}"].description
    assert "first 120 member assets" in templates["universe://{universe_id}"].description
    texts = [server.instructions or ""] + [t.description or "" for t in templates.values()]
    for tool in tools.values():
        texts += [tool.description or "", *_descriptions(tool.input_schema)]
    assert not [t for t in texts if PLACEHOLDER.search(t)]  # every placeholder was filled in


@pytest.mark.parametrize(
    ("toolsets", "bulk_hint"),
    [(None, "start_bulk_validation (up to 2,500 symbols)"), (["universes", "assets"], None)],
)
async def test_the_too_many_symbols_hint_quotes_the_bulk_limit_and_only_a_served_tool(
    make_settings, toolsets, bulk_hint
):
    overrides: dict[str, Any] = {"max_bulk_symbols": 2_500, "max_symbols_per_call": 20}
    if toolsets:
        overrides["toolsets"] = toolsets
    async with Client(build_server(make_settings(**overrides))) as client:
        result = await client.call_tool("create_universe", {"name": "Too big", "symbols": [f"S{i}" for i in range(21)]})
    error = (result.structured_content or {})["error"]
    assert error["code"] == "limit_exceeded" and error["details"]["limit"] == 20
    if bulk_hint:
        assert bulk_hint in error["hint"] and error["details"]["bulk_tool"] == "start_bulk_validation"
    else:
        assert "start_bulk_validation" not in json.dumps(error) and "background job" not in error["hint"]


async def test_instructions_are_joined_from_the_enabled_toolsets(make_settings):
    by_id = {t.id: t for t in ALL_TOOLSETS}
    everything = build_server(make_settings()).instructions or ""
    only_assets = build_server(make_settings(toolsets=["assets"])).instructions or ""
    assert "search_assets" in by_id["assets"].instructions and "start_bulk_validation" in by_id["jobs"].instructions
    assert "find securities for a theme with search_assets" in everything and "start_bulk_validation" in everything
    assert (
        "find securities for a theme with search_assets" in only_assets and "start_bulk_validation" not in only_assets
    )
    assert "list_universes" not in only_assets  # the universes toolset's line
    assert everything.startswith(only_assets.splitlines()[0])  # the common part first


@pytest.mark.parametrize(
    "uri",
    [
        "universe://00000000-0000-0000-0000-000000000000",
        "universe://not-an-id",
        "universe://00000000-0000-0000-0000-000000000000/assets.csv",
        "jobs://00000000-0000-0000-0000-000000000000",
        "jobs://not-an-id",
        "reports://abc123",
    ],
)
async def test_every_resource_answers_what_does_not_exist_as_not_found(make_settings, uri):
    async with Client(build_server(make_settings())) as client:
        with pytest.raises(MCPError) as raised:
            await client.read_resource(uri)
    # What the SDK answers for ResourceNotFoundError (INVALID_PARAMS in mcp 2.3), with the domain error's own
    # message: never an internal error.
    error = raised.value.error
    assert error.code == INVALID_PARAMS and error.message.startswith(("No ", "'not-an-id' is not a")), error
    assert "Traceback" not in json.dumps(error.model_dump(mode="json"))
