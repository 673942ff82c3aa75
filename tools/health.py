"""The `health` toolset: one call that says whether the service can do its work, and what is impaired."""

from __future__ import annotations

from services.health import (
    OwnJob,
    ServiceHealth,
    listings_health,
    own_unfinished_jobs,
    service_health,
    tenant_view,
    with_listings,
)
from services.tokens import ADMIN_SCOPE
from tools._deps import Deps
from tools._results import Envelope, NextAction, ok
from tools._toolset import READ, Toolset, ToolSpec

__all__ = ["TOOLSET"]

OWN_JOBS_SHOWN = 20


async def get_service_health(deps: Deps) -> Envelope[ServiceHealth]:
    """Report the service's health (ok | degraded | down), what is impaired, each market-data provider's state (up,
    degraded, rate_limited, circuit_open, misconfigured, not_configured, disabled), the US listings data's date and
    your unfinished jobs.

    Use it when tools fail or jobs do not progress. With the admin scope it also reports the store, cache, job
    broker, workers and queue depths.
    """
    state = deps.state
    report = await service_health(
        engine=state.engine,
        cache_health=state.cache.health,
        jobs_health=state.jobs.health if state.jobs is not None else None,
        providers=state.providers,
        settings=state.settings,
    )
    own_jobs: list[OwnJob] = []
    if report.store is not None and report.store.ok:
        async with deps.unit_of_work() as session:
            own_jobs = await own_unfinished_jobs(session, deps.caller.owner_id, limit=OWN_JOBS_SHOWN)
            report = with_listings(report, await listings_health(session))
    operator = ADMIN_SCOPE in deps.caller.scopes
    if operator:
        report.your_jobs = own_jobs
    else:
        report = tenant_view(report, own_jobs)
    actions = [
        NextAction(tool="get_job_status", arguments={"job_id": j.job_id}, reason="follow your unfinished job")
        for j in own_jobs[:1]
    ]
    if (
        operator
        and report.workers is not None
        and report.queues
        and any(q.get("ready") for q in report.queues.values())
    ):
        actions.append(
            NextAction(tool="get_service_health", arguments={}, reason="check again whether the queue drains")
        )
    message = f"Service {report.status}" + (": " + "; ".join(report.problems) + "." if report.problems else ".")
    return ok(report, message, next_actions=actions, status=report.status, mode=report.mode, view=report.view)


TOOLSET = Toolset(
    id="health",
    description="Health of the service and the market-data providers; infrastructure detail for operators.",
    tools=[ToolSpec(get_service_health, "Service health", READ)],
)
