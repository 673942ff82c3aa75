"""Migration 0008 on a store whose concurrent adds left duplicate positions (issue 10, item 1), on SQLite and on
PostgreSQL: the crowded universe is renumbered in its order, the others keep their positions, and the unique index
then refuses a duplicate. Down and up again."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from storage import migrate
from storage.db import make_engine
from storage.models import Asset, Universe, UniverseAsset, User
from tests.support.scratch_db import scratch_database

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def populate(engine) -> tuple[uuid.UUID, uuid.UUID, list[uuid.UUID]]:
    owner, crowded, tidy = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assets = [uuid.uuid4() for _ in range(5)]
    async with engine.begin() as conn:
        await conn.execute(User.__table__.insert(), [{"id": owner, "name": "alice"}])
        await conn.execute(
            Universe.__table__.insert(),
            [
                {
                    "id": u,
                    "owner_id": owner,
                    "name": n,
                    "name_key": n,
                    "kind": "static",
                    "created_at": T0,
                    "updated_at": T0,
                }
                for u, n in ((crowded, "crowded"), (tidy, "tidy"))
            ],
        )
        await conn.execute(
            Asset.__table__.insert(),
            [{"id": a, "symbol": f"ZZ{i}", "validation_status": "unknown"} for i, a in enumerate(assets)],
        )
        # Two racing adds both started at position 1: (a1, a3) and (a2, a4) share positions 1 and 2.
        rows = [
            (crowded, assets[0], 0, 0),
            (crowded, assets[1], 1, 1),
            (crowded, assets[2], 1, 2),
            (crowded, assets[3], 2, 1),
            (crowded, assets[4], 2, 2),
            (tidy, assets[0], 7, 0),
            (tidy, assets[1], 9, 1),
        ]
        await conn.execute(
            UniverseAsset.__table__.insert(),
            [
                {
                    "universe_id": u,
                    "asset_id": a,
                    "owner_id": owner,
                    "position": p,
                    "added_at": T0 + timedelta(seconds=s),
                }
                for u, a, p, s in rows
            ],
        )
    return crowded, tidy, assets


async def positions(engine, universe_id) -> list[tuple[uuid.UUID, int]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(UniverseAsset.asset_id, UniverseAsset.position)
            .where(UniverseAsset.universe_id == universe_id)
            .order_by(UniverseAsset.position)
        )
        return [(a, p) for a, p in rows.all()]


async def check(url: str) -> None:
    engine = make_engine(url)
    try:
        await migrate.upgrade(engine, "0007")
        crowded, tidy, a = await populate(engine)
        await migrate.upgrade(engine)
        # Order kept: position, then when added (a1 before a2 at position 1, a3 before a4 at position 2).
        assert await positions(engine, crowded) == [(a[0], 0), (a[1], 1), (a[2], 2), (a[3], 3), (a[4], 4)]
        assert await positions(engine, tidy) == [(a[0], 7), (a[1], 9)]
        with pytest.raises(IntegrityError):
            async with engine.begin() as conn:
                await conn.execute(
                    UniverseAsset.__table__.update()
                    .where(UniverseAsset.universe_id == tidy, UniverseAsset.asset_id == a[1])
                    .values(position=7)
                )
        await migrate.downgrade(engine, "0007")
        await migrate.upgrade(engine)
        assert [p for _, p in await positions(engine, crowded)] == [0, 1, 2, 3, 4]
    finally:
        await engine.dispose()


async def test_migration_0008_on_sqlite(tmp_path):
    await check(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")


async def test_migration_0008_on_postgres(postgres_url):
    async with scratch_database(postgres_url, "umcp_m8") as url:
        await check(url)
