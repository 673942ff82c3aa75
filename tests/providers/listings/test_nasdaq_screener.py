"""NASDAQ stock screener: the recorded request, the recorded files byte for byte, and broken answers."""

from __future__ import annotations

import json

import httpx
import pytest

from providers.listings.base import ListingSourceError
from providers.listings.nasdaq_screener import BROWSER_HEADERS, NasdaqScreenerSource, parse_screener
from tests.providers.listings.conftest import HTML_PAGE, ListingServer, Reply, recorded, truncated

pytestmark = pytest.mark.anyio

ROWS = {
    ("nasdaq", "2024-08-22"): 3950,
    ("nyse", "2024-08-22"): 2790,
    ("amex", "2024-08-22"): 299,
    ("nasdaq", "2026-08-22"): 4179,
    ("nyse", "2026-08-22"): 2711,
    ("amex", "2026-08-22"): 292,
}


@pytest.mark.parametrize(("exchange", "day"), sorted(ROWS))
def test_recorded_files_parse_every_row(exchange: str, day: str) -> None:
    rows = parse_screener(recorded(f"nasdaq_screener/{exchange}_full_tickers-{day}.json"), exchange)
    assert len(rows) == ROWS[(exchange, day)]


def test_values_are_read_as_the_readme_describes() -> None:
    rows = {r.symbol: r for r in parse_screener(recorded("nasdaq_screener/nyse_full_tickers-2026-08-22.json"), "nyse")}
    assert rows["BRK.B"].raw_symbol == "BRK/B" and rows["BRK.B"].source_sector is None
    assert rows["ABR.PRD"].raw_symbol == "ABR^D" and rows["ABR.PRD"].asset_type == "preferred"
    assert "ECC" in rows and rows["ECC"].raw_symbol == "ECC"  # recorded as "ECC           "
    assert rows["V"].source_industry == "Business Services" and rows["V"].source_sector == "Consumer Discretionary"
    assert rows["XOM"].market_cap and rows["XOM"].market_cap > 1e11
    assert rows["XOM"].exchange == "NYSE" and rows["XOM"].country == "United States"
    nasdaq = parse_screener(recorded("nasdaq_screener/nasdaq_full_tickers-2026-08-22.json"), "nasdaq")
    zero_caps = [r for r in nasdaq if r.market_cap is None]
    assert len(zero_caps) == 640 + 4  # "0.00" (SPAC shares, units, warrants, new listings) and "" are unknown
    assert all(r.ipo_year is None or 1800 < r.ipo_year < 2100 for r in nasdaq)


async def test_adapter_sends_the_recorded_request(listing_server: ListingServer, client: httpx.AsyncClient) -> None:
    for exchange in ("nasdaq", "nyse", "amex"):
        body = recorded(f"nasdaq_screener/{exchange}_full_tickers-2024-08-22.json")
        listing_server.routes[("/api/screener/stocks", "exchange", exchange)] = Reply(body=body)
    batch = await NasdaqScreenerSource(client, url=listing_server.url("/api/screener/stocks")).fetch()
    assert len(batch.rows) == 3950 + 2790 + 299
    assert [r.query["exchange"][0] for r in listing_server.requests] == ["nasdaq", "nyse", "amex"]
    for request in listing_server.requests:
        assert request.query == {
            "tableonly": ["true"], "limit": ["25"], "offset": ["0"], "exchange": request.query["exchange"],
            "download": ["true"],
        }  # fmt: skip
        assert request.headers["user-agent"] == BROWSER_HEADERS["User-Agent"]


def test_the_live_answer_envelope_parses_too() -> None:
    rows = json.loads(recorded("nasdaq_screener/amex_full_tickers-2026-08-22.json"))
    live = json.dumps({"data": {"rows": rows, "headers": {}}, "message": None, "status": {"rCode": 200}}).encode()
    assert len(parse_screener(live, "amex")) == 292


def _renamed(body: bytes) -> bytes:
    return body.replace(b'"marketCap"', b'"market_cap"')


def _refused() -> bytes:
    return json.dumps({"data": None, "message": None, "status": {"rCode": 400, "bCodeMessage": "Bad request"}}).encode()


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Reply(body=HTML_PAGE, content_type="text/html"), "HTML"),
        (Reply(body=b"   "), "empty"),
        (Reply(body=truncated(recorded("nasdaq_screener/amex_full_tickers-2026-08-22.json"))), "not valid JSON"),
        (Reply(body=_renamed(recorded("nasdaq_screener/amex_full_tickers-2026-08-22.json"))), "lacks 'marketCap'"),
        (Reply(body=b"[]"), "no rows"),
        (Reply(body=_refused()), "rCode 400"),
        (Reply(status=429), "HTTP 429"),
        (Reply(status=502), "HTTP 502"),
    ],
    ids=["html", "empty", "truncated", "renamed-column", "no-rows", "api-refusal", "429", "502"],
)
async def test_broken_answers_fail_with_a_reason(
    listing_server: ListingServer, client: httpx.AsyncClient, reply: Reply, reason: str
) -> None:
    listing_server.routes["/api/screener/stocks"] = reply
    with pytest.raises(ListingSourceError) as caught:
        await NasdaqScreenerSource(client, url=listing_server.url("/api/screener/stocks")).fetch()
    assert reason in caught.value.reason


async def test_a_hang_fails_within_the_deadline(listing_server: ListingServer, client: httpx.AsyncClient) -> None:
    listing_server.routes["/api/screener/stocks"] = Reply(body=b"[]", delay_s=3)
    with pytest.raises(ListingSourceError, match="within 0.3 s"):
        await NasdaqScreenerSource(client, url=listing_server.url("/api/screener/stocks"), deadline_s=0.3).fetch()
