"""Bench-only server entry: the product server with a fake provider, or the SDK floor, over stdio or HTTP.

    python -m bench.serve --transport stdio [--floor] [--fake N] [--fake-latency-ms MS] [--port P]

Settings come from the environment (UNIVERSE_MCP_*), as for `universe-mcp serve`; the only difference from the
product entry is the provider chain: ``FakeProvider.with_generated(N)`` (no network, deterministic) followed by the
offline catalog. ``--floor`` serves a bare ``MCPServer`` with one trivial ``async def`` tool instead: the SDK's own
latency floor on the same transport (guide §11).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from core.settings import Settings
    from server.app import UniverseMCPServer


def floor_server() -> MCPServer:
    from mcp.server.mcpserver import MCPServer

    floor = MCPServer("floor", log_level="WARNING")

    @floor.tool()
    async def ping() -> str:
        """Answer pong."""
        return "pong"

    return floor


def product_server(fake: int, latency_ms: float) -> tuple[UniverseMCPServer, Settings]:
    from core.settings import Settings
    from providers.catalog import CatalogProvider
    from providers.fake import FakeProvider
    from server.app import build_server

    settings = Settings()
    provider = FakeProvider.with_generated(fake, latency_s=latency_ms / 1000)
    return build_server(settings, providers=[provider, CatalogProvider()]), settings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    parser.add_argument("--floor", action="store_true", help="serve the SDK floor (a trivial tool) instead")
    parser.add_argument("--fake", type=int, default=2_000, help="symbols the fake provider knows (SYM00001...)")
    parser.add_argument("--fake-latency-ms", type=float, default=0.0)
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    if args.floor:
        floor = floor_server()
        if args.transport == "stdio":
            asyncio.run(floor.run_stdio_async())
        else:
            import uvicorn

            app = floor.streamable_http_app(streamable_http_path="/mcp", stateless_http=True, host="127.0.0.1")
            uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
        return

    server, settings = product_server(args.fake, args.fake_latency_ms)
    if args.transport == "stdio":
        from server.transports import run_stdio

        asyncio.run(run_stdio(server, settings))
    else:
        from server.transports import run_http

        run_http(server, settings.model_copy(update={"port": args.port, "host": "127.0.0.1"}))


if __name__ == "__main__":
    main()
