"""Store liveness, and the caller's own unfinished jobs for get_service_health."""

from __future__ import annotations

import uuid

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ValidationJob

__all__ = ["owner_unfinished_jobs", "ping"]


async def ping(session: AsyncSession) -> None:
    await session.execute(text("SELECT 1"))


async def owner_unfinished_jobs(session: AsyncSession, owner_id: uuid.UUID, *, limit: int) -> list[ValidationJob]:
    """``owner_id``'s queued and running jobs, newest first."""
    return list(
        (
            await session.scalars(
                select(ValidationJob)
                .where(ValidationJob.owner_id == owner_id, ValidationJob.status.in_(("queued", "running")))
                .order_by(ValidationJob.created_at.desc())
                .limit(limit)
            )
        ).all()
    )
