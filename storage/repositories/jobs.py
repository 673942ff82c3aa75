"""Bulk validation jobs and their per-symbol items. Tool-facing reads filter by owner; worker writes go by job id.

The items are the source of truth: a symbol's outcome is written once, by an UPDATE that only matches while the item
is still ``queued`` (the primary key is (job_id, symbol)), so a redelivered batch cannot count anything twice. Job
counters are derived from the items and written with a guard that never lets an older count overwrite a newer one.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import rowcount
from storage.models import Asset, UniverseAsset, ValidationJob, ValidationJobItem

__all__ = [
    "ACTIVE",
    "FINISHED",
    "ItemCounts",
    "active_job_count",
    "active_job_for_universe",
    "bump_attempts",
    "cancel_job",
    "complete_job",
    "create_job",
    "create_job_items",
    "delete_expired_jobs",
    "fail_job",
    "get_job",
    "get_owned_job",
    "item_counts",
    "list_items",
    "lock_owner_jobs",
    "mark_running",
    "queued_items",
    "refresh_candidates",
    "settle_items",
    "mark_resumed",
    "unfinished_jobs",
    "universe_member_symbols",
    "write_counts",
]

ACTIVE = ("queued", "running")
FINISHED = ("completed", "failed", "cancelled")
_CHUNK = 500  # SQLite caps bound parameters per statement
_JOB_LOCK_CLASS = 0x756A6F62  # "ujob": the advisory-lock class of job creation (PostgreSQL)


@dataclass(frozen=True, slots=True)
class ItemCounts:
    """How a job's items stand, counted from the items themselves."""

    total: int = 0
    valid: int = 0
    invalid: int = 0
    pending: int = 0
    error: int = 0
    cancelled: int = 0
    queued: int = 0
    retrying: int = 0  # queued items that have been tried at least once

    @property
    def processed(self) -> int:
        return self.valid + self.invalid + self.pending + self.error

    def as_dict(self) -> dict[str, int]:
        return {
            "total": self.total,
            "processed": self.processed,
            "valid": self.valid,
            "invalid": self.invalid,
            "pending": self.pending,
            "error": self.error,
            "cancelled": self.cancelled,
            "queued": self.queued,
            "retrying": self.retrying,
        }


# --- creating and reading ---------------------------------------------------------------------------------------------
async def lock_owner_jobs(session: AsyncSession, owner_id: uuid.UUID) -> None:
    """Serialise job creation per owner until the transaction ends, so counting active jobs and inserting one is
    atomic. PostgreSQL: a transaction-level advisory lock keyed by the owner (READ COMMITTED alone lets two
    transactions each count 9 and both insert). SQLite needs nothing here: its one writer lock, taken by the job's
    insert and held to the commit, already keeps a second creator from inserting between our count and commit."""
    if session.get_bind().dialect.name == "postgresql":
        # Two-key form: a class for "job creation" and 32 bits of the owner id. A collision only makes two owners
        # wait for each other's (short) job insert, never wrong.
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:cls, :key)"),
            {"cls": _JOB_LOCK_CLASS, "key": int.from_bytes(owner_id.bytes[:4], "big", signed=True)},
        )


async def create_job(
    session: AsyncSession,
    *,
    owner_id: uuid.UUID,
    total: int,
    universe_id: uuid.UUID | None,
    force_refresh: bool,
    now: datetime,
    expires_at: datetime,
    message: str | None = None,
) -> ValidationJob:
    """Insert the job row (flushed, so a count in the same transaction sees it); its items come separately."""
    job = ValidationJob(
        id=uuid.uuid4(),
        owner_id=owner_id,
        universe_id=universe_id,
        status="queued",
        force_refresh=force_refresh,
        total=total,
        processed=0,
        valid_count=0,
        invalid_count=0,
        pending_count=0,
        error_count=0,
        message=message,
        created_at=now,
        updated_at=now,
        expires_at=expires_at,
    )
    session.add(job)
    await session.flush()
    return job


async def create_job_items(
    session: AsyncSession, job_id: uuid.UUID, owner_id: uuid.UUID, symbols: Sequence[str]
) -> None:
    rows = [
        {"job_id": job_id, "symbol": s, "owner_id": owner_id, "position": i, "status": "queued", "attempts": 0}
        for i, s in enumerate(symbols)
    ]
    for start in range(0, len(rows), _CHUNK):  # core executemany: 10,000 items in one round of statements
        await session.execute(ValidationJobItem.__table__.insert(), rows[start : start + _CHUNK])


async def get_owned_job(session: AsyncSession, owner_id: uuid.UUID, job_id: uuid.UUID) -> ValidationJob | None:
    return await session.scalar(
        select(ValidationJob).where(ValidationJob.id == job_id, ValidationJob.owner_id == owner_id)
    )


async def get_job(session: AsyncSession, job_id: uuid.UUID) -> ValidationJob | None:
    """Any owner's job (workers act for the job's owner)."""
    return await session.scalar(select(ValidationJob).where(ValidationJob.id == job_id))


async def active_job_count(session: AsyncSession, owner_id: uuid.UUID) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(ValidationJob)
            .where(ValidationJob.owner_id == owner_id, ValidationJob.status.in_(ACTIVE))
        )
        or 0
    )


async def unfinished_counts(session: AsyncSession) -> dict[str, int]:
    """Unfinished jobs of every owner by status (for metrics; row-level security may hide other owners' jobs)."""
    rows = await session.execute(
        select(ValidationJob.status, func.count())
        .where(ValidationJob.status.in_(ACTIVE))
        .group_by(ValidationJob.status)
    )
    counts = dict.fromkeys(ACTIVE, 0)
    counts.update({status: int(n) for status, n in rows.all()})
    return counts


async def active_job_for_universe(
    session: AsyncSession, owner_id: uuid.UUID, universe_id: uuid.UUID
) -> uuid.UUID | None:
    return await session.scalar(
        select(ValidationJob.id)
        .where(
            ValidationJob.owner_id == owner_id,
            ValidationJob.universe_id == universe_id,
            ValidationJob.status.in_(ACTIVE),
        )
        .order_by(ValidationJob.created_at.desc())
        .limit(1)
    )


async def item_counts(session: AsyncSession, job_id: uuid.UUID) -> ItemCounts:
    rows = await session.execute(
        select(ValidationJobItem.status, func.count(), func.sum(case((ValidationJobItem.attempts > 0, 1), else_=0)))
        .where(ValidationJobItem.job_id == job_id)
        .group_by(ValidationJobItem.status)
    )
    counts: dict[str, int] = {}
    retrying = 0
    for status, n, tried in rows.all():
        counts[status] = int(n)
        if status == "queued":
            retrying = int(tried or 0)
    return ItemCounts(
        total=sum(counts.values()),
        retrying=retrying,
        **{k: counts.get(k, 0) for k in ("valid", "invalid", "pending", "error", "cancelled", "queued")},
    )


async def list_items(
    session: AsyncSession, job_id: uuid.UUID, *, after_position: int | None, limit: int, status: str | None = None
) -> list[ValidationJobItem]:
    stmt = select(ValidationJobItem).where(ValidationJobItem.job_id == job_id)
    if after_position is not None:
        stmt = stmt.where(ValidationJobItem.position > after_position)
    if status is not None:
        stmt = stmt.where(ValidationJobItem.status == status)
    return list(await session.scalars(stmt.order_by(ValidationJobItem.position).limit(limit)))


async def queued_items(
    session: AsyncSession, job_id: uuid.UUID, symbols: Sequence[str] | None = None
) -> dict[str, int]:
    """Still-queued items of the job (all, or among ``symbols``) with how often each was tried."""
    out: dict[str, int] = {}
    base = select(ValidationJobItem.symbol, ValidationJobItem.attempts).where(
        ValidationJobItem.job_id == job_id, ValidationJobItem.status == "queued"
    )
    if symbols is None:
        return {s: int(a) for s, a in (await session.execute(base.order_by(ValidationJobItem.position))).all()}
    for start in range(0, len(symbols), _CHUNK):
        chunk = list(symbols[start : start + _CHUNK])
        rows = await session.execute(base.where(ValidationJobItem.symbol.in_(chunk)))
        out.update({s: int(a) for s, a in rows.all()})
    return out


async def universe_member_symbols(
    session: AsyncSession, owner_id: uuid.UUID, universe_id: uuid.UUID, limit: int
) -> list[str]:
    """Current tickers of the universe's members, in position order (at most ``limit``)."""
    rows = await session.scalars(
        select(Asset.symbol)
        .join(UniverseAsset, UniverseAsset.asset_id == Asset.id)
        .where(UniverseAsset.universe_id == universe_id, UniverseAsset.owner_id == owner_id)
        .order_by(UniverseAsset.position)
        .limit(limit)
    )
    return list(rows)


# --- worker writes ----------------------------------------------------------------------------------------------------
async def mark_running(session: AsyncSession, job_id: uuid.UUID, now: datetime) -> None:
    await session.execute(
        update(ValidationJob)
        .where(ValidationJob.id == job_id, ValidationJob.status == "queued")
        .values(status="running", started_at=now, updated_at=now)
    )


async def settle_items(
    session: AsyncSession, job_id: uuid.UUID, outcomes: Sequence[Mapping[str, Any]], now: datetime
) -> None:
    """Write each symbol's outcome once: only an item still ``queued`` is updated (keys: symbol, status, source,
    reason)."""
    if not outcomes:
        return
    table = ValidationJobItem.__table__
    stmt = (
        update(table)
        .where(
            table.c.job_id == bindparam("b_job"), table.c.symbol == bindparam("b_symbol"), table.c.status == "queued"
        )
        .values(
            status=bindparam("b_status"),
            source=bindparam("b_source"),
            reason=bindparam("b_reason"),
            attempts=table.c.attempts + 1,
            finished_at=bindparam("b_at"),
        )
    )
    params = [
        {
            "b_job": job_id,
            "b_symbol": o["symbol"],
            "b_status": o["status"],
            "b_source": o.get("source"),
            "b_reason": (o.get("reason") or None) and str(o["reason"])[:300],
            "b_at": now,
        }
        for o in outcomes
    ]
    for start in range(0, len(params), _CHUNK):
        await session.execute(stmt, params[start : start + _CHUNK])


async def bump_attempts(session: AsyncSession, job_id: uuid.UUID, reasons: Mapping[str, str]) -> None:
    """Count one more try of items that stay queued for a retry, with why they are waiting."""
    if not reasons:
        return
    table = ValidationJobItem.__table__
    stmt = (
        update(table)
        .where(
            table.c.job_id == bindparam("b_job"), table.c.symbol == bindparam("b_symbol"), table.c.status == "queued"
        )
        .values(attempts=table.c.attempts + 1, reason=bindparam("b_reason"))
    )
    await session.execute(stmt, [{"b_job": job_id, "b_symbol": s, "b_reason": r[:300]} for s, r in reasons.items()])


async def write_counts(session: AsyncSession, job_id: uuid.UUID, counts: ItemCounts, now: datetime) -> None:
    """Store derived counters; the guard keeps a later, larger count from being overwritten by an older one.
    ``updated_at`` is the job's heartbeat (a batch ran); progress also clears the count of resumptions."""
    await session.execute(
        update(ValidationJob)
        .where(ValidationJob.id == job_id, ValidationJob.processed <= counts.processed)
        .values(
            resumes=case((ValidationJob.processed < counts.processed, 0), else_=ValidationJob.resumes),
            processed=counts.processed,
            valid_count=counts.valid,
            invalid_count=counts.invalid,
            pending_count=counts.pending,
            error_count=counts.error,
            updated_at=now,
        )
    )


async def complete_job(
    session: AsyncSession, job_id: uuid.UUID, *, now: datetime, expires_at: datetime, message: str
) -> bool:
    """Mark an active job completed; False when it was not active (already finished or cancelled)."""
    result = await session.execute(
        update(ValidationJob)
        .where(ValidationJob.id == job_id, ValidationJob.status.in_(ACTIVE))
        .values(status="completed", finished_at=now, updated_at=now, expires_at=expires_at, message=message[:500])
    )
    return bool(rowcount(result))


async def fail_job(
    session: AsyncSession,
    job_id: uuid.UUID,
    *,
    now: datetime,
    expires_at: datetime,
    message: str,
    item_reason: str | None = None,
    seen_updated_at: datetime | None = None,
) -> bool:
    """Fail an active job (only while its ``updated_at`` is still ``seen_updated_at``, when given); its still-queued
    items become ``error`` (with ``item_reason``, else the message). False when nothing was failed."""
    guard = [ValidationJob.id == job_id, ValidationJob.status.in_(ACTIVE)]
    if seen_updated_at is not None:
        guard.append(ValidationJob.updated_at == seen_updated_at)
    result = await session.execute(
        update(ValidationJob)
        .where(*guard)
        .values(status="failed", finished_at=now, updated_at=now, expires_at=expires_at, message=message[:500])
    )
    if not rowcount(result):
        return False
    await session.execute(
        update(ValidationJobItem)
        .where(ValidationJobItem.job_id == job_id, ValidationJobItem.status == "queued")
        .values(status="error", reason=(item_reason or message)[:300], finished_at=now)
    )
    return True


async def cancel_job(session: AsyncSession, job_id: uuid.UUID, *, now: datetime, expires_at: datetime) -> bool:
    """Cancel an active job and every item still queued; False when the job had already finished."""
    result = await session.execute(
        update(ValidationJob)
        .where(ValidationJob.id == job_id, ValidationJob.status.in_(ACTIVE))
        .values(
            status="cancelled", finished_at=now, updated_at=now, expires_at=expires_at, message="cancelled by its owner"
        )
    )
    if not rowcount(result):
        return False
    await session.execute(
        update(ValidationJobItem)
        .where(ValidationJobItem.job_id == job_id, ValidationJobItem.status == "queued")
        .values(status="cancelled", reason="job cancelled before this symbol was validated", finished_at=now)
    )
    return True


# --- periodic work ----------------------------------------------------------------------------------------------------
async def unfinished_jobs(session: AsyncSession, *, created_before: datetime | None = None) -> list[ValidationJob]:
    """Active jobs (created before ``created_before``, when given), oldest first."""
    stmt = select(ValidationJob).where(ValidationJob.status.in_(ACTIVE))
    if created_before is not None:
        stmt = stmt.where(ValidationJob.created_at < created_before)
    return list(await session.scalars(stmt.order_by(ValidationJob.created_at)))


async def mark_resumed(
    session: AsyncSession, job_id: uuid.UUID, *, seen_updated_at: datetime, now: datetime, message: str
) -> bool:
    """Count one more resumption of an active job and say why; ``updated_at`` restarts its stall clock. Only while
    the job is as the caller saw it (``seen_updated_at``): False when a batch ran (or another watch resumed it)
    meanwhile."""
    result = await session.execute(
        update(ValidationJob)
        .where(
            ValidationJob.id == job_id,
            ValidationJob.status.in_(ACTIVE),
            ValidationJob.updated_at == seen_updated_at,
        )
        .values(resumes=ValidationJob.resumes + 1, updated_at=now, message=message[:500])
    )
    return bool(rowcount(result))


async def delete_expired_jobs(session: AsyncSession, now: datetime) -> int:
    """Delete jobs past their expiry (their items go with them, by the foreign key's cascade)."""
    ids = list(await session.scalars(select(ValidationJob.id).where(ValidationJob.expires_at < now)))
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        # Items first: SQLite enforces the cascade only with foreign keys on, so do not rely on it.
        await session.execute(delete(ValidationJobItem).where(ValidationJobItem.job_id.in_(chunk)))
        await session.execute(delete(ValidationJob).where(ValidationJob.id.in_(chunk)))
    return len(ids)


async def refresh_candidates(session: AsyncSession, *, validated_before: datetime, limit: int) -> list[str]:
    """Symbols the periodic refresh re-validates: every pending asset, and universe members whose verdict is older
    than ``validated_before`` (not the security master's: the listings sync keeps those); pending first, then oldest
    verdict first."""
    in_a_universe = select(UniverseAsset.asset_id).where(UniverseAsset.asset_id == Asset.id).exists()
    stale = and_(
        Asset.validation_status.in_(("valid", "invalid")),
        or_(Asset.last_validated_at.is_(None), Asset.last_validated_at < validated_before),
        # The security master's assets are dated by its data and kept current by the listings sync, not here.
        Asset.master_key.is_(None),
        in_a_universe,
    )
    rows = await session.scalars(
        select(Asset.symbol)
        .where(Asset.listing_status == "listed", or_(Asset.validation_status == "pending", stale))
        .order_by(case((Asset.validation_status == "pending", 0), else_=1), Asset.last_validated_at)
        .limit(limit)
    )
    return list(rows)
