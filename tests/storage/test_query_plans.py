"""SQLite's plans for the hot lookups: by ticker through the ticker index, never through a low-cardinality column.

SQLite plans without statistics and takes an equality on any indexed column to be selective. An index on
listing_status (nearly every asset is listed) once turned every lookup by ticker into a read of the whole store
(16 ms instead of 0.1 ms per call on 100,000 assets, bench scenario 5); migration 0010 dropped it. Search plans are
checked in test_asset_search.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Connection, event
from sqlalchemy.engine.interfaces import DBAPICursor, ExecutionContext

from server.lifespan import open_app_state
from storage.repositories import assets as repo
from tests.storage.test_asset_search import synthetic_rows
from tests.support.stores import Store, pg_store, store  # noqa: F401

pytestmark = pytest.mark.anyio


async def test_lookups_by_ticker_use_the_ticker_index(make_settings):
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
            seen.append((statement, parameters))

        event.listen(state.engine.sync_engine, "before_cursor_execute", capture)
        try:
            async with state.unit_of_work() as session:
                found = await repo.get_assets_by_symbols(session, ["B0001", "BA0002", "H0003", "NOPE"])
        finally:
            event.remove(state.engine.sync_engine, "before_cursor_execute", capture)
        assert found and len(seen) == 1
        statement, parameters = seen[0]
        async with state.engine.connect() as conn:
            steps = [row[-1] for row in (await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters))]
        assert len(steps) == 1 and steps[0].startswith("SEARCH assets USING INDEX"), steps
        assert "(symbol=?)" in steps[0], steps


async def _plans(state: Any, run: Any) -> list[list[str]]:
    """SQLite's plan of every statement ``run(session)`` sends."""
    seen: list[tuple[str, object]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        seen.append((statement, parameters))

    event.listen(state.engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with state.unit_of_work() as session:
            await run(session)
    finally:
        event.remove(state.engine.sync_engine, "before_cursor_execute", capture)
    async with state.engine.connect() as conn:
        return [
            [row[-1] for row in (await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters))]
            for statement, parameters in seen
            if statement.lstrip().upper().startswith("SELECT")
        ]


async def test_a_screens_page_is_read_in_market_cap_order_off_an_index(make_settings):
    """A sector's first page is the sector's first 50 index entries (migration 0011), never a sort of the sector;
    the count reads that index too, and stops at the cap."""
    from storage.repositories import screening

    async with open_app_state(make_settings()) as state:
        async with state.unit_of_work() as session:
            await repo.insert_assets_bulk(session, synthetic_rows(300))
        rule = screening.Condition("sector", "eq", "Financials")

        async def run(session: Any) -> None:
            await screening.screen(
                session, rule, sort_by="market_cap", offset=0, limit=51, count_cap=1_000, listed_only=True, viewer=None
            )

        count, page = await _plans(state, run)
        assert any("USING INDEX ix_assets_sector_market_cap (sector=?)" in step for step in count), count
        assert page == ["SEARCH assets USING INDEX ix_assets_sector_market_cap (sector=?)"], page


@pytest.mark.parametrize(
    ("sort_by", "index"),
    [
        ("market_cap", "ix_assets_market_cap"),
        ("name", "ix_assets_name_lower"),
        ("symbol", "ix_assets_symbol_pattern"),
        ("ipo_year", "ix_assets_ipo_year_market_cap"),
    ],
)
async def test_a_broad_screens_page_walks_the_index_of_its_order(make_settings, sort_by: Any, index: str):
    """More matches than the count's cap: the page walks the sort order's index and stops after it, instead of
    reading every match through the filter's index and sorting them all."""
    from storage.repositories import screening

    async with open_app_state(make_settings()) as state:
        async with state.unit_of_work() as session:
            await repo.insert_assets_bulk(session, synthetic_rows(300))
        rule = screening.Condition("sector", "eq", "Financials")

        async def run(session: Any) -> None:
            await screening.screen(
                session, rule, sort_by=sort_by, offset=0, limit=11, count_cap=10, listed_only=True, viewer=None
            )

        _, page = await _plans(state, run)
        assert page[0] == f"SCAN assets USING INDEX {index}", page


async def test_a_filtered_search_walks_the_name_words_by_market_cap(make_settings):
    """A query with a filter reads the query word's assets off the name-word index in market-cap order (migration
    0014) and looks up only those it walks, by id; the ticker range is read as a set of ids. No statement scans the
    assets or walks a filter's index (the filter is a test on the rows read, never where they come from)."""
    from storage.repositories import screening

    async with open_app_state(make_settings()) as state:
        async with state.unit_of_work() as session:
            await repo.insert_assets_bulk(session, synthetic_rows(300))
        rule = screening.AllOf((screening.Condition("sector", "eq", "Financials"),))

        async def run(session: Any) -> None:
            await screening.search_screened(
                session,
                rule,
                symbol_prefix="BANK",
                words=["bank"],
                phrase="bank",
                industries=["Banks"],
                offset=0,
                limit=21,
                listed_only=True,
                viewer=None,
            )

        [plan] = await _plans(state, run)
        walks = [step for step in plan if "asset_name_words" in step]
        assert walks and all("USING COVERING INDEX ix_asset_name_words_word_market_cap (word" in s for s in walks), plan
        reads = [step for step in plan if "assets USING" in step or step.startswith("SCAN assets")]
        assert not [s for s in reads if s.startswith("SCAN")], plan
        assert "SEARCH assets USING INDEX sqlite_autoindex_assets_1 (id=?)" in plan, plan
        assert "SEARCH assets USING INDEX ix_assets_symbol_pattern (symbol>? AND symbol<?)" in plan, plan


async def test_a_filtered_search_with_delisted_securities_reads_through_indexes(make_settings):
    """With delisted securities (which the name-word index leaves out), a query with a filter takes one statement
    over its candidates (ticker range, name words, industries, every delisted security) as before: read through
    indexes, never a scan of the assets."""
    from storage.repositories import screening

    async with open_app_state(make_settings()) as state:
        async with state.unit_of_work() as session:
            await repo.insert_assets_bulk(session, synthetic_rows(300))
        rule = screening.Condition("sector", "eq", "Financials")

        async def run(session: Any) -> None:
            await screening.search_screened(
                session,
                rule,
                symbol_prefix="BANK",
                words=["bank"],
                phrase="bank",
                industries=["Banks"],
                offset=0,
                limit=21,
                listed_only=False,
                viewer=None,
            )

        [plan] = await _plans(state, run)
        assert plan[0].startswith("SEARCH assets USING INDEX"), plan
        assert not [step for step in plan if step.startswith("SCAN assets")], plan


async def test_the_planner_has_statistics_once_the_server_started(
    store: Store,  # noqa: F811
    request: pytest.FixtureRequest,
):
    """Statistics about the loaded store (storage/db.py, refresh_planner_statistics): SQLite's sqlite_stat1 rows for
    the asset indexes; on PostgreSQL an ANALYZE by the tables' owner, whether or not autovacuum runs."""
    async with open_app_state(store()) as state:
        if store.kind == "sqlite":
            async with state.engine.connect() as conn:
                indexes = {
                    row[0] for row in await conn.exec_driver_sql("SELECT idx FROM sqlite_stat1 WHERE tbl = 'assets'")
                }
            assert "ix_assets_sector_market_cap" in indexes, indexes
            return
    import asyncpg

    from tests.support.stores import PgStore

    pg: PgStore = request.getfixturevalue("pg_store")
    conn = await asyncpg.connect(pg.owner_dsn)
    try:
        analyzed = await conn.fetchval("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'assets'")
    finally:
        await conn.close()
    assert analyzed is not None


async def test_a_history_page_is_a_backward_range_of_the_event_index(make_settings):
    """get_universe_history's page, first and later ones, reads (universe_id, effective_at, id) backwards off
    ix_universe_asset_events_universe_id_effective_at_id (migration 0013) and stops after the page: no sort of the
    universe's events, however many share one time (every member of a creation does)."""
    from services.history import HistoryService
    from services.universes import UniverseService
    from storage.repositories import history

    async with open_app_state(make_settings()) as state:
        async with state.unit_of_work() as session:
            await repo.insert_assets_bulk(session, synthetic_rows(300))
        async with state.unit_of_work() as session:
            symbols = [row["symbol"] for row in synthetic_rows(300)]
            universe, _ = await UniverseService(session, state.local_caller).create(
                "Planned", symbols=symbols, validate=False
            )
        async with state.unit_of_work() as session:
            page = await HistoryService(session, state.local_caller).history(universe.id, limit=20)
        assert page.next_cursor
        last = page.events[-1]

        async def run(session: Any) -> None:
            import uuid

            uid = uuid.UUID(universe.id)
            owner = state.local_caller.owner_id
            await history.event_page(session, uid, owner_id=owner, since=None, until=None, after=None, limit=21)
            await history.event_page(
                session, uid, owner_id=owner, since=None, until=None, after=(last.effective_at, 10**6), limit=21
            )

        first, later = await _plans(state, run)
        # A later page starts its range at the cursor instead of walking the newer events again.
        # (The universe's own row, read by its key for the owner check, may come first.)
        assert any(
            "universe_asset_events" in step and "(universe_id=? AND effective_at<?)" in step for step in later
        ), later
        for plan in (first, later):
            events = [step for step in plan if "universe_asset_events" in step]
            assert events and "USING INDEX ix_universe_asset_events_universe_id_effective_at_id" in events[0], plan
            assert not any("TEMP B-TREE" in step for step in plan), plan
