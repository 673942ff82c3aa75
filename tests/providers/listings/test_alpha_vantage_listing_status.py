"""Alpha Vantage LISTING_STATUS: CSV of active and delisted listings, only with a key; errors in HTTP 200 bodies."""

from __future__ import annotations

import logging
from datetime import date

import httpx
import pytest

from providers.listings.alpha_vantage import AlphaVantageListingSource, parse_listing_status
from providers.listings.base import ListingSourceError
from tests.providers.conftest import fixture_bytes
from tests.providers.listings.conftest import HTML_PAGE, ListingServer, Reply, recorded, truncated

pytestmark = pytest.mark.anyio

KEY = "LISTINGKEY42"
ACTIVE = "alpha_vantage_listing_status/listing_status-active-2026-04-09.csv"
DELISTED = "alpha_vantage_listing_status/listing_status-delisted-2026-04-09.csv"


def test_recorded_files_parse() -> None:
    active = parse_listing_status(recorded(ACTIVE), "active")
    delisted = parse_listing_status(recorded(DELISTED), "delisted")
    assert (len(active), len(delisted)) == (13_267, 9_337)
    assert sum(bool(r.is_etf) for r in active) == 4_628 and sum(bool(r.is_etf) for r in delisted) == 1_898
    assert all(r.delisted_on is None for r in active) and all(r.delisted_on for r in delisted)
    by_symbol = {r.symbol: r for r in active}
    assert by_symbol["BRK.B"].raw_symbol == "BRK-B"
    assert by_symbol["META"].listed_on == date(2012, 5, 18)
    assert by_symbol["FB"].is_etf and by_symbol["FB"].listed_on == date(2025, 6, 26)  # the ProShares ETF
    twtr = next(r for r in delisted if r.symbol == "TWTR")
    assert twtr.delisted_on == date(2022, 10, 28) and twtr.exchange == "NYSE"
    # Odd symbols are kept as given (the merge ignores what cannot be a ticker).
    assert "ACWV:BAT" in {r.symbol for r in active}


async def test_fetches_both_states_with_the_key(listing_server: ListingServer, client: httpx.AsyncClient) -> None:
    listing_server.routes[("/query", "state", "active")] = Reply(body=recorded(ACTIVE), content_type="text/csv")
    listing_server.routes[("/query", "state", "delisted")] = Reply(body=recorded(DELISTED), content_type="text/csv")
    batch = await AlphaVantageListingSource(client, KEY, url=listing_server.url("/query")).fetch()
    assert batch.detail == {"active_rows": 13_267, "delisted_rows": 9_337}
    assert [r.query["function"][0] for r in listing_server.requests] == ["LISTING_STATUS", "LISTING_STATUS"]
    assert [r.query["apikey"][0] for r in listing_server.requests] == [KEY, KEY]


async def test_no_key_no_request(listing_server: ListingServer, client: httpx.AsyncClient) -> None:
    with pytest.raises(ListingSourceError, match="no Alpha Vantage API key"):
        await AlphaVantageListingSource(client, None, url=listing_server.url("/query")).fetch()
    assert listing_server.requests == []


def _renamed_column(body: bytes) -> bytes:
    return body.replace(b"delistingDate", b"delisting_date", 1)


def _wrong_status(body: bytes) -> bytes:
    head, first, rest = body.split(b"\r\n", 2)
    return b"\r\n".join([head, first.replace(b",Active", b",Delisted"), rest])


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        # Recorded HTTP-200 notices (tests/providers/fixtures/alpha_vantage): quota problems come as JSON bodies.
        (Reply(body=fixture_bytes("alpha_vantage", "information_rate_limit_burst.json")), "burst limit"),
        (Reply(body=fixture_bytes("alpha_vantage", "error_message_invalid_api_call.json")), "invalid"),
        (Reply(body=HTML_PAGE, content_type="text/html"), "HTML"),
        (Reply(body=b""), "empty"),
        (Reply(body=truncated(recorded(ACTIVE))), "middle of a line"),
        (Reply(body=_renamed_column(recorded(ACTIVE))), "lacks 'delistingDate'"),
        (Reply(body=_wrong_status(recorded(ACTIVE))), "status 'Delisted' in the active list"),
        (Reply(body=b"symbol,name,exchange,assetType,ipoDate,delistingDate,status\r\n"), "no data rows"),
        (Reply(status=429), "HTTP 429"),
        (Reply(status=503), "HTTP 503"),
    ],
    ids=[
        "burst-notice",
        "error-message",
        "html",
        "empty",
        "truncated",
        "renamed-column",
        "wrong-status",
        "no-rows",
        "429",
        "503",
    ],
)
async def test_broken_answers_fail_with_a_reason_and_never_show_the_key(
    listing_server: ListingServer,
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    reply: Reply,
    reason: str,
) -> None:
    listing_server.routes["/query"] = reply
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ListingSourceError) as caught:
        await AlphaVantageListingSource(client, KEY, url=listing_server.url("/query")).fetch()
    assert reason in caught.value.reason
    assert KEY not in str(caught.value) and KEY not in repr(caught.value)
    assert KEY not in caplog.text.replace("apikey=REDACTED", "")


async def test_a_hang_fails_within_the_deadline(listing_server: ListingServer, client: httpx.AsyncClient) -> None:
    listing_server.routes["/query"] = Reply(body=recorded(ACTIVE), delay_s=3)
    with pytest.raises(ListingSourceError, match="within 0.3 s"):
        await AlphaVantageListingSource(client, KEY, url=listing_server.url("/query"), deadline_s=0.3).fetch()


def test_repr_hides_the_key() -> None:
    assert KEY not in repr(AlphaVantageListingSource(httpx.AsyncClient(), KEY))
