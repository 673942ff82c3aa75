"""SEC EDGAR ``company_tickers_exchange.json``: the CIK (the issuer's permanent SEC id) of every ticker it knows.

The CIK is what makes a ticker change a rename rather than a delisting plus a new listing: Block, Inc. is CIK
1512673 as ``SQ`` in one copy and as ``XYZ`` in the next.

Format: ``{"fields": ["cik", "name", "ticker", "exchange"], "data": [[cik, name, ticker, exchange], ...]}`` —
positional rows, ``cik`` an integer, ``exchange`` one of Nasdaq, NYSE, CBOE, OTC (or null). Tickers use dashes
(``BRK-B``, ``ABR-PD``, ``AP-WT``, ``GRP-UN``); one recorded copy has a ticker with a trailing space. The fields list
is checked exactly: a renamed or reordered field fails rather than silently shifting every value.

The SEC asks automated clients to declare themselves with a User-Agent naming the company and a contact address,
and blocks undeclared traffic (fair access: at most 10 requests per second). So the source refuses to run without
``UNIVERSE_MCP_SEC_USER_AGENT`` (e.g. ``"Example Corp ops@example.com"``). No key. The file states no date: ``as_of``
is the day of the request.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from typing import Any

import anyio
import httpx

from providers.listings.asset_types import classify_asset_type
from providers.listings.base import ListingRow, ListingSourceError, SourceBatch, SourceName
from providers.listings.http import fetch_bytes, looks_like_html
from providers.listings.symbols import parse_symbol

__all__ = ["SEC_TICKERS_URL", "SecTickersSource", "parse_sec_tickers", "sec_user_agent_problem"]

SOURCE: SourceName = "sec"
SEC_TICKERS_URL = "https://www.sec.gov/files/company_tickers_exchange.json"
FIELDS = ["cik", "name", "ticker", "exchange"]
EXCHANGES = {"Nasdaq": "NASDAQ", "NYSE": "NYSE", "NYS": "NYSE", "CBOE": "Cboe", "OTC": "OTC"}
_CONTACT = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")


def sec_user_agent_problem(user_agent: str | None) -> str | None:
    """Why ``user_agent`` will not do for the SEC, or None. The SEC asks for a company name and a contact e-mail."""
    if not user_agent or not user_agent.strip():
        return "no SEC User-Agent configured: set UNIVERSE_MCP_SEC_USER_AGENT to 'Company Name contact@example.com'"
    if not _CONTACT.search(user_agent):
        return "the SEC User-Agent must include a contact e-mail address (SEC fair-access policy)"
    return None


def parse_sec_tickers(body: bytes, as_of: date) -> SourceBatch[ListingRow]:
    """Parse ``company_tickers_exchange.json``; ``as_of`` is the day it was downloaded."""
    what = "company_tickers_exchange.json"
    if not body.strip():
        raise ListingSourceError(SOURCE, f"{what} is empty")
    if looks_like_html(body):
        raise ListingSourceError(
            SOURCE, f"{what} is an HTML page (the SEC blocks clients without a declared User-Agent)"
        )
    try:
        payload: Any = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ListingSourceError(SOURCE, f"{what} is not valid JSON (truncated?)") from None
    if not isinstance(payload, dict) or "fields" not in payload or "data" not in payload:
        raise ListingSourceError(SOURCE, f"{what} lacks its 'fields' and 'data' keys")
    if payload["fields"] != FIELDS:
        raise ListingSourceError(SOURCE, f"{what} fields are {payload['fields']!r}, expected {FIELDS!r}")
    data = payload["data"]
    if not isinstance(data, list) or not data:
        raise ListingSourceError(SOURCE, f"{what} has no data rows")
    rows: list[ListingRow] = []
    seen: set[str] = set()
    for index, item in enumerate(data):
        where = f"{what} row {index + 1}"
        if not isinstance(item, list) or len(item) != len(FIELDS):
            raise ListingSourceError(SOURCE, f"{where} is not a [cik, name, ticker, exchange] list")
        cik, name, ticker, exchange = item
        if not isinstance(cik, int) or isinstance(cik, bool) or cik <= 0:
            raise ListingSourceError(SOURCE, f"{where}: cik {cik!r} is not a positive integer")
        if not isinstance(ticker, str) or not ticker.strip() or not isinstance(name, str):
            raise ListingSourceError(SOURCE, f"{where}: ticker or name is not a non-empty string")
        if exchange is not None and not isinstance(exchange, str):
            raise ListingSourceError(SOURCE, f"{where}: exchange {exchange!r} is not a string or null")
        raw = ticker.strip()
        parsed = parse_symbol(raw, "sec")
        if parsed.canonical in seen:
            continue  # the same ticker twice (never in the recorded copies): the first row wins
        seen.add(parsed.canonical)
        rows.append(
            ListingRow(
                symbol=parsed.canonical,
                raw_symbol=raw,
                name=" ".join(name.split()) or None,
                exchange=EXCHANGES.get(exchange, exchange) if exchange else None,
                asset_type=classify_asset_type(None, parsed=parsed),
                cik=cik,
            )
        )
    return SourceBatch(source=SOURCE, as_of=as_of, rows=tuple(rows), detail={"ciks": len({r.cik for r in rows})})


class SecTickersSource:
    """Fetches the SEC's ticker file with the configured User-Agent (required, with a contact address)."""

    name: SourceName = SOURCE

    def __init__(
        self,
        client: httpx.AsyncClient,
        user_agent: str | None,
        *,
        url: str = SEC_TICKERS_URL,
        deadline_s: float = 30.0,
    ) -> None:
        self._client = client
        self._user_agent = (user_agent or "").strip()
        self._url = url
        self._deadline_s = deadline_s

    async def fetch(self) -> SourceBatch[ListingRow]:
        problem = sec_user_agent_problem(self._user_agent)
        if problem is not None:
            raise ListingSourceError(SOURCE, problem)
        body, _ = await fetch_bytes(
            self._client,
            self._url,
            source=SOURCE,
            what="the SEC ticker file",
            deadline_s=self._deadline_s,
            headers={"User-Agent": self._user_agent, "Accept": "application/json"},
        )
        # Off the event loop: ~10,000 rows to check.
        return await anyio.to_thread.run_sync(parse_sec_tickers, body, datetime.now(UTC).date())
