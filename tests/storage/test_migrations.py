"""Alembic migrations up and down, on SQLite and on PostgreSQL, and the models matching the migrated schema."""

from __future__ import annotations

import secrets

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from storage import migrate
from storage.db import Base, make_engine

pytestmark = [
    pytest.mark.anyio,
    # Expression indexes cannot be reflected on SQLite; the test checks that index by name on PostgreSQL instead.
    pytest.mark.filterwarnings("ignore:.*expression-based index:UserWarning"),
    pytest.mark.filterwarnings("ignore:.*expression-based index"),
]

TABLES = {
    "users",
    "api_tokens",
    "assets",
    "asset_symbols",
    "universes",
    "universe_assets",
    "universe_asset_events",
    "validation_jobs",
    "validation_job_items",
    "owner_quotas",
    "rebalance_runs",
    "universe_rules_versions",
    "server_secrets",
}


async def tables(engine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names())) - {"alembic_version"}


async def drift(engine) -> list:
    def compare(conn):
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        # Expression indexes cannot be reflected on every backend; they are checked by name below instead.
        return [d for d in diffs if not (d[0] in ("add_index", "remove_index") and d[1].name == "ix_assets_name_lower")]

    async with engine.connect() as conn:
        return await conn.run_sync(compare)


async def round_trip(url: str) -> None:
    engine = make_engine(url)
    try:
        await migrate.upgrade(engine)
        assert TABLES <= await tables(engine)
        assert await drift(engine) == [], "models and migrations disagree"
        await migrate.downgrade(engine, "base")
        assert await tables(engine) == set()
        await migrate.upgrade(engine)
        await migrate.upgrade(engine)  # idempotent
        assert TABLES <= await tables(engine)
    finally:
        await engine.dispose()


async def test_migrations_up_and_down_on_sqlite(tmp_path):
    await round_trip(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")


async def test_migrations_up_and_down_on_postgres(postgres_url):
    url = make_url(postgres_url)
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    name = f"umcp_mig_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f"CREATE DATABASE {name}")
    await conn.close()
    try:
        await round_trip(url.set(database=name).render_as_string(hide_password=False))
        check = await asyncpg.connect(
            url.set(drivername="postgresql", database=name).render_as_string(hide_password=False)
        )
        try:
            rls = await check.fetch("SELECT relname FROM pg_class WHERE relrowsecurity ORDER BY relname")
            assert [r["relname"] for r in rls] == sorted(
                [
                    "universes",
                    "universe_assets",
                    "universe_asset_events",
                    "validation_jobs",
                    "validation_job_items",
                    "owner_quotas",
                    "rebalance_runs",
                    "universe_rules_versions",
                ]
            )
            assert await check.fetchval("SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_assets_name_lower'") == 1
        finally:
            await check.close()
    finally:
        conn = await asyncpg.connect(admin)
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await conn.close()
