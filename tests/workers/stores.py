"""Stores for the job tests: PostgreSQL laid out as in production (a database of its own, the server connecting as a
role that does not own the tables, so row-level security applies; migrations and workers as the owner)."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator

import asyncpg
from sqlalchemy.engine import make_url

__all__ = ["postgres_store"]


@contextlib.asynccontextmanager
async def postgres_store(postgres_url: str) -> AsyncIterator[dict[str, str]]:
    """A fresh database and a non-owner LOGIN role; yields the settings (database_url as that role,
    database_admin_url as the owner, database_app_role) and drops both afterwards."""
    url = make_url(postgres_url)
    database = f"umcp_jobs_{secrets.token_hex(4)}"
    role = f"umcp_app_{secrets.token_hex(4)}"
    admin_dsn = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f"CREATE DATABASE {database}")
        await conn.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS")
    finally:
        await conn.close()
    try:
        yield {
            "database_url": url.set(database=database, username=role, password=None).render_as_string(
                hide_password=False
            ),
            "database_admin_url": url.set(database=database).render_as_string(hide_password=False),
            "database_app_role": role,
        }
    finally:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            await conn.execute(f"DROP ROLE IF EXISTS {role}")
        finally:
            await conn.close()
