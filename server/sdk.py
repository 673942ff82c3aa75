"""Every use of the MCP SDK's private internals, in one module, checked against mcp 2.3.0.

The server needs a few things the SDK (``mcp`` 2.x, ``MCPServer``) has no public API for: a registered tool's
object (to trim its published schemas and read its argument names before the SDK validates), the tool's raw
return value (to render the envelope once instead of twice), which resource URI or template a read matched (for
metrics), a request handler on the low-level server (completions that see the lifespan state), the low-level run
loop (stdio behind our own message guard) and the registered extensions (the MCP Apps View bindings).

pyproject.toml pins ``mcp>=2.3,<2.4``; tests/server/test_sdk_internals.py is the canary that fails, naming the
attribute, when an SDK release moves one of them. Check a new SDK minor against it before widening the pin.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.mcpserver import MCPServer

__all__ = [
    "SDK_VERSION_CHECKED",
    "add_request_handler",
    "call_tool_raw",
    "extensions",
    "get_tool",
    "matched_resource",
    "run_lowlevel",
]

SDK_VERSION_CHECKED = "2.3.0"


def get_tool(server: MCPServer[Any], name: str) -> Any:
    """The registered ``Tool`` (``parameters``, ``fn_metadata``), or None."""
    return server._tool_manager.get_tool(name)


async def call_tool_raw(server: MCPServer[Any], name: str, arguments: dict[str, Any], context: Any) -> Any:
    """Run a tool with the SDK's argument validation and return what the function returned, unconverted."""
    return await server._tool_manager.call_tool(name, arguments, context, convert_result=False)


def matched_resource(server: MCPServer[Any], uri: str) -> str:
    """The registered URI (static resources) or URI template (universe://{universe_id}) ``uri`` matches, else
    ``unknown``."""
    manager = server._resource_manager
    if uri in manager._resources:
        return uri
    for template in manager._templates.values():
        try:
            if template.matches(uri) is not None:
                return template.uri_template
        except Exception:  # the SDK's path-traversal check refused it: not a resource
            break
    return "unknown"


def add_request_handler(
    server: MCPServer[Any], method: str, params_type: type, handler: Callable[[Any, Any], Awaitable[Any]]
) -> None:
    """A handler on the low-level server: it gets the request context (lifespan state), which
    ``MCPServer.completion()`` would not pass."""
    server._lowlevel_server.add_request_handler(method, params_type, handler)


async def run_lowlevel(server: MCPServer[Any], read_stream: Any, write_stream: Any) -> None:
    """Serve one session on the given streams (stdio behind server/transports.py's guard)."""
    lowlevel = server._lowlevel_server
    await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())


def extensions(server: MCPServer[Any]) -> list[Any]:
    """The extensions the server was built with (``MCPServer(extensions=...)``)."""
    return list(server._extensions)
