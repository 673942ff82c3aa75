"""storage/repositories/asset_search.py: the indexed search returns exactly what the plain LIKE scan it replaced
returns, on every route (few candidates, shortlist, walk, intersection), and the name index follows every write."""

from __future__ import annotations

import random
import secrets
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import ColumnElement, Connection, and_, case, func, literal, or_, select
from sqlalchemy.engine.interfaces import DBAPICursor, ExecutionContext

from server.lifespan import open_app_state
from services.assets import AssetService
from storage.models import Asset
from storage.repositories import asset_search
from storage.repositories import assets as repo

pytestmark = pytest.mark.anyio

WORDS = ["bank", "banco", "holdings", "group", "energy", "solar", "global", "of", "america", "tech", "a", "ab"]


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def reference(session, *, symbol_prefix, name_words, sector, offset, limit) -> list[str]:
    """The search as it was before the index (a LIKE scan over every asset): the definition of the right answer."""
    name = func.lower(Asset.name)
    matches: list[ColumnElement[bool]] = []
    if symbol_prefix:
        matches.append(Asset.symbol.like(_like_escape(symbol_prefix) + "%", escape="\\"))
    if name_words:
        matches.append(
            and_(
                *[
                    or_(
                        name.like(_like_escape(w) + "%", escape="\\"),
                        name.like("% " + _like_escape(w) + "%", escape="\\"),
                    )
                    for w in name_words
                ]
            )
        )
    if not matches:
        return []
    # (The old code ranked with a "\x00%" pattern when there was no prefix, which PostgreSQL rejects: name-only
    # searches failed there. Without a prefix every match ranks 2.)
    rank = (
        case(
            (Asset.symbol == symbol_prefix, 0),
            (Asset.symbol.like(_like_escape(symbol_prefix) + "%", escape="\\"), 1),
            else_=2,
        )
        if symbol_prefix
        else literal(2)
    )
    stmt = (
        select(Asset.symbol)
        .where(Asset.listing_status == "listed", Asset.validation_status != "invalid", or_(*matches))
        .order_by(rank, func.length(Asset.symbol), Asset.symbol)
        .offset(offset)
        .limit(limit)
    )
    if sector:
        stmt = stmt.where(Asset.sector == sector)
    return list(await session.scalars(stmt))


def synthetic_rows(n: int) -> list[dict]:
    rng = random.Random(7)
    sectors = ["Financials", "Energy", "Information Technology", None]
    checked = datetime(2026, 1, 2, tzinfo=UTC)
    rows: list[dict] = []
    for i in range(n):
        words = rng.sample(WORDS, rng.choice((1, 2, 3)))
        if rng.random() < 0.1:
            words[0] = words[0].upper() + "-" + rng.choice(WORDS)  # punctuation: no word start after "-"
        if rng.random() < 0.05:
            words.insert(0, "(" + rng.choice(WORDS))  # nor after "("
        symbol = rng.choice(["B", "BA", "BAN", "H", "G", "AB"]) + f"{i:04d}"
        rows.append(
            {
                "symbol": symbol,
                "name": " ".join(words) + rng.choice(["", " Inc", " PLC", "  Co"]),
                "sector": rng.choice(sectors),
                "validation_status": rng.choice(["valid"] * 8 + ["invalid", "pending"]),
                "listing_status": "listed" if rng.random() < 0.95 else "delisted",
                "is_validated": True,
                "last_validated_at": checked,
                "asset_metadata": {},
                "created_at": checked,
                "updated_at": checked,
            }
        )
    return rows


@pytest.fixture(params=["sqlite", "postgres"])
async def state(request, make_settings):
    overrides = {}
    if request.param == "postgres":
        # A database of its own: these assets would show up in other tests' searches of the shared one.
        import asyncpg
        from sqlalchemy.engine import make_url

        url = make_url(request.getfixturevalue("postgres_url"))
        admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
        name = f"umcp_search_{secrets.token_hex(4)}"
        conn = await asyncpg.connect(admin)
        await conn.execute(f"CREATE DATABASE {name}")
        await conn.close()
        request.addfinalizer(lambda: _drop_database(admin, name))
        overrides["database_url"] = url.set(database=name).render_as_string(hide_password=False)
    async with open_app_state(make_settings(**overrides)) as state:
        async with state.unit_of_work() as session:
            await repo.insert_assets_bulk(session, synthetic_rows(1500))
        yield state


def _drop_database(admin: str, name: str) -> None:
    import asyncio

    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(admin)
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await conn.close()

    asyncio.run(drop())


QUERIES = [
    "bank",
    "BAN",
    "b",
    "holdings",
    "holdings group",
    "bank of america",
    "of",
    "a",
    "ab",
    "energy solar",
    "banco",
    "global tech",
    "h0",
    "AB00",
    "zzz",
    "apple",
    "micro",
    "bank-of",
    "tech inc",
]


async def compare(state, query: str, sector: str | None, offset: int, limit: int) -> None:
    from services.assets import _WORD  # the service's own tokenisation of the query
    from services.symbols import normalise_symbol, symbol_problem

    text = query.strip()
    prefix = normalise_symbol(text) if symbol_problem(normalise_symbol(text)) is None else None
    words = _WORD.findall(text.casefold())[:6]
    async with state.unit_of_work() as session:
        expected = await reference(
            session, symbol_prefix=prefix, name_words=words, sector=sector, offset=offset, limit=limit
        )
        got = await repo.search_assets(
            session, symbol_prefix=prefix, name_words=words, sector=sector, offset=offset, limit=limit
        )
    assert [r.symbol for r in got] == expected, (query, sector, offset, limit)


@pytest.mark.parametrize(
    "thresholds",
    [
        # the shipped thresholds: few candidates at this size
        {},
        # shortlists (and their widening)
        {
            "ALL_CANDIDATES_MAX": 5,
            "WALK_ABOVE": 10_000,
            "INTERSECTION_ALL_MAX": 5,
            "TICKER_CANDIDATES_MAX": 5,
            "SHORTLIST_PER_ROW": 1,
            "SHORTLIST_EXTRA": 0,
        },
        # walks in ranking order, and intersections of common words
        {"ALL_CANDIDATES_MAX": 0, "WALK_ABOVE": 3, "CANDIDATES_PER_ROW": 0, "TICKER_CANDIDATES_MAX": 0},
    ],
)
async def test_every_route_returns_what_the_like_scan_returns(state, monkeypatch, thresholds):
    for name, value in thresholds.items():
        monkeypatch.setattr(asset_search, name, value)
    monkeypatch.setattr(asset_search, "_COUNTS", {})
    for query in QUERIES:
        for sector in (None, "Financials"):
            for offset, limit in ((0, 21), (20, 21), (0, 3), (400, 201)):
                await compare(state, query, sector, offset, limit)


async def test_the_index_follows_renames_new_assets_and_deletes(state):
    async with state.unit_of_work() as session:
        [created] = await repo.create_assets(session, [{"symbol": "ZZNEW", "name": "Quokka Ventures"}])
    async with state.unit_of_work() as session:
        page = await AssetService(session, None).search("quokka")
        assert [a.symbol for a in page.assets] == ["ZZNEW"]
        asset = (await repo.get_assets_by_symbols(session, ["ZZNEW"]))["ZZNEW"]
        await repo.update_asset(session, asset, {"name": "Wombat Works", "sector": "Energy"})
    async with state.unit_of_work() as session:
        assert (await AssetService(session, None).search("quokka")).assets == []
        assert [a.symbol for a in (await AssetService(session, None).search("wombat", sector="Energy")).assets] == [
            "ZZNEW"
        ]
        await session.delete(await session.get(Asset, created.id))
    async with state.unit_of_work() as session:
        assert (await AssetService(session, None).search("wombat")).assets == []


def test_name_words_cover_every_lower_casing():
    assert asset_search.name_words("Société  Générale (SG) İstanbul") >= {
        "société",
        "societe",
        "générale",
        "generale",
        "(sg)",
        "i̇stanbul",
        "istanbul",
    }
    assert asset_search.name_words(None) == set() and "" not in asset_search.name_words("a  b")


@pytest.mark.parametrize(
    "thresholds",
    [{}, {"ALL_CANDIDATES_MAX": 0, "WALK_ABOVE": 3, "CANDIDATES_PER_ROW": 0, "TICKER_CANDIDATES_MAX": 0}],
    ids=["candidates", "walks"],
)
async def test_sqlite_plans_never_read_every_listed_asset(make_settings, monkeypatch, thresholds):
    """Nearly every asset is listed: a plan that finds candidates through the listing_status index reads the whole
    store and sorts it. That happened once (a ticker-prefix search went from ~1 ms to 40-190 ms on 100,000 assets,
    bench scenario 5); the plans of every route must narrow by ticker, word or ranking order instead."""
    from sqlalchemy import event

    for name, value in thresholds.items():
        monkeypatch.setattr(asset_search, name, value)
    monkeypatch.setattr(asset_search, "_COUNTS", {})
    async with open_app_state(make_settings()) as state:
        async with state.unit_of_work() as session:
            await repo.insert_assets_bulk(session, synthetic_rows(300))
        seen: list[tuple[str, object]] = []

        def capture(
            conn: Connection,
            cursor: DBAPICursor,
            statement: str,
            parameters: Any,
            context: ExecutionContext | None,
            executemany: bool,
        ) -> None:
            if statement.lstrip().upper().startswith("SELECT"):
                seen.append((statement, parameters))

        event.listen(state.engine.sync_engine, "before_cursor_execute", capture)
        results = 0
        try:
            for prefix, words in (("BAN", ["ban"]), (None, ["bank"]), (None, ["holdings", "group"]), ("H0", [])):
                for sector in (None, "Financials"):
                    async with state.unit_of_work() as session:
                        found = await repo.search_assets(
                            session, symbol_prefix=prefix, name_words=words, sector=sector, offset=0, limit=21
                        )
                    results += len(found)
        finally:
            event.remove(state.engine.sync_engine, "before_cursor_execute", capture)
        assert seen and results
        async with state.engine.connect() as conn:
            for statement, parameters in seen:
                plan = (await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)).all()
                steps = [row[-1] for row in plan]
                assert not [s for s in steps if "ix_assets_listing_status" in s or s == "SCAN assets"], (
                    steps,
                    statement,
                )
