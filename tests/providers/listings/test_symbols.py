"""One canonical spelling per listing; every source's spelling of it, checked against the recorded files."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import pytest

from providers.listings.alpha_vantage import parse_listing_status
from providers.listings.nasdaq_screener import parse_screener
from providers.listings.nasdaq_trader import parse_otherlisted
from providers.listings.sec import parse_sec_tickers
from providers.listings.symbols import SpellingStyle, canonical_symbol, parse_symbol, spell, spellings
from tests.providers.listings.conftest import recorded


@pytest.mark.parametrize(
    "spelling", ["BRK.B", "BRK-B", "BRK/B", "BRK B", "brk.b", " brk-b ", "$BRK.B", "Brk/B", "BRK  B"]
)
def test_every_class_share_spelling_is_one_symbol(spelling: str) -> None:
    assert canonical_symbol(spelling) == "BRK.B"


@pytest.mark.parametrize(
    ("raw", "style", "canonical"),
    [
        ("ABR$D", "act", "ABR.PRD"),
        ("ABR^D", "screener", "ABR.PRD"),
        ("ABR-PD", "sec", "ABR.PRD"),
        ("ABR-P-D", "alpha_vantage", "ABR.PRD"),
        ("ABR PR D", "any", "ABR.PRD"),
        ("ABR.PR.D", "any", "ABR.PRD"),
        ("CEQP$", "act", "CEQP.PR"),
        ("ETI-P", "sec", "ETI.PR"),
        ("ACHR.W", "act", "ACHR.WS"),
        ("ACHR-WS", "alpha_vantage", "ACHR.WS"),
        ("AP-WT", "sec", "AP.WS"),
        ("OUST-WTA", "sec", "OUST.WSA"),
        ("RAC/WS", "screener", "RAC.WS"),
        ("AIIA.U", "act", "AIIA.U"),
        ("GRP-UN", "sec", "GRP.U"),
        ("AIIA.R", "act", "AIIA.RT"),
        ("CELG-RI", "sec", "CELG.RT"),
        ("AA-W", "alpha_vantage", "AA.WI"),  # Alpha Vantage's -W is "when issued", not a warrant
        ("UA-C-W", "alpha_vantage", "UA.CWI"),
        ("MKC-V", "sec", "MKC.V"),
        ("ABLVW", "nasdaq", "ABLVW"),  # Nasdaq's fifth-letter tickers are tickers, not suffixes
        ("^GSPC", "any", "^GSPC"),
        ("SAP.DE", "any", "SAP.DE"),  # not a US listing: unchanged
        ("BTC-USD", "any", "BTC-USD"),
        ("EURUSD=X", "any", "EURUSD=X"),
        ("ACWV:BAT", "alpha_vantage", "ACWV:BAT"),
    ],
)
def test_source_spellings_parse(raw: str, style: SpellingStyle, canonical: str) -> None:
    assert parse_symbol(raw, style).canonical == canonical


def test_spell_in_each_providers_form() -> None:
    assert spellings("BRK.B") == {
        "act": "BRK.B",
        "screener": "BRK/B",
        "sec": "BRK-B",
        "alpha_vantage": "BRK-B",
        "yahoo": "BRK-B",
    }
    assert spellings("ABR.PRD") == {
        "act": "ABR$D",
        "screener": "ABR^D",
        "sec": "ABR-PD",
        "alpha_vantage": "ABR-P-D",
        "yahoo": "ABR-PD",
    }
    assert spell("AAPL", "yahoo") == "AAPL" and spell("^GSPC", "alpha_vantage") == "^GSPC"


def _round_trips(rows: list, style: SpellingStyle) -> tuple[int, list[str]]:
    checked, wrong = 0, []
    for row in rows:
        parsed = parse_symbol(row.raw_symbol, style)
        if parsed.kind in ("other", "when_issued", "called"):
            continue
        checked += 1
        if spell(row.symbol, style) != row.raw_symbol.strip():
            wrong.append(row.raw_symbol)
    return checked, wrong


def test_spellings_reproduce_every_recorded_symbol() -> None:
    """Each source's own spelling, rendered from the canonical form, is exactly what that source recorded."""
    other, _, _ = parse_otherlisted(recorded("nasdaqtrader/otherlisted-2026-03-03.txt"))
    screener = parse_screener(recorded("nasdaq_screener/nyse_full_tickers-2026-08-22.json"), "nyse")
    sec = parse_sec_tickers(recorded("sec/company_tickers_exchange-2025-12-14.json"), date(2025, 12, 14)).rows
    av = parse_listing_status(recorded("alpha_vantage_listing_status/listing_status-active-2026-04-09.csv"), "active")
    sources: list[tuple[Sequence[Any], SpellingStyle, int]] = [
        (other, "act", 6900),
        (screener, "screener", 2700),
        (sec, "sec", 10000),
        (av, "alpha_vantage", 12000),
    ]
    for rows, style, at_least in sources:
        checked, wrong = _round_trips(list(rows), style)
        assert checked >= at_least
        assert wrong == [], f"{style}: {wrong[:10]}"


def test_sources_agree_on_share_classes_and_preferreds() -> None:
    """The same security, spelled four ways by four sources, is one canonical symbol."""
    act = {r.symbol for r in parse_otherlisted(recorded("nasdaqtrader/otherlisted-2026-03-03.txt"))[0]}
    sec = {
        r.symbol
        for r in parse_sec_tickers(recorded("sec/company_tickers_exchange-2025-12-14.json"), date(2025, 12, 14)).rows
    }
    av = {
        r.symbol
        for r in parse_listing_status(
            recorded("alpha_vantage_listing_status/listing_status-active-2026-04-09.csv"), "active"
        )
    }
    screener = {r.symbol for r in parse_screener(recorded("nasdaq_screener/nyse_full_tickers-2026-08-22.json"), "nyse")}
    for symbol in ("BRK.B", "BRK.A", "BF.B", "JPM.PRC", "ABR.PRD"):
        assert symbol in act and symbol in sec and symbol in av and symbol in screener, symbol
