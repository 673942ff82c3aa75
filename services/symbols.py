"""Symbol normalisation and syntax checks (DESIGN §7 step 1): no provider is asked about junk."""

from __future__ import annotations

import re
from collections.abc import Iterable

from services.errors import InvalidSymbols

__all__ = ["MAX_SYMBOL_LENGTH", "normalise_symbol", "normalise_symbols", "symbol_problem"]

MAX_SYMBOL_LENGTH = 20
# Letters and digits with the separators real tickers use: BRK.B, BRK-B, ^GSPC, EURUSD=X, BTC-USD, 0700.HK, ES=F.
_SYMBOL = re.compile(r"^\^?[A-Z0-9](?:[A-Z0-9.\-=/&]*[A-Z0-9=])?$")


def normalise_symbol(raw: str) -> str:
    return raw.strip().upper()


def symbol_problem(symbol: str) -> str | None:
    """Why ``symbol`` (already normalised) cannot be a ticker, or None when it can."""
    if not symbol:
        return "empty"
    if len(symbol) > MAX_SYMBOL_LENGTH:
        return f"longer than {MAX_SYMBOL_LENGTH} characters"
    if ":" in symbol:
        return "exchange prefix: pass the ticker alone"
    if any(ch.isspace() for ch in symbol):
        return "contains spaces"
    if not _SYMBOL.match(symbol):
        return "unexpected characters"
    return None


def _prefix_candidate(symbol: str) -> str | None:
    # "NASDAQ:AAPL" is TradingView's form; suggest the ticker rather than guessing silently.
    if ":" in symbol:
        tail = symbol.rsplit(":", 1)[1].strip()
        if tail and symbol_problem(tail) is None:
            return tail
    return None


def normalise_symbols(raw: Iterable[str]) -> list[str]:
    """Upper-case, trim and de-duplicate keeping first-seen order; raise InvalidSymbols naming every bad one."""
    seen: dict[str, None] = {}
    bad: dict[str, str] = {}
    candidates: list[str] = []
    for item in raw:
        symbol = normalise_symbol(item)
        problem = symbol_problem(symbol)
        if problem is not None:
            shown = item if len(item) <= 40 else item[:37] + "..."
            bad[shown] = problem
            if (fix := _prefix_candidate(symbol)) is not None:
                candidates.append(fix)
            continue
        seen.setdefault(symbol, None)
    if bad:
        raise InvalidSymbols(bad, candidates=candidates)
    return list(seen)
