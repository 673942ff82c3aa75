"""Users and API tokens."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import User

__all__ = ["get_or_create_user", "get_user_by_name"]


async def get_user_by_name(session: AsyncSession, name: str) -> User | None:
    return await session.scalar(select(User).where(User.name == name))


async def get_or_create_user(session: AsyncSession, name: str) -> User:
    user = await get_user_by_name(session, name)
    if user is None:
        user = User(id=uuid.uuid4(), name=name)
        session.add(user)
        await session.flush()
    return user
