"""Deployment-wide secrets kept in the store, so that every replica sharing it reads the same value."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ServerSecret
from storage.repositories.upsert import insert_ignoring_conflicts

__all__ = ["get_or_create_secret", "new_secret"]


def new_secret() -> str:
    return secrets.token_urlsafe(48)


async def get_or_create_secret(session: AsyncSession, name: str) -> str:
    """The secret called ``name``; created (random) when missing. Concurrent first calls agree on one value.

    Migration 0005 creates the cursor key, so the insert only runs on a store whose row was deleted."""
    value = await session.scalar(select(ServerSecret.value).where(ServerSecret.name == name))
    if value is None:
        await session.execute(insert_ignoring_conflicts(session, ServerSecret).values(name=name, value=new_secret()))
        value = await session.scalar(select(ServerSecret.value).where(ServerSecret.name == name))
    assert value is not None
    return value
