"""A filtered search read rank by rank off the name-word index (storage/repositories/screening.py, _search_by_rank)
returns exactly what one statement over every candidate returns (_search_candidates, how every filtered search ran
before migration 0014), on SQLite and on PostgreSQL: every rank, ties and unknown market caps, rules of every op,
pages at several offsets, and walks cut into small batches so that they are read further."""

from __future__ import annotations

import random
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from services.screening import industries_matching
from storage.repositories import assets as repo
from storage.repositories import screening
from storage.repositories.screening import AllOf, AnyOf, Condition, Not
from tests.storage.test_asset_search import state  # noqa: F401  (sqlite and postgres, 1,500 assets)

pytestmark = pytest.mark.anyio

INDUSTRIES = ["Banks", "Banks - Regional", "Gold Mining", "Solar Energy", "Holding Companies", None]
COUNTRIES = ["United States", "Canada", "Germany", None]


def more_rows(n: int) -> list[dict[str, Any]]:
    """Assets with the fields filters use: market caps (some equal, some unknown), industries, countries."""
    rng = random.Random(11)
    checked = datetime(2026, 1, 2, tzinfo=UTC)
    names = ["Bank", "Banks", "Gold", "Golden", "Solar", "Holdings", "Kalo", "Bank of Kalo", "Goldbank"]
    rows: list[dict[str, Any]] = []
    for i in range(n):
        words = rng.sample(names, rng.choice((1, 2)))
        rows.append(
            {
                "symbol": rng.choice(["BANK", "GOLD", "KA", "Z"]) + f"{i:03d}",
                "name": " ".join(words) + rng.choice(["", " Inc", " Group"]),
                "sector": rng.choice(["Financials", "Materials", "Energy", None]),
                "industry": rng.choice(INDUSTRIES),
                "country": rng.choice(COUNTRIES),
                "market_cap": rng.choice([None, 1e9, 2e9, rng.uniform(1e6, 1e12), rng.uniform(1e6, 1e12)]),
                "asset_type": rng.choice(["stock", "etf"]),
                "validation_status": rng.choice(["valid"] * 9 + ["invalid"]),
                "listing_status": "listed" if rng.random() < 0.95 else "delisted",
                "is_validated": True,
                "last_validated_at": checked,
                "asset_metadata": {},
                "created_at": checked,
                "updated_at": checked,
            }
        )
    return rows


QUERIES = ["bank", "BANK0", "gold", "golden", "bank of", "kalo bank", "solar", "b", "holdings group", "a", "zzz", "Z1"]
RULES = [
    AllOf(()),
    AllOf((Condition("country", "eq", "United States"),)),
    AllOf((Condition("sector", "eq", "Financials"), Condition("market_cap", "gte", 1e9))),
    AllOf((Condition("sector", "in", ("Financials", "Energy")), Condition("market_cap", "between", [1e9, 5e11]))),
    AllOf((Condition("asset_type", "eq", "stock"), Condition("market_cap", "lt", 2e9))),
    AllOf((Condition("industry", "in", ("Banks", "Gold Mining")), Condition("country", "ne", "Canada"))),
    AllOf((Condition("country", "not_in", ("Germany",)), Condition("market_cap", "lte", 1e9))),
    AllOf((Condition("industry", "contains", "bank"), Condition("market_cap", "gt", 1e9))),
    AllOf((Condition("market_cap", "eq", 2e9),)),
    AnyOf((Condition("country", "eq", "Canada"), Not(Condition("sector", "eq", "Financials")))),
    AllOf((Condition("name", "contains", "kalo"),)),
]


def symbols(rows: list[Any]) -> list[tuple[str, float | None]]:
    return [(r.symbol, r.market_cap) for r in rows]


@pytest.fixture
async def store(state):  # noqa: F811
    async with state.unit_of_work() as session:
        await repo.insert_assets_bulk(session, more_rows(400))
    return state


@pytest.mark.parametrize("batch", ["normal", "tiny"])
async def test_ranks_read_in_order_give_what_every_candidate_gives(store, monkeypatch, batch):
    if batch == "tiny":  # every walk read further, several times
        monkeypatch.setattr(screening, "WALK_PER_ROW", 0)
        monkeypatch.setattr(screening, "WALK_EXTRA", 1)
        monkeypatch.setattr(screening, "WALK_GROWTH", 2)
    viewer = uuid.uuid4()
    for query in QUERIES:
        words = re.findall(r"[a-z0-9&]+", query.casefold())
        prefix = query.upper()
        async with store.unit_of_work() as session:
            industries = await industries_matching(session, words)
        for rule in RULES:
            for offset, limit in ((0, 21), (7, 5), (40, 11)):
                arguments = dict(symbol_prefix=prefix, words=words, phrase=query.casefold(), industries=industries)
                async with store.unit_of_work() as session:
                    got = await screening.search_screened(
                        session, rule, **arguments, offset=offset, limit=limit, listed_only=True, viewer=viewer
                    )
                    where = screening.screen_where(rule, listed_only=True, viewer=viewer)
                    want = await screening._search_candidates(
                        session, where, prefix, words, query.casefold(), industries, offset, limit, listed_only=True
                    )
                assert symbols(got) == symbols(want), (query, rule, offset, limit)


async def test_the_index_follows_market_caps(state):  # noqa: F811
    """The copy of a market cap in the name-word index is what a search walks by: it follows every change."""
    async with state.unit_of_work() as session:
        await repo.insert_assets_bulk(session, more_rows(50))
    rule = AllOf((Condition("market_cap", "gte", 0),))

    async def first() -> str:
        async with state.unit_of_work() as session:
            rows = await screening.search_screened(
                session,
                rule,
                symbol_prefix=None,
                words=["kalo"],
                phrase="kalo",
                offset=0,
                limit=1,
                listed_only=True,
                viewer=None,
            )
        return rows[0].symbol

    top = await first()
    async with state.unit_of_work() as session:
        others = await screening.search_screened(
            session,
            rule,
            symbol_prefix=None,
            words=["kalo"],
            phrase="kalo",
            offset=1,
            limit=1,
            listed_only=True,
            viewer=None,
        )
        second = (await repo.get_assets_by_symbols(session, [others[0].symbol]))[others[0].symbol]
        await repo.update_asset(session, second, {"market_cap": 5e12})
    assert await first() == second.symbol != top
