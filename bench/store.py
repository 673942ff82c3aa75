"""A store of N synthetic assets (plus the offline catalog), built through the product's own code paths.

Symbols are SYM000001 ... with rotating GICS sectors (``FakeProvider.with_generated``); names are made-up but
shaped like real ones ("Velkator Robotics Holdings"), so that name search sees realistic selectivity: a suffix word
such as "holdings" matches about 1 asset in 12, an industry word about 1 in 60, an invented stem a handful.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import bench_settings

SYLLABLES = (
    "ka",
    "lo",
    "ri",
    "ven",
    "tor",
    "mar",
    "sil",
    "bel",
    "dor",
    "nex",
    "qua",
    "zen",
    "pra",
    "vel",
    "cor",
    "tri",
    "lum",
    "hal",
    "gra",
    "mon",
)
INDUSTRIES = (
    "Energy",
    "Bank",
    "Robotics",
    "Pharmaceuticals",
    "Mining",
    "Software",
    "Semiconductor",
    "Insurance",
    "Capital",
    "Realty",
    "Foods",
    "Motors",
    "Airlines",
    "Biotech",
    "Media",
    "Telecom",
    "Utilities",
    "Logistics",
    "Materials",
    "Chemicals",
    "Retail",
    "Networks",
    "Systems",
    "Health",
    "Financial",
    "Industries",
    "Technologies",
    "Resources",
    "Minerals",
    "Gold",
    "Oil",
    "Gas",
    "Water",
    "Power",
    "Solar",
    "Wind",
    "Steel",
    "Paper",
    "Textiles",
    "Apparel",
    "Beverages",
    "Brewing",
    "Tobacco",
    "Gaming",
    "Hotels",
    "Restaurants",
    "Education",
    "Security",
    "Defense",
    "Aerospace",
    "Shipping",
    "Rail",
    "Trucking",
    "Construction",
    "Homes",
    "Properties",
    "Partners",
    "Ventures",
    "Labs",
    "Devices",
)
SUFFIXES = ("Inc", "Corp", "Holdings", "Group", "Ltd", "PLC", "SA", "AG", "NV", "Trust", "Co", "ETF")

SYNTHETIC_PREFIX = "SYM"
COUNTRIES = ("United States", "Canada", "United Kingdom", "Germany", "Japan", "China", "France", "Switzerland")
COUNTRY_WEIGHTS = (60, 6, 8, 6, 7, 7, 3, 3)
BENCH_INDEX = "Bench 500"  # an index of every 200th synthetic asset (index and sector screens)


def synthetic_symbol(i: int, n: int) -> str:
    """The i-th (1-based) synthetic symbol of a store of ``n`` (FakeProvider.with_generated's numbering)."""
    return f"{SYNTHETIC_PREFIX}{i:0{max(5, len(str(n)))}d}"


def synthetic_rows(n: int, seed: int = 6) -> list[dict]:
    """Asset rows for the store, in the shape repositories.assets.insert_assets_bulk takes."""
    from providers.fake import FakeProvider

    rng = random.Random(seed)
    # The screening fields draw from a generator of their own, so that names (and scenario 2's selectivity) stay
    # exactly what they were before these fields existed.
    more = random.Random(seed + 1)
    profiles = FakeProvider.with_generated(n, prefix=SYNTHETIC_PREFIX).known
    checked = datetime(2026, 1, 2, tzinfo=UTC)
    rows: list[dict[str, Any]] = []
    for symbol, p in sorted(profiles.items()):
        stem = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 3)))).capitalize()
        industry = rng.choice(INDUSTRIES)
        name = f"{stem} {industry} {rng.choice(SUFFIXES)}"
        rows.append(
            {
                "symbol": symbol,
                "name": name,
                "exchange": p.exchange,
                "asset_type": p.asset_type,
                "currency": p.currency,
                "sector": p.sector,
                "market_cap": p.market_cap,
                "industry": f"{industry} Products",
                "country": more.choices(COUNTRIES, weights=COUNTRY_WEIGHTS)[0],
                "ipo_year": more.randint(1970, 2026),
                "validation_status": "valid",
                "is_validated": True,
                "validation_source": "fake",
                "last_validated_at": checked,
                "listing_status": "listed",
                "asset_metadata": {},
                "created_at": checked,
                "updated_at": checked,
            }
        )
    return rows


async def _build(data_dir: Path, n: int, **settings_overrides: Any) -> float:
    from server.lifespan import open_app_state
    from storage.repositories.assets import insert_assets_bulk

    started = time.perf_counter()
    settings = bench_settings(data_dir, **settings_overrides)
    # The product's start-up: migrations and the offline catalog.
    async with open_app_state(settings) as state:
        rows = synthetic_rows(n)
        for start in range(0, len(rows), 5_000):
            async with state.unit_of_work() as session:
                await insert_assets_bulk(session, rows[start : start + 5_000])
        async with state.unit_of_work() as session:
            await _index_every_200th(session, [r["symbol"] for r in rows[::200]])
    return time.perf_counter() - started


async def _index_every_200th(session: Any, symbols: list[str]) -> None:
    from sqlalchemy import insert, select

    from storage.models import Asset, AssetIndex

    ids = (await session.scalars(select(Asset.id).where(Asset.symbol.in_(symbols)))).all()
    await session.execute(insert(AssetIndex), [{"asset_id": i, "index_name": BENCH_INDEX} for i in ids])


def build_store(data_dir: Path, n: int) -> float:
    """A fresh store with ``n`` synthetic assets in ``data_dir``; returns the seconds it took."""
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    return asyncio.run(_build(data_dir, n))


async def build_postgres_store(data_dir: Path, n: int, **database: str) -> float:
    """The same store of ``n`` assets in a PostgreSQL database (``database``: the settings naming it)."""
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    return await _build(data_dir, n, **database)


def copy_store(source: Path, target: Path) -> Path:
    """A private copy of a built store (each scenario may write)."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copyfile(source / "universe.db", target / "universe.db")
    return target
