"""The `health` toolset: one call that says whether the service can do its work, and what is impaired."""

from __future__ import annotations

from server.context import Deps
from services.health import ServiceHealth, service_health
from tools._results import Envelope, NextAction, ok
from tools._toolset import READ, Toolset, ToolSpec

__all__ = ["TOOLSET"]


async def get_service_health(deps: Deps) -> Envelope[ServiceHealth]:
    """Report the health of the service: the store, the cache, the job broker, workers and queues, and providers.

    Use it when tools fail or jobs do not progress. Returns status ok | degraded | down with the problems in words;
    the store (reachable, latency); the cache (Redis or in-process, breaker state); the broker (embedded in-process
    queue or Redis); workers (live and dead worker processes, threads, busy threads); queue depths (ready, delayed
    for a retry, in progress); and each market-data provider: up, degraded, rate_limited, circuit_open,
    misconfigured, not_configured (e.g. no Alpha Vantage key) or disabled (offline mode).
    """
    state = deps.state
    report = await service_health(
        engine=state.engine,
        cache_health=state.cache.health,
        jobs_health=state.jobs.health if state.jobs is not None else None,
        providers=state.providers,
        settings=state.settings,
    )
    actions = []
    if report.workers is not None and report.queues and any(q.get("ready") for q in report.queues.values()):
        actions.append(
            NextAction(tool="get_service_health", arguments={}, reason="check again whether the queue drains")
        )
    message = f"Service {report.status}" + (": " + "; ".join(report.problems) + "." if report.problems else ".")
    return ok(report, message, next_actions=actions, status=report.status, mode=report.mode)


TOOLSET = Toolset(
    id="health",
    description="Health of the store, cache, job broker, workers, queues and market-data providers.",
    tools=[ToolSpec(get_service_health, "Service health", READ)],
)
