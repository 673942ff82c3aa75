"""Migration 0012 (dynamic universes) on a store that holds universes, members and history, on SQLite and on
PostgreSQL: every member and event is still there afterwards (a batch rebuild of ``universes`` on SQLite would drop
the table and cascade-delete them), existing universes are static at rules version 0, and down and up again keeps
them too."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from storage import migrate
from storage.db import make_engine
from storage.models import Asset, Universe, UniverseAsset, UniverseAssetEvent, User
from tests.support.scratch_db import scratch_database

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def populate(engine) -> uuid.UUID:
    owner, universe = uuid.uuid4(), uuid.uuid4()
    assets = [uuid.uuid4() for _ in range(3)]
    async with engine.begin() as conn:
        await conn.execute(User.__table__.insert(), [{"id": owner, "name": "alice"}])
        await conn.execute(
            Universe.__table__.insert(),
            [
                {
                    "id": universe,
                    "owner_id": owner,
                    "name": "Kept",
                    "name_key": "kept",
                    "kind": "static",
                    "created_at": T0,
                    "updated_at": T0,
                }
            ],
        )
        await conn.execute(
            Asset.__table__.insert(),
            [{"id": a, "symbol": f"ZZ{i}", "validation_status": "valid"} for i, a in enumerate(assets)],
        )
        await conn.execute(
            UniverseAsset.__table__.insert(),
            [
                {"universe_id": universe, "asset_id": a, "owner_id": owner, "position": i, "added_at": T0}
                for i, a in enumerate(assets)
            ],
        )
        await conn.execute(  # run_id, new in 0012, has no default: the insert does not name it
            UniverseAssetEvent.__table__.insert(),
            [
                {
                    "universe_id": universe,
                    "owner_id": owner,
                    "asset_id": a,
                    "action": "added",
                    "effective_at": T0,
                    "recorded_at": T0,
                }
                for a in assets
            ],
        )
    return universe


async def counts(engine, universe: uuid.UUID) -> tuple[int, int]:
    async with engine.connect() as conn:
        members = await conn.scalar(select(func.count()).where(UniverseAsset.universe_id == universe))
        events = await conn.scalar(select(func.count()).where(UniverseAssetEvent.universe_id == universe))
    return int(members or 0), int(events or 0)


async def check(url: str) -> None:
    engine = make_engine(url)
    try:
        await migrate.upgrade(engine, "0011")
        universe = await populate(engine)
        await migrate.upgrade(engine)
        assert await counts(engine, universe) == (3, 3)
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    select(Universe.kind, Universe.rules_version, Universe.rules, Universe.rebalance).where(
                        Universe.id == universe
                    )
                )
            ).one()
        assert tuple(row) == ("static", 0, None, None)
        await migrate.downgrade(engine, "0011")
        assert await counts(engine, universe) == (3, 3)
        await migrate.upgrade(engine)
        assert await counts(engine, universe) == (3, 3)
    finally:
        await engine.dispose()


async def test_migration_0012_keeps_members_and_history_on_sqlite(tmp_path):
    await check(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")


async def test_migration_0012_keeps_members_and_history_on_postgres(postgres_url):
    async with scratch_database(postgres_url, "umcp_m12") as url:
        await check(url)
