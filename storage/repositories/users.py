"""Users (owners): looked up by name, created on first use."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import utcnow
from storage.models import User

__all__ = ["get_or_create_user", "get_user_by_name"]


async def get_user_by_name(session: AsyncSession, name: str) -> User | None:
    return await session.scalar(select(User).where(User.name == name))


async def get_or_create_user(session: AsyncSession, name: str) -> User:
    """The user called ``name``, created when new.

    Two first requests of one new user (a JWT subject seen by two replicas at once) may both try to create it:
    the insert skips a name that already exists, so the loser reads the winner's row instead of failing.
    """
    user = await get_user_by_name(session, name)
    if user is not None:
        return user
    dialect = postgresql if (await session.connection()).dialect.name == "postgresql" else sqlite
    await session.execute(
        dialect.insert(User)
        .values(id=uuid.uuid4(), name=name, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=[User.name])
    )
    user = await get_user_by_name(session, name)
    assert user is not None
    return user
