"""Service health (``get_service_health``): the store, the cache, the job broker, workers, queues and providers.

MCP-free. It gathers what each component reports about itself; nothing here changes state (a pruned dead-worker
record aside). Overall status: ``down`` when the store is unreachable, ``degraded`` when anything else is impaired
(cache on its fallback, broker unreachable, no live worker, a provider's circuit open ...), else ``ok``.

Two views of one report: the **operator** view (the ``admin`` scope, and the local user of ``auth=none``) has every
detail — worker host names and pids, queue depths, the broker's namespace, store latency; the **tenant** view keeps
the overall status, the providers' states, problems in words that name no infrastructure, and the caller's own
unfinished jobs (``tenant_view``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime
from typing import Any, Literal

import anyio
from pydantic import BaseModel, Field, PrivateAttr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.settings import Settings

__all__ = [
    "OwnJob",
    "ProviderHealth",
    "ServiceHealth",
    "WorkersHealth",
    "provider_health",
    "service_health",
    "tenant_view",
    "listings_health",
    "with_listings",
]

ProviderState = Literal["up", "degraded", "rate_limited", "circuit_open", "misconfigured", "not_configured", "disabled"]


class StoreHealth(BaseModel):
    ok: bool
    backend: str = Field(description="sqlite or postgresql.")
    latency_ms: float | None = None
    error: str | None = None


class WorkersHealth(BaseModel):
    alive: int = Field(description="Worker processes with a recent heartbeat (embedded: the in-process worker).")
    dead: int = Field(0, description="Workers whose heartbeat stopped within the last hour (killed or cut off).")
    threads: int = Field(0, description="Worker threads of the live workers.")
    busy: int = Field(0, description="Threads running a batch right now.")
    processes: list[dict[str, Any]] = Field(
        default_factory=list, description="Each worker: host, pid, threads, busy, processed, last_seen_s."
    )
    note: str | None = None


class ProviderHealth(BaseModel):
    provider: str
    state: ProviderState
    detail: dict[str, Any] = Field(default_factory=dict)


class OwnJob(BaseModel):
    job_id: str = Field(description="Pass it to get_job_status or cancel_job.")
    status: Literal["queued", "running"]
    universe_id: str | None = None
    total: int
    processed: int
    created_at: datetime


class ListingSourceHealth(BaseModel):
    source: str = Field(description="snapshot (the one shipped with the package) or a listing source's name.")
    as_of: date | None = Field(None, description="The date its data describes.")
    status: Literal["ok", "failed", "refused"]
    fetched_at: datetime
    rows: int
    error: str | None = None


class ListingsHealth(BaseModel):
    as_of: date | None = Field(
        None, description="Date of the security master's data (US listings): its newest successful load or sync."
    )
    sources: list[ListingSourceHealth] = Field(default_factory=list, description="The last load or sync per source.")


class ServiceHealth(BaseModel):
    status: Literal["ok", "degraded", "down"]
    mode: Literal["embedded", "distributed"] = Field(
        description="embedded: one process, no Redis; distributed: Redis broker and `universe-mcp worker` processes."
    )
    view: Literal["operator", "tenant"] = Field(
        "operator",
        description="operator: every detail below (needs the admin scope); tenant: status, providers, problems and "
        "your own jobs only (store, cache, broker, workers and queues are null).",
    )
    store: StoreHealth | None = None
    cache: dict[str, Any] | None = None
    broker: dict[str, Any] | None = None
    workers: WorkersHealth | None = Field(None, description="Null when the broker could not be asked (or tenant view).")
    queues: dict[str, dict[str, int]] | None = Field(
        None, description="Per queue: ready, delayed (waiting for a retry), in_progress messages."
    )
    providers: list[ProviderHealth]
    problems: list[str] = Field(default_factory=list, description="What makes the status less than ok, in words.")
    your_jobs: list[OwnJob] = Field(
        default_factory=list, description="Your unfinished bulk validation jobs (queued or running), newest first."
    )
    listings: ListingsHealth | None = Field(
        None, description="The security master's data: its date, and the last load or sync of each source."
    )
    # Each problem as a tenant may read it (no host, worker or queue detail); not part of the published report.
    _tenant_problems: list[str] = PrivateAttr(default_factory=list)


async def store_health(engine: AsyncEngine, timeout_s: float = 3.0) -> StoreHealth:
    started = time.perf_counter()
    try:
        with anyio.fail_after(timeout_s):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception as exc:  # report the kind only: a message may carry the host or user
        return StoreHealth(ok=False, backend=engine.dialect.name, error=type(exc).__name__)
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    return StoreHealth(ok=True, backend=engine.dialect.name, latency_ms=latency_ms)


def provider_health(providers: Sequence[Any], settings: Settings) -> list[ProviderHealth]:
    """Each provider in the validation chain, plus configured-away ones (so "why is Alpha Vantage not used" shows)."""
    out: list[ProviderHealth] = []
    for provider in providers:
        report = provider.health() if callable(getattr(provider, "health", None)) else {"provider": provider.name}
        state: ProviderState = "up"
        if report.get("misconfigured"):
            state = "misconfigured"
        elif report.get("state") == "open":
            state = "circuit_open"
        elif (report.get("cooldown_s") or 0) > 0:
            state = "rate_limited"
        elif report.get("state") == "half_open" or report.get("rate_limit_degraded"):
            state = "degraded"
        detail = {k: v for k, v in report.items() if k != "provider"}
        out.append(ProviderHealth(provider=str(report.get("provider", provider.name)), state=state, detail=detail))
    names = {p.provider for p in out}
    if getattr(settings, "provider", "auto") == "fake":
        return out
    if "yahoo" not in names:
        why = "offline mode" if settings.offline else "yahoo_enabled is false"
        out.append(ProviderHealth(provider="yahoo", state="disabled", detail={"reason": why}))
    if "alpha_vantage" not in names:
        if settings.alpha_vantage_api_key is None:
            out.append(
                ProviderHealth(
                    provider="alpha_vantage",
                    state="not_configured",
                    detail={"reason": "no UNIVERSE_MCP_ALPHA_VANTAGE_API_KEY"},
                )
            )
        else:
            out.append(ProviderHealth(provider="alpha_vantage", state="disabled", detail={"reason": "offline mode"}))
    return out


async def service_health(
    *,
    engine: AsyncEngine,
    cache_health: Callable[[], Awaitable[dict[str, Any]]],
    jobs_health: Callable[[], Awaitable[dict[str, Any]]] | None,
    providers: Sequence[Any],
    settings: Settings,
) -> ServiceHealth:
    store = await store_health(engine)
    cache = await cache_health()
    jobs: dict[str, Any] = (
        await jobs_health()
        if jobs_health is not None
        else {"broker": {"ok": False, "error": "no job runtime"}, "workers": None, "queues": None}
    )
    workers = WorkersHealth(**jobs["workers"]) if jobs.get("workers") is not None else None
    provider_list = provider_health(providers, settings)
    problems: list[str] = []
    tenant_problems: list[str] = []

    def problem(operator_text: str, tenant_text: str) -> None:
        problems.append(operator_text)
        if tenant_text not in tenant_problems:
            tenant_problems.append(tenant_text)

    if not store.ok:
        problem(f"the store is unreachable ({store.error})", "the store is unreachable: nothing can be read or changed")
    if cache.get("state") not in (None, "up"):
        problem(
            "the cache is on its in-process fallback (Redis unreachable)",
            "the service runs on a fallback: answers may be slower",
        )
    if not jobs["broker"].get("ok"):
        problem(
            "the job broker is unreachable: bulk validation jobs cannot be queued",
            "bulk validation jobs cannot be queued right now",
        )
    if workers is not None and jobs["broker"].get("mode") == "distributed" and workers.alive == 0:
        problem(
            "no live worker: queued jobs wait until a `universe-mcp worker` runs",
            "queued jobs are waiting: no job processing is running",
        )
    if workers is not None and workers.dead:
        problem(
            f"{workers.dead} worker(s) stopped sending heartbeats (their messages are requeued)",
            "some job processing was interrupted; the work is being picked up again",
        )
    for p in provider_list:
        if p.state in ("circuit_open", "misconfigured", "degraded", "rate_limited"):
            text = f"provider {p.provider} is {p.state.replace('_', ' ')}"
            problem(text, text)
    status: Literal["ok", "degraded", "down"] = "down" if not store.ok else ("degraded" if problems else "ok")
    mode = "distributed" if jobs["broker"].get("mode") == "distributed" else "embedded"
    report = ServiceHealth(
        status=status,
        mode=mode,
        store=store,
        cache=cache,
        broker=jobs["broker"],
        workers=workers,
        queues=jobs.get("queues"),
        providers=provider_list,
        problems=problems,
    )
    report._tenant_problems = tenant_problems
    return report


async def own_unfinished_jobs(session: Any, owner_id: uuid.UUID, *, limit: int) -> list[OwnJob]:
    """The owner's queued and running jobs, newest first, at most ``limit`` (storage/repositories/health.py)."""
    from storage.repositories.health import owner_unfinished_jobs

    return [
        OwnJob(
            job_id=str(j.id),
            status=j.status,
            universe_id=str(j.universe_id) if j.universe_id else None,
            total=j.total,
            processed=j.processed,
            created_at=j.created_at,
        )
        for j in await owner_unfinished_jobs(session, owner_id, limit=limit)
    ]


async def listings_health(session: Any) -> ListingsHealth:
    """The master's data date and each source's last load or sync (storage/repositories/listings.py)."""
    from storage.repositories import listings as repo

    syncs = await repo.latest_syncs(session)
    return ListingsHealth(
        as_of=await repo.newest_ok_as_of(session),
        sources=[
            ListingSourceHealth(
                source=s.source, as_of=s.as_of, status=s.status, fetched_at=s.fetched_at, rows=s.rows, error=s.error
            )
            for s in syncs
        ],
    )


def with_listings(report: ServiceHealth, listings: ListingsHealth) -> ServiceHealth:
    """``report`` with the listings part; a source whose last sync failed or was refused is a problem (its
    previous data is still used) — not one that is not configured (the SEC without a User-Agent, Alpha Vantage
    without a key: skipped on purpose, the reason in its row)."""
    from services.security_master.sync import SKIPPED

    report.listings = listings
    for source in listings.sources:
        if source.status != "ok" and not (source.error or "").startswith(SKIPPED):
            text = f"the last sync of listing source {source.source} {source.status}; its previous data is in use"
            report.problems.append(text)
            report._tenant_problems.append(text)
    if report.problems and report.status == "ok":
        report.status = "degraded"
    return report


def tenant_view(report: ServiceHealth, own_jobs: list[OwnJob]) -> ServiceHealth:
    """The report as any tenant may see it: no store, cache, broker, worker or queue detail (host names, pids,
    queue depths, namespaces), providers by state with at most the reason they are off, and the caller's jobs."""
    return ServiceHealth(
        status=report.status,
        mode=report.mode,
        view="tenant",
        providers=[
            ProviderHealth(
                provider=p.provider,
                state=p.state,
                detail={"reason": p.detail["reason"]} if "reason" in p.detail else {},
            )
            for p in report.providers
        ],
        problems=list(report._tenant_problems),
        your_jobs=own_jobs,
        listings=report.listings,
    )
