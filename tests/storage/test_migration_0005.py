"""Migration 0005 on a populated store, on SQLite and on PostgreSQL: universe name keys recomputed with clashes
resolved deterministically (issue 10, item 17); existing unconfirmed assets given to the owner who added them first
(item 9); the cursor key created (item 13). Then down and up again."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from storage import migrate
from storage.db import make_engine
from storage.models import Asset, ServerSecret, Universe, UniverseAssetEvent, User
from tests.support.scratch_db import scratch_database

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def old_key(name: str) -> str:
    return " ".join(name.split()).casefold()  # the key before 0005


async def populate(engine) -> dict[str, uuid.UUID]:
    ids = {k: uuid.uuid4() for k in ("alice", "bob", "U1", "U2", "U3", "U4", "B1", "B2", "A1", "A2", "A3", "A4")}
    universes = [  # (id, owner, name, created)
        ("U1", "alice", "Conf Leaders", 1),
        ("U2", "alice", "\u0421onf Leaders", 2),  # Cyrillic ES
        ("U3", "alice", "Conf\u200b Leaders", 3),  # zero-width space
        ("U4", "alice", "Conf Leaders (2)", 4),  # already holds the first suffix
        ("B1", "bob", "Conf Leaders", 1),
        ("B2", "bob", "\uff23\uff2f\uff2e\uff26 leaders", 0),  # fullwidth, and older: it keeps its name
    ]
    async with engine.begin() as conn:
        await conn.execute(User.__table__.insert(), [{"id": ids[u], "name": u} for u in ("alice", "bob")])
        await conn.execute(
            Universe.__table__.insert(),
            [
                {
                    "id": ids[u],
                    "owner_id": ids[o],
                    "name": n,
                    "name_key": old_key(n),
                    "kind": "static",
                    "created_at": at(m),
                    "updated_at": at(m),
                }
                for u, o, n, m in universes
            ],
        )
        await conn.execute(
            Asset.__table__.insert(),
            [
                {"id": ids["A1"], "symbol": "ZZA", "validation_status": "unknown"},
                {"id": ids["A2"], "symbol": "ZZB", "validation_status": "pending"},
                {"id": ids["A3"], "symbol": "ZZC", "validation_status": "valid", "validation_source": "catalog"},
                {"id": ids["A4"], "symbol": "ZZD", "validation_status": "unknown"},
            ],
        )
        # ZZA: alice added it first (bob's add is recorded later); ZZB: bob only; ZZC: confirmed; ZZD: never held.
        await conn.execute(
            UniverseAssetEvent.__table__.insert(),
            [
                {
                    "universe_id": ids[u],
                    "owner_id": ids[o],
                    "asset_id": ids[a],
                    "action": "added",
                    "effective_at": at(m),
                    "recorded_at": at(m),
                }
                for u, o, a, m in (
                    ("B1", "bob", "A1", 9),
                    ("U1", "alice", "A1", 5),
                    ("B1", "bob", "A2", 6),
                    ("U1", "alice", "A3", 7),
                )
            ],
        )
    return ids


async def names(engine, ids) -> dict[str, tuple[str, str]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(Universe.id, Universe.name, Universe.name_key))).all()
    by_id = {v: k for k, v in ids.items()}
    return {by_id[i]: (n, k) for i, n, k in rows}


async def check(url: str) -> None:
    engine = make_engine(url)
    try:
        await migrate.upgrade(engine, "0003")
        ids = await populate(engine)
        await migrate.upgrade(engine)
        assert await names(engine, ids) == {
            "U1": ("Conf Leaders", "conf leaders"),
            "U2": ("\u0421onf Leaders (3)", "conf leaders (3)"),  # " (2)" is U4's: the next free suffix
            "U3": ("Conf\u200b Leaders (4)", "conf leaders (4)"),
            "U4": ("Conf Leaders (2)", "conf leaders (2)"),
            "B2": ("\uff23\uff2f\uff2e\uff26 leaders", "conf leaders"),
            "B1": ("Conf Leaders (2)", "conf leaders (2)"),
        }
        async with engine.connect() as conn:
            owners = dict(
                (await conn.execute(select(Asset.symbol, Asset.created_by).where(Asset.symbol.like("ZZ%")))).all()
            )
            secret = (await conn.execute(select(ServerSecret.value))).scalars().all()
        assert owners == {"ZZA": ids["alice"], "ZZB": ids["bob"], "ZZC": None, "ZZD": None}
        assert len(secret) == 1 and len(secret[0]) >= 60

        # Down again: the 0001 keys of the (renamed) names, then up: nothing moves a second time.
        await migrate.downgrade(engine, "0003")
        assert {k: v[1] for k, v in (await names(engine, ids)).items()} == {
            k: old_key(v[0]) for k, v in (await names(engine, ids)).items()
        }
        await migrate.upgrade(engine)
        assert (await names(engine, ids))["U2"] == ("\u0421onf Leaders (3)", "conf leaders (3)")
    finally:
        await engine.dispose()


async def test_migration_0005_on_sqlite(tmp_path):
    await check(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")


async def test_migration_0005_on_postgres(postgres_url):
    async with scratch_database(postgres_url, "umcp_m5") as url:
        await check(url)
