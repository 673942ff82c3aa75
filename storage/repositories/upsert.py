"""INSERT ... ON CONFLICT DO NOTHING on either backend (both SQLite and PostgreSQL speak it)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["insert_ignoring_conflicts"]


def insert_ignoring_conflicts(session: AsyncSession, model: Any) -> Any:
    """An INSERT into ``model``'s table that skips rows whose key already exists (add ``.values(...)``)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(model).on_conflict_do_nothing()
