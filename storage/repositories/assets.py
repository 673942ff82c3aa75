"""Assets (global, not per tenant): lookups by symbol, upserts of verdicts, search and sector counts."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Asset
from storage.repositories.asset_search import indexed, name_word_rows, replace_name_words, search_assets

# search_assets lives in asset_search.py with the name-word index it reads; it is re-exported here, where the
# services look for asset queries.

__all__ = [
    "asset_by_past_symbol",
    "catalog_seeded",
    "create_assets",
    "get_assets_by_symbols",
    "insert_assets_bulk",
    "listed_symbols",
    "name_word_rows",
    "search_assets",
    "sector_counts",
    "update_asset",
]


def _string_lengths() -> dict[str, int]:
    return {c.name: c.type.length for c in Asset.__table__.columns if getattr(c.type, "length", None)}


_LENGTHS: dict[str, int] = {}


def fit(values: Mapping[str, Any]) -> dict[str, Any]:
    """Provider text cut to the column sizes: PostgreSQL rejects what SQLite silently stores."""
    if not _LENGTHS:
        _LENGTHS.update(_string_lengths())
    return {k: (v[: _LENGTHS[k]] if isinstance(v, str) and k in _LENGTHS else v) for k, v in values.items()}


async def get_assets_by_symbols(session: AsyncSession, symbols: Sequence[str]) -> dict[str, Asset]:
    """Listed assets whose current ticker is in ``symbols``."""
    if not symbols:
        return {}
    found: dict[str, Asset] = {}
    # Chunked: SQLite caps bound parameters per statement.
    for start in range(0, len(symbols), 500):
        chunk = list(symbols[start : start + 500])
        rows = await session.scalars(select(Asset).where(Asset.symbol.in_(chunk), Asset.listing_status == "listed"))
        found.update({a.symbol: a for a in rows})
    return found


async def create_assets(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> list[Asset]:
    assets = [Asset(id=uuid.uuid4(), **fit(row)) for row in rows]
    session.add_all(assets)
    await session.flush()
    await replace_name_words(session, [indexed(a) for a in assets if a.name], new=True)
    return assets


async def update_asset(session: AsyncSession, asset: Asset, values: Mapping[str, Any]) -> Asset:
    before = indexed(asset)
    for key, value in fit(values).items():
        setattr(asset, key, value)
    await session.flush()
    if indexed(asset) != before:  # the search index copies name, sector and symbol
        await replace_name_words(session, [indexed(asset)])
    return asset


async def sector_counts(session: AsyncSession) -> dict[str | None, int]:
    from sqlalchemy import func

    rows = await session.execute(
        select(Asset.sector, func.count())
        .where(Asset.listing_status == "listed", Asset.validation_status != "invalid")
        .group_by(Asset.sector)
    )
    return {sector: int(n) for sector, n in rows.all()}


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
            session, [(v["id"], v["name"], v.get("sector"), v["symbol"]) for v in values if v.get("name")], new=True
        )


async def listed_symbols(session: AsyncSession) -> list[str]:
    return list(await session.scalars(select(Asset.symbol).where(Asset.listing_status == "listed")))
