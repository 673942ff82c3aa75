"""Per-owner quota bookkeeping (services/quotas.py): the owner's lock row, the new-asset counter, universe counts."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import case, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import OwnerQuota, Universe
from storage.repositories.upsert import insert_ignoring_conflicts

__all__ = ["count_universes", "lock_owner", "new_assets_used", "take_new_assets"]


async def _ensure_row(session: AsyncSession, owner_id: uuid.UUID, now: datetime) -> None:
    await session.execute(
        insert_ignoring_conflicts(session, OwnerQuota).values(owner_id=owner_id, new_assets_used=0, updated_at=now)
    )


async def lock_owner(session: AsyncSession, owner_id: uuid.UUID, now: datetime) -> None:
    """Hold the owner's quota row until the transaction ends: a write, so that on PostgreSQL it is a row lock and on
    SQLite the database's one write lock. Counts read after this cannot change under the caller."""
    await _ensure_row(session, owner_id, now)
    await session.execute(update(OwnerQuota).where(OwnerQuota.owner_id == owner_id).values(updated_at=now))


async def count_universes(session: AsyncSession, owner_id: uuid.UUID) -> int:
    return int(await session.scalar(select(func.count()).where(Universe.owner_id == owner_id)) or 0)


async def take_new_assets(
    session: AsyncSession, owner_id: uuid.UUID, count: int, *, limit: int, window_start_after: datetime, now: datetime
) -> int | None:
    """Count ``count`` new assets against the owner's current window, if they fit in ``limit``: the count after
    taking them, or None (nothing taken) when they do not fit.

    One conditional UPDATE checks and adds at once: on PostgreSQL concurrent callers queue on the row and each
    re-checks the condition against the committed count; on SQLite there is one writer. A window that started at or
    before ``window_start_after`` is over: the count starts again from ``count``.
    """
    await _ensure_row(session, owner_id, now)
    expired = or_(
        OwnerQuota.new_assets_window_start.is_(None), OwnerQuota.new_assets_window_start <= window_start_after
    )
    result = await session.execute(
        update(OwnerQuota)
        .where(OwnerQuota.owner_id == owner_id, or_(expired, OwnerQuota.new_assets_used + count <= limit))
        .values(
            new_assets_used=case((expired, count), else_=OwnerQuota.new_assets_used + count),
            # Typed, so that the timestamp is stored as every other one is (UTCDateTime).
            new_assets_window_start=case(
                (expired, literal(now, OwnerQuota.new_assets_window_start.type)),
                else_=OwnerQuota.new_assets_window_start,
            ),
            updated_at=now,
        )
        .returning(OwnerQuota.new_assets_used)
    )
    return result.scalar_one_or_none()


async def new_assets_used(session: AsyncSession, owner_id: uuid.UUID) -> tuple[int, datetime | None]:
    """The owner's count in its current window and when that window started."""
    row = (
        await session.execute(
            select(OwnerQuota.new_assets_used, OwnerQuota.new_assets_window_start).where(
                OwnerQuota.owner_id == owner_id
            )
        )
    ).first()
    return (int(row[0]), row[1]) if row else (0, None)
