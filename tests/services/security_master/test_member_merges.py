"""Universe members of assets a load of the security master retires into another move to the surviving asset
(services/security_master/members.py), on SQLite and on PostgreSQL — there with the server connecting as a non-owner
role under row-level security, as a deployment runs it, and universes of two owners.

The story, in three snapshot loads: ZoomInfo is listed as ZI; then ZI is gone and GTM appears as a new listing (a
stand-in: nothing links the two yet), and a user adds a not-yet-listed JBTM (a pending row of its own); then the
shipped data knows ZI -> GTM and JBT -> JBTM are renames. The stand-in GTM and the pending JBTM are retired, and every
universe holding them holds ZoomInfo's and JBT's assets instead, with events saying why.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from core.settings import Settings
from server.lifespan import AppState, open_app_state
from services import universes
from services.csv_io import format_csv
from services.history import HistoryService
from services.schemas import Caller
from services.security_master.model import Security, SymbolSpan
from services.security_master.snapshot import Snapshot, encode_snapshot, load_shipped_snapshot
from services.security_master.store import apply_snapshot
from services.universes import UniverseService
from storage.db import make_engine, make_sessionmaker, unit_of_work, utcnow
from storage.models import Asset, UniverseAsset, UniverseAssetEvent
from storage.repositories.universes import lock_universes_holding
from storage.repositories.users import get_or_create_user
from tests.support.stores import still_waiting
from tests.workers.stores import postgres_store

pytestmark = pytest.mark.anyio

STAND_IN = "GTM@2025-07-21"


@pytest.fixture(params=["sqlite", "postgres"])
async def settings_for(
    request: pytest.FixtureRequest, make_settings: Callable[..., Settings], tmp_path: Path
) -> AsyncIterator[Callable[..., Settings]]:
    """Settings of one store of this test's own (the loads below rewrite the master): SQLite, or a PostgreSQL
    database with a non-owner app role for the server and the owner's URL for migrations and loads."""
    if request.param == "sqlite":
        yield lambda **kw: make_settings(seed_catalog=False, **kw)
        return
    async with postgres_store(request.getfixturevalue("postgres_url")) as database:
        base: dict[str, Any] = {
            "data_dir": tmp_path / "pg-data",
            "offline": True,
            "log_level": "WARNING",
            "seed_catalog": False,
            **database,
        }
        yield lambda **kw: Settings(**{**base, **kw})


def _shipped(symbols: set[str]) -> tuple[dict[str, Any], dict[str, Security]]:
    shipped = load_shipped_snapshot()
    header = {k: v for k, v in shipped.header.items() if k not in {"format", "schema_version", "securities", "sha256"}}
    chosen = {s.key: s for s in shipped.securities if s.is_listed and s.symbol in symbols}
    return header, chosen


def _snapshots(tmp_path: Path) -> tuple[Path, Path, Path, Snapshot]:
    """Three snapshot files (the story of the module docstring) and the last one as a Snapshot."""
    header, now = _shipped({"AAPL", "MSFT", "GTM", "JBTM"})
    zi = next(s for s in now.values() if s.symbol == "GTM")
    jbt = next(s for s in now.values() if s.symbol == "JBTM")
    first_zi = SymbolSpan("ZI", zi.symbols[0].valid_from, None, "snapshots", False)
    first_jbt = SymbolSpan("JBT", jbt.symbols[0].valid_from, None, "snapshots", False)
    gone = date(2025, 7, 21)
    listed_zi = dataclasses.replace(zi, symbol="ZI", symbols=(first_zi,))
    listed_jbt = dataclasses.replace(jbt, symbol="JBT", symbols=(first_jbt,))
    delisted_zi = dataclasses.replace(
        listed_zi,
        listing_status="delisted",
        delisted_on=gone,
        delisted_on_source="snapshots",
        symbols=(dataclasses.replace(first_zi, valid_to=gone),),
    )
    stand_in = dataclasses.replace(
        zi, key=STAND_IN, cik=None, listed_on=gone, symbols=(SymbolSpan("GTM", gone, None, "snapshots", False),)
    )
    others = [s for s in now.values() if s.symbol in ("AAPL", "MSFT")]
    files = []
    for n, (as_of, securities) in enumerate(
        [
            ("2025-05-01", [*others, listed_zi, listed_jbt]),
            ("2025-07-21", [*others, delisted_zi, stand_in, listed_jbt]),
            (header["as_of"], list(now.values())),
        ]
    ):
        path = tmp_path / f"load-{n}.jsonl.gz"
        path.write_bytes(encode_snapshot(securities, {**header, "as_of": as_of}))
        files.append(path)
    return files[0], files[1], files[2], Snapshot({**header, "as_of": header["as_of"]}, tuple(now.values()))


async def _caller(state: AppState, name: str) -> Caller:
    async with state.unit_of_work() as session:
        user = await get_or_create_user(session, f"{name}-{secrets.token_hex(3)}")
        return Caller(owner_id=user.id, name=user.name)


async def _create(state: AppState, who: Caller, name: str, symbols: list[str]) -> uuid.UUID:
    async with state.unit_of_work(who.owner_id) as session:
        universe, report = await UniverseService(session, who).create(name, symbols=symbols, validate=False)
        assert report.counts.get("added") == len(symbols)
        return uuid.UUID(universe.id)


async def _add(state: AppState, who: Caller, universe_id: uuid.UUID, symbols: list[str]) -> None:
    async with state.unit_of_work(who.owner_id) as session:
        _, report = await UniverseService(session, who).add_assets(str(universe_id), symbols, validate=False)
        assert report.counts.get("added") == len(symbols), report


async def _members(state: AppState, who: Caller, universe_id: uuid.UUID) -> list[tuple[uuid.UUID, int]]:
    async with state.unit_of_work(who.owner_id) as session:
        rows = await session.execute(
            select(UniverseAsset.asset_id, UniverseAsset.position)
            .where(UniverseAsset.universe_id == universe_id)
            .order_by(UniverseAsset.position)
        )
        return [(a, p) for a, p in rows.all()]


async def _events(state: AppState, who: Caller, universe_id: uuid.UUID) -> list[tuple[str, uuid.UUID, str | None]]:
    async with state.unit_of_work(who.owner_id) as session:
        rows = await session.execute(
            select(UniverseAssetEvent.action, UniverseAssetEvent.asset_id, UniverseAssetEvent.reason)
            .where(UniverseAssetEvent.universe_id == universe_id)
            .order_by(UniverseAssetEvent.id)
        )
        return [tuple(r) for r in rows.all()]  # type: ignore[misc]


async def _ids(state: AppState, *symbols: str) -> dict[str, uuid.UUID]:
    async with state.unit_of_work() as session:
        rows = await session.execute(
            select(Asset.symbol, Asset.id).where(Asset.symbol.in_(symbols), Asset.listing_status == "listed")
        )
        return {s: i for s, i in rows.all()}


async def _agree(state: AppState, who: Caller, universe_id: uuid.UUID) -> list[str]:
    """The members' symbols in order, checked against every other view of them: get_universe, the export, the
    history replayed (as_of now) and turnover; positions unique, each member once."""
    members = await _members(state, who, universe_id)
    assert len({a for a, _ in members}) == len(members) == len({p for _, p in members})
    async with state.unit_of_work(who.owner_id) as session:
        service = UniverseService(session, who)
        detail = await service.get(str(universe_id), limit=200)
        replayed = await service.get(str(universe_id), limit=200, as_of=utcnow() + timedelta(seconds=1))
        turnover = await HistoryService(session, who).turnover(str(universe_id), until=utcnow() + timedelta(seconds=1))
    symbols = [m.symbol for m in detail.assets or []]
    assert [m.position for m in detail.assets or []] == [p for _, p in members]
    assert detail.universe.asset_count == len(members)
    assert sorted(m.symbol for m in replayed.assets or []) == sorted(symbols)
    assert turnover.size_end == len(members)
    assert turnover.additions - turnover.removals == turnover.size_end - turnover.size_start
    exported = format_csv(m.model_dump() for m in detail.assets or []).splitlines()[1:]
    assert [line.split(",")[0] for line in exported] == symbols
    return symbols


async def test_members_of_retired_assets_move_to_the_survivor_for_every_owner(
    settings_for: Callable[..., Settings], tmp_path: Path
) -> None:
    first, second, third, last = _snapshots(tmp_path)
    async with open_app_state(settings_for(listings_load=True, listings_snapshot=first)) as state:
        alice, bob = await _caller(state, "alice"), await _caller(state, "bob")
        both = await _create(state, alice, "Both", ["ZI"])  # ZoomInfo's asset itself, while it is listed as ZI
        mixed = await _create(state, alice, "Mixed", ["AAPL"])
        zoominfo = (await _ids(state, "ZI"))["ZI"]
        jbt = (await _ids(state, "JBT"))["JBT"]
    async with open_app_state(settings_for(listings_load=True, listings_snapshot=second)) as state:
        stand_in = (await _ids(state, "GTM"))["GTM"]
        assert stand_in != zoominfo
        await _add(state, alice, mixed, ["GTM", "MSFT", "JBTM"])  # JBTM: unknown to the master, a row of its own
        await _add(state, alice, both, ["GTM"])
        theirs = await _create(state, bob, "Theirs", ["GTM"])
        pending = (await _ids(state, "JBTM"))["JBTM"]
        assert pending != jbt
        assert await _agree(state, alice, mixed) == ["AAPL", "GTM", "MSFT", "JBTM"]
        before = {u: await _members(state, who, u) for u, who in ((mixed, alice), (both, alice), (theirs, bob))}

    async with open_app_state(settings_for(listings_load=True, listings_snapshot=third)) as state:
        assert await _ids(state, "GTM", "JBTM") == {"GTM": zoominfo, "JBTM": jbt}
        # The same positions, the survivors in place of the retired assets.
        swap = {stand_in: zoominfo, pending: jbt}
        assert await _members(state, alice, mixed) == [(swap.get(a, a), p) for a, p in before[mixed]]
        assert await _members(state, bob, theirs) == [(zoominfo, 0)]
        # Holding the survivor already: the stand-in only goes, no duplicate.
        assert await _members(state, alice, both) == [(zoominfo, 0)]
        assert await _agree(state, alice, mixed) == ["AAPL", "GTM", "MSFT", "JBTM"]
        assert await _agree(state, bob, theirs) == ["GTM"]
        assert await _agree(state, alice, both) == ["GTM"]

        events = await _events(state, alice, mixed)
        # Every event has a reason now; the moves are those the merge wrote (not an add by hand or at creation).
        by_hand = {universes.REASON_CREATED, universes.REASON_ADDED, universes.REASON_REMOVED}
        moved = [e for e in events if e[2] not in by_hand]
        assert [(action, asset) for action, asset, _ in moved] == [
            ("removed", stand_in),
            ("added", zoominfo),
            ("removed", pending),
            ("added", jbt),
        ]
        as_of = last.as_of.isoformat()
        issuer = last_security(last, "GTM").name.split(" - ")[0]
        reason = f"GTM is {issuer} (formerly ZI), as the listings snapshot of {as_of} shows: its two records were merged into one"
        assert moved[0][2] == moved[1][2] == reason[:300]
        assert moved[2][2] is not None and moved[2][2].startswith("JBTM is ")
        assert [(a, x) for a, x, _ in await _events(state, alice, both)][-1:] == [("removed", stand_in)]
        assert [(a, x) for a, x, _ in await _events(state, bob, theirs)] == [
            ("added", stand_in),
            ("removed", stand_in),
            ("added", zoominfo),
        ]

        # Applying the same data again moves nothing and writes no event.
        held = ((alice, mixed), (alice, both), (bob, theirs))
        count = await _count_events(state, *held)
        # As the loads and syncs run: as the role that owns the tables (row-level security hides nothing from it).
        engine = make_engine(state.settings.admin_sqlalchemy_url)
        try:
            async with unit_of_work(make_sessionmaker(engine)) as session:
                report = await apply_snapshot(session, last)
        finally:
            await engine.dispose()
        assert report.moved == 0
        assert await _count_events(state, *held) == count


def last_security(snapshot: Snapshot, symbol: str) -> Security:
    return next(s for s in snapshot.securities if s.symbol == symbol and s.is_listed)


async def _count_events(state: AppState, *held: tuple[Caller, uuid.UUID]) -> int:
    """The membership events of these universes, each read as its owner."""
    return sum([len(await _events(state, who, universe_id)) for who, universe_id in held])


async def test_a_users_add_to_a_universe_being_moved_waits_for_the_apply_and_lands_after_it(
    settings_for: Callable[..., Settings], tmp_path: Path
) -> None:
    """The apply takes the lock of each universe whose members it moves before it writes anything (as a user's
    change takes it first): a concurrent add to such a universe waits for the apply's commit, then reads the moved
    membership and appends after it — the history replays to the members either way."""
    first, second, _, last = _snapshots(tmp_path)
    async with open_app_state(settings_for(listings_load=True, listings_snapshot=first)) as state:
        zoominfo = (await _ids(state, "ZI"))["ZI"]
    async with open_app_state(settings_for(listings_load=True, listings_snapshot=second)) as state:
        alice = await _caller(state, "alice")
        mixed = await _create(state, alice, "Mixed", ["AAPL", "GTM"])
        stand_in = (await _ids(state, "GTM"))["GTM"]
        sqlite = state.engine.dialect.name == "sqlite"
        engine = state.engine if sqlite else make_engine(state.settings.admin_sqlalchemy_url)
        try:
            async with unit_of_work(make_sessionmaker(engine)) as session:
                assert await lock_universes_holding(session, [stand_in]) == [mixed]
                adding = asyncio.create_task(_add(state, alice, mixed, ["MSFT"]))
                assert await still_waiting(adding)
                report = await apply_snapshot(session, last)
                assert report.moved == 1 and not adding.done()
            await adding
        finally:
            if not sqlite:
                await engine.dispose()
        members = await _members(state, alice, mixed)
        assert [(a, p) for a, p in members[1:]] == [(zoominfo, 1), ((await _ids(state, "MSFT"))["MSFT"], 2)]
        assert await _agree(state, alice, mixed) == ["AAPL", "GTM", "MSFT"]
