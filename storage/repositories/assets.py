"""Assets (global, not per tenant): lookups by symbol, upserts of verdicts, search and sector counts."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, String, any_, exists, func, literal, or_, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Asset, AssetSymbol, UniverseAsset
from storage.repositories.asset_search import (
    copy_market_cap,
    indexed,
    name_word_rows,
    replace_name_words,
    search_assets,
)

# search_assets lives in asset_search.py with the name-word index it reads; it is re-exported here, where the
# services look for asset queries.

__all__ = [
    "AssetRef",
    "asset_by_past_symbol",
    "asset_refs_by_symbols",
    "catalog_seeded",
    "create_assets",
    "get_assets_by_symbols",
    "insert_assets_bulk",
    "listed_symbols",
    "name_word_rows",
    "search_assets",
    "sector_counts",
    "update_asset",
    "visible_to",
]


def _string_lengths() -> dict[str, int]:
    lengths = {}
    for column in Asset.__table__.columns:
        length = getattr(column.type, "length", None)  # String(n) has one; other types have none or None
        if length:
            lengths[column.name] = length
    return lengths


_LENGTHS: dict[str, int] = {}


def fit_sizes() -> dict[str, int]:
    """The size of each text column of ``assets``."""
    if not _LENGTHS:
        _LENGTHS.update(_string_lengths())
    return dict(_LENGTHS)


def fit(values: Mapping[str, Any]) -> dict[str, Any]:
    """Provider text cut to the column sizes: PostgreSQL rejects what SQLite silently stores."""
    if not _LENGTHS:
        _LENGTHS.update(_string_lengths())
    return {k: (v[: _LENGTHS[k]] if isinstance(v, str) and k in _LENGTHS else v) for k, v in values.items()}


def visible_to(viewer: uuid.UUID | None, *, members_too: bool = False) -> ColumnElement[bool]:
    """Assets ``viewer`` may see: every confirmed one, and the unconfirmed ones it created (``members_too``: or holds
    in one of its universes). Another owner's unconfirmed asset is hidden (storage/models.py, Asset.created_by)."""
    condition = or_(Asset.created_by.is_(None), Asset.created_by == viewer) if viewer else Asset.created_by.is_(None)
    if viewer and members_too:
        held = select(UniverseAsset.asset_id).where(
            UniverseAsset.asset_id == Asset.id, UniverseAsset.owner_id == viewer
        )
        condition = or_(condition, exists(held))
    return condition


async def tickers_then(session: AsyncSession, pairs: Sequence[tuple[str, date]]) -> dict[tuple[str, date], str]:
    """(ticker, day) -> today's ticker of the listed security that traded under ``ticker`` on ``day``, where that is
    another ticker: renamed since (FB in 2021 is META) or the ticker given to another security since (FB is an ETF's
    today). From the master's ticker history; pairs it knows nothing of are left out."""
    spans: dict[str, list[tuple[date | None, date, str]]] = {}
    symbols = sorted({symbol for symbol, _ in pairs})
    for start in range(0, len(symbols), 500):  # SQLite caps bound parameters per statement
        rows = await session.execute(
            select(AssetSymbol.symbol, AssetSymbol.valid_from, AssetSymbol.valid_to, Asset.symbol)
            .join(Asset, Asset.id == AssetSymbol.asset_id)
            .where(
                AssetSymbol.symbol.in_(symbols[start : start + 500]),
                AssetSymbol.symbol != Asset.symbol,
                AssetSymbol.valid_to.is_not(None),
                Asset.listing_status == "listed",
            )
        )
        for then, valid_from, valid_to, today in rows.all():
            if valid_to is not None:  # (the statement asks for ended spans only)
                spans.setdefault(then, []).append((valid_from, valid_to, today))
    found: dict[tuple[str, date], str] = {}
    for symbol, day in pairs:
        for valid_from, valid_to, today in spans.get(symbol, []):
            if (valid_from is None or valid_from <= day) and day < valid_to:  # valid_to: the next ticker's first day
                found[(symbol, day)] = today
                break
    return found


async def get_assets_by_symbols(
    session: AsyncSession, symbols: Sequence[str], *, viewer: uuid.UUID | None = None, visible_only: bool = False
) -> dict[str, Asset]:
    """Listed assets whose current ticker is in ``symbols``; ``visible_only``: only those ``viewer`` may see."""
    if not symbols:
        return {}
    found: dict[str, Asset] = {}
    # Chunked: SQLite caps bound parameters per statement.
    for start in range(0, len(symbols), 500):
        chunk = list(symbols[start : start + 500])
        query = select(Asset).where(Asset.symbol.in_(chunk), Asset.listing_status == "listed")
        if visible_only:
            query = query.where(visible_to(viewer, members_too=True))
        rows = await session.scalars(query)
        found.update({a.symbol: a for a in rows})
    return found


class AssetRef(NamedTuple):
    """What adding an asset to a universe needs of it: a plain row, not an ORM object."""

    id: uuid.UUID
    symbol: str
    validation_status: str
    validation_source: str | None

    @classmethod
    def of(cls, asset: Asset) -> AssetRef:
        return cls(asset.id, asset.symbol, asset.validation_status, asset.validation_source)


async def asset_refs_by_symbols(session: AsyncSession, symbols: Sequence[str]) -> dict[str, AssetRef]:
    """get_assets_by_symbols for an add: four columns of each listed asset, no ORM objects. Loading 1,000 whole
    assets (thirty columns, a JSON one, an identity-map entry each) was the larger part of a 1,000-symbol add."""
    if not symbols:
        return {}
    rows = await session.execute(
        select(Asset.id, Asset.symbol, Asset.validation_status, Asset.validation_source).where(
            _symbol_in(session.get_bind().dialect.name, symbols), Asset.listing_status == "listed"
        )
    )
    return {row[1]: AssetRef(*row) for row in rows.all()}


def _symbol_in(dialect: str, symbols: Sequence[str]) -> ColumnElement[bool]:
    """``Asset.symbol IN symbols`` with the list as one parameter (SQLite: a JSON array read by json_each;
    PostgreSQL: = ANY of an array): one statement for any number of symbols, and none of the per-value work an
    expanding IN costs (500 placeholders rendered and bound per chunk)."""
    if dialect == "sqlite":
        listed = func.json_each(literal(json.dumps(list(symbols)), String)).table_valued("value")
        return Asset.symbol.in_(select(listed.c.value))
    if dialect == "postgresql":
        return Asset.symbol == any_(literal(list(symbols), postgresql.ARRAY(String)))
    return Asset.symbol.in_(list(symbols))


async def create_assets(
    session: AsyncSession, rows: Sequence[Mapping[str, Any]], *, created_by: uuid.UUID | None = None
) -> list[Asset]:
    """The assets of ``rows`` (one per symbol): new ones inserted, those not created ``valid`` recording
    ``created_by`` (unconfirmed: hidden from other owners).

    A symbol that another transaction listed meanwhile (two callers adding the same new ticker at once) is not an
    error: the insert skips it (ON CONFLICT DO NOTHING, waiting for the other transaction on PostgreSQL) and its
    row is returned as it is.
    """
    if not rows:
        return []
    values = [
        {
            **fit(row),
            "id": uuid.uuid4(),
            "created_by": created_by if row.get("validation_status") != "valid" else None,
        }
        for row in rows
    ]
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    inserted: set[uuid.UUID] = set()
    # Rows with the same columns go in one multi-row INSERT (a column missing from a row keeps its default), in
    # chunks (SQLite caps bound parameters per statement), sorted: concurrent inserts then take the unique index's
    # entries in one order, so two of them cannot deadlock on PostgreSQL.
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for value in sorted(values, key=lambda v: v["symbol"]):
        shapes.setdefault(tuple(sorted(value)), []).append(value)
    for group in shapes.values():
        for start in range(0, len(group), 200):
            statement = insert(Asset).values(group[start : start + 200]).on_conflict_do_nothing().returning(Asset.id)
            inserted.update(await session.scalars(statement))
    assets = await get_assets_by_symbols(session, [v["symbol"] for v in values])
    await replace_name_words(
        session,
        [
            (v["id"], v["name"], v.get("sector"), v["symbol"], v.get("market_cap"))
            for v in values
            if v["id"] in inserted and v.get("name")
        ],
        new=True,
    )
    return [assets[v["symbol"]] for v in values if v["symbol"] in assets]


async def update_asset(session: AsyncSession, asset: Asset, values: Mapping[str, Any]) -> Asset:
    before = indexed(asset)
    if values.get("validation_status") == "valid":
        # Confirmed by a provider or the catalog: a real security, visible to every owner from now on.
        asset.created_by = None
    for key, value in fit(values).items():
        setattr(asset, key, value)
    await session.flush()
    after = indexed(asset)
    if after[:4] != before[:4]:  # the search index copies name, sector and symbol: its words are written anew
        await replace_name_words(session, [after])
    elif after[4] != before[4]:  # ... and the market cap, the order a filtered search reads a word's assets in
        await copy_market_cap(session, asset.id, asset.market_cap)
    return asset


async def sector_counts(session: AsyncSession) -> dict[tuple[str | None, str | None], int]:
    """(sector, industry) -> how many listed, not-invalid, confirmed assets have them."""
    from sqlalchemy import func

    rows = await session.execute(
        select(Asset.sector, Asset.industry, func.count())
        .where(Asset.listing_status == "listed", Asset.validation_status != "invalid", Asset.created_by.is_(None))
        .group_by(Asset.sector, Asset.industry)
    )
    return {(sector, industry): int(n) for sector, industry, n in rows.all()}


async def asset_by_past_symbol(session: AsyncSession, symbol: str) -> Asset | None:
    """The asset that traded under ``symbol`` before (FB -> META), if the ticker history knows it."""
    from storage.models import AssetSymbol

    return await session.scalar(
        select(Asset)
        .join(AssetSymbol, AssetSymbol.asset_id == Asset.id)
        .where(AssetSymbol.symbol == symbol)
        .order_by(AssetSymbol.valid_to.desc())
        .limit(1)
    )


async def catalog_seeded(session: AsyncSession) -> bool:
    return await session.scalar(select(Asset.id).where(Asset.validation_source == "catalog").limit(1)) is not None


async def insert_assets_bulk(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    """Core executemany INSERTs (no ORM unit of work): used to load the offline catalog quickly."""
    if rows:
        values = [{**fit(r), "id": uuid.uuid4()} for r in rows]
        await session.execute(Asset.__table__.insert(), values)
        await replace_name_words(
            session,
            [(v["id"], v["name"], v.get("sector"), v["symbol"], v.get("market_cap")) for v in values if v.get("name")],
            new=True,
        )


async def listed_symbols(session: AsyncSession) -> list[str]:
    return list(await session.scalars(select(Asset.symbol).where(Asset.listing_status == "listed")))
