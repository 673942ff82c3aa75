"""Operational telemetry: the one log line per tool call, resource read and job, and the Prometheus metrics.

MCP-free, so the server, the services and the workers share it. Two rules keep tenant data out of both:

* owners appear only as ``owner_digest(owner_id)``: a short SHA-256 digest an operator can compute for a known owner
  (docs/OPERATIONS.md) but that reveals no id, name or token;
* metric labels come from closed sets (tool names the server registered, error codes, provider and queue names,
  job states): an unknown tool name is counted as ``unknown``, a resource by its URI template, never its URI.

The metrics live in prometheus-client's default registry (with its process and platform collectors). In a
``universe-mcp worker`` process the client runs in multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set by the worker
command), and dramatiq's Prometheus middleware serves every worker process's values together.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import logging
import os
import re
import uuid
from collections.abc import Iterable
from datetime import UTC
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

from services.errors import ERROR_CODES

__all__ = [
    "CACHE_LOOKUPS",
    "JOBS_FINISHED",
    "PROVIDER_CALLS",
    "REQUEST_ID",
    "RESOURCE_READS",
    "RESOURCE_SECONDS",
    "TOOL_CALLS",
    "TOOL_SECONDS",
    "event",
    "job_finished",
    "new_request_id",
    "outcome_label",
    "owner_digest",
    "record_cache_lookups",
    "record_tool_call",
]

logger = logging.getLogger("universe_mcp.access")

# No `*_created` series next to every counter and histogram: they double the output and no query here needs them.
disable_created_metrics()

# The request id of the call being served (set at the HTTP edge from X-Request-Id, or per call); every log record
# emitted while serving it carries it (core/logs.py).
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("universe_mcp_request_id", default=None)
_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

# Seconds. Tool calls range from sub-millisecond cache hits to a bulk validation's wait (job_wait_s, 45 s).
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

TOOL_CALLS = Counter(
    "universe_mcp_tool_calls_total", "Tool calls by tool and outcome (ok or the error code).", ["tool", "outcome"]
)
TOOL_SECONDS = Histogram(
    "universe_mcp_tool_call_duration_seconds",
    "Tool call latency in the server (guard, admission, the tool, the result) by tool and outcome.",
    ["tool", "outcome"],
    buckets=_LATENCY_BUCKETS,
)


@functools.cache
def _tool_series(tool: str, outcome: str) -> tuple[Any, Any]:
    # labels() checks and joins the label values under a lock on every call; the (tool, outcome) pairs are a closed
    # set (unknown tool names count as "unknown"), so each pair's two series are looked up once.
    return TOOL_CALLS.labels(tool, outcome), TOOL_SECONDS.labels(tool, outcome)


def record_tool_call(tool: str, outcome: str, seconds: float) -> None:
    """Count one tool call and its latency (``tool`` from the served set or "unknown")."""
    calls, latency = _tool_series(tool, outcome)
    calls.inc()
    latency.observe(seconds)


RESOURCE_READS = Counter(
    "universe_mcp_resource_reads_total", "Resource reads by URI template and outcome.", ["resource", "outcome"]
)
RESOURCE_SECONDS = Histogram(
    "universe_mcp_resource_read_duration_seconds",
    "Resource read latency by URI template and outcome.",
    ["resource", "outcome"],
    buckets=_LATENCY_BUCKETS,
)
CACHE_LOOKUPS = Counter(
    "universe_mcp_validation_cache_lookups_total",
    "Symbol lookups in the validation cache by result (hit, miss); the hit ratio is hit / (hit + miss).",
    ["result"],
)
PROVIDER_CALLS = Counter(
    "universe_mcp_provider_calls_total",
    "Calls to market-data providers by outcome (ok, unavailable, dns_error, rate_limited, misconfigured, refused "
    "locally: circuit_open, budget).",
    ["provider", "outcome"],
)
JOBS_FINISHED = Counter(
    "universe_mcp_jobs_finished_total", "Bulk validation jobs finished in this process, by final status.", ["status"]
)
JOB_SECONDS = Histogram(
    "universe_mcp_job_duration_seconds",
    "Bulk validation jobs from creation to their final status.",
    ["status"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600),
)
# Scrape-time gauges, set by the server's /metrics handler from the store, the broker and the providers
# (server/metrics.py); multiprocess_mode only matters in worker processes, which do not set them.
PROVIDER_STATE = Gauge(
    "universe_mcp_provider_state",
    "1 for each provider's current state (up, degraded, rate_limited, circuit_open, misconfigured, ...), else 0.",
    ["provider", "state"],
    multiprocess_mode="livemax",
)
PROVIDER_BUDGET = Gauge(
    "universe_mcp_provider_budget_remaining",
    "Calls left in each window of a provider's shared rate budget (e.g. limit='25 per 1 day').",
    ["provider", "limit"],
    multiprocess_mode="livemin",
)
PROVIDER_COOLDOWN = Gauge(
    "universe_mcp_provider_cooldown_seconds",
    "Seconds until a provider's own rate limit is expected to lift.",
    ["provider"],
    multiprocess_mode="livemax",
)
JOBS = Gauge(
    "universe_mcp_jobs",
    "Unfinished bulk validation jobs of every owner, by status.",
    ["status"],
    multiprocess_mode="livemax",
)
QUEUE_MESSAGES = Gauge(
    "universe_mcp_queue_messages",
    "Job broker messages per queue and state (ready, delayed, in_progress).",
    ["queue", "state"],
    multiprocess_mode="livemax",
)
WORKERS = Gauge(
    "universe_mcp_workers", "Job worker processes by state (alive, dead).", ["state"], multiprocess_mode="livemax"
)
LISTINGS_AS_OF = Gauge(
    "universe_mcp_listings_as_of_timestamp_seconds",
    "The date the offline catalog's listings describe (Unix time, midnight UTC).",
    multiprocess_mode="livemax",
)
UP = Gauge(
    "universe_mcp_component_up",
    "1 when a component answers (store, cache, broker), else 0.",
    ["component"],
    multiprocess_mode="livemin",
)

_OUTCOMES = frozenset(("ok", *ERROR_CODES))


def outcome_label(code: str | None) -> str:
    """``ok`` for a success, the error code for a failure (unknown codes count as ``internal``)."""
    if code is None:
        return "ok"
    return code if code in _OUTCOMES else "internal"


def owner_digest(owner_id: uuid.UUID | str | None) -> str | None:
    """A short stable digest of an owner id for logs: correlates one owner's lines, reveals nothing about them.

    ``sha256("owner:" + str(owner_id))``, first 12 hex digits (docs/OPERATIONS.md shows how to compute it for a
    known owner).
    """
    if owner_id is None:
        return None
    return hashlib.sha256(f"owner:{owner_id}".encode()).hexdigest()[:12]


def new_request_id(offered: str | None = None) -> str:
    """``offered`` (an X-Request-Id from a proxy) when it is a sane token, else a fresh random id."""
    if offered and _REQUEST_ID_OK.match(offered):
        return offered
    return os.urandom(8).hex()  # 16 hex digits, as uuid4().hex[:16] gave, without building a UUID per call


def event(name: str, message: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """One structured log line: ``message`` for people, ``fields`` as JSON keys (core/logs.py renders both)."""
    if logger.isEnabledFor(level):
        logger.log(level, message, extra={"event": name, "fields": {k: v for k, v in fields.items() if v is not None}})


def job_finished(
    job_id: Any, owner_id: Any, status: str, created_at: Any, finished_at: Any, **counts: int | None
) -> None:
    """A job's one log line and metrics, when it reaches its final status (completed, failed or cancelled)."""
    elapsed = None
    try:
        elapsed = max(0.0, (_aware(finished_at) - _aware(created_at)).total_seconds())
    except (TypeError, AttributeError):  # not datetimes: no duration
        pass
    JOBS_FINISHED.labels(status).inc()
    if elapsed is not None:
        JOB_SECONDS.labels(status).observe(elapsed)
    fields: dict[str, Any] = {
        "job_id": str(job_id),
        "owner": owner_digest(owner_id),
        "outcome": status,
        "elapsed_ms": round(elapsed * 1000, 3) if elapsed is not None else None,
        **counts,
    }
    event("job", f"job {job_id} {status}" + (f" after {elapsed:.1f} s" if elapsed is not None else ""), **fields)


def _aware(at: Any) -> Any:
    # SQLite hands back naive datetimes; the store writes UTC.
    return at.replace(tzinfo=UTC) if getattr(at, "tzinfo", 1) is None else at


def record_cache_lookups(hits: int, misses: int) -> None:
    if hits:
        CACHE_LOOKUPS.labels("hit").inc(hits)
    if misses:
        CACHE_LOOKUPS.labels("miss").inc(misses)


def known_label(value: str, known: Iterable[str], *, other: str = "unknown") -> str:
    """``value`` when it is one of ``known``, else ``other``: keeps a label's values a closed set."""
    return value if value in set(known) else other


__all__ += ["JOBS", "JOB_SECONDS", "LISTINGS_AS_OF", "PROVIDER_BUDGET", "PROVIDER_COOLDOWN", "PROVIDER_STATE"]
__all__ += ["QUEUE_MESSAGES", "UP", "WORKERS", "known_label"]
