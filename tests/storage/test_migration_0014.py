"""Migration 0014 (market cap and first word in the name-word index) on a store that already holds indexed names, on
SQLite and on PostgreSQL: every word row gets its asset's cap and says whether the name starts with it, exactly as
the code that writes the index from now on would; down and up again gives the same."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, text

from storage import migrate
from storage.db import make_engine
from storage.models import Asset
from storage.repositories.asset_search import name_word_rows
from tests.support.scratch_db import scratch_database

pytestmark = pytest.mark.anyio

ASSETS = [
    ("ZZA", "Kalo Robotics Holdings", 5e9),
    ("ZZB", "Robotics Kalo Inc", None),  # no cap: NULL in the index too
    ("ZZC", "Émile Énergie SA", 1.5e8),  # the first word in each lower-casing
]


async def populate(engine) -> dict[uuid.UUID, tuple[str, str, float | None]]:
    """Assets and their word rows as revision 0013 wrote them (four columns)."""
    assets = {uuid.uuid4(): a for a in ASSETS}
    async with engine.begin() as conn:
        await conn.execute(
            Asset.__table__.insert(),
            [
                {"id": i, "symbol": s, "name": n, "market_cap": c, "validation_status": "valid"}
                for i, (s, n, c) in assets.items()
            ],
        )
        for i, (symbol, name, _) in assets.items():
            for row in name_word_rows(i, name, None, symbol):
                await conn.execute(
                    text("INSERT INTO asset_name_words (word, asset_id, sector, symbol) VALUES (:w, :a, NULL, :s)"),
                    {"w": row["word"], "a": i if engine.dialect.name == "postgresql" else i.hex, "s": symbol},
                )
    return assets


async def word_rows(engine) -> set[tuple[str, str, float | None, bool]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT w.word, a.symbol, w.market_cap, w.starts_name FROM asset_name_words w JOIN assets a ON a.id = w.asset_id"
            )
        )
        return {(word, symbol, cap, bool(first)) for word, symbol, cap, first in rows}


def expected(assets: dict[uuid.UUID, tuple[str, str, float | None]]) -> set[tuple[str, str, float | None, bool]]:
    return {
        (row["word"], symbol, cap, row["starts_name"])
        for i, (symbol, name, cap) in assets.items()
        for row in name_word_rows(i, name, None, symbol, cap)
    }


async def check(url: str) -> None:
    engine = make_engine(url)
    try:
        await migrate.upgrade(engine, "0013")
        assets = await populate(engine)
        await migrate.upgrade(engine)
        want = expected(assets)
        assert await word_rows(engine) == want
        assert {w for w, s, _, first in want if first} >= {"kalo", "robotics", "émile", "emile"}
        async with engine.connect() as conn:
            caps = dict((await conn.execute(select(Asset.symbol, Asset.market_cap))).all())
        assert caps["ZZA"] == 5e9
        await migrate.downgrade(engine, "0013")
        await migrate.upgrade(engine)
        assert await word_rows(engine) == want
    finally:
        await engine.dispose()


async def test_migration_0014_fills_the_cap_and_first_words_on_sqlite(tmp_path):
    await check(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")


async def test_migration_0014_fills_the_cap_and_first_words_on_postgres(postgres_url):
    async with scratch_database(postgres_url, "umcp_m14") as url:
        await check(url)
