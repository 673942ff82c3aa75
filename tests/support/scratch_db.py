"""A PostgreSQL database of a test's own, created on the test server and dropped afterwards, for tests that must
not see (or leave) other tests' rows: migrations from an empty schema, searches over a known set of assets."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from sqlalchemy.engine import make_url


@asynccontextmanager
async def scratch_database(postgres_url: str, prefix: str) -> AsyncIterator[str]:
    """Yields the SQLAlchemy URL of a new database named ``prefix`` plus a random suffix on ``postgres_url``'s server."""
    url = make_url(postgres_url)
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    name = f"{prefix}_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await conn.close()
