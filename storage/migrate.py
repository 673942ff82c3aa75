"""Apply Alembic migrations from code: on server start and for `universe-mcp db upgrade|downgrade`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["alembic_config", "downgrade", "upgrade"]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


async def upgrade(engine: AsyncEngine, revision: str = "head", *, app_role: str | None = None) -> None:
    """Bring the store up to ``revision`` (idempotent; a no-op when already there).

    ``app_role`` (PostgreSQL): the role the server connects as; it is granted access to the tables, which it does
    not own, so row-level security applies to it.
    """

    def run(connection: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)
        if app_role and connection.dialect.name == "postgresql":
            from storage.repositories.tenancy_admin import grant_app_role

            grant_app_role(connection, app_role)

    async with engine.begin() as conn:
        await conn.run_sync(run)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    def run(connection: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)
