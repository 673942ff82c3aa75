"""services/symbols.py: the syntax check that keeps junk away from providers (also the mutation tooling's probe)."""

from __future__ import annotations

import pytest

from services.errors import InvalidSymbols
from services.symbols import MAX_SYMBOL_LENGTH, normalise_symbol, normalise_symbols, symbol_problem


@pytest.mark.parametrize(
    "symbol", ["AAPL", "BRK.B", "BRK-B", "^GSPC", "EURUSD=X", "BTC-USD", "0700.HK", "ES=F", "A", "M&M", "A" * 20]
)
def test_real_ticker_shapes_pass(symbol):
    assert symbol_problem(symbol) is None


@pytest.mark.parametrize(
    ("symbol", "problem"),
    [
        ("", "empty"),
        ("A" * (MAX_SYMBOL_LENGTH + 1), "longer than 20 characters"),
        ("NASDAQ:AAPL", "exchange prefix: pass the ticker alone"),
        ("BRK B", "contains spaces"),
        ("AAPL\t", "contains spaces"),
        ("AAPL$", "unexpected characters"),
        (".AAPL", "unexpected characters"),
        ("AAPL.", "unexpected characters"),
        ("^", "unexpected characters"),
        ("=CMD", "unexpected characters"),
    ],
)
def test_junk_is_named_for_what_it_is(symbol, problem):
    assert symbol_problem(symbol) == problem


def test_normalise_trims_and_upper_cases():
    assert normalise_symbol("  brk.b \n") == "BRK.B"


def test_normalise_symbols_deduplicates_in_order_and_names_every_bad_one():
    assert normalise_symbols(["msft", "AAPL", " msft "]) == ["MSFT", "AAPL"]
    with pytest.raises(InvalidSymbols) as raised:
        normalise_symbols(["AAPL", "NASDAQ:NVDA", "x y"])
    assert raised.value.details["invalid_symbols"] == {
        "NASDAQ:NVDA": "exchange prefix: pass the ticker alone",
        "x y": "contains spaces",
    }
    assert raised.value.details["candidates"] == ["NVDA"]
