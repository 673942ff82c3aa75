"""Running the server: stdio and streamable HTTP, each behind the message guard (server/guard.py)."""

from __future__ import annotations

import io
import ipaddress
import logging
import sys
from collections.abc import AsyncIterator
from typing import Any

import anyio
import mcp_types as types
from mcp.server.stdio import stdio_server
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.message import SessionMessage
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.settings import Settings
from server import sdk
from server.app import UniverseMCPServer
from server.connections import guarded_protocol
from server.edge import HostOriginGuard, host_rules, is_wildcard_bind
from server.guard import inspect_message, rejection

__all__ = ["MessageGuard", "http_app", "is_loopback", "run_http", "run_stdio"]

logger = logging.getLogger("universe_mcp.server")
READY_BROKER_TIMEOUT_S = 2.0


class _GuardedLines:
    """stdin lines, minus the ones the guard rejects (their answers go to ``rejects``)."""

    def __init__(self, inner: Any, settings: Settings, rejects: Any) -> None:
        self.inner, self.settings, self.rejects = inner, settings, rejects

    def __aiter__(self) -> AsyncIterator[str]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[str]:
        async for line in self.inner:
            verdict = inspect_message(
                line, max_depth=self.settings.max_json_depth, max_bytes=self.settings.max_request_bytes
            )
            if verdict.problem is None:
                yield line
            else:
                logger.info("rejected a stdio message: %s", verdict.problem)
                await self.rejects.send(rejection(verdict))


async def run_stdio(server: UniverseMCPServer, settings: Settings) -> None:
    send_reject, receive_reject = anyio.create_memory_object_stream[dict[str, Any]](16)
    raw = anyio.wrap_file(io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace"))
    stdin = _GuardedLines(raw, settings, send_reject)
    # stdio_server only iterates its stdin (async for line in stdin): an async iterable of lines is enough, though
    # the SDK types it as an AsyncFile.
    async with stdio_server(stdin=stdin) as (read_stream, write_stream):  # type: ignore[arg-type]

        async def answer_rejections() -> None:
            async for payload in receive_reject:
                message = types.jsonrpc_message_adapter.validate_python(payload)
                await write_stream.send(SessionMessage(message))

        async with anyio.create_task_group() as tg:
            tg.start_soon(answer_rejections)
            await sdk.run_lowlevel(server, read_stream, write_stream)
            tg.cancel_scope.cancel()


class MessageGuard:
    """ASGI middleware: checks POST bodies to the MCP endpoint before the SDK parses them."""

    def __init__(self, app: ASGIApp, settings: Settings, path: str = "/mcp") -> None:
        self.app, self.settings, self.path = app, settings, path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].rstrip("/") != self.path:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        limit = self.settings.max_request_bytes
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size <= limit + 1:
                chunks.append(body)
            more = message.get("more_body", False)
        raw = b"".join(chunks)
        verdict = inspect_message(raw[: limit + 1], max_depth=self.settings.max_json_depth, max_bytes=limit)
        if verdict.problem is not None:
            logger.info("rejected an HTTP message: %s", verdict.problem)
            response = JSONResponse(rejection(verdict), status_code=400)
            await response(scope, receive, send)
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """The SDK's own Host/Origin check, switched off: HostOriginGuard (server/edge.py) does it for every route,
    before authentication, with hosts derived from the bind address (the SDK's applies to the MCP endpoint
    only, after authentication, and only when the bind address is literally 127.0.0.1, localhost or ::1)."""
    return TransportSecuritySettings(enable_dns_rebinding_protection=False)


async def readiness(server: UniverseMCPServer) -> tuple[bool, dict[str, Any]]:
    """Store, cache and (when present) broker checks; no auth, no detail that could leak."""
    state = server.app_state
    if state is None:
        return False, {"store": "starting"}
    checks: dict[str, Any] = {}
    try:
        from storage.repositories.health import ping

        async with state.unit_of_work() as session:
            await ping(session)
        checks["store"] = "up"
    except Exception as exc:  # readiness must answer, whatever broke
        checks["store"] = f"down ({type(exc).__name__})"
    cache = await state.cache.health()
    checks["cache"] = cache.get("state", "unknown")
    checks["broker"] = await _broker_check(state)
    # The cache degrades to its in-process fallback, so it does not make a replica unready; the store and, in the
    # distributed layout, the job broker do (no job could be queued).
    ready = checks["store"] == "up" and checks["broker"] in ("up", "embedded")
    return ready, checks


async def _broker_check(state: Any) -> str:
    """``embedded`` (in-process queue), ``up``, or ``down (…)`` when the Redis broker does not answer a ping."""
    jobs = state.jobs
    if jobs is None:
        return "down (no job runtime)"
    if jobs.embedded:
        return "embedded"
    try:
        with anyio.fail_after(READY_BROKER_TIMEOUT_S):
            await jobs.redis.ping()
    except Exception as exc:  # any failure to answer is "not ready"; the kind only, never the URL
        return f"down ({type(exc).__name__})"
    return "up"


def http_app(server: UniverseMCPServer, settings: Settings) -> ASGIApp:
    # Both routes answer without auth: orchestrators probe them.
    @server.custom_route("/healthz", methods=["GET"])
    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @server.custom_route("/readyz", methods=["GET"])
    async def readyz(_request: Request) -> JSONResponse:
        ready, checks = await readiness(server)
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
        )

    if settings.metrics_enabled:
        # Open to the scraper, not to MCP auth: the route checks the metrics token itself (server/metrics.py).
        @server.custom_route("/metrics", methods=["GET"])
        async def metrics(request: Request) -> Response:
            from server.metrics import metrics_response

            return await metrics_response(request, server, settings)

    app = server.streamable_http_app(
        streamable_http_path="/mcp",
        # Stateless: any replica can answer any request (2026 clients need no session; legacy ones get none).
        stateless_http=True,
        max_request_body_size=settings.max_request_bytes,
        transport_security=transport_security(settings),
        host=settings.host,
    )
    from server.metrics import RequestIdMiddleware

    return RequestIdMiddleware(HostOriginGuard(MessageGuard(app, settings), host_rules(settings)))


def run_http(server: UniverseMCPServer, settings: Settings) -> None:
    import uvicorn

    if not is_loopback(settings.host) and settings.auth == "none":
        raise SystemExit(
            f"Refusing to serve {settings.host}:{settings.port} without authentication: anyone who can reach it could "
            "read and change every universe. Bind to loopback (UNIVERSE_MCP_HOST=127.0.0.1), or set "
            "UNIVERSE_MCP_AUTH=token and give clients a token from `universe-mcp token create --user NAME` (or "
            "UNIVERSE_MCP_AUTH=jwt with UNIVERSE_MCP_JWT_ISSUER, UNIVERSE_MCP_JWT_AUDIENCE and UNIVERSE_MCP_JWT_JWKS_URL)."
        )
    if is_wildcard_bind(settings.host) and not settings.allowed_hosts and not settings.public_url:
        logger.warning(
            "bound to %s with neither UNIVERSE_MCP_ALLOWED_HOSTS nor UNIVERSE_MCP_PUBLIC_URL: only loopback host "
            "names are accepted (others get 421); set the names clients use",
            settings.host,
        )
    config = uvicorn.Config(
        http_app(server, settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        # None: uvicorn's own lines go through the root handler, in the server's format (core/logs.py), instead
        # of a second format of its own. No access log: every MCP call has its own line (tool_call, resource_read).
        log_config=None,
        access_log=False,
        lifespan="on",
        # Header and body deadlines and the per-address connection cap (server/connections.py).
        http=guarded_protocol(settings),
    )
    uvicorn.Server(config).run()


def banner(settings: Settings) -> str:
    """What an operator needs on start: version, where it listens and how to connect, data, mode, listings date."""
    from server.version import __version__

    http = settings.transport == "http"
    base = f"http://{settings.host}:{settings.port}"
    lines = [
        f"Universe MCP {__version__}",
        f"  MCP endpoint : {base}/mcp" if http else "  transport    : stdio",
        f"  data         : {settings.describe_store()}",
        f"  mode         : {_mode(settings)}",
        f"  listings     : {_listings_as_of(settings)}",
        f"  cache        : {'redis' if settings.redis_url else 'in-process'}",
        f"  auth         : {settings.auth}"
        + (f" (all data owned by '{settings.local_user}')" if settings.auth == "none" else ""),
        f"  toolsets     : {', '.join(settings.toolsets)}" + (" (read-only)" if settings.read_only else ""),
    ]
    if http and "dashboard" in settings.toolsets:
        lines.insert(2, f"  dashboard    : {base}/  (open in a browser)")
    if http:
        if settings.metrics_enabled:
            guarded = settings.auth != "none" or settings.metrics_token is not None
            lines.append(f"  metrics      : {base}/metrics" + (" (bearer metrics_token)" if guarded else ""))
        lines.append(f"  connect      : claude mcp add --transport http universe-http {base}/mcp")
        lines.append("                 (any MCP client speaking streamable HTTP connects to that URL)")
    else:
        lines.append("  connect      : the MCP client that started this process is connected (stdin/stdout)")
    return "\n".join(lines)


def _mode(settings: Settings) -> str:
    if settings.provider == "fake":
        return "fake provider (tests and benchmarks only)"
    if settings.offline:
        return "offline (offline catalog only; no Yahoo or Alpha Vantage)"
    sources = ["Yahoo Finance"] if settings.yahoo_enabled else []
    if settings.alpha_vantage_api_key is not None:
        sources.append("Alpha Vantage")
    return "online (" + ", ".join([*sources, "offline catalog"]) + ")"


def _listings_as_of(settings: Settings) -> str:
    """The US listings snapshot's date when the server loads it, else the offline catalog's."""
    if settings.listings_load:
        from server.preflight import check_listings_snapshot

        # Checked by the preflight before the banner: a damaged snapshot has already stopped the start.
        return f"US listings snapshot as of {check_listings_snapshot(settings)}"
    try:
        from providers.catalog import catalog_as_of

        return f"offline catalog as of {catalog_as_of().isoformat()}"
    except Exception as exc:  # the banner must not stop the server
        return f"unknown ({type(exc).__name__})"
