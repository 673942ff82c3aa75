"""services/screening.py over storage/repositories/screening.py, on SQLite and on PostgreSQL (the non-owner app role):
every operator and combinator against five hand-made securities (and one invalid ticker, never a result) whose expected sets are written out below.

They live on an exchange name of their own, and every rule is ANDed with it, so the shipped listings in the
same store never enter a result.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from server.lifespan import AppState, open_app_state
from services.errors import InvalidArgument
from services.screening import ScreeningService
from storage.models import Asset, AssetIndex
from tests.support.stores import Store, pg_store, store  # noqa: F401

pytestmark = pytest.mark.anyio

# symbol suffix -> (name, type, sector, industry, country, market cap, IPO year, listing status, in the test index)
ROWS: dict[str, tuple[Any, ...]] = {
    "A": (
        "Alpha Chips Inc",
        "stock",
        "Information Technology",
        "Semiconductors",
        "United States",
        5e11,
        1999,
        "listed",
        True,
    ),
    "B": ("Beta Bank Corp", "stock", "Financials", "Major Banks", "United States", 2e10, 2010, "listed", False),
    "C": ("Gamma Energy plc", "stock", "Energy", "Oil & Gas Production", "United Kingdom", 8e9, 2021, "listed", True),
    "D": ("Delta 100% Chips_ETF", "etf", None, None, None, None, None, "listed", False),
    "E": (
        "Epsilon Old Co",
        "stock",
        "Industrials",
        "Industrial Machinery",
        "United States",
        1e9,
        1980,
        "delisted",
        False,
    ),
}


class Screen:
    def __init__(self, state: AppState, exchange: str, prefix: str) -> None:
        self.state, self.exchange, self.prefix = state, exchange, prefix

    async def page(self, rule: dict[str, Any], **kwargs: Any) -> Any:
        rules = {"all": [{"field": "exchange", "op": "eq", "value": self.exchange}, rule]}
        async with self.state.unit_of_work() as session:
            return await ScreeningService(session).screen(rules, **kwargs)

    async def __call__(self, rule: dict[str, Any], **kwargs: Any) -> set[str]:
        page = await self.page(rule, **kwargs)
        assert page.total == len(page.assets)  # one page holds them all here
        return {a.symbol.removeprefix(self.prefix) for a in page.assets}

    async def ordered(self, **kwargs: Any) -> list[str]:
        rule = {"field": "listing_status", "op": "eq", "value": "listed"}
        return [a.symbol.removeprefix(self.prefix) for a in (await self.page(rule, **kwargs)).assets]


@pytest.fixture
async def screen(store: Store) -> AsyncIterator[Screen]:  # noqa: F811
    tag = secrets.token_hex(3).upper()
    prefix, exchange, index = f"Q{tag}", f"Test exchange {tag}", f"Test index {tag}"
    async with open_app_state(store()) as state:
        async with state.unit_of_work() as session:
            for suffix, (name, kind, sector, industry, country, cap, ipo, status, indexed) in ROWS.items():
                asset = Asset(
                    id=uuid.uuid4(),
                    symbol=prefix + suffix,
                    name=name,
                    exchange=exchange,
                    asset_type=kind,
                    sector=sector,
                    industry=industry,
                    country=country,
                    market_cap=cap,
                    ipo_year=ipo,
                    listing_status=status,
                    # As the security master records them: a delisted security's verdict is invalid.
                    validation_status="invalid" if status == "delisted" else "valid",
                )
                session.add(asset)
                await session.flush()
                if indexed:
                    session.add(AssetIndex(asset_id=asset.id, index_name=index))
            # A ticker no source knows (an invalid verdict on a listed row): never a screen result.
            session.add(Asset(id=uuid.uuid4(), symbol=prefix + "J", exchange=exchange, validation_status="invalid"))
        yield Screen(state, exchange, prefix)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"field": "sector", "op": "eq", "value": "Information Technology"}, {"A"}),
        ({"field": "sector", "op": "eq", "value": "technology"}, {"A"}),  # the alias, normalised
        ({"field": "sector", "op": "ne", "value": "Information Technology"}, {"B", "C", "D"}),  # D: no sector
        ({"field": "sector", "op": "in", "value": ["Financials", "Energy"]}, {"B", "C"}),
        ({"field": "sector", "op": "not_in", "value": ["Financials"]}, {"A", "C", "D"}),
        ({"field": "market_cap", "op": "gt", "value": 8e9}, {"A", "B"}),
        ({"field": "market_cap", "op": "gte", "value": 8e9}, {"A", "B", "C"}),
        ({"field": "market_cap", "op": "lt", "value": 2e10}, {"C"}),
        ({"field": "market_cap", "op": "lte", "value": 2e10}, {"B", "C"}),
        ({"field": "market_cap", "op": "between", "value": [8e9, 2e10]}, {"B", "C"}),
        ({"field": "market_cap", "op": "eq", "value": 2e10}, {"B"}),
        ({"field": "ipo_year", "op": "gte", "value": 2010}, {"B", "C"}),
        ({"field": "ipo_year", "op": "in", "value": [1999, 2021]}, {"A", "C"}),
        ({"field": "name", "op": "contains", "value": "CHIPS"}, {"A", "D"}),
        ({"field": "name", "op": "contains", "value": "100%"}, {"D"}),  # % matches itself
        ({"field": "name", "op": "contains", "value": "s_E"}, {"D"}),  # _ matches itself
        ({"field": "name", "op": "eq", "value": "beta bank corp"}, {"B"}),
        ({"field": "industry", "op": "contains", "value": "semiconductor"}, {"A"}),
        ({"field": "industry", "op": "eq", "value": "major banks"}, {"B"}),
        ({"field": "country", "op": "contains", "value": "kingdom"}, {"C"}),
        ({"field": "country", "op": "ne", "value": "United States"}, {"C", "D"}),
        ({"field": "asset_type", "op": "eq", "value": "ETF"}, {"D"}),
        ({"field": "index", "op": "eq", "value": "INDEX"}, {"A", "C"}),  # INDEX is replaced by the test's index
        ({"field": "index", "op": "ne", "value": "INDEX"}, {"B", "D"}),
        ({"field": "listing_status", "op": "eq", "value": "delisted"}, {"E"}),
        ({"field": "listing_status", "op": "in", "value": ["listed", "delisted"]}, {"A", "B", "C", "D", "E"}),
        (
            {
                "any": [
                    {"field": "sector", "op": "eq", "value": "Energy"},
                    {"field": "market_cap", "op": "gt", "value": 1e11},
                ]
            },
            {"A", "C"},
        ),
        ({"not": {"field": "market_cap", "op": "gt", "value": 1e10}}, {"C", "D"}),  # D: unknown cap is not > 1e10
        (
            {
                "all": [
                    {"field": "country", "op": "eq", "value": "united states"},
                    {"not": {"field": "sector", "op": "eq", "value": "Financials"}},
                ]
            },
            {"A"},
        ),
        ({"not": {"not": {"field": "asset_type", "op": "eq", "value": "etf"}}}, {"D"}),
    ],
)
async def test_each_operator_and_combinator_gives_its_set(screen: Screen, rule: dict[str, Any], expected: set[str]):
    rule = _with_index(rule, screen)
    assert await screen(rule) == expected


def _with_index(rule: dict[str, Any], screen: Screen) -> dict[str, Any]:
    if rule.get("field") == "index":
        return {**rule, "value": screen.exchange.replace("exchange", "index")}
    if rule.get("field") == "symbol":
        return {**rule, "value": screen.prefix + rule["value"]}
    return rule


async def test_a_ticker_condition_takes_any_spelling(screen: Screen):
    assert await screen({"field": "symbol", "op": "eq", "value": f" {screen.prefix.lower()}a "}) == {"A"}


@pytest.mark.parametrize(
    ("sort_by", "expected"),
    [
        ("market_cap", ["A", "B", "C", "D"]),  # unknown market cap last
        ("name", ["A", "B", "D", "C"]),  # Alpha, Beta, Delta, Gamma
        ("symbol", ["A", "B", "C", "D"]),
        ("ipo_year", ["C", "B", "A", "D"]),  # newest first, unknown last
    ],
)
async def test_sort_orders(screen: Screen, sort_by: str, expected: list[str], monkeypatch: pytest.MonkeyPatch):
    assert await screen.ordered(sort_by=sort_by) == expected
    # Past the count's cap the page is read off the sort order's index (SQLite): the same order.
    monkeypatch.setattr("services.screening.MAX_TOTAL", 1)
    assert await screen.ordered(sort_by=sort_by) == expected


async def test_pages_follow_each_other_and_a_cursor_belongs_to_its_rules(screen: Screen):
    rule = {"field": "listing_status", "op": "eq", "value": "listed"}
    first = await screen.page(rule, limit=3)
    assert first.total == 4 and [a.symbol[-1] for a in first.assets] == ["A", "B", "C"] and first.next_cursor
    second = await screen.page(rule, limit=3, cursor=first.next_cursor)
    assert [a.symbol[-1] for a in second.assets] == ["D"] and second.next_cursor is None
    with pytest.raises(InvalidArgument, match="cursor"):
        await screen.page({"field": "market_cap", "op": "gt", "value": 0}, limit=3, cursor=first.next_cursor)
    with pytest.raises(InvalidArgument, match="cursor"):
        await screen.page(rule, limit=3, sort_by="name", cursor=first.next_cursor)


async def test_another_owners_unconfirmed_asset_is_not_screened(screen: Screen):
    async with screen.state.unit_of_work() as session:
        session.add(
            Asset(
                id=uuid.uuid4(),
                symbol=screen.prefix + "X",
                exchange=screen.exchange,
                asset_type="stock",
                validation_status="pending",
                created_by=uuid.uuid4(),
            )
        )
    assert "X" not in await screen({"field": "asset_type", "op": "eq", "value": "stock"})


async def test_the_count_stops_at_the_cap_and_says_so(screen: Screen, monkeypatch: pytest.MonkeyPatch):
    """Past MAX_TOTAL the total is a lower bound, flagged; the pages still run to the last match."""
    monkeypatch.setattr("services.screening.MAX_TOTAL", 2)
    rule = {"field": "listing_status", "op": "eq", "value": "listed"}  # four securities match
    first = await screen.page(rule, limit=3)
    assert (first.total, first.total_capped) == (2, True)
    assert [a.symbol[-1] for a in first.assets] == ["A", "B", "C"] and first.next_cursor
    second = await screen.page(rule, limit=3, cursor=first.next_cursor)
    assert [a.symbol[-1] for a in second.assets] == ["D"] and second.next_cursor is None
    monkeypatch.setattr("services.screening.MAX_TOTAL", 4)
    exact = await screen.page(rule, limit=3)
    assert (exact.total, exact.total_capped) == (4, False)
