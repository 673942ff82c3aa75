"""Alpha Vantage LISTING_STATUS: active and delisted US listings with IPO and delisting dates (only with a key).

``GET https://www.alphavantage.co/query?function=LISTING_STATUS&state=active|delisted&apikey=KEY`` answers CSV
(``symbol,name,exchange,assetType,ipoDate,delistingDate,status``, CRLF). Like every Alpha Vantage function it reports
quota and key problems as an HTTP 200 JSON body ("Note", "Information", "Error Message"), which is classified with
the same rules as the market-data adapter (``providers.alpha_vantage.classify_error_body``) and never quoted (a
daily-limit notice echoes the key).

Quirks kept in mind by the merge rather than "fixed" here: symbols use dashes (``BRK-B``, preferred ``ABR-P-D``,
warrant ``ACHR-WS``, "when issued" ``AA-W``); 354 active rows carry a ``:BAT`` venue suffix and duplicate a plain row
(their symbol is kept as given and the merge ignores them); some symbols cannot be a ticker at all (``ASRV 8.45
06-30-28``); ``delistingDate`` equal to the day of the request is a placeholder for "delisted by then, date not
known" (634 rows in the recorded copy). The CSV has no footer, so a truncated download is caught by its last line
lacking its line end or its field count.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime
from typing import Any, Literal

import anyio
import httpx

# The market-data adapter's rules, shared: HTTP-200 error bodies, and the filter that redacts `apikey=` from httpx's
# request log line (httpx logs every URL at INFO, and the key travels in the query string).
from providers.alpha_vantage import _install_httpx_redaction, classify_error_body
from providers.listings.asset_types import classify_asset_type
from providers.listings.base import ListingRow, ListingSourceError, SourceBatch, SourceName
from providers.listings.http import fetch_bytes, looks_like_html
from providers.listings.symbols import parse_symbol

__all__ = ["LISTING_STATUS_HEADER", "AlphaVantageListingSource", "listing_status_batch", "parse_listing_status"]

SOURCE: SourceName = "alpha_vantage_listing_status"
LISTING_STATUS_HEADER = ["symbol", "name", "exchange", "assetType", "ipoDate", "delistingDate", "status"]
State = Literal["active", "delisted"]
EXCHANGES = {"NASDAQ": "NASDAQ", "NYSE": "NYSE", "NYSE ARCA": "NYSE Arca", "NYSE MKT": "NYSE American",
             "AMEX": "NYSE American", "BATS": "Cboe BZX"}  # fmt: skip


def _date(value: str, column: str, where: str) -> date | None:
    if value in ("null", ""):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ListingSourceError(SOURCE, f"{where}: {column} {value!r} is not a date") from None


def parse_listing_status(body: bytes, state: State) -> list[ListingRow]:
    """Parse one LISTING_STATUS answer of ``state``; strict about the header, field counts, dates and status."""
    what = f"LISTING_STATUS ({state})"
    if not body.strip():
        raise ListingSourceError(SOURCE, f"{what} is empty")
    if looks_like_html(body):
        raise ListingSourceError(SOURCE, f"{what} is an HTML page, not CSV")
    if body.lstrip().startswith(b"{"):
        payload: Any = None
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            payload = None
        error = classify_error_body(payload)
        reason = error.message if error is not None else "answered JSON instead of CSV"
        raise ListingSourceError(SOURCE, f"{what}: {reason}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ListingSourceError(SOURCE, f"{what} is not UTF-8 text") from None
    if not text.endswith("\n"):
        raise ListingSourceError(SOURCE, f"{what} ends in the middle of a line (truncated download?)")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header != LISTING_STATUS_HEADER:
        missing = [c for c in LISTING_STATUS_HEADER if c not in (header or [])]
        detail = f"lacks {', '.join(repr(m) for m in missing)}" if missing else "has its columns in another order"
        raise ListingSourceError(SOURCE, f"{what} header {detail}")
    expected_status = "Active" if state == "active" else "Delisted"
    rows: list[ListingRow] = []
    for line_no, fields in enumerate(reader, start=2):
        if not fields:
            continue
        where = f"{what} line {line_no}"
        if len(fields) != len(LISTING_STATUS_HEADER):
            raise ListingSourceError(SOURCE, f"{where} has {len(fields)} fields, expected 7 (corrupt file?)")
        symbol, name, exchange, asset_type, ipo, delisting, status = fields
        if status != expected_status:
            raise ListingSourceError(SOURCE, f"{where}: status {status!r} in the {state} list")
        if not symbol:
            raise ListingSourceError(SOURCE, f"{where} has an empty symbol")
        delisted_on = _date(delisting, "delistingDate", where)
        if state == "delisted" and delisted_on is None:
            raise ListingSourceError(SOURCE, f"{where}: a delisted row without a delistingDate")
        parsed = parse_symbol(symbol, "alpha_vantage")
        rows.append(
            ListingRow(
                symbol=parsed.canonical,
                raw_symbol=symbol,
                name=" ".join(name.split()) or None,
                exchange=EXCHANGES.get(exchange, exchange or None),
                asset_type=classify_asset_type(name, parsed=parsed, is_etf=asset_type == "ETF"),
                is_etf=asset_type == "ETF",
                listed_on=_date(ipo, "ipoDate", where),
                delisted_on=delisted_on,
                status="active" if state == "active" else "delisted",
                extra={"av_asset_type": asset_type},
            )
        )
    if not rows:
        raise ListingSourceError(SOURCE, f"{what} has no data rows")
    return rows


def listing_status_batch(active: list[ListingRow], delisted: list[ListingRow], as_of: date) -> SourceBatch[ListingRow]:
    return SourceBatch(
        source=SOURCE,
        as_of=as_of,
        rows=tuple(active) + tuple(delisted),
        detail={"active_rows": len(active), "delisted_rows": len(delisted)},
    )


class AlphaVantageListingSource:
    """Fetches LISTING_STATUS for both states; needs an API key (two calls of the free tier's 25 a day)."""

    name: SourceName = SOURCE

    def __init__(
        self,
        client: httpx.AsyncClient,
        api_key: Any,
        *,
        url: str = "https://www.alphavantage.co/query",
        deadline_s: float = 60.0,
    ) -> None:
        raw = api_key.get_secret_value() if hasattr(api_key, "get_secret_value") else api_key
        self._key = str(raw or "").strip()
        self._client = client
        self._url = url
        self._deadline_s = deadline_s
        _install_httpx_redaction()

    def __repr__(self) -> str:  # never shows the key
        return f"AlphaVantageListingSource(url={self._url!r})"

    async def fetch(self) -> SourceBatch[ListingRow]:
        if not self._key:
            raise ListingSourceError(SOURCE, "no Alpha Vantage API key is configured")
        parsed: dict[str, list[ListingRow]] = {}
        for state in ("active", "delisted"):
            params = {"function": "LISTING_STATUS", "state": state, "apikey": self._key}
            body, _ = await fetch_bytes(
                self._client,
                self._url,
                source=SOURCE,
                what=f"LISTING_STATUS ({state})",
                deadline_s=self._deadline_s,
                params=params,
                headers={"User-Agent": "universe-mcp"},
            )
            parsed[state] = await anyio.to_thread.run_sync(parse_listing_status, body, state)  # off the loop
        return listing_status_batch(parsed["active"], parsed["delisted"], datetime.now(UTC).date())
