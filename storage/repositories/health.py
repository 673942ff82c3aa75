"""Store liveness."""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["ping"]


async def ping(session: AsyncSession) -> None:
    await session.execute(text("SELECT 1"))
