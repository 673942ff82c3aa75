"""The tool contract: schema snapshots, honest annotations, toolset/read-only selection, valid next_actions."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
from mcp import Client

from server.app import build_server

pytestmark = pytest.mark.anyio

SNAPSHOTS = Path(__file__).resolve().parents[1] / "__toolsnaps__"


async def test_every_tool_schema_matches_its_snapshot(client):
    """UPDATE_TOOLSNAPS=1 rewrites the snapshots; review the diff like code."""
    tools = (await client.list_tools()).tools
    assert tools
    updating = os.environ.get("UPDATE_TOOLSNAPS") == "1"  # only an explicit request writes snapshots
    SNAPSHOTS.mkdir(exist_ok=True)
    for tool in tools:
        current = {
            "name": tool.name,
            "title": tool.title,
            "description": tool.description,
            "input_schema": tool.input_schema,
            "output_schema": tool.output_schema,
            "annotations": tool.annotations.model_dump(mode="json", by_alias=True, exclude_none=True),
        }
        path = SNAPSHOTS / f"{tool.name}.json"
        if updating:
            path.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
            continue
        # A missing snapshot is a failure everywhere: writing it here and comparing it with itself would pass a
        # new tool's schema unreviewed.
        assert path.exists(), f"missing snapshot {path.name}: run UPDATE_TOOLSNAPS=1 make test, review it, commit it"
        assert json.loads(path.read_text()) == current, f"{tool.name} changed: UPDATE_TOOLSNAPS=1 to accept"
    names = {t.name for t in tools}
    stale = {p.stem for p in SNAPSHOTS.glob("*.json")} - names
    assert not stale, f"snapshots of tools that no longer exist: {stale}"


async def test_every_tool_has_title_description_annotations_and_output_schema(client):
    for tool in (await client.list_tools()).tools:
        assert tool.title and len(tool.description) > 80, tool.name
        assert tool.output_schema and tool.output_schema["type"] == "object", tool.name
        ann = tool.annotations
        assert ann is not None and None not in (ann.read_only_hint, ann.destructive_hint, ann.open_world_hint), (
            tool.name
        )
        if ann.read_only_hint:
            assert not ann.destructive_hint, tool.name
        assert tool.input_schema.get("additionalProperties") is not True, tool.name


async def test_read_only_exposes_no_write_tool_and_toolsets_select(make_settings):
    async with Client(build_server(make_settings(read_only=True))) as c:
        tools = (await c.list_tools()).tools
        assert tools and all(t.annotations.read_only_hint for t in tools)
        envelope = (await c.call_tool("create_universe", {"name": "x"})).structured_content
        assert envelope["error"]["code"] == "not_found"  # not registered at all
    async with Client(build_server(make_settings(toolsets=["universes"]))) as c:
        names = {t.name for t in (await c.list_tools()).tools}
        assert "list_universes" in names and not any(n.startswith("validate") for n in names)


async def test_every_next_action_names_a_registered_tool_with_valid_arguments(make_settings):
    """Drive a session through every tool; check each hinted call against the live tool list."""
    for overrides in ({}, {"toolsets": ["universes"]}, {"read_only": True}):
        async with Client(build_server(make_settings(**overrides))) as c:
            schemas = {t.name: t.input_schema for t in (await c.list_tools()).tools}
            seen = 0

            async def run(tool: str, **args):
                nonlocal seen
                if tool not in schemas:
                    return None
                envelope = (await c.call_tool(tool, args)).structured_content
                for action in envelope["next_actions"]:
                    assert action["tool"] in schemas, action
                    jsonschema.validate(action["arguments"], schemas[action["tool"]])
                    seen += 1
                return envelope

            created = await run("create_universe", name="U", symbols=["AAPL", "MSFT", "ZZZZ"], validate=False)
            await run("create_universe", name="Empty")
            await run("create_universe", name="u")
            await run("list_universes", limit=1)
            await run("list_universes")
            uid = created["data"]["universe"]["id"] if created else "00000000-0000-0000-0000-000000000000"
            await run("get_universe", universe_id=uid, limit=1)
            await run("get_universe", universe_id="not-an-id")
            await run("add_assets_to_universe", universe_id=uid, symbols=["NVDA"])
            await run("add_assets_to_universe", universe_id=uid, symbols=[f"S{i}" for i in range(1001)])
            await run("remove_assets_from_universe", universe_id=uid, symbols=["NVDA"])
            await run("get_universe_turnover", universe_id=uid)
            await run("update_universe", universe_id=uid, name="U2")
            await run("delete_universe", universe_id=uid)
            await run("get_universe", universe_id=uid)
            assert seen > 0
