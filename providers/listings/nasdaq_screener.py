"""The NASDAQ stock screener (api.nasdaq.com): sector, industry, country, market cap and IPO year of ~7,000 stocks.

The request is the one the recorded files were made with (see the fixtures README): one GET per exchange,
``/api/screener/stocks?tableonly=true&limit=25&offset=0&exchange=<nasdaq|nyse|amex>&download=true`` with a browser
User-Agent (the API refuses obvious robots); ``download=true`` returns every row despite ``limit=25``.
The live answer wraps the rows as ``{"data": {"rows": [...]}, "status": {"rCode": 200, ...}}``; the recorded files
hold the bare ``data.rows`` array (their recorder piped the answer through ``jq '.data.rows'``). Both parse.

Every value is a string: market caps are decimals with two places (``"1400873673128.00"``), and ``"0.00"`` or ``""``
mean "not known" (SPAC shares and units, new listings) — never a market cap of zero. Symbols use ``/`` for classes
(``BRK/B``) and ``^`` for preferreds (``ABR^D``); some NYSE symbols and names carry trailing spaces.
The sector is Nasdaq's own 12-value taxonomy, not GICS: it is kept as ``source_sector`` and the GICS sector is
derived from the industry (``providers.listings.sectors``).

The screener states no date of its own: ``as_of`` is the day of the request (for recorded files, the day they were
fetched).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import anyio
import httpx

from providers.listings.asset_types import classify_asset_type
from providers.listings.base import ListingRow, ListingSourceError, SourceBatch, SourceName
from providers.listings.http import fetch_bytes, looks_like_html
from providers.listings.symbols import parse_symbol

__all__ = [
    "BROWSER_HEADERS",
    "SCREENER_EXCHANGES",
    "SCREENER_URL",
    "NasdaqScreenerSource",
    "parse_screener",
    "parse_screener_rows",
    "screener_batch",
]

SOURCE: SourceName = "nasdaq_screener"
SCREENER_URL = "https://api.nasdaq.com/api/screener/stocks"
# The `exchange` parameter -> the exchange name we store.
SCREENER_EXCHANGES: Mapping[str, str] = {"nasdaq": "NASDAQ", "nyse": "NYSE", "amex": "NYSE American"}
FIELDS = ("symbol", "name", "lastsale", "netchange", "pctchange", "volume", "marketCap", "country", "ipoyear",
          "industry", "sector", "url")  # fmt: skip
# The request the recorded files were made with, and headers public clients add.
BROWSER_HEADERS: Mapping[str, str] = {
    "User-Agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:85.0) Gecko/20100101 Firefox/85.0",
    "Accept": "application/json, text/plain, */*",
    "Origin": "https://www.nasdaq.com",
    "Referer": "https://www.nasdaq.com/",
}
_DECIMAL = re.compile(r"^-?\d+(?:\.\d+)?$")
_YEAR = re.compile(r"^(?:18|19|20)\d\d$")


def _text(row: Mapping[str, Any], key: str, where: str) -> str:
    value = row[key]
    if not isinstance(value, str):
        raise ListingSourceError(SOURCE, f"{where}: {key} is {type(value).__name__}, expected a string")
    return " ".join(value.split())


def _market_cap(value: str, where: str) -> float | None:
    if value in ("", "0.00", "0", "NA"):
        return None  # "0.00" is the screener's placeholder for SPACs and new listings, not a value
    plain = value.replace(",", "")
    if not _DECIMAL.match(plain):
        raise ListingSourceError(SOURCE, f"{where}: marketCap {value!r} is not a number")
    number = float(plain)
    return number if math.isfinite(number) and number > 0 else None


def _ipo_year(value: str, where: str) -> int | None:
    if value == "":
        return None
    if not _YEAR.match(value):
        raise ListingSourceError(SOURCE, f"{where}: ipoyear {value!r} is not a year")
    return int(value)


def parse_screener_rows(rows: Sequence[Any], exchange: str, what: str) -> list[ListingRow]:
    """Screener rows (the ``data.rows`` list) of one exchange as ``ListingRow``s; strict about fields and values."""
    if exchange not in SCREENER_EXCHANGES:
        raise ValueError(f"unknown screener exchange {exchange!r}")
    if not rows:
        raise ListingSourceError(SOURCE, f"{what} has no rows")
    out: list[ListingRow] = []
    seen: set[str] = set()
    for index, row in enumerate(rows):
        where = f"{what} row {index + 1}"
        if not isinstance(row, dict):
            raise ListingSourceError(SOURCE, f"{where} is not an object")
        missing = [key for key in FIELDS if key not in row]
        if missing:
            unexpected = sorted(set(row) - set(FIELDS))
            detail = f" (found {', '.join(repr(u) for u in unexpected)} instead)" if unexpected else ""
            raise ListingSourceError(SOURCE, f"{where} lacks {', '.join(repr(m) for m in missing)}{detail}")
        raw_symbol = _text(row, "symbol", where)
        name = _text(row, "name", where)
        if not raw_symbol:
            raise ListingSourceError(SOURCE, f"{where} has an empty symbol")
        parsed = parse_symbol(raw_symbol, "screener")
        if parsed.canonical in seen:
            raise ListingSourceError(SOURCE, f"{what} lists {raw_symbol} twice")
        seen.add(parsed.canonical)
        sector, industry, country = (_text(row, key, where) for key in ("sector", "industry", "country"))
        out.append(
            ListingRow(
                symbol=parsed.canonical,
                raw_symbol=raw_symbol,
                name=name or None,
                exchange=SCREENER_EXCHANGES[exchange],
                asset_type=classify_asset_type(name, parsed=parsed),
                is_etf=False,  # the stock screener lists no ETFs
                source_sector=sector or None,
                source_industry=industry or None,
                country=country or None,
                market_cap=_market_cap(_text(row, "marketCap", where), where),
                ipo_year=_ipo_year(_text(row, "ipoyear", where), where),
            )
        )
    return out


def _rows_of(payload: Any, what: str) -> Sequence[Any]:
    if isinstance(payload, list):
        return payload  # a recorded file: the bare data.rows array
    if not isinstance(payload, dict):
        raise ListingSourceError(SOURCE, f"{what} is neither a list of rows nor the API's answer object")
    status = payload.get("status")
    if isinstance(status, dict) and status.get("rCode") not in (None, 200):
        message = status.get("bCodeMessage") or status.get("developerMessage")
        raise ListingSourceError(SOURCE, f"{what}: the API answered rCode {status.get('rCode')} ({str(message)[:120]})")
    data = payload.get("data")
    if not isinstance(data, dict):
        raise ListingSourceError(SOURCE, f"{what} has no 'data' object (the API's answer format changed?)")
    rows = data.get("rows")
    if rows is None and isinstance(data.get("table"), dict):
        rows = data["table"].get("rows")
    if not isinstance(rows, list):
        raise ListingSourceError(SOURCE, f"{what} has no 'data.rows' list (the API's answer format changed?)")
    return rows


def parse_screener(body: bytes, exchange: str) -> list[ListingRow]:
    """Parse one screener answer (or recorded file) for ``exchange`` (nasdaq | nyse | amex)."""
    what = f"the {exchange} screener answer"
    if not body.strip():
        raise ListingSourceError(SOURCE, f"{what} is empty")
    if looks_like_html(body):
        raise ListingSourceError(SOURCE, f"{what} is an HTML page, not JSON")
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = f"line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
        raise ListingSourceError(SOURCE, f"{what} is not valid JSON ({reason}; truncated?)") from None
    return parse_screener_rows(_rows_of(payload, what), exchange, what)


def screener_batch(by_exchange: Mapping[str, list[ListingRow]], as_of: date) -> SourceBatch[ListingRow]:
    """One batch of the three exchanges' rows."""
    rows = [row for exchange in SCREENER_EXCHANGES for row in by_exchange.get(exchange, [])]
    return SourceBatch(
        source=SOURCE,
        as_of=as_of,
        rows=tuple(rows),
        detail={f"{exchange}_rows": len(by_exchange.get(exchange, [])) for exchange in SCREENER_EXCHANGES},
    )


class NasdaqScreenerSource:
    """Fetches the three exchanges' screener tables with the recorded request; all three or nothing."""

    name: SourceName = SOURCE

    def __init__(self, client: httpx.AsyncClient, *, url: str = SCREENER_URL, deadline_s: float = 30.0) -> None:
        self._client = client
        self._url = url
        self._deadline_s = deadline_s

    async def fetch(self) -> SourceBatch[ListingRow]:
        by_exchange: dict[str, list[ListingRow]] = {}
        for exchange in SCREENER_EXCHANGES:
            params = {"tableonly": "true", "limit": "25", "offset": "0", "exchange": exchange, "download": "true"}
            body, _ = await fetch_bytes(
                self._client,
                self._url,
                source=SOURCE,
                what=f"the {exchange} screener answer",
                deadline_s=self._deadline_s,
                params=params,
                headers=BROWSER_HEADERS,
            )
            by_exchange[exchange] = await anyio.to_thread.run_sync(parse_screener, body, exchange)  # off the loop
        return screener_batch(by_exchange, datetime.now(UTC).date())
