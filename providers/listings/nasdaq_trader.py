"""The NASDAQ Trader symbol directory: every security listed on a US exchange, with its ETF flag.

Two pipe-delimited files (``nasdaqlisted.txt``: Nasdaq's own listings; ``otherlisted.txt``: NYSE, NYSE American,
NYSE Arca, Cboe BZX, IEX, NYSE Texas), each ending with a footer ``File Creation Time: MMDDYYYYHH:MM`` padded with
pipes (7 in nasdaqlisted.txt, 6 in otherlisted.txt, as served). The footer is the data's date, and its presence is how a truncated download is
caught (a file cut anywhere loses it). Test issues (``Test Issue=Y``) are dropped.

Parsing is strict: the header must be exactly the documented one (a renamed or missing column fails with both
names), every row must have the header's field count, flags must be Y/N. CRLF and LF line endings are both real
(the recorded copies have both); a trailing empty line is tolerated.
"""

from __future__ import annotations

import re
from datetime import datetime

import anyio
import httpx

from providers.listings.asset_types import classify_asset_type
from providers.listings.base import ListingRow, ListingSourceError, SourceBatch, SourceName
from providers.listings.http import fetch_bytes, looks_like_html
from providers.listings.symbols import parse_symbol

__all__ = [
    "NASDAQLISTED_URL",
    "NasdaqTraderSource",
    "OTHERLISTED_URL",
    "OTHER_EXCHANGES",
    "parse_directory",
    "parse_nasdaqlisted",
    "parse_otherlisted",
]

SOURCE: SourceName = "nasdaq_trader"
NASDAQLISTED_URL = "https://www.nasdaqtrader.com/dynamic/SymDir/nasdaqlisted.txt"
OTHERLISTED_URL = "https://www.nasdaqtrader.com/dynamic/SymDir/otherlisted.txt"

NASDAQLISTED_HEADER = (
    "Symbol",
    "Security Name",
    "Market Category",
    "Test Issue",
    "Financial Status",
    "Round Lot Size",
    "ETF",
    "NextShares",
)
OTHERLISTED_HEADER = (
    "ACT Symbol",
    "Security Name",
    "Exchange",
    "CQS Symbol",
    "ETF",
    "Round Lot Size",
    "Test Issue",
    "NASDAQ Symbol",
)
# otherlisted.txt "Exchange" codes (nasdaqtrader.com symbol directory definitions).
OTHER_EXCHANGES = {
    "N": "NYSE",
    "A": "NYSE American",
    "P": "NYSE Arca",
    "Z": "Cboe BZX",
    "V": "IEX",
    "M": "NYSE Texas",
}
MARKET_CATEGORIES = {"Q": "Nasdaq Global Select Market", "G": "Nasdaq Global Market", "S": "Nasdaq Capital Market"}
_FOOTER = re.compile(r"^File Creation Time: (\d{2})(\d{2})(\d{4})(\d{2}):?(\d{2})(\|*)$")
_FLAGS = {"Y": True, "N": False}


def _lines(body: bytes, what: str) -> list[str]:
    if not body.strip():
        raise ListingSourceError(SOURCE, f"{what} is empty")
    if looks_like_html(body):
        raise ListingSourceError(SOURCE, f"{what} is an HTML page, not the symbol directory")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ListingSourceError(SOURCE, f"{what} is not UTF-8 text (byte {exc.start})") from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()  # the 2026-03-03 copies end with one empty line after the footer
    return lines


def _check_header(found: list[str], expected: tuple[str, ...], what: str) -> None:
    if tuple(found) == expected:
        return
    missing = [name for name in expected if name not in found]
    unexpected = [name for name in found if name not in expected]
    if missing:
        detail = f"lacks {', '.join(repr(m) for m in missing)}"
        if unexpected:
            detail += f" (found {', '.join(repr(u) for u in unexpected)} instead)"
    else:
        detail = "has the expected columns in another order"
    raise ListingSourceError(SOURCE, f"{what} header {detail}")


def _footer_time(line: str, pipes_expected: int, what: str) -> datetime:
    match = _FOOTER.match(line)
    if match is None:
        raise ListingSourceError(
            SOURCE, f"{what} has no 'File Creation Time' footer (the download was cut short, or the format changed)"
        )
    month, day, year, hour, minute, pipes = match.groups()
    if len(pipes) != pipes_expected:
        raise ListingSourceError(
            SOURCE, f"{what} footer has {len(pipes)} field separators, expected {pipes_expected} (format changed?)"
        )
    try:
        # No time zone is stated (the stamps look like US Eastern business hours): kept naive, as given.
        return datetime(int(year), int(month), int(day), int(hour), int(minute))
    except ValueError:
        raise ListingSourceError(SOURCE, f"{what} footer has an impossible date ({line[19:32]!r})") from None


def _flag(value: str, column: str, line_no: int, what: str, *, allow_empty: bool = False) -> bool | None:
    if value in _FLAGS:
        return _FLAGS[value]
    if allow_empty and value == "":
        return None
    raise ListingSourceError(SOURCE, f"{what} line {line_no}: {column} is {value!r}, expected Y or N")


def _table(body: bytes, header: tuple[str, ...], footer_pipes: int, what: str) -> tuple[list[list[str]], datetime]:
    lines = _lines(body, what)
    if len(lines) < 2:
        raise ListingSourceError(SOURCE, f"{what} has no data rows")
    _check_header(lines[0].split("|"), header, what)
    created = _footer_time(lines[-1], footer_pipes, what)
    rows: list[list[str]] = []
    for line_no, line in enumerate(lines[1:-1], start=2):
        fields = line.split("|")
        if len(fields) != len(header):
            raise ListingSourceError(
                SOURCE, f"{what} line {line_no} has {len(fields)} fields, expected {len(header)} (corrupt file?)"
            )
        rows.append(fields)
    if not rows:
        raise ListingSourceError(SOURCE, f"{what} has no data rows")
    return rows, created


def _name(value: str) -> str:
    return " ".join(value.split())


def parse_nasdaqlisted(body: bytes) -> tuple[list[ListingRow], datetime, int]:
    """Rows of ``nasdaqlisted.txt`` (test issues dropped), the footer's creation time, and how many were dropped."""
    what = "nasdaqlisted.txt"
    table, created = _table(body, NASDAQLISTED_HEADER, 7, what)
    rows: list[ListingRow] = []
    dropped = 0
    for line_no, fields in enumerate(table, start=2):
        symbol, name, category, test, status, lot, etf, _next_shares = fields
        if _flag(test, "Test Issue", line_no, what):
            dropped += 1
            continue
        if not symbol or not name.strip():
            raise ListingSourceError(SOURCE, f"{what} line {line_no} has an empty symbol or name")
        is_etf = _flag(etf, "ETF", line_no, what)  # empty only on test issues, which are gone by now
        parsed = parse_symbol(symbol, "nasdaq")
        rows.append(
            ListingRow(
                symbol=parsed.canonical,
                raw_symbol=symbol,
                name=_name(name),
                exchange="NASDAQ",
                asset_type=classify_asset_type(name, parsed=parsed, is_etf=is_etf),
                is_etf=bool(is_etf),
                extra={
                    "market_category": MARKET_CATEGORIES.get(category, category),
                    "financial_status": status,
                    "round_lot_size": lot,
                },
            )
        )
    return rows, created, dropped


def parse_otherlisted(body: bytes) -> tuple[list[ListingRow], datetime, int]:
    """Rows of ``otherlisted.txt`` (test issues dropped), the footer's creation time, and how many were dropped."""
    what = "otherlisted.txt"
    table, created = _table(body, OTHERLISTED_HEADER, 6, what)
    rows: list[ListingRow] = []
    dropped = 0
    for line_no, fields in enumerate(table, start=2):
        act, name, exchange_code, cqs, etf, lot, test, nasdaq_symbol = fields
        if _flag(test, "Test Issue", line_no, what):
            dropped += 1
            continue
        if not act or not name.strip():
            raise ListingSourceError(SOURCE, f"{what} line {line_no} has an empty symbol or name")
        exchange = OTHER_EXCHANGES.get(exchange_code)
        if exchange is None:
            raise ListingSourceError(SOURCE, f"{what} line {line_no}: unknown exchange code {exchange_code!r}")
        is_etf = _flag(etf, "ETF", line_no, what)
        parsed = parse_symbol(act, "act")
        rows.append(
            ListingRow(
                symbol=parsed.canonical,
                raw_symbol=act,
                name=_name(name),
                exchange=exchange,
                asset_type=classify_asset_type(name, parsed=parsed, is_etf=is_etf),
                is_etf=bool(is_etf),
                extra={"cqs_symbol": cqs, "nasdaq_symbol": nasdaq_symbol, "round_lot_size": lot},
            )
        )
    return rows, created, dropped


def parse_directory(nasdaqlisted: bytes, otherlisted: bytes) -> SourceBatch[ListingRow]:
    """Both files as one batch. ``as_of`` is the older of the two footers' dates (they are written together)."""
    nasdaq_rows, nasdaq_created, nasdaq_dropped = parse_nasdaqlisted(nasdaqlisted)
    other_rows, other_created, other_dropped = parse_otherlisted(otherlisted)
    created = min(nasdaq_created, other_created)
    rows = nasdaq_rows + other_rows
    seen: set[str] = set()
    for row in rows:
        if row.symbol in seen:
            raise ListingSourceError(SOURCE, f"symbol {row.raw_symbol} is listed twice (corrupt directory?)")
        seen.add(row.symbol)
    return SourceBatch(
        source=SOURCE,
        as_of=created.date(),
        rows=tuple(rows),
        created_at=created,
        dropped={"test_issue": nasdaq_dropped + other_dropped},
        detail={"nasdaqlisted_rows": len(nasdaq_rows), "otherlisted_rows": len(other_rows)},
    )


class NasdaqTraderSource:
    """Fetches both directory files over HTTPS (no key, no registration) and parses them all or nothing."""

    name: SourceName = SOURCE

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        nasdaqlisted_url: str = NASDAQLISTED_URL,
        otherlisted_url: str = OTHERLISTED_URL,
        deadline_s: float = 30.0,
    ) -> None:
        self._client = client
        self._urls = (nasdaqlisted_url, otherlisted_url)
        self._deadline_s = deadline_s

    async def fetch(self) -> SourceBatch[ListingRow]:
        nasdaq_url, other_url = self._urls
        what = "the NASDAQ symbol directory"
        nasdaq_body, _ = await fetch_bytes(
            self._client, nasdaq_url, source=SOURCE, what=what, deadline_s=self._deadline_s
        )
        other_body, _ = await fetch_bytes(
            self._client, other_url, source=SOURCE, what=what, deadline_s=self._deadline_s
        )
        # Parsing ~12,000 rows takes a while: off the event loop, which serves requests meanwhile.
        return await anyio.to_thread.run_sync(parse_directory, nasdaq_body, other_body)
