"""The `jobs` toolset: bulk validation as background jobs (start, follow, cancel), the ``jobs://{job_id}`` resource,
and the hook that queues symbols added to a universe as pending.

Every job starts the one way (services/jobs.py: ``JobDesk.start``): created in one unit of work, then its batches are
queued (workers/runtime.py), so a job handle comes back at once. With ``wait=true`` the call stays open, streaming
MCP progress notifications, until the job is done or job_wait_s has passed. While a job runs, ``jobs://{job_id}``
resource-updated events are published to listeners.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import Context
from pydantic import Field

from services.errors import UniverseMCPError
from services.jobs import AUTO_SUBMIT_TIMEOUT_S, JobDesk, JobStatus
from services.schemas import MembershipReport
from tools._deps import AppContext, Deps, ToolDeps, tool_deps
from tools._results import Envelope, NextAction, ok
from tools._toolset import DESTRUCTIVE, READ, WRITE, ResourceSpec, Toolset, ToolSpec

__all__ = ["TOOLSET", "queue_pending_symbols"]

logger = logging.getLogger(__name__)

JobId = Annotated[str, Field(description="Job id (a UUID) as returned by start_bulk_validation.")]
POLL_S = 0.25


def _describe(status: JobStatus) -> str:
    c = status.counts
    parts = [
        f"{n} {k}"
        for k, n in (
            ("valid", c.valid),
            ("invalid", c.invalid),
            ("pending", c.pending),
            ("error", c.error),
            ("cancelled", c.cancelled),
        )
        if n
    ]
    text = f"Job {status.job_id} is {status.status}: {c.processed} of {c.total} symbols validated"
    text += f" ({', '.join(parts)})" if parts else ""
    if c.retrying and not status.done:
        text += f"; {c.retrying} waiting for a provider to allow a retry"
    return text + "."


def _follow_up(status: JobStatus) -> list[NextAction]:
    jid = status.job_id
    if not status.done:
        return [
            NextAction(tool="get_job_status", arguments={"job_id": jid}, reason="check progress in a few seconds"),
            NextAction(tool="cancel_job", arguments={"job_id": jid}, reason="stop it if it is no longer needed"),
        ]
    actions: list[NextAction] = []
    for item_status in ("invalid", "pending", "error"):
        if getattr(status.counts, item_status):
            actions.append(
                NextAction(
                    tool="get_job_status",
                    arguments={"job_id": jid, "include_items": True, "item_status": item_status},
                    reason=f"see the {item_status} symbols and why",
                )
            )
    if status.universe_id:
        actions.append(
            NextAction(
                tool="get_universe",
                arguments={"universe_id": status.universe_id},
                reason="review the universe with its refreshed validation status",
            )
        )
    return actions


async def _wait(deps: ToolDeps, jobs: JobDesk, ctx: Context, status: JobStatus) -> JobStatus:
    """Stream progress until the job is done or job_wait_s has passed; then the exact status from the store."""
    runtime = deps.state.jobs
    assert runtime is not None  # a job was just started through it
    deadline = time.monotonic() + deps.state.settings.job_wait_s
    last: tuple[Any, ...] | None = None
    while True:
        live = await runtime.progress(status.job_id, deps.caller.owner_id)
        if live is None:
            break
        seen = (live["status"], live["processed"])
        if seen != last:
            last = seen
            await ctx.report_progress(
                live["processed"],
                live["total"],
                f"{live['processed']} of {live['total']} symbols validated "
                f"({live['valid']} valid, {live['invalid']} invalid, {live['pending']} pending)",
            )
        if live["status"] in ("completed", "failed", "cancelled") or time.monotonic() >= deadline:
            break
        await anyio.sleep(POLL_S)
    return await jobs.status(status.job_id)


async def start_bulk_validation(
    deps: Deps,
    ctx: Context,
    symbols: Annotated[
        list[str] | None,
        Field(
            description="Tickers to validate, up to {settings.max_bulk_symbols} (AAPL, BRK.B, ^GSPC, EURUSD=X). Give this or universe_id."
        ),
    ] = None,
    universe_id: Annotated[str | None, Field(description="Or validate every member of this universe (its id).")] = None,
    force_refresh: Annotated[
        bool, Field(description="Ask the providers again even for freshly cached verdicts.")
    ] = False,
    wait: Annotated[
        bool,
        Field(
            description="Stream progress until the job is done (at most about {settings.job_wait_s} s), then return its status."
        ),
    ] = False,
) -> Envelope[JobStatus]:
    """Validate many tickers (up to {settings.max_bulk_symbols}) or a universe's members as a background job; returns a job handle at once.

    Use it for more than 50 symbols or to re-check a universe. Symbols a provider cannot answer yet (rate limits,
    outages) are retried. Follow the job with get_job_status (per-symbol outcomes, paged) or jobs://{job_id}, stop it
    with cancel_job.
    """
    jobs = deps.jobs()
    status, _ = await jobs.start(symbols=symbols, universe_id=universe_id, force_refresh=force_refresh)
    jobs.follow(status, ctx.notify_resource_updated)
    if wait:
        status = await _wait(deps, jobs, ctx, status)
        message = _describe(status) + ("" if status.done else " Still running: follow it with get_job_status.")
    else:
        batches = -(-status.counts.total // deps.state.settings.job_batch_size)
        message = (
            f"Started job {status.job_id}: {status.counts.total} symbols in {batches} batches. "
            "Follow it with get_job_status."
        )
    return ok(status, message, next_actions=_follow_up(status), job_id=status.job_id, job_status=status.status)


async def get_job_status(
    deps: Deps,
    ctx: Context,
    job_id: JobId,
    include_items: Annotated[bool, Field(description="Include per-symbol outcomes, one page at a time.")] = False,
    limit: Annotated[
        int | None,
        Field(description="Items per page (default {settings.page_size_default}, at most {settings.page_size_max})."),
    ] = None,
    cursor: Annotated[str | None, Field(description="next_cursor from the previous page; omit for the first.")] = None,
    item_status: Annotated[
        Literal["queued", "valid", "invalid", "pending", "error", "cancelled"] | None,
        Field(description="Only items with this outcome (e.g. invalid)."),
    ] = None,
) -> Envelope[JobStatus]:
    """Get a bulk validation job's status (queued, running, completed, failed, cancelled) and counts per outcome.

    Counts: valid, invalid, pending (no provider could answer, even after retries), error, cancelled, queued,
    retrying. include_items adds per-symbol outcomes (source, reason, attempts) in input order, a page at a time;
    filter with item_status.
    """
    if (limit is not None or cursor is not None or item_status is not None) and not include_items:
        include_items = True
    jobs = deps.jobs()
    status = await jobs.status(job_id, include_items=include_items, limit=limit, cursor=cursor, item_status=item_status)
    jobs.follow(status, ctx.notify_resource_updated)
    actions = _follow_up(status)
    if status.next_cursor:
        args: dict[str, Any] = {"job_id": status.job_id, "include_items": True, "cursor": status.next_cursor}
        if limit is not None:
            args["limit"] = limit
        if item_status is not None:
            args["item_status"] = item_status
        actions.insert(0, NextAction(tool="get_job_status", arguments=args, reason="get the next page of outcomes"))
    return ok(status, _describe(status), next_actions=actions, job_status=status.status, progress=status.progress)


async def cancel_job(deps: Deps, job_id: JobId) -> Envelope[JobStatus]:
    """Cancel a bulk validation job: symbols not validated yet are skipped; outcomes already recorded are kept.

    Cancelling a finished job changes nothing and says so.
    """
    status, cancelled = await deps.jobs().cancel(job_id)
    if cancelled:
        message = (
            f"Cancelled job {status.job_id}: {status.counts.cancelled} symbols skipped, "
            f"{status.counts.processed} already validated."
        )
    else:
        message = f"Job {status.job_id} had already {status.status}; nothing to cancel."
    return ok(status, message, next_actions=_follow_up(status), job_status=status.status, cancelled=cancelled)


async def queue_pending_symbols(
    deps: ToolDeps, envelope: Envelope, report: MembershipReport, universe_id: str
) -> Envelope:
    """Hook for the universe tools: queue a job for members just added as ``pending`` (no provider could answer),
    after job_auto_delay_s; name it in next_actions and metadata. Best effort: never fails the call it follows."""
    pending = [r.symbol for r in report.results if r.outcome == "added" and r.validation_status == "pending"]
    if not pending or deps.state.jobs is None:
        return envelope
    settings = deps.state.settings
    try:
        status, wanted = await deps.jobs().start(
            symbols=pending[: settings.max_bulk_symbols],
            message="automatic: symbols added to a universe while no provider could answer",
            linked_universe_id=universe_id,
            delay_s=settings.job_auto_delay_s,
            timeout_s=AUTO_SUBMIT_TIMEOUT_S,
        )
    except UniverseMCPError as exc:  # e.g. too many active jobs: the periodic refresh will still take them
        logger.info("pending symbols not queued as a job: %s", exc.code)
        return envelope
    except Exception:
        logger.warning("pending symbols not queued as a job", exc_info=True)
        return envelope
    # This job already validates them: point at it instead of suggesting a second job over the same members.
    envelope.next_actions = [
        NextAction(
            tool="get_job_status",
            arguments={"job_id": status.job_id},
            reason=f"{len(wanted)} pending symbol(s) are re-checked in the background by this job",
        ),
        *(a for a in envelope.next_actions if not _starts_job_for(a, universe_id)),
    ]
    envelope.metadata["validation_job_id"] = status.job_id
    return envelope


def _starts_job_for(action: NextAction, universe_id: str) -> bool:
    return action.tool == "start_bulk_validation" and action.arguments.get("universe_id") == universe_id


async def job_resource(job_id: str, ctx: AppContext) -> str:
    jobs = (await tool_deps(ctx)).jobs()
    status = await jobs.status(job_id, include_items=True, limit=jobs.limits.page_size_max)
    jobs.follow(status, ctx.notify_resource_updated)
    return json.dumps(status.model_dump(mode="json"), separators=(",", ":"))


TOOLSET = Toolset(
    id="jobs",
    description="Bulk validation as background jobs: start, follow with progress, cancel.",
    instructions="Use start_bulk_validation for more than {settings.max_inline_validation} symbols; follow the job with get_job_status.",
    tools=[
        ToolSpec(
            start_bulk_validation,
            "Start bulk validation",
            WRITE.model_copy(update={"open_world_hint": True}),
            scope="validate",
        ),
        ToolSpec(get_job_status, "Job status", READ),
        ToolSpec(cancel_job, "Cancel job", DESTRUCTIVE, scope="write"),
    ],
    resources=[
        ResourceSpec(
            "jobs://{job_id}",
            job_resource,
            title="Validation job",
            description="A bulk validation job: status, counts and the first {settings.page_size_max} per-symbol "
            "outcomes. Listeners get resource-updated events while it runs.",
        )
    ],
)
