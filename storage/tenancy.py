"""Row-level security plumbing of a unit of work (storage/db.py): the owner a PostgreSQL transaction acts for."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["set_current_owner"]


async def set_current_owner(session: AsyncSession, owner_id: uuid.UUID) -> None:
    # is_local=true: the setting ends with the transaction, so a pooled connection never carries it over.
    await session.execute(text("SELECT set_config('app.owner_id', :owner, true)"), {"owner": str(owner_id)})
