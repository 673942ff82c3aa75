"""API tokens: stored as SHA-256 hashes; the token itself is shown once and never stored."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import rowcount
from storage.models import ApiToken, User

__all__ = ["add_token", "find_by_hash", "list_tokens", "revoke", "touch"]


async def add_token(session: AsyncSession, token: ApiToken) -> ApiToken:
    session.add(token)
    await session.flush()
    return token


async def find_by_hash(session: AsyncSession, token_hash: str) -> tuple[ApiToken, User] | None:
    row = (
        await session.execute(
            select(ApiToken, User).join(User, User.id == ApiToken.user_id).where(ApiToken.token_hash == token_hash)
        )
    ).first()
    return (row[0], row[1]) if row else None


async def list_tokens(session: AsyncSession, user_name: str | None = None) -> list[tuple[ApiToken, User]]:
    stmt = select(ApiToken, User).join(User, User.id == ApiToken.user_id).order_by(User.name, ApiToken.created_at)
    if user_name:
        stmt = stmt.where(User.name == user_name)
    return [(t, u) for t, u in (await session.execute(stmt)).all()]


async def revoke(session: AsyncSession, id_or_prefix: str, at: datetime) -> int:
    try:
        by_id = ApiToken.id == uuid.UUID(id_or_prefix)
    except ValueError:
        by_id = None
    condition = or_(by_id, ApiToken.prefix == id_or_prefix) if by_id is not None else ApiToken.prefix == id_or_prefix
    result = await session.execute(
        update(ApiToken).where(condition, ApiToken.revoked_at.is_(None)).values(revoked_at=at)
    )
    return rowcount(result) or 0


async def touch(session: AsyncSession, token_id: uuid.UUID, at: datetime) -> None:
    await session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=at))
