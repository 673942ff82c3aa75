"""The dashboard's server side: the Apps extension with the View resource and the page at `/` (the CSV resource is
the `universes` toolset's: tools/universes_csv.py).

* ``extensions(settings)``: the SDK's ``Apps`` extension carrying ``ui://universe/dashboard.html`` (the single-file
  View built from ui/ and committed under server/static/), for ``MCPServer(extensions=...)``. The dashboard tools
  themselves are ordinary toolset tools (tools/dashboard.py) so they pass the server's guard like every other.
* ``register(server, settings)``: the host page for people at ``/`` on the HTTP transport (same origin as /mcp, so no CORS). The page never takes a token in its URL:
  when /mcp answers 401 it asks for one and sends it as an Authorization header from JavaScript.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mcp.server.apps import Apps, ResourceCsp
from mcp.server.extension import Extension
from mcp.server.mcpserver import MCPServer
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from core.settings import Settings
from server import sdk
from tools._toolset import ToolSpec
from tools.dashboard import VIEW_URI

__all__ = ["HOST_HEADERS", "STATIC", "extensions", "register"]

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
# The host page is a single inline bundle that talks only to /mcp on its own origin. The View it frames inherits
# this policy (srcdoc) and narrows it further with the meta CSP the page injects (connect-src 'none').
HOST_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data:; connect-src 'self'; frame-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _static(name: str) -> str:
    path = STATIC / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `make ui` to build the dashboard")
    return path.read_text(encoding="utf-8")


def extensions(settings: Settings) -> list[Extension]:
    """Extensions for MCPServer(extensions=...): Apps with the View, when the dashboard toolset is enabled."""
    if "dashboard" not in settings.toolsets:
        return []
    apps = Apps()
    # csp with no domains: the View may not fetch anything; every action is a tool call through the host.
    apps.add_html_resource(
        VIEW_URI,
        _static("dashboard.html"),
        name="universe-dashboard",
        title="Universe dashboard",
        description="Interactive dashboard for your investment universes.",
        csp=ResourceCsp(),
        prefers_border=True,
    )
    return [apps]


def register(server: MCPServer[Any], specs: Mapping[str, ToolSpec], settings: Settings) -> None:
    """HTTP routes beyond the toolsets; checks that every UI-bound tool (of ``specs``, the registered
    tools) names a registered View."""
    _check_bindings(server, specs)
    if "dashboard" in settings.toolsets:
        _register_host_page(server)


def _check_bindings(server: MCPServer[Any], specs: Mapping[str, ToolSpec]) -> None:
    apps = [ext for ext in sdk.extensions(server) if isinstance(ext, Apps)]
    views = {str(binding.resource.uri) for ext in apps for binding in ext.resources()}
    for name, spec in specs.items():
        uri = ((spec.meta or {}).get("ui") or {}).get("resourceUri")
        if uri is not None and uri not in views:
            # Same rule the Apps extension applies to its own tools: a tool must not point at a View that 404s.
            raise ValueError(f"tool {name!r} binds {uri!r}, but no such ui:// resource is registered")


def _register_host_page(server: MCPServer[Any]) -> None:
    html = _static("host.html")

    @server.custom_route("/", methods=["GET"])
    async def dashboard_page(_request: Request) -> Response:
        return HTMLResponse(html, headers=HOST_HEADERS)
