"""The HTTP edge's observability: ``/metrics`` (Prometheus text format) and the request id of every HTTP request.

Counters and histograms are updated where things happen (server/app.py for tool calls and resource reads,
services/validation.py for the cache and providers, workers/batches.py for jobs). The gauges below describe the
current state of shared components, so they are read when Prometheus scrapes: providers' breaker states, budgets and
cooldowns, unfinished jobs, broker queues and workers, component health, the listings' date.

Access (docs/OPERATIONS.md): the output holds no tenant data (no owner, universe, symbol or token: labels are tool
names, error codes, provider, queue and job-state names), so with ``auth=none`` (a loopback-only server) it is
open like /healthz; with ``auth=token`` or ``jwt`` it needs ``Authorization: Bearer <metrics_token>``, since volumes
and error rates are still the operator's business.
"""

from __future__ import annotations

import hmac
import logging
from datetime import UTC, datetime, time
from typing import Any

import anyio
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Gauge, generate_latest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.settings import Settings
from services import telemetry
from services.health import provider_health

__all__ = ["RequestIdMiddleware", "metrics_response", "refresh_gauges"]

logger = logging.getLogger("universe_mcp.server")

# A scrape must answer even when Redis or the store hangs: each probe gets this long, then its gauges are left out.
PROBE_TIMEOUT_S = 2.0
PROVIDER_STATES = ("up", "degraded", "rate_limited", "circuit_open", "misconfigured", "not_configured", "disabled")
BUILD_INFO = Gauge("universe_mcp_build_info", "The server's version and mode (value 1).", ["version", "mode"])


class RequestIdMiddleware:
    """Gives each HTTP request a request id (a proxy's X-Request-Id when sane, else a fresh one), visible to every
    log line written while serving it, and echoes it in the response's X-Request-Id header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                offered = value.decode("latin-1")
                break
        request_id = telemetry.new_request_id(offered)
        token = telemetry.REQUEST_ID.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", request_id.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            telemetry.REQUEST_ID.reset(token)


def authorized(request: Request, settings: Settings) -> bool:
    """Open with auth=none (loopback only); otherwise the metrics token, compared in constant time."""
    if settings.auth == "none" and settings.metrics_token is None:
        return True
    if settings.metrics_token is None:
        return False
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    expected = settings.metrics_token.get_secret_value()
    return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), expected.encode())


async def metrics_response(request: Request, server: Any, settings: Settings) -> Response:
    if not authorized(request, settings):
        hint = (
            "send Authorization: Bearer <UNIVERSE_MCP_METRICS_TOKEN>"
            if settings.metrics_token is not None
            else "set UNIVERSE_MCP_METRICS_TOKEN on the server and send it as a bearer token"
        )
        return PlainTextResponse(f"metrics need a bearer token: {hint}\n", status_code=401)
    state = server.app_state
    if state is not None:
        await refresh_gauges(state)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


async def refresh_gauges(state: Any) -> None:
    """Set the state gauges from the providers, the store and the broker; a probe that fails leaves its gauges out
    (a scrape must not fail because Redis does)."""
    settings: Settings = state.settings
    BUILD_INFO.clear()
    from server.version import __version__

    BUILD_INFO.labels(__version__, "embedded" if settings.redis_url is None else "distributed").set(1)
    _provider_gauges(state)
    await _budget_gauges(state)
    await _job_gauges(state)
    await _broker_gauges(state)
    await _component_gauges(state)
    _listings_gauge()


def _provider_gauges(state: Any) -> None:
    telemetry.PROVIDER_STATE.clear()
    telemetry.PROVIDER_COOLDOWN.clear()
    for report in provider_health(state.providers, state.settings):
        for candidate in PROVIDER_STATES:
            telemetry.PROVIDER_STATE.labels(report.provider, candidate).set(1 if report.state == candidate else 0)
        cooldown = report.detail.get("cooldown_s")
        if isinstance(cooldown, int | float):
            telemetry.PROVIDER_COOLDOWN.labels(report.provider).set(cooldown)


async def _budget_gauges(state: Any) -> None:
    telemetry.PROVIDER_BUDGET.clear()
    for provider in state.providers:
        limiter = getattr(provider, "limiter", None)
        if limiter is None:
            continue
        for window, left in (await limiter.remaining()).items():
            telemetry.PROVIDER_BUDGET.labels(provider.name, window).set(left)


async def _job_gauges(state: Any) -> None:
    """Unfinished jobs by status, counted in the store, when this process can see every owner's jobs: SQLite, or a
    PostgreSQL role that owns the tables. The server's own role under row-level security sees none, so there the
    gauge is left out (the queue gauges and the workers' metrics describe the load)."""
    from storage.repositories import jobs as job_repo

    settings: Settings = state.settings
    telemetry.JOBS.clear()
    if not settings.is_sqlite and settings.admin_sqlalchemy_url != settings.sqlalchemy_url:
        return
    try:
        with anyio.fail_after(PROBE_TIMEOUT_S):
            async with state.unit_of_work() as session:
                counts = await job_repo.unfinished_counts(session)
    except Exception as exc:  # the store's health is reported by component_up
        logger.debug("metrics: job counts unavailable (%s)", type(exc).__name__)
        return
    for status, n in counts.items():
        telemetry.JOBS.labels(status).set(n)


async def _broker_gauges(state: Any) -> None:
    telemetry.QUEUE_MESSAGES.clear()
    telemetry.WORKERS.clear()
    if state.jobs is None:
        return
    try:
        with anyio.fail_after(PROBE_TIMEOUT_S * 2):
            report = await state.jobs.health()
    except Exception as exc:
        logger.debug("metrics: broker state unavailable (%s)", type(exc).__name__)
        return
    for queue, sizes in (report.get("queues") or {}).items():
        for kind, n in sizes.items():
            telemetry.QUEUE_MESSAGES.labels(queue, kind).set(n)
    workers = report.get("workers") or {}
    for kind in ("alive", "dead"):
        if isinstance(workers.get(kind), int):
            telemetry.WORKERS.labels(kind).set(workers[kind])
    broker = report.get("broker") or {}
    telemetry.UP.labels("broker").set(1 if broker.get("ok") else 0)


async def _component_gauges(state: Any) -> None:
    from storage.repositories.health import ping

    try:
        with anyio.fail_after(PROBE_TIMEOUT_S):
            async with state.unit_of_work() as session:
                await ping(session)
        store_up = 1
    except Exception:
        store_up = 0
    telemetry.UP.labels("store").set(store_up)
    try:
        cache = await state.cache.health()
        telemetry.UP.labels("cache").set(1 if cache.get("state") == "up" else 0)
    except Exception:
        telemetry.UP.labels("cache").set(0)


def _listings_gauge() -> None:
    from providers.catalog import catalog_as_of

    try:
        as_of = catalog_as_of()
    except Exception:  # no shipped catalog: no gauge
        return
    telemetry.LISTINGS_AS_OF.set(datetime.combine(as_of, time.min, tzinfo=UTC).timestamp())
