"""GICS sectors from the screener's industry: a complete reviewed table, reviewed issuer overrides, the pins."""

from __future__ import annotations

from datetime import date
from functools import cache

import pytest

from providers.listings.nasdaq_screener import parse_screener
from providers.listings.sec import parse_sec_tickers
from providers.listings.sectors import NASDAQ_INDUSTRIES, gics_from_nasdaq, issuer_overrides, normalise_industry
from providers.sectors import GICS_SECTORS
from tests.providers.listings.conftest import RECORDED, recorded


@cache
def _screener_rows() -> list:
    rows = []
    for path in sorted((RECORDED / "nasdaq_screener").glob("*_full_tickers-*.json")):
        rows += parse_screener(path.read_bytes(), path.name.split("_")[0])
    return rows


def test_every_recorded_industry_is_in_the_reviewed_table() -> None:
    industries = {normalise_industry(r.source_industry) for r in _screener_rows() if r.source_industry}
    assert len(industries) == 153
    assert sorted(industries - set(NASDAQ_INDUSTRIES)) == []
    assert all(rule.sector in GICS_SECTORS for rule in NASDAQ_INDUSTRIES.values())


# Sectors decided by the industry table alone (Nasdaq files PG under Consumer Discretionary and LIN under
# Industrials or Basic Materials; the table says what the industry is).
INDUSTRY_PINS = {
    "AMD": "Information Technology",
    "NVDA": "Information Technology",
    "JPM": "Financials",
    "PG": "Consumer Staples",
    "KO": "Consumer Staples",
    "XOM": "Energy",
    "NEE": "Utilities",
    "AMT": "Real Estate",
    "LIN": "Materials",
    "CAT": "Industrials",
    "HD": "Consumer Discretionary",
}


@pytest.mark.parametrize("symbol", sorted(INDUSTRY_PINS))
def test_pins_from_the_industry_table(symbol: str) -> None:
    rows = {r.symbol: r for r in _screener_rows_2026()}
    row = rows[symbol]
    assert gics_from_nasdaq(row.source_industry, row.source_sector, row.name) == INDUSTRY_PINS[symbol]


@cache
def _screener_rows_2026() -> list:
    rows = []
    for exchange in ("nasdaq", "nyse", "amex"):
        rows += parse_screener(recorded(f"nasdaq_screener/{exchange}_full_tickers-2026-08-22.json"), exchange)
    return rows


def test_visa_and_mastercard_need_the_issuer_table() -> None:
    """Their industry ("Business Services", shared with Uber and Accenture) cannot tell; the reviewed override can."""
    rows = {r.symbol: r for r in _screener_rows_2026()}
    for symbol in ("V", "MA"):
        assert gics_from_nasdaq(rows[symbol].source_industry, rows[symbol].source_sector) == "Industrials"
    overrides = issuer_overrides()
    assert overrides[1403161].symbol == "V" and overrides[1403161].sector == "Financials"
    assert overrides[1141391].symbol == "MA" and overrides[1141391].sector == "Financials"


def test_mixed_industries_are_refined() -> None:
    assert gics_from_nasdaq("Telecommunications Equipment", "Telecommunications", "Verizon") == "Communication Services"
    assert gics_from_nasdaq("Telecommunications Equipment", "Technology", "Corning") == "Information Technology"
    assert (
        gics_from_nasdaq("Real Estate Investment Trusts", "Real Estate", "Annaly Mortgage Management") == "Financials"
    )
    assert (
        gics_from_nasdaq(" Medicinal Chemicals and Botanical Products ", "Health Care", "British American Tobacco")
        == "Consumer Staples"
    )
    assert gics_from_nasdaq("Consumer Electronics/Appliances", "Technology", "GE Aerospace") == "Industrials"
    assert gics_from_nasdaq("", "", "x") is None
    # An industry the table has never seen falls back to keyword rules, then to Nasdaq's sector label.
    assert gics_from_nasdaq("Cloud Software Services", "") == "Information Technology"
    assert gics_from_nasdaq("Something New", "Finance") == "Financials"


def test_every_override_names_a_real_issuer_with_its_ticker() -> None:
    tickers: dict[int | None, set[str]] = {}
    for day in ("2024-12-19", "2025-12-14"):
        for row in parse_sec_tickers(
            recorded(f"sec/company_tickers_exchange-{day}.json"), date.fromisoformat(day)
        ).rows:
            tickers.setdefault(row.cik, set()).add(row.symbol)
    overrides = issuer_overrides()
    assert 50 <= len(overrides) <= 120  # a reviewed exception list, not a second taxonomy
    for cik, override in overrides.items():
        assert override.symbol in tickers.get(cik, set()), override
        assert override.reason
