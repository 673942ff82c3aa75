"""The canary for server/sdk.py: every SDK internal the server relies on is still where it was, with the shape it
had, in the installed mcp. A failure here names the attribute that moved: fix server/sdk.py (and nothing else)
before widening the mcp pin in pyproject.toml."""

from __future__ import annotations

import inspect
from importlib.metadata import version

import anyio
import pytest
from mcp import Client
from mcp.server.apps import Apps
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CompleteRequestParams, CompleteResult, Completion, ResourceTemplateReference
from pydantic import BaseModel

from server import sdk

pytestmark = pytest.mark.anyio


class Answer(BaseModel):
    value: int


def _server() -> MCPServer:
    server = MCPServer("canary", extensions=[Apps()])

    @server.tool()
    def double(n: int) -> Answer:
        return Answer(value=2 * n)

    @server.resource("canary://static")
    def static() -> str:
        return "s"

    @server.resource("canary://item/{item_id}")
    def item(item_id: str) -> str:
        return item_id

    return server


def test_the_installed_sdk_is_the_minor_version_checked() -> None:
    installed = version("mcp").split(".")[:2]
    assert installed == sdk.SDK_VERSION_CHECKED.split(".")[:2], (
        f"mcp {version('mcp')} is installed; server/sdk.py was checked against {sdk.SDK_VERSION_CHECKED}"
    )


def test_private_attributes_are_where_server_sdk_expects_them() -> None:
    server = _server()
    for name in ("_tool_manager", "_resource_manager", "_lowlevel_server", "_extensions"):
        assert hasattr(server, name), f"MCPServer.{name} is gone: server/sdk.py must change"
    manager = server._resource_manager
    assert isinstance(manager._resources, dict), "ResourceManager._resources is no longer a dict"
    assert isinstance(manager._templates, dict), "ResourceManager._templates is no longer a dict"
    params = inspect.signature(server._tool_manager.call_tool).parameters
    assert "convert_result" in params, "ToolManager.call_tool lost convert_result"
    params = inspect.signature(server._lowlevel_server.add_request_handler).parameters
    assert list(params) == ["method", "params_type", "handler"], "Server.add_request_handler changed its signature"
    assert callable(server._lowlevel_server.create_initialization_options) and callable(server._lowlevel_server.run)


def test_a_registered_tool_exposes_its_schemas_and_conversion() -> None:
    tool = sdk.get_tool(_server(), "double")
    assert tool is not None and sdk.get_tool(_server(), "nope") is None
    assert set(tool.parameters["properties"]) == {"n"}
    metadata = tool.fn_metadata
    assert metadata.output_model is Answer and metadata.wrap_output is False
    assert metadata.output_schema is not None
    assert metadata.convert_result(Answer(value=4)).structured_content == {"value": 4}


def test_resources_match_by_uri_and_template() -> None:
    server = _server()
    assert sdk.matched_resource(server, "canary://static") == "canary://static"
    assert sdk.matched_resource(server, "canary://item/42") == "canary://item/{item_id}"
    assert sdk.matched_resource(server, "canary://other") == "unknown"


def test_the_extensions_are_listed() -> None:
    assert [type(e) for e in sdk.extensions(_server())] == [Apps]


async def test_raw_tool_calls_and_low_level_handlers_work_end_to_end() -> None:
    server = _server()
    seen: list[str] = []

    async def complete(ctx: Context, params: CompleteRequestParams) -> CompleteResult:
        seen.append(params.argument.name)
        return CompleteResult(completion=Completion(values=["ab", "ac"], total=2, has_more=False))

    sdk.add_request_handler(server, "completion/complete", CompleteRequestParams, complete)
    raw: list[object] = []

    @server.tool()
    async def raw_call(ctx: Context) -> str:
        raw.append(await sdk.call_tool_raw(server, "double", {"n": 3}, ctx))
        return "ok"

    with anyio.fail_after(30):
        async with Client(server) as client:
            await client.call_tool("raw_call", {})
            completion = await client.complete(
                ResourceTemplateReference(type="ref/resource", uri="canary://item/{item_id}"),
                {"name": "item_id", "value": "a"},
            )
    assert raw == [Answer(value=6)], "call_tool(convert_result=False) no longer returns the function's value"
    assert seen == ["item_id"] and completion.completion.values == ["ab", "ac"]
