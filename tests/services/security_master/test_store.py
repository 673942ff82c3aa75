"""The security master in the store: the snapshot loaded on first start, skipped later, reloaded in place, and a
damaged snapshot refused with one line (services/security_master/store.py, migration 0009)."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from core.settings import Settings
from server.lifespan import open_app_state
from services.security_master.snapshot import SnapshotError, shipped_snapshot_path
from services.security_master.store import check_snapshot_file
from services.symbols import normalise_symbol
from storage.models import Asset, AssetIndex, AssetSymbol, ListingSync, Universe, UniverseAsset, User
from tests.support.listings import SYMBOLS, write_small_snapshot

pytestmark = pytest.mark.anyio


def _read(path: Path) -> bytes:
    return path.read_bytes()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


async def _assets(state, **where) -> dict[str, Asset]:
    async with state.unit_of_work() as session:
        rows = await session.scalars(select(Asset).where(*[getattr(Asset, k) == v for k, v in where.items()]))
        return {a.master_key or a.symbol: a for a in rows}


async def _count(state, model) -> int:
    async with state.unit_of_work() as session:
        return int(await session.scalar(select(func.count()).select_from(model)))


async def test_first_start_loads_the_snapshot_with_history_indices_and_verdicts(master_settings: Settings) -> None:
    async with open_app_state(master_settings) as state:
        assets = await _assets(state)
        meta = assets["FB@2012-05-18"]
        assert (meta.symbol, meta.listing_status, meta.cik) == ("META", "listed", "0001326801")
        assert (meta.validation_status, meta.validation_source, meta.is_validated) == ("valid", "listings", True)
        assert meta.sector == "Communication Services" and meta.source_sector == "Technology"
        twtr = next(a for a in assets.values() if a.symbol == "TWTR" and a.master_key)
        assert (twtr.listing_status, twtr.delisted_on) == ("delisted", date(2022, 11, 8))
        assert twtr.validation_status == "invalid" and "delisted on 2022-11-08" in (twtr.validation_reason or "")
        async with state.unit_of_work() as session:
            spans = (
                await session.execute(
                    select(AssetSymbol.symbol, AssetSymbol.valid_from, AssetSymbol.valid_to, AssetSymbol.exact)
                    .where(AssetSymbol.asset_id == meta.id)
                    .order_by(AssetSymbol.valid_from)
                )
            ).all()
            indices = set(await session.scalars(select(AssetIndex.index_name).where(AssetIndex.asset_id == meta.id)))
            syncs = list(await session.scalars(select(ListingSync)))
        assert [tuple(s) for s in spans] == [
            ("FB", date(2012, 5, 18), date(2022, 6, 9), True),
            ("META", date(2022, 6, 9), None, True),
        ]
        assert {"S&P 500", "NASDAQ 100"} <= indices
        assert len(syncs) == 1
        assert (syncs[0].source, syncs[0].status, syncs[0].as_of) == ("snapshot", "ok", date(2026, 8, 22))
        # The test store holds the offline catalog: the master adopted its rows (changed) and added the rest (new).
        assert syncs[0].rows == syncs[0].new + syncs[0].changed == len([a for a in assets.values() if a.master_key])
        assert syncs[0].changed > 0 and syncs[0].sha256


async def test_a_later_start_skips_an_unchanged_snapshot(master_settings: Settings) -> None:
    async with open_app_state(master_settings) as state:
        before = {k: a.id for k, a in (await _assets(state)).items()}
    async with open_app_state(master_settings) as state:
        assert {k: a.id for k, a in (await _assets(state)).items()} == before
        assert await _count(state, ListingSync) == 1  # no second load


async def test_a_new_snapshot_reloads_in_place_keeping_asset_ids(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    first = write_small_snapshot(tmp_path / "first.jsonl.gz")
    async with open_app_state(make_settings(listings_load=True, listings_snapshot=first)) as state:
        before = await _assets(state)
    # The next version revises a security: ZoomInfo's name, and Twitter gone from the data.
    edited = write_small_snapshot(
        tmp_path / "second.jsonl.gz",
        SYMBOLS - {"TWTR"},
        edit={before_key: {"name": "GTM Holdings"} for before_key in before if before_key.startswith("ZI@")},
    )
    async with open_app_state(make_settings(listings_load=True, listings_snapshot=edited)) as state:
        after = await _assets(state)
        assert {k: a.id for k, a in after.items()} == {k: a.id for k, a in before.items()}
        gtm = next(a for k, a in after.items() if k.startswith("ZI@"))
        assert (gtm.symbol, gtm.name) == ("GTM", "GTM Holdings")
        assert await _count(state, ListingSync) == 2


async def test_assets_created_before_the_master_are_adopted_with_their_ids(
    make_settings: Callable[..., Settings],
) -> None:
    """A catalog row spelled BRK-B and a pending TWTR held in a universe become the master's, keeping their ids."""
    settings = make_settings(seed_catalog=False)
    async with open_app_state(settings) as state:
        async with state.unit_of_work() as session:
            owner = await session.scalar(select(User.id))
            # An older store: its catalog row spelled Berkshire's class B the Yahoo way.
            await session.execute(delete(Asset).where(Asset.symbol == "BRK.B"))
            brk = Asset(symbol="BRK-B", validation_status="valid", validation_source="catalog", asset_metadata={})
            twtr = Asset(symbol="TWTR", validation_status="pending", asset_metadata={})
            universe = Universe(owner_id=owner, name="old", name_key="old")
            session.add_all([brk, twtr, universe])
            await session.flush()
            session.add(UniverseAsset(universe_id=universe.id, asset_id=twtr.id, owner_id=owner, position=0))
    snapshot = write_small_snapshot(Path(settings.data_dir) / "small.jsonl.gz")
    async with open_app_state(make_settings(listings_load=True, listings_snapshot=snapshot)) as state:
        async with state.unit_of_work() as session:
            brk_now = await session.get(Asset, brk.id)
            twtr_now = await session.get(Asset, twtr.id)
        assert brk_now is not None and twtr_now is not None
        assert (brk_now.symbol, brk_now.master_key, brk_now.validation_source) == (
            "BRK.B",
            "BRK.B@1996-05-09",
            "listings",
        )
        assert (twtr_now.listing_status, twtr_now.delisted_on) == ("delisted", date(2022, 11, 8))
        assert len([a for a in (await _assets(state)).values() if a.symbol in ("BRK.B", "BRK-B")]) == 1


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda raw: raw[: len(raw) // 2], id="truncated"),
        pytest.param(lambda raw: raw[:-30] + bytes([raw[-30] ^ 1]) + raw[-29:], id="flipped-byte"),
        pytest.param(lambda raw: b"not a snapshot", id="not-gzip"),
        pytest.param(
            lambda raw: gzip.compress(gzip.decompress(raw).replace(b'"META"', b'"MEGA"', 1), mtime=0), id="edited"
        ),
    ],
)
async def test_a_damaged_snapshot_fails_start_up_with_one_line(
    make_settings: Callable[..., Settings], small_snapshot: Path, tmp_path: Path, damage
) -> None:
    broken = _write(tmp_path / "broken.jsonl.gz", damage(_read(small_snapshot)))
    with pytest.raises(SnapshotError) as raised:
        async with open_app_state(make_settings(listings_load=True, listings_snapshot=broken)):
            pass
    message = str(raised.value)
    assert message.startswith(f"listings snapshot {broken}: ") and "\n" not in message


def test_the_shipped_snapshot_passes_the_start_up_check() -> None:
    header = check_snapshot_file(shipped_snapshot_path())
    assert header["as_of"] == "2026-08-22" and header["securities"] > 29_000


async def test_the_whole_shipped_snapshot_loads_once_and_is_skipped_after(tmp_path: Path) -> None:
    """First start with the real snapshot (what `make serve` does); the load time is measured by `make bench`."""
    settings = Settings(data_dir=tmp_path, offline=True, log_level="WARNING", listings_load=True)
    async with open_app_state(settings) as state:
        async with state.unit_of_work() as session:
            listed = await session.scalar(
                select(func.count())
                .select_from(Asset)
                .where(Asset.master_key.is_not(None), Asset.listing_status == "listed")
            )
            delisted = await session.scalar(
                select(func.count())
                .select_from(Asset)
                .where(Asset.master_key.is_not(None), Asset.listing_status == "delisted")
            )
            # The catalog's seeding added only what the master does not list, in canonical spelling.
            spelled = await session.scalar(select(func.count()).select_from(Asset).where(Asset.symbol == "BRK-B"))
        assert (listed, delisted) == (15_478 + 1_913 + 18, 12_000)
        assert spelled == 0
    async with open_app_state(settings) as state:
        assert await _count(state, ListingSync) == 1


def test_share_class_spellings_normalise_to_one_symbol() -> None:
    assert {normalise_symbol(s) for s in ("BRK.B", "BRK-B", "BRK/B", "brk b", "$BRK.B", " brk.b ")} == {"BRK.B"}
    assert normalise_symbol("ABR-P-D") == normalise_symbol("ABR PR D") == "ABR.PRD"
    # Not US share classes: an exchange suffix, a currency pair, a crypto pair, an index.
    for kept in ("AC.PA", "SAP.DE", "EURUSD=X", "BTC-USD", "^GSPC", "ETI.PR"):
        assert normalise_symbol(kept) == kept


@pytest.mark.postgres
async def test_the_master_loads_reloads_and_answers_on_postgres(postgres_server, tmp_path: Path) -> None:
    """The same load, reload and lookups on PostgreSQL (Core executemany through asyncpg, the partial index)."""
    import secrets

    import asyncpg
    from sqlalchemy.engine import make_url

    from services.symbols import normalise_symbol as n

    name = f"umcp_master_{secrets.token_hex(4)}"
    admin = postgres_server.admin_dsn
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    url = make_url(admin).set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)
    try:
        first = write_small_snapshot(tmp_path / "first.jsonl.gz")
        settings = Settings(
            data_dir=tmp_path / "data", database_url=url, offline=True, log_level="WARNING", listings_load=True,
            listings_snapshot=first,
        )  # fmt: skip
        async with open_app_state(settings) as state, state.unit_of_work() as session:
            verdicts = {v.symbol: v for v in await state.validation.validate(session, [n("BRK-B"), "TWTR", "ZI"])}
        assert (verdicts["BRK.B"].status, verdicts["TWTR"].listing_status, verdicts["ZI"].renamed_to) == (
            "valid",
            "delisted",
            "GTM",
        )
        second = write_small_snapshot(tmp_path / "second.jsonl.gz", SYMBOLS - {"AAPL"})
        async with open_app_state(settings.model_copy(update={"listings_snapshot": second})) as state:
            assert await _count(state, ListingSync) == 2
            assert "FB@2012-05-18" in await _assets(state)
    finally:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await conn.close()
