"""The offline catalog built from pytickersymbols, and the GICS sector mapping every provider shares."""

from __future__ import annotations

from datetime import date

import pytest

from providers.base import MarketDataProvider, ProviderUnavailable
from providers.catalog import CatalogProvider
from providers.sectors import GICS_SECTORS, sector_from_industries, to_gics_sector


@pytest.fixture(scope="module")
def catalog() -> CatalogProvider:
    return CatalogProvider()


def test_catalog_loads_thousands_of_distinct_symbols(catalog: CatalogProvider):
    entries = catalog.entries()
    symbols = [e.symbol for e in entries]
    assert len(entries) > 3000
    assert len(set(symbols)) == len(symbols) and symbols == sorted(symbols)
    assert all(e.sector is None or e.sector in GICS_SECTORS for e in entries)
    # Nearly every company gets a sector from its industry labels.
    equities = [e for e in entries if e.asset_type == "equity"]
    assert sum(e.sector is not None for e in equities) / len(equities) > 0.97


def test_catalog_date_comes_from_the_data(catalog: CatalogProvider):
    assert date(2025, 1, 1) <= catalog.as_of <= date.today()
    assert catalog.as_of_basis


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("symbol", "name", "sector"),
    [
        ("AAPL", "Apple", "Information Technology"),
        ("msft", "Microsoft", "Information Technology"),
        ("SAP.DE", "SAP", "Information Technology"),
        ("7203.T", "Toyota", "Consumer Discretionary"),
    ],
)
async def test_known_symbols_are_valid_with_sector_and_date(catalog: CatalogProvider, symbol, name, sector):
    verdict = await catalog.validate(symbol)
    assert isinstance(catalog, MarketDataProvider)
    assert verdict.status == "valid" and verdict.source == "catalog"
    assert verdict.symbol == symbol.upper() and verdict.as_of == catalog.as_of
    assert verdict.profile is not None
    assert verdict.profile.name and verdict.profile.name.startswith(name)
    assert verdict.profile.sector == sector


@pytest.mark.anyio
async def test_profiles_carry_listing_details(catalog: CatalogProvider):
    apple = (await catalog.validate("AAPL")).profile
    sap = catalog.get("SAP.F")
    assert apple is not None and sap is not None
    assert (apple.currency, apple.country, apple.exchange, apple.isin) == (
        "USD",
        "United States",
        "NASDAQ",
        "US0378331005",
    )
    indices = apple.extra["indices"]
    assert isinstance(indices, list) and "S&P 500" in indices
    assert (sap.currency, sap.exchange, sap.country) == ("EUR", "Frankfurt", "Germany")
    index = catalog.get("^GSPC")
    assert index is not None and index.asset_type == "index"


@pytest.mark.anyio
async def test_an_unknown_symbol_is_not_called_invalid(catalog: CatalogProvider):
    with pytest.raises(ProviderUnavailable, match="not in the offline catalog"):
        await catalog.validate("ZZZZQ")


@pytest.mark.anyio
async def test_search_by_symbol_prefix_and_name_words(catalog: CatalogProvider):
    by_name = await catalog.search("apple", limit=3)
    assert by_name[0].symbol == "AAPL"
    by_words = await catalog.search("deutsche bank", limit=10)
    assert by_words and all("deutsche bank" in (p.name or "").lower() for p in by_words)
    by_prefix = await catalog.search("MSF", limit=5)
    assert by_prefix[0].symbol.startswith("MSF")
    assert len(await catalog.search("a", limit=7)) == 7
    assert await catalog.search("  ") == []
    assert await catalog.search("qqqxxzzz") == []


@pytest.mark.parametrize(
    ("label", "sector"),
    [
        ("Technology", "Information Technology"),  # Yahoo
        ("Financial Services", "Financials"),
        ("Healthcare", "Health Care"),
        ("Consumer Cyclical", "Consumer Discretionary"),
        ("Consumer Defensive", "Consumer Staples"),
        ("Basic Materials", "Materials"),
        ("Communication Services", "Communication Services"),
        ("Industrials", "Industrials"),
        ("Energy", "Energy"),
        ("Real Estate", "Real Estate"),
        ("Utilities", "Utilities"),
        ("TECHNOLOGY", "Information Technology"),  # Alpha Vantage
        ("LIFE SCIENCES", "Health Care"),
        ("FINANCE", "Financials"),
        ("Consumer Non-Cyclicals", "Consumer Staples"),  # Refinitiv (pytickersymbols)
        ("Telecommunications Services", "Communication Services"),
        ("Semiconductors & Semiconductor Equipment", "Information Technology"),
        ("Food & Drug Retailing", "Consumer Staples"),
        ("Medical Technology", "Health Care"),
        ("Financial technology & Insurance & Finance", "Financials"),
        ("Residential & Commercial RETIs", "Real Estate"),
        ("Electric Utilities & IPPs", "Utilities"),
        ("Oil & Gas Refining and Marketing", "Energy"),
        ("Environmental services", "Industrials"),
    ],
)
def test_sector_labels_map_onto_gics(label, sector):
    assert to_gics_sector(label) == sector


def test_ambiguous_and_unknown_labels():
    assert to_gics_sector("MANUFACTURING", "MOTOR VEHICLES & PASSENGER CAR BODIES") == "Consumer Discretionary"
    assert to_gics_sector("MANUFACTURING", "PHARMACEUTICAL PREPARATIONS") == "Health Care"
    assert to_gics_sector("MANUFACTURING") == "Industrials"  # the documented default
    assert to_gics_sector("TRADE & SERVICES") is None  # too mixed to guess
    assert to_gics_sector(None) is None and to_gics_sector("") is None
    assert to_gics_sector("Zzzz") is None
    assert sector_from_industries(["Payment processor , technology", "Financials", "Industrials"]) == "Financials"
    assert sector_from_industries([]) is None
    assert len(GICS_SECTORS) == 11
