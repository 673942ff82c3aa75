"""Bulk validation jobs, as tools see them: create (owner-checked), read status and outcomes, cancel, and the one
way a job is started (``JobDesk.start``: by start_bulk_validation, the automatic job for pending members and the
CSV import alike).

MCP-free and broker-free: ``JobService`` works inside one unit of work; ``JobDesk`` runs the steps that span units
of work around it (a job's batches are queued through the ``JobQueue`` — workers/runtime.py — only once the unit of
work that created the job has committed; a job that cannot be queued is failed, so it never looks stuck), and
workers/batches.py settles the items. Every read filters by the caller's owner id, so another owner's job is simply
not found.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from services import telemetry
from services.errors import InvalidArgument, JobNotFound, LimitExceeded, ProviderUnavailable, UniverseNotFound
from services.pagination import decode_cursor, encode_cursor
from services.schemas import Caller
from services.symbols import normalise_symbols
from services.universes import parse_universe_id
from storage.db import utcnow
from storage.models import ValidationJob, ValidationJobItem
from storage.repositories import jobs as repo
from storage.repositories import universes as universe_repo

__all__ = [
    "AUTO_SUBMIT_TIMEOUT_S",
    "SUBMIT_TIMEOUT_S",
    "JobCounts",
    "JobDesk",
    "JobItem",
    "JobLimits",
    "JobQueue",
    "JobService",
    "JobStatus",
    "parse_job_id",
    "status_of",
]

logger = logging.getLogger(__name__)

# How long queueing a new job may hold the call that starts it: a hung Redis must not hold it for its retries' full
# length. The automatic job follows another tool's answer, so that answer is kept fast.
SUBMIT_TIMEOUT_S = 10.0
AUTO_SUBMIT_TIMEOUT_S = 3.0

JobState = Literal["queued", "running", "completed", "failed", "cancelled"]
ItemState = Literal["queued", "valid", "invalid", "pending", "error", "cancelled"]


class JobCounts(BaseModel):
    total: int = Field(description="Symbols in the job.")
    processed: int = Field(description="Symbols with an outcome: valid + invalid + pending + error.")
    valid: int = 0
    invalid: int = 0
    pending: int = Field(0, description="No provider could answer, even after retries; the periodic refresh retries.")
    error: int = Field(0, description="Validation itself failed for these symbols (see each item's reason).")
    cancelled: int = 0
    queued: int = Field(0, description="Not validated yet (including those waiting for a retry).")
    retrying: int = Field(0, description="Queued symbols that were tried and wait for a retry (e.g. a rate limit).")


class JobItem(BaseModel):
    symbol: str
    status: ItemState
    source: str | None = Field(None, description="Who gave the verdict: yahoo | alpha_vantage | catalog ...")
    reason: str | None = None
    attempts: int = 0
    finished_at: datetime | None = None


class JobStatus(BaseModel):
    job_id: str = Field(description="Job id (a UUID): pass it to get_job_status or cancel_job.")
    status: JobState = Field(description="queued | running | completed | failed | cancelled.")
    universe_id: str | None = Field(None, description="The universe whose members are validated, if any.")
    force_refresh: bool = False
    counts: JobCounts
    progress: float = Field(description="Share of symbols with an outcome (0 to 1; cancelled ones count as done).")
    message: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    expires_at: datetime | None = Field(None, description="When the job and its outcomes are deleted.")
    items: list[JobItem] | None = Field(None, description="Per-symbol outcomes in input order (when asked).")
    next_cursor: str | None = Field(None, description="Pass as cursor to get the next page of items.")

    @property
    def done(self) -> bool:
        return self.status in repo.FINISHED


@dataclass(frozen=True, slots=True)
class JobLimits:
    max_symbols: int = 10_000
    max_active: int = 10
    retention_s: int = 7 * 86_400
    page_size_default: int = 50
    page_size_max: int = 200


class JobQueue(Protocol):
    """What the service, the tools and the server ask of the job runtime (workers/runtime.py: ``JobRuntime``)."""

    embedded: bool  # jobs run in this process (no Redis), else in `universe-mcp worker` processes
    redis: Any  # the runtime's asyncio Redis client (distributed mode), None when embedded

    async def submit(
        self,
        job_id: uuid.UUID | str,
        owner_id: uuid.UUID | str,
        symbols: Sequence[str],
        force_refresh: bool = False,
        *,
        delay_s: float = 0.0,
        timeout_s: float | None = None,
    ) -> int: ...

    async def progress(self, job_id: uuid.UUID | str, owner_id: uuid.UUID | None = None) -> dict[str, Any] | None: ...

    async def publish(self, job_id: str, status: str, counts: repo.ItemCounts) -> None: ...

    def follow(self, job_id: str, owner_id: uuid.UUID, notify: Callable[[str], Awaitable[None]]) -> None: ...

    async def health(self) -> dict[str, Any]: ...


def parse_job_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value.strip())
    except (ValueError, AttributeError):
        raise InvalidArgument(
            f"{value[:60]!r} is not a job id (ids are UUIDs such as 6f1c2a4e-...).",
            hint="Use the job_id that start_bulk_validation returned.",
        ) from None


def live_counts(status: JobStatus) -> repo.ItemCounts:
    """A status's counters as the live copy holds them (``JobQueue.publish``), e.g. after a cancel."""
    return repo.ItemCounts(**{k: v for k, v in status.counts.model_dump().items() if k != "processed"})


def status_of(job: ValidationJob, counts: repo.ItemCounts) -> JobStatus:
    done = counts.processed + counts.cancelled
    return JobStatus(
        job_id=str(job.id),
        status=job.status,
        universe_id=str(job.universe_id) if job.universe_id else None,
        force_refresh=job.force_refresh,
        counts=JobCounts(**counts.as_dict()),
        progress=round(done / counts.total, 4) if counts.total else 1.0,
        message=job.message,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        expires_at=job.expires_at,
    )


def _item(row: ValidationJobItem) -> JobItem:
    return JobItem(
        symbol=row.symbol,
        status=row.status,
        source=row.source,
        reason=row.reason,
        attempts=row.attempts,
        finished_at=row.finished_at,
    )


class JobService:
    """Job operations for one caller inside one unit of work (never commits)."""

    def __init__(self, session: AsyncSession, caller: Caller, limits: JobLimits | None = None) -> None:
        self.session = session
        self.caller = caller
        self.limits = limits or JobLimits()

    async def _owned(self, job_id: str) -> ValidationJob:
        jid = parse_job_id(job_id)
        job = await repo.get_owned_job(self.session, self.caller.owner_id, jid)
        if job is None:
            raise JobNotFound(
                f"No job with id {jid} exists for you.",
                hint="Jobs are kept for a limited time after they finish; start a new one with start_bulk_validation.",
            )
        return job

    async def _symbols_of_universe(self, universe_id: str) -> tuple[uuid.UUID, list[str]]:
        uid = parse_universe_id(universe_id)
        if await universe_repo.get_universe(self.session, self.caller.owner_id, uid) is None:
            raise UniverseNotFound(
                f"No universe with id {uid} exists for you.",
                hint="list_universes shows your universes and their ids.",
                next_actions=[("list_universes", {}, "find the universe id by name")],
            )
        cap = self.limits.max_symbols
        symbols = await repo.universe_member_symbols(self.session, self.caller.owner_id, uid, limit=cap + 1)
        if len(symbols) > cap:
            raise LimitExceeded(
                f"The universe has more than {cap} members; one job validates at most {cap}.",
                hint="Pass the members to validate as symbols, in several jobs.",
                details={"limit": cap},
            )
        return uid, symbols

    async def create(
        self,
        *,
        symbols: Sequence[str] | None = None,
        universe_id: str | None = None,
        force_refresh: bool = False,
        message: str | None = None,
        linked_universe_id: str | None = None,
    ) -> tuple[JobStatus, list[str]]:
        """A queued job over ``symbols`` or a universe's members; returns its status and the normalised symbols.

        ``linked_universe_id`` records which universe a symbols job is for (the universe tools' automatic jobs)."""
        if (symbols is None) == (universe_id is None):
            raise InvalidArgument(
                "Pass either symbols or universe_id (exactly one of them).",
                hint="symbols validates a list of tickers; universe_id every member of one of your universes.",
            )
        uid: uuid.UUID | None = None
        if universe_id is not None:
            uid, wanted = await self._symbols_of_universe(universe_id)
            if not wanted:
                add = ("add_assets_to_universe", {"universe_id": str(uid), "symbols": ["AAPL"]}, "add members first")
                raise InvalidArgument("The universe has no members to validate.", next_actions=[add])
        else:
            cap = self.limits.max_symbols
            if len(symbols or []) > cap:
                raise LimitExceeded(
                    f"{len(symbols or [])} symbols in one job; the limit is {cap}.",
                    hint=f"Split the list into jobs of at most {cap} symbols.",
                    details={"limit": cap, "received": len(symbols or [])},
                    next_actions=[
                        (
                            "start_bulk_validation",
                            {"symbols": list(symbols or [])[:cap]},
                            "validate the first part of the list",
                        )
                    ],
                )
            wanted = normalise_symbols(symbols or [])
            uid = parse_universe_id(linked_universe_id) if linked_universe_id else None
            if not wanted:
                raise InvalidArgument("symbols is empty.", hint='Pass one or more tickers, e.g. ["AAPL", "MSFT"].')
        # Count and insert atomically: take the owner's job lock (PostgreSQL), insert the job, then count the
        # owner's active jobs including it. A second creator waits on the lock (PostgreSQL) or the write lock
        # (SQLite) until this transaction ends, so concurrent starts never exceed the cap; over it, the raise rolls
        # the insert back.
        owner = self.caller.owner_id
        await repo.lock_owner_jobs(self.session, owner)
        now = utcnow()
        job = await repo.create_job(
            self.session,
            owner_id=owner,
            total=len(wanted),
            universe_id=uid,
            force_refresh=force_refresh,
            now=now,
            expires_at=now + timedelta(seconds=self.limits.retention_s),
            message=message,
        )
        active = await repo.active_job_count(self.session, owner) - 1  # the others, without this one
        if active >= self.limits.max_active:
            raise LimitExceeded(
                f"You have {active} unfinished validation jobs; the limit is {self.limits.max_active}.",
                hint="Wait for one to finish (get_job_status) or cancel one (cancel_job).",
                details={"limit": self.limits.max_active, "active": active},
            )
        await repo.create_job_items(self.session, job.id, owner, wanted)
        return status_of(job, repo.ItemCounts(total=len(wanted), queued=len(wanted))), wanted

    async def status(
        self,
        job_id: str,
        *,
        include_items: bool = False,
        limit: int | None = None,
        cursor: str | None = None,
        item_status: str | None = None,
    ) -> JobStatus:
        job = await self._owned(job_id)
        status = status_of(job, await repo.item_counts(self.session, job.id))
        if not include_items:
            return status
        size = self.limits.page_size_default if limit is None else limit
        if not 1 <= size <= self.limits.page_size_max:
            raise InvalidArgument(f"limit must be between 1 and {self.limits.page_size_max}; got {limit}.")
        after = decode_cursor("job_items", cursor) if cursor else None
        if after is not None and not isinstance(after, int):
            raise InvalidArgument("The cursor is not one this list returned.")
        rows = await repo.list_items(self.session, job.id, after_position=after, limit=size + 1, status=item_status)
        status.items = [_item(r) for r in rows[:size]]
        if len(rows) > size:
            status.next_cursor = encode_cursor("job_items", rows[size - 1].position)
        return status

    async def active_for_universe(self, universe_id: str) -> str | None:
        """The id of the newest unfinished job validating this universe of the caller's, if any."""
        job_id = await repo.active_job_for_universe(self.session, self.caller.owner_id, parse_universe_id(universe_id))
        return str(job_id) if job_id else None

    async def cancel(self, job_id: str) -> tuple[JobStatus, bool]:
        """Cancel the job if it is still active; returns its status and whether this call cancelled it."""
        job = await self._owned(job_id)
        now = utcnow()
        cancelled = await repo.cancel_job(
            self.session, job.id, now=now, expires_at=now + timedelta(seconds=self.limits.retention_s)
        )
        if cancelled:
            await self.session.refresh(job)
            counts = await repo.item_counts(self.session, job.id)
            await repo.write_counts(self.session, job.id, counts, now)
            telemetry.job_finished(job.id, job.owner_id, "cancelled", job.created_at, now, total=counts.total)
            return status_of(job, counts), True
        return status_of(job, await repo.item_counts(self.session, job.id)), False

    async def fail(self, job_id: str, message: str) -> None:
        """Mark a job that could not be queued as failed (its items as error), so it never looks stuck."""
        job = await self._owned(job_id)
        now = utcnow()
        if await repo.fail_job(
            self.session, job.id, now=now, expires_at=now + timedelta(seconds=self.limits.retention_s), message=message
        ):
            telemetry.job_finished(job.id, job.owner_id, "failed", job.created_at, now)


UnitOfWork = Callable[[], AbstractAsyncContextManager[AsyncSession]]


class JobDesk:
    """A caller's jobs across units of work: start (create, commit, queue), status, cancel (and publish the live
    counters). Built once per tool call (tools/_deps.py: ``ToolDeps.jobs``); ``queue`` is None where no job runtime
    runs (then nothing can be started)."""

    def __init__(self, unit_of_work: UnitOfWork, caller: Caller, limits: JobLimits, queue: JobQueue | None) -> None:
        self.unit_of_work = unit_of_work
        self.caller = caller
        self.limits = limits
        self.queue = queue

    def service(self, session: AsyncSession) -> JobService:
        """The job operations inside one unit of work of the caller's."""
        return JobService(session, self.caller, self.limits)

    async def start(
        self,
        *,
        symbols: Sequence[str] | None = None,
        universe_id: str | None = None,
        force_refresh: bool = False,
        message: str | None = None,
        linked_universe_id: str | None = None,
        delay_s: float = 0.0,
        timeout_s: float = SUBMIT_TIMEOUT_S,
    ) -> tuple[JobStatus, list[str]]:
        """Create a job (its own unit of work, committed), then queue its batches after ``delay_s``; returns its
        status and the normalised symbols. A queue that cannot take it within ``timeout_s`` fails the job (so it
        never looks stuck) and raises ``provider_unavailable``."""
        if self.queue is None:
            raise ProviderUnavailable("No job runtime runs in this process, so no job can be started.")
        async with self.unit_of_work() as session:
            status, wanted = await self.service(session).create(
                symbols=symbols,
                universe_id=universe_id,
                force_refresh=force_refresh,
                message=message,
                linked_universe_id=linked_universe_id,
            )
        try:
            await self.queue.submit(
                status.job_id, self.caller.owner_id, wanted, force_refresh, delay_s=delay_s, timeout_s=timeout_s
            )
        except Exception as exc:  # the broker (Redis) is unreachable or hung
            logger.warning("job %s could not be queued (%s)", status.job_id, type(exc).__name__)
            async with self.unit_of_work() as session:
                await self.service(session).fail(status.job_id, "could not be queued")
            raise ProviderUnavailable(
                "The job queue is unreachable right now, so the job was not started.",
                hint="Try again in a minute; get_service_health shows the broker's state.",
                next_actions=[("get_service_health", {}, "see what is down")],
            ) from None
        return status, wanted

    async def status(
        self,
        job_id: str,
        *,
        include_items: bool = False,
        limit: int | None = None,
        cursor: str | None = None,
        item_status: str | None = None,
    ) -> JobStatus:
        async with self.unit_of_work() as session:
            return await self.service(session).status(
                job_id, include_items=include_items, limit=limit, cursor=cursor, item_status=item_status
            )

    async def cancel(self, job_id: str) -> tuple[JobStatus, bool]:
        """Cancel (committed), then publish the cancelled counters to the live copy pollers read."""
        async with self.unit_of_work() as session:
            status, cancelled = await self.service(session).cancel(job_id)
        if cancelled and self.queue is not None:
            await self.queue.publish(status.job_id, "cancelled", live_counts(status))
        return status, cancelled

    def follow(self, status: JobStatus, notify: Callable[[str], Awaitable[None]]) -> None:
        """Push ``jobs://`` resource-updated events to ``notify`` while the job runs."""
        if not status.done and self.queue is not None:
            self.queue.follow(status.job_id, self.caller.owner_id, notify)
