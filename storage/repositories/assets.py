"""Assets (global, not per tenant): lookups by symbol, upserts of verdicts, search and sector counts."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Asset

__all__ = [
    "asset_by_past_symbol",
    "catalog_seeded",
    "create_assets",
    "get_assets_by_symbols",
    "insert_assets_bulk",
    "listed_symbols",
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
        rows = await session.scalars(
            select(Asset).where(Asset.symbol.in_(chunk), Asset.listing_status == "listed")
        )
        found.update({a.symbol: a for a in rows})
    return found


async def create_assets(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> list[Asset]:
    assets = [Asset(id=uuid.uuid4(), **fit(row)) for row in rows]
    session.add_all(assets)
    await session.flush()
    return assets


async def update_asset(session: AsyncSession, asset: Asset, values: Mapping[str, Any]) -> Asset:
    for key, value in fit(values).items():
        setattr(asset, key, value)
    await session.flush()
    return asset


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def search_assets(
    session: AsyncSession,
    *,
    symbol_prefix: str | None,
    name_words: Sequence[str],
    sector: str | None,
    offset: int,
    limit: int,
) -> list[Asset]:
    """Listed, not-invalid assets matching a symbol prefix or all name words (each at a word start).

    Ranked: exact symbol, then symbol prefix (shorter first), then name matches by name.
    """
    from sqlalchemy import and_, case, func, or_

    name = func.lower(Asset.name)
    matches = []
    if symbol_prefix:
        matches.append(Asset.symbol.like(_like_escape(symbol_prefix) + "%", escape="\\"))
    if name_words:
        matches.append(and_(*[
            or_(name.like(_like_escape(w) + "%", escape="\\"), name.like("% " + _like_escape(w) + "%", escape="\\"))
            for w in name_words
        ]))
    if not matches:
        return []
    rank = case(
        (Asset.symbol == (symbol_prefix or ""), 0),
        (Asset.symbol.like(_like_escape(symbol_prefix or "\x00") + "%", escape="\\"), 1),
        else_=2,
    )
    stmt = (
        select(Asset)
        .where(Asset.listing_status == "listed", Asset.validation_status != "invalid", or_(*matches))
        .order_by(rank, func.length(Asset.symbol), Asset.symbol)
        .offset(offset)
        .limit(limit)
    )
    if sector:
        stmt = stmt.where(Asset.sector == sector)
    return list(await session.scalars(stmt))


async def sector_counts(session: AsyncSession) -> dict[str | None, int]:
    from sqlalchemy import func

    rows = await session.execute(
        select(Asset.sector, func.count()).where(Asset.listing_status == "listed", Asset.validation_status != "invalid")
        .group_by(Asset.sector)
    )
    return {sector: int(n) for sector, n in rows.all()}


async def asset_by_past_symbol(session: AsyncSession, symbol: str) -> Asset | None:
    """The asset that traded under ``symbol`` before (FB -> META), if the ticker history knows it."""
    from storage.models import AssetSymbol

    return await session.scalar(
        select(Asset).join(AssetSymbol, AssetSymbol.asset_id == Asset.id)
        .where(AssetSymbol.symbol == symbol).order_by(AssetSymbol.valid_to.desc()).limit(1)
    )


async def catalog_seeded(session: AsyncSession) -> bool:
    return await session.scalar(select(Asset.id).where(Asset.validation_source == "catalog").limit(1)) is not None


async def insert_assets_bulk(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    """Core executemany INSERTs (no ORM unit of work): used to load the offline catalog quickly."""
    if rows:
        await session.execute(Asset.__table__.insert(), [{**fit(r), "id": uuid.uuid4()} for r in rows])


async def listed_symbols(session: AsyncSession) -> list[str]:
    return list(await session.scalars(select(Asset.symbol).where(Asset.listing_status == "listed")))
