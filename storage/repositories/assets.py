"""Assets (global, not per tenant): lookups by symbol, upserts of verdicts, search and sector counts."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Asset

__all__ = ["create_assets", "get_assets_by_symbols", "update_asset"]


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
    assets = [Asset(id=uuid.uuid4(), **dict(row)) for row in rows]
    session.add_all(assets)
    await session.flush()
    return assets


async def update_asset(session: AsyncSession, asset: Asset, values: Mapping[str, Any]) -> Asset:
    for key, value in values.items():
        setattr(asset, key, value)
    await session.flush()
    return asset
