"""Symbol normalisation and syntax checks, the validation's first step (docs/ARCHITECTURE.md, "Validation"): no
provider is asked about junk."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from providers.listings.symbols import canonical_symbol
from services.errors import InvalidSymbols

__all__ = ["MAX_SYMBOL_LENGTH", "normalise_symbol", "normalise_symbols", "symbol_problem"]

MAX_SYMBOL_LENGTH = 20
# Letters and digits with the separators real tickers use: BRK.B, BRK-B, ^GSPC, EURUSD=X, BTC-USD, 0700.HK, ES=F.
_SYMBOL = re.compile(r"^\^?[A-Z0-9](?:[A-Z0-9.\-=/&]*[A-Z0-9=])?$")


# Yahoo's suffixes of foreign exchanges. A dot before one of them names the exchange, not a US share class: AC.PA
# is Accor in Paris, not preferred series A of "AC" (AC.PRA). "PR" (Prague) is left out: ETI.PR is a US preferred.
FOREIGN_SUFFIXES = frozenset(
    "AS AT AX BA BE BK BO BR CO DE DU F HE HK HM IR IS JK JO KL KQ KS L LS MC ME MI MU MX NS NZ OL PA SA SG SI SN SS "
    "ST SW SZ T TA TO TW V VI WA".split()
)


# What people type with a space: a class letter (BRK B) or a preferred / warrant / unit / right token (ABR PR D).
_SPACED_CLASS = re.compile(r"^\$?[A-Z0-9]{2,6} (?:[A-F]|PR ?[A-Z]?|P[A-Z]|WS[A-Z]?|WT|U|UN|RT|R)$")


def normalise_symbol(raw: str) -> str:
    """Upper case, trimmed, and share classes of US listings in their one canonical spelling (the validation's first step):
    ``BRK-B``, ``brk/b``, ``BRK B`` and ``$BRK.B`` are all ``BRK.B``. Anything that is not a US listing symbol
    (``^GSPC``, ``EURUSD=X``, ``BTC-USD``, ``SAP.DE``, ``AC.PA``) keeps its spelling."""
    symbol = raw.strip().upper()
    if "." in symbol and symbol.rsplit(".", 1)[1] in FOREIGN_SUFFIXES and not symbol.startswith("$"):
        return symbol
    if " " in symbol and not _SPACED_CLASS.match(symbol):
        return symbol  # "X Y" is more likely junk than a class Y share: left for symbol_problem to name
    canonical = canonical_symbol(symbol)
    return canonical if canonical and _SYMBOL.match(canonical) else symbol


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


def _check(raw: str) -> tuple[str, str | None]:
    symbol = normalise_symbol(raw)
    return symbol, symbol_problem(symbol)


_check_remembered = functools.lru_cache(maxsize=8192)(_check)


def _checked(raw: str) -> tuple[str, str | None]:
    """normalise_symbol and symbol_problem of one input, remembered for inputs of ticker length: both are pure, and a
    bulk call (1,000 symbols, often the same ones again) spent ~10 µs a symbol parsing them. Longer inputs (junk)
    are not kept, so the cache stays under ~2 MB whatever callers send."""
    return _check_remembered(raw) if len(raw) <= 2 * MAX_SYMBOL_LENGTH else _check(raw)


def normalise_symbols(raw: Iterable[str]) -> list[str]:
    """Upper-case, trim and de-duplicate keeping first-seen order; raise InvalidSymbols naming every bad one."""
    seen: dict[str, None] = {}
    bad: dict[str, str] = {}
    candidates: list[str] = []
    for item in raw:
        symbol, problem = _checked(item)
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
