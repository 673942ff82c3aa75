"""What the actors do, free of Dramatiq and MCP: settle a batch of a job's symbols, fail one, refresh stale verdicts,
clean up, rebalance the dynamic universes that are due. Each step is its own unit of work, so nothing holds a
transaction open across the others.

Idempotence: a batch only looks at its items still ``queued``, and writes each outcome with an UPDATE that matches
only a queued item, so running a batch twice (at-least-once delivery) changes nothing the second time. Counters are
recounted from the items in a later transaction than the one that settled them: whichever batch commits last sees
every item settled and completes the job.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.memory import release_freed_memory
from core.settings import Settings
from services import telemetry
from services.errors import UniverseMCPError
from services.rebalancing import DynamicUniverses, Trigger
from services.schedules import check_schedule, next_period_start, period_key
from services.schemas import Caller, SymbolVerdict
from services.security_master.sync import SyncReport
from services.universes import Limits
from services.validation import ValidationService
from storage.db import refresh_planner_statistics, run_write, unit_of_work, utcnow
from storage.repositories import jobs as repo
from storage.repositories import rebalancing as rebalancing_repo
from storage.repositories import universes as universes_repo

__all__ = [
    "BatchResult",
    "JobConfig",
    "JobEnv",
    "LiveCounters",
    "NoLiveCounters",
    "RebalanceReport",
    "ResumableJob",
    "CleanupReport",
    "WatchReport",
    "cleanup",
    "fail_batch",
    "plan_refresh",
    "process_batch",
    "rebalance_after_sync",
    "rebalance_due",
    "refresh_counts",
    "revalidate",
    "sync_changed",
    "unfinished",
    "watch",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class JobConfig:
    batch_size: int = 50
    batch_deadline_s: float = 20.0
    max_retries: int = 4
    max_rate_limit_retries: int = 30
    retry_base_s: float = 5.0
    retry_max_delay_s: float = 300.0
    retention_s: int = 7 * 86_400
    stall_s: int = 1_800
    max_resumes: int = 3
    # A job idle for less than this is not judged lost yet: the server commits a job before it queues the batches,
    # and a batch that was running when Redis restarted may still finish.
    lost_grace_s: float = 10.0
    refresh_max_age_s: int = 86_400
    refresh_limit: int = 2_000

    @classmethod
    def from_settings(cls, settings: Settings) -> JobConfig:
        return cls(
            batch_size=settings.job_batch_size,
            batch_deadline_s=settings.job_batch_deadline_s,
            max_retries=settings.job_max_retries,
            max_rate_limit_retries=settings.job_max_rate_limit_retries,
            retry_base_s=settings.job_retry_base_s,
            retry_max_delay_s=settings.job_retry_max_delay_s,
            retention_s=settings.job_retention_s,
            stall_s=settings.job_stall_s,
            max_resumes=settings.job_max_resumes,
            lost_grace_s=min(10.0, float(settings.job_watch_interval_s)),
            refresh_max_age_s=settings.refresh_max_age_s,
            refresh_limit=settings.refresh_limit,
        )


class LiveCounters(Protocol):
    """Fast-changing job progress for pollers (a Redis hash in distributed mode), and what the broker still holds."""

    async def publish(self, job_id: str, status: str, counts: repo.ItemCounts) -> None: ...

    async def lost(self, job_ids: Sequence[str]) -> set[str]:
        """Jobs whose queued batches the broker no longer holds (its data was lost); empty when unknown."""
        ...


class NoLiveCounters:
    """Embedded mode: pollers read the job row; the in-memory queue is rebuilt on start (``unfinished``)."""

    async def publish(self, job_id: str, status: str, counts: repo.ItemCounts) -> None:
        return None

    async def lost(self, job_ids: Sequence[str]) -> set[str]:
        return set()


class StoreEnv(Protocol):
    """What a rebalance pass needs: units of work on the store and the member quota. A JobEnv is one; so is the
    command line's store after `universe-mcp listings sync` (server/cli_listings.py), which has no validation."""

    limits: Limits

    def uow(self, owner_id: uuid.UUID | None = None) -> AbstractAsyncContextManager[AsyncSession]: ...


@dataclass
class JobEnv:
    """What batch processing needs, in whichever process runs it (the server in embedded mode, or a worker)."""

    config: JobConfig
    sessions: async_sessionmaker[AsyncSession]
    validation: ValidationService
    live: LiveCounters = field(default_factory=NoLiveCounters)
    scoped: bool = False  # PostgreSQL: each transaction acts for the job's owner (row-level security)
    # The factor a retry delay is stretched by, so batches that waited together do not all come back at once.
    jitter: Callable[[], float] = field(default=lambda: random.uniform(1.0, 1.2))
    # What a rebalance may select (the member quota): the settings' limits (core/wiring.py limits_from).
    limits: Limits = field(default_factory=Limits)

    def uow(self, owner_id: uuid.UUID | None = None) -> AbstractAsyncContextManager[AsyncSession]:
        return unit_of_work(self.sessions, owner_id=owner_id if self.scoped else None)


@dataclass
class BatchResult:
    skipped: bool = False  # the job is gone, finished or cancelled
    settled: int = 0
    waiting: int = 0  # symbols left queued for a retry
    retry_in_s: float | None = None
    status: str | None = None


@dataclass(frozen=True, slots=True)
class ResumableJob:
    job_id: uuid.UUID
    owner_id: uuid.UUID
    force_refresh: bool
    symbols: list[str]


UNANSWERABLE_NOTE = "; no configured source can answer it now, so the periodic re-check will try again later"


def _summary(counts: repo.ItemCounts) -> str:
    parts = [
        f"{n} {k}"
        for k, n in (
            ("valid", counts.valid),
            ("invalid", counts.invalid),
            ("pending", counts.pending),
            ("error", counts.error),
        )
        if n
    ]
    return f"Validated {counts.processed} of {counts.total} symbols" + (f": {', '.join(parts)}." if parts else ".")


def _outcome(v: SymbolVerdict, *, note: str = "") -> dict[str, Any]:
    reason = v.reason
    if v.status == "invalid" and v.candidates:
        reason = f"{reason or 'not a listed security'}; similar: {', '.join(v.candidates[:5])}"
    status = v.status if v.status in ("valid", "invalid", "pending") else "pending"
    return {"symbol": v.symbol, "status": status, "source": v.source, "reason": (reason or "") + note or None}


async def refresh_counts(
    env: JobEnv, job_id: uuid.UUID, owner_id: uuid.UUID | None
) -> tuple[str, repo.ItemCounts] | None:
    """Recount the job from its items, store the counters, complete it when nothing is queued; publish live."""
    async with env.uow(owner_id) as session:
        job = await repo.get_job(session, job_id)
        if job is None:
            return None
        counts = await repo.item_counts(session, job_id)
        now = utcnow()
        await repo.write_counts(session, job_id, counts, now)
        status = job.status
        finished = False
        if counts.queued == 0 and status in repo.ACTIVE:
            expires = now + timedelta(seconds=env.config.retention_s)
            if await repo.complete_job(session, job_id, now=now, expires_at=expires, message=_summary(counts)):
                status, finished = "completed", True
        created_at, job_owner = job.created_at, job.owner_id
    if finished:  # after the commit: the line says what the store holds
        telemetry.job_finished(
            job_id,
            job_owner,
            status,
            created_at,
            now,
            total=counts.total,
            valid=counts.valid,
            invalid=counts.invalid,
            pending=counts.pending,
            error=counts.error,
        )
    await env.live.publish(str(job_id), status, counts)
    return status, counts


async def process_batch(
    env: JobEnv, job_id: uuid.UUID, owner_id: uuid.UUID, symbols: Sequence[str], *, force_refresh: bool = False
) -> BatchResult:
    """Validate the batch's still-queued symbols and settle them; leave for a retry those a provider could not
    answer yet (honouring its retry-after), until their retries run out."""
    cfg = env.config
    outcomes: list[dict[str, Any]] = []
    waiting: dict[str, str] = {}
    delays: list[float] = []
    async with env.uow(owner_id) as session:
        job = await repo.get_job(session, job_id)
        if job is None or job.status in repo.FINISHED:
            return BatchResult(skipped=True, status=job.status if job else None)
        if job.status == "queued":
            # Its own short transaction: on SQLite, a write in this one would hold the lock while providers answer.
            async with env.uow(owner_id) as other:
                await repo.mark_running(other, job_id, utcnow())
        queued = await repo.queued_items(session, job_id, list(symbols))
        if queued:
            answers = await env.validation.validate_batch(
                session, list(queued), force_refresh=force_refresh, deadline_s=cfg.batch_deadline_s
            )
            for v in answers.verdicts:
                if v.status in ("valid", "invalid") and not v.stale:
                    outcomes.append(_outcome(v))
                    continue
                tries = queued.get(v.symbol, 0) + 1
                if v.symbol in answers.unanswerable:
                    # No configured source can answer it (offline catalog miss, provider not configured): waiting
                    # and asking again would get the same answer, so it is recorded now; the periodic refresh
                    # re-checks pending symbols when a source may know more.
                    outcomes.append(_outcome(v, note=UNANSWERABLE_NOTE))
                    continue
                rate_limited = v.retry_after_s is not None
                limit = cfg.max_rate_limit_retries if rate_limited else cfg.max_retries
                too_long = rate_limited and (v.retry_after_s or 0) > cfg.retry_max_delay_s
                if tries > limit or too_long:
                    note = " (the provider asked to wait too long)" if too_long else f" (gave up after {tries} tries)"
                    outcomes.append(_outcome(v, note=note))
                    continue
                delay = v.retry_after_s if rate_limited else cfg.retry_base_s * 2 ** (tries - 1)
                delays.append(float(delay or 0.0))
                waiting[v.symbol] = f"{v.reason or 'no provider answered'}; retry {tries} of {limit} queued"
            await repo.settle_items(session, job_id, outcomes, utcnow())
            await repo.bump_attempts(session, job_id, waiting)
    # A redelivered batch whose symbols were all settled lands here too: it only makes sure the job is finished.
    done = await refresh_counts(env, job_id, owner_id)
    retry_in = None
    if waiting:
        # The longest wait asked for, so every waiting symbol's provider is ready again; jitter spreads batches out.
        retry_in = min(max(delays) * env.jitter(), cfg.retry_max_delay_s)
    return BatchResult(
        settled=len(outcomes), waiting=len(waiting), retry_in_s=retry_in, status=done[0] if done else None
    )


async def fail_batch(env: JobEnv, job_id: uuid.UUID, owner_id: uuid.UUID, symbols: Sequence[str], reason: str) -> None:
    """Record the batch's still-queued symbols as ``error`` (its retries ran out), so the job can still finish."""
    async with env.uow(owner_id) as session:
        queued = await repo.queued_items(session, job_id, list(symbols))
        await repo.settle_items(
            session, job_id, [{"symbol": s, "status": "error", "reason": reason} for s in queued], utcnow()
        )
    await refresh_counts(env, job_id, owner_id)


# --- periodic work ------------------------------------------------------------------------------------------------
async def plan_refresh(env: JobEnv) -> list[str]:
    """Symbols to re-validate now: pending ones and universe members with a verdict older than refresh_max_age_s."""
    cutoff = utcnow() - timedelta(seconds=env.config.refresh_max_age_s)
    async with env.uow() as session:
        return await repo.refresh_candidates(session, validated_before=cutoff, limit=env.config.refresh_limit)


async def revalidate(env: JobEnv, symbols: Sequence[str]) -> dict[str, int]:
    """Ask the providers again about ``symbols`` (no job: the verdicts land in the store and the cache)."""
    async with env.uow() as session:
        verdicts = await env.validation.validate(
            session, list(symbols), force_refresh=True, deadline_s=env.config.batch_deadline_s
        )
    counts: dict[str, int] = {}
    for v in verdicts:
        counts[v.status] = counts.get(v.status, 0) + 1
    return counts


async def _resumable(session: AsyncSession, jobs: Sequence[Any]) -> list[ResumableJob]:
    out = []
    for job in jobs:
        symbols = list(await repo.queued_items(session, job.id))
        if symbols:
            out.append(ResumableJob(job.id, job.owner_id, job.force_refresh, symbols))
    return out


async def unfinished(env: JobEnv, *, created_before: datetime) -> list[ResumableJob]:
    """Active jobs created before ``created_before`` with their queued symbols (embedded mode re-queues them on
    start, as its queue lived in memory; jobs this process created since are already queued here)."""
    async with env.uow() as session:
        return await _resumable(session, await repo.unfinished_jobs(session, created_before=created_before))


@dataclass
class CleanupReport:
    deleted_jobs: int = 0


async def cleanup(env: JobEnv) -> CleanupReport:
    """Delete jobs past their expiry (``job_retention_s`` after they finished)."""
    async with env.uow() as session:
        deleted = await repo.delete_expired_jobs(session, utcnow())
    if deleted:
        logger.info("cleanup: deleted %d expired jobs", deleted)
    return CleanupReport(deleted_jobs=deleted)


@dataclass
class WatchReport:
    resumed: list[ResumableJob] = field(default_factory=list)  # to queue again (the caller sends them)
    failed: list[uuid.UUID] = field(default_factory=list)


def _when(at: Any) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


async def watch(env: JobEnv) -> WatchReport:
    """Find active jobs that will not finish on their own and resume or fail them, saying why in the job's message.

    A job is stuck when the broker lost its batches (distributed mode: the marker ``send_job`` set is gone, as after
    a Redis restart without persistence) or when it made no progress for ``stall_s`` (any other way of losing
    messages). Its remaining symbols are queued again (``resumed``: the caller sends them), up to ``max_resumes``
    times without progress in between; after that the job fails and its remaining symbols are recorded as ``error``,
    so it never stays ``running`` for ever. Re-queueing is safe: a batch only settles items still queued.
    """
    cfg = env.config
    now = utcnow()
    async with env.uow() as session:
        active = await repo.unfinished_jobs(session)
    settled_at = now - timedelta(seconds=cfg.lost_grace_s)
    lost = await env.live.lost([str(j.id) for j in active if j.updated_at < settled_at])
    report = WatchReport()
    for job in active:
        lost_batches = str(job.id) in lost
        if not lost_batches and job.updated_at >= now - timedelta(seconds=cfg.stall_s):
            continue
        why = (
            "the job queue had lost its batches (the broker restarted without its data)"
            if lost_batches
            else f"no progress for {int((now - job.updated_at).total_seconds() // 60)} min"
        )
        async with env.uow(job.owner_id) as session:
            symbols = list(await repo.queued_items(session, job.id))
            if not symbols:  # everything is settled: only the completion was missed
                resumable = None
            elif job.resumes >= cfg.max_resumes:
                message = (
                    f"Stopped at {_when(now)}: {why}, after its remaining symbols had been queued again "
                    f"{job.resumes} times without progress (is any worker running? see get_service_health); "
                    f"{len(symbols)} symbols recorded as error. Start a new job for them."
                )
                reason = f"not validated: the job stalled ({why}) and was stopped"
                expires = now + timedelta(seconds=cfg.retention_s)
                if await repo.fail_job(
                    session,
                    job.id,
                    now=now,
                    expires_at=expires,
                    message=message,
                    item_reason=reason,
                    seen_updated_at=job.updated_at,
                ):
                    report.failed.append(job.id)
                    telemetry.job_finished(job.id, job.owner_id, "failed", job.created_at, now, error=len(symbols))
                resumable = None
            else:
                message = (
                    f"Resumed at {_when(now)}: {why}; {len(symbols)} symbols queued again "
                    f"(resumption {job.resumes + 1} of at most {cfg.max_resumes} without progress)."
                )
                # Only if no batch ran since the job was read (nor another watch resumed it): else it is not stuck.
                seen = job.updated_at
                resumed = await repo.mark_resumed(session, job.id, seen_updated_at=seen, now=now, message=message)
                resumable = ResumableJob(job.id, job.owner_id, job.force_refresh, symbols) if resumed else None
        if resumable is not None:
            report.resumed.append(resumable)
        # Counters, completion and the live copy (whose hash a Redis restart also lost).
        await refresh_counts(env, job.id, job.owner_id)
    for resumed_job in report.resumed:
        logger.warning("job %s resumed: %d symbols queued again", resumed_job.job_id, len(resumed_job.symbols))
    for job_id in report.failed:
        logger.warning("job %s stopped: it made no progress after %d resumptions", job_id, cfg.max_resumes)
    return report


async def sync_listings(env: JobEnv, settings: Settings) -> SyncReport:
    """One run of the periodic listings sync: fetch every listing source live and merge it into the security master
    (services/security_master/live.py); the validation service's master then re-reads its data date."""
    from services.security_master.live import sync_live

    report = await sync_live(env.uow, settings)
    if report.applied is not None:
        release_freed_memory()  # the merge's securities and row dicts are garbage now (core/memory.py)
    async with env.uow() as session:
        # The sync may have added or changed thousands of rows (as the server's role: on PostgreSQL with a role of
        # its own, autovacuum keeps the statistics instead, storage/db.py).
        await refresh_planner_statistics(await session.connection())
    master = getattr(env.validation, "master", None)
    if master is not None:
        master.forget()
    return report


# --- dynamic universes --------------------------------------------------------------------------------------------
SCHEDULER = "scheduler"  # the caller name a scheduled rebalance acts under, for the universe's owner
REBALANCE_DUE_LIMIT = 1_000  # most universes one pass rebalances; the rest stay due and come first next time


@dataclass
class RebalanceReport:
    """What one pass over the dynamic universes did."""

    trigger: Trigger
    period: str | None = None  # a sync's key ("sync:<id>"); scheduled runs take their own schedule's period
    seen: int = 0
    applied: int = 0
    done_already: int = 0  # another scheduler, a retry or an earlier pass had done this universe's slot
    skipped: int = 0  # no longer due when its turn came (rebalanced, rescheduled, frozen or deleted meanwhile)
    failed: int = 0
    additions: int = 0
    removals: int = 0
    failures: list[tuple[uuid.UUID, str]] = field(default_factory=list)  # (universe id, the error's code)


async def rebalance_due(
    env: StoreEnv, now: datetime | None = None, *, limit: int = REBALANCE_DUE_LIMIT
) -> RebalanceReport:
    """Rebalance each dynamic universe whose scheduled rebalance is due at ``now`` (default: now), the longest
    waiting first.

    Each universe in its own unit of work, acting for its owner (row-level security on PostgreSQL), recorded under
    its schedule's period (services/schedules.py ``period_key``): the store keeps one run per universe and period,
    so a second scheduler, a retry or a restart within the period finds the run made and changes nothing. A
    universe that fails is logged and counted and the others go on. One whose rebalance cannot succeed as it stands
    (its stored rules no longer check, they select more than a universe may hold) is not tried again before its
    next period; any other failure (the store briefly unavailable) leaves it due for the next pass."""
    now = now or utcnow()
    async with env.uow() as session:  # every owner's universes: the tables' owner, unscoped
        due = await session.run_sync(rebalancing_repo.due_universes, now, limit=limit)
    report = RebalanceReport(trigger="scheduled")
    for universe_id, owner_id in due:
        await _rebalance_one(env, report, universe_id, owner_id, now=now)
    _log_pass(report, len(due))
    return report


async def rebalance_after_sync(env: StoreEnv, sync_id: int | str) -> RebalanceReport:
    """Rebalance every dynamic universe with a schedule once for the listings sync ``sync_id`` (its listing_syncs
    row): delistings and changed facts reach the universes the day they are known. Recorded under the period
    ``sync:<id>``, so a retried or repeated call changes nothing more; the universes' schedules are left as they
    are."""
    key = f"sync:{sync_id}"
    async with env.uow() as session:
        scheduled = await session.run_sync(rebalancing_repo.scheduled_universes)
    report = RebalanceReport(trigger="listings_sync", period=key)
    for universe_id, owner_id in scheduled:
        await _rebalance_one(env, report, universe_id, owner_id, now=utcnow(), period=key)
    _log_pass(report, len(scheduled))
    return report


def sync_changed(report: SyncReport) -> int | None:
    """The id of the listings sync's own row when it changed the security master (new, changed, delisted, renamed,
    adopted or merged securities), else None: a sync that changed nothing gives the universes nothing to follow."""
    applied = report.applied
    if applied is None or applied.sync_id is None:
        return None
    moved = (applied.new, applied.changed, applied.delisted, applied.renamed, applied.adopted, applied.moved)
    return applied.sync_id if any(moved) else None


async def _rebalance_one(
    env: StoreEnv,
    report: RebalanceReport,
    universe_id: uuid.UUID,
    owner_id: uuid.UUID,
    *,
    now: datetime,
    period: str | None = None,
) -> None:
    report.seen += 1
    trigger = report.trigger
    schedule = None
    try:
        async with env.uow(owner_id) as session:
            if trigger == "scheduled":
                universe = await universes_repo.get_universe(session, owner_id, universe_id)
                due_at = universe.next_rebalance_at if universe is not None else None
                if universe is None or universe.kind != "dynamic" or due_at is None or due_at > now:
                    report.skipped += 1
                    return
                schedule = check_schedule(universe.rebalance)
                if schedule is None:
                    report.skipped += 1
                    return
                period = period_key(schedule, now)
            service = DynamicUniverses(session, Caller(owner_id=owner_id, name=SCHEDULER), limits=env.limits)
            result = await service.rebalance(
                universe_id,
                dry_run=False,
                trigger=trigger,
                period=period,
                scheduled_at=now if trigger == "scheduled" else None,
            )
    except UniverseMCPError as error:
        report.failed += 1
        report.failures.append((universe_id, error.code))
        retryable = bool(error.details.get("retryable"))
        postpone = schedule is not None and not retryable
        if schedule is None:  # a sync's rebalance is not repeated: the universe's next scheduled one follows
            then = "its next scheduled rebalance tries again"
        else:
            then = "not tried again before its next period" if postpone else "tried again at the next pass"
        logger.warning(
            "rebalance (%s, %s) of universe %s not applied (%s): %s", trigger, period, universe_id, then, error.message
        )
        failure = {
            "at": now.isoformat(),
            "trigger": trigger,
            "period": period,
            "code": error.code,
            "message": error.message[:500],
        }
        until = next_period_start(schedule, now) if postpone and schedule is not None else None
        await _note_failure(env, universe_id, owner_id, failure, now=now, postpone_until=until)
        return
    except Exception as error:  # the store or a bug: the universe stays due, the others go on
        report.failed += 1
        report.failures.append((universe_id, "internal"))
        logger.exception(
            "rebalance (%s, %s) of universe %s failed (%s)", trigger, period, universe_id, type(error).__name__
        )
        return
    if result.concurrent:
        report.done_already += 1
        if schedule is not None:  # due again though its period is done (its due time was moved back): not again
            await _postpone(env, universe_id, owner_id, now=now, until=next_period_start(schedule, now))
        return
    report.applied += 1
    report.additions += result.addition_count
    report.removals += result.removal_count


async def _postpone(
    env: StoreEnv, universe_id: uuid.UUID, owner_id: uuid.UUID, *, now: datetime, until: datetime
) -> None:
    try:
        async with env.uow(owner_id) as session:
            await run_write(session, rebalancing_repo.postpone_rebalance, universe_id, now, until)
    except Exception:  # it stays due: tried again (and logged again) at the next pass
        logger.exception("could not postpone the rebalance of universe %s", universe_id)


async def _note_failure(
    env: StoreEnv,
    universe_id: uuid.UUID,
    owner_id: uuid.UUID,
    failure: dict[str, Any],
    *,
    now: datetime,
    postpone_until: datetime | None,
) -> None:
    """Keep the failure on the universe for its owner to see (get_universe) and, for one that cannot succeed as it
    stands, move its next try to its next period; one unit of work."""

    def write(session: Any) -> None:
        rebalancing_repo.note_rebalance_failure(session, universe_id, failure)
        if postpone_until is not None:
            rebalancing_repo.postpone_rebalance(session, universe_id, now, postpone_until)

    try:
        async with env.uow(owner_id) as session:
            await run_write(session, write)
    except Exception:  # the store is unavailable: it stays due, and the next pass tries (and logs) again
        logger.exception("could not record the failed rebalance of universe %s", universe_id)


def _log_pass(report: RebalanceReport, candidates: int) -> None:
    if not candidates:
        return
    logger.info(
        "rebalance (%s%s): %d universes, %d rebalanced (+%d -%d members), %d done already, %d skipped, %d failed",
        report.trigger,
        f", {report.period}" if report.period else "",
        candidates,
        report.applied,
        report.additions,
        report.removals,
        report.done_already,
        report.skipped,
        report.failed,
    )
