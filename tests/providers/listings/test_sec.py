"""SEC company_tickers_exchange.json: CIKs, the declared User-Agent the SEC requires, and broken answers."""

from __future__ import annotations

import json
from datetime import date

import httpx
import pytest

from providers.listings.base import ListingSourceError
from providers.listings.sec import SecTickersSource, parse_sec_tickers, sec_user_agent_problem
from tests.providers.listings.conftest import HTML_PAGE, ListingServer, Reply, recorded, truncated

pytestmark = pytest.mark.anyio

AGENT = "Universe MCP tests ops@example.com"


def test_recorded_copies_parse() -> None:
    older = parse_sec_tickers(recorded("sec/company_tickers_exchange-2024-12-19.json"), date(2024, 12, 19))
    newer = parse_sec_tickers(recorded("sec/company_tickers_exchange-2025-12-14.json"), date(2025, 12, 14))
    assert (len(older.rows), len(newer.rows)) == (10_038, 10_218)
    assert (older.detail["ciks"], newer.detail["ciks"]) == (7_917, 7_959)
    by_symbol_old = {r.symbol: r for r in older.rows}
    by_symbol_new = {r.symbol: r for r in newer.rows}
    # Block, Inc. (CIK 1512673) is SQ in one copy and XYZ in the next: the CIK is what links them.
    assert by_symbol_old["SQ"].cik == by_symbol_new["XYZ"].cik == 1512673 and "SQ" not in by_symbol_new
    assert by_symbol_new["BRK.B"].raw_symbol == "BRK-B" and by_symbol_new["BRK.B"].cik == 1067983
    assert by_symbol_new["NVDA"].exchange == "NASDAQ"
    assert "DAIC" in by_symbol_old  # recorded as "DAIC " (trailing space)


def test_user_agent_must_name_a_contact() -> None:
    assert sec_user_agent_problem(None) is not None
    assert "e-mail" in str(sec_user_agent_problem("universe-mcp"))
    assert sec_user_agent_problem(AGENT) is None


async def test_no_request_without_a_declared_user_agent(
    listing_server: ListingServer, client: httpx.AsyncClient
) -> None:
    listing_server.routes["/files/company_tickers_exchange.json"] = Reply(
        body=recorded("sec/company_tickers_exchange-2025-12-14.json")
    )
    source = SecTickersSource(client, None, url=listing_server.url("/files/company_tickers_exchange.json"))
    with pytest.raises(ListingSourceError, match="UNIVERSE_MCP_SEC_USER_AGENT"):
        await source.fetch()
    assert listing_server.requests == []


async def test_adapter_sends_the_user_agent(listing_server: ListingServer, client: httpx.AsyncClient) -> None:
    body = recorded("sec/company_tickers_exchange-2025-12-14.json")
    listing_server.routes["/files/company_tickers_exchange.json"] = Reply(body=body, content_type="application/json")
    batch = await SecTickersSource(
        client, AGENT, url=listing_server.url("/files/company_tickers_exchange.json")
    ).fetch()
    assert len(batch.rows) == 10_218
    assert listing_server.requests[0].headers["user-agent"] == AGENT


def _renamed_field() -> bytes:
    payload = json.loads(recorded("sec/company_tickers_exchange-2024-12-19.json"))
    payload["fields"] = ["cik_str", "name", "ticker", "exchange"]
    return json.dumps(payload).encode()


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Reply(body=HTML_PAGE, content_type="text/html"), "HTML"),
        (Reply(body=b""), "empty"),
        (Reply(body=truncated(recorded("sec/company_tickers_exchange-2024-12-19.json"))), "not valid JSON"),
        (Reply(body=_renamed_field()), "fields are"),
        (Reply(body=b'{"fields": ["cik", "name", "ticker", "exchange"], "data": []}'), "no data rows"),
        (Reply(status=403), "HTTP 403"),
        (Reply(status=429, headers={"Retry-After": "600"}), "retry after 600 s"),
        (Reply(status=500), "HTTP 500"),
    ],
    ids=["html", "empty", "truncated", "renamed-field", "no-rows", "403", "429", "500"],
)
async def test_broken_answers_fail_with_a_reason(
    listing_server: ListingServer, client: httpx.AsyncClient, reply: Reply, reason: str
) -> None:
    listing_server.routes["/files/company_tickers_exchange.json"] = reply
    with pytest.raises(ListingSourceError) as caught:
        await SecTickersSource(client, AGENT, url=listing_server.url("/files/company_tickers_exchange.json")).fetch()
    assert reason in caught.value.reason


async def test_a_hang_fails_within_the_deadline(listing_server: ListingServer, client: httpx.AsyncClient) -> None:
    listing_server.routes["/x.json"] = Reply(body=b"{}", delay_s=3)
    with pytest.raises(ListingSourceError, match="within 0.3 s"):
        await SecTickersSource(client, AGENT, url=listing_server.url("/x.json"), deadline_s=0.3).fetch()
