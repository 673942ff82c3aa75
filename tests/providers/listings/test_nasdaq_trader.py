"""NASDAQ Trader symbol directory: the recorded copies parse exactly; broken answers fail with a readable reason."""

from __future__ import annotations

from datetime import date

import httpx
import pytest

from providers.listings.base import ListingSource, ListingSourceError
from providers.listings.nasdaq_trader import NasdaqTraderSource, parse_directory, parse_nasdaqlisted, parse_otherlisted
from tests.providers.listings.conftest import HTML_PAGE, ListingServer, Reply, recorded, truncated

pytestmark = pytest.mark.anyio

# (date, data rows in nasdaqlisted, in otherlisted, ETF=Y rows in each) — from the fixtures README.
COPIES = [
    ("2022-05-11", 5688, 6489, 454, 2391),
    ("2025-07-21", 4973, 6606, 914, 3430),
    ("2026-03-03", 5363, 7018, 1151, 3850),
]


def _pair(day: str) -> tuple[bytes, bytes]:
    return recorded(f"nasdaqtrader/nasdaqlisted-{day}.txt"), recorded(f"nasdaqtrader/otherlisted-{day}.txt")


@pytest.mark.parametrize(("day", "nasdaq_rows", "other_rows", "nasdaq_etfs", "other_etfs"), COPIES)
def test_recorded_copies_parse_completely(
    day: str, nasdaq_rows: int, other_rows: int, nasdaq_etfs: int, other_etfs: int
) -> None:
    nasdaq, other = _pair(day)
    nasdaq_parsed, created, nasdaq_dropped = parse_nasdaqlisted(nasdaq)
    other_parsed, _, other_dropped = parse_otherlisted(other)
    # Every data row is either kept or dropped as a test issue (CRLF, LF and the trailing empty line all read).
    assert len(nasdaq_parsed) + nasdaq_dropped == nasdaq_rows
    assert len(other_parsed) + other_dropped == other_rows
    assert sum(bool(r.is_etf) for r in nasdaq_parsed) == nasdaq_etfs
    assert sum(bool(r.is_etf) for r in other_parsed) == other_etfs
    batch = parse_directory(nasdaq, other)
    assert batch.as_of == date.fromisoformat(day) == created.date()
    assert batch.dropped["test_issue"] == nasdaq_dropped + other_dropped > 0


def test_test_issues_are_dropped_and_symbols_canonical() -> None:
    batch = parse_directory(*_pair("2026-03-03"))
    symbols = {row.symbol: row for row in batch.rows}
    for test_issue in ("ZVZZT", "ZXYZ.A", "ATEST", "MTEST", "ZIEXT"):
        assert test_issue not in symbols
    assert symbols["BRK.B"].raw_symbol == "BRK.B" and symbols["BRK.B"].exchange == "NYSE"
    assert symbols["ABR.PRD"].raw_symbol == "ABR$D" and symbols["ABR.PRD"].asset_type == "preferred"
    assert symbols["AAPL"].name == "Apple Inc. - Common Stock" and symbols["AAPL"].exchange == "NASDAQ"
    assert symbols["FB"].is_etf and symbols["FB"].asset_type == "etf"  # ProShares, in 2026
    assert symbols["AACBR"].asset_type == "right" and symbols["AACBU"].asset_type == "unit"
    assert symbols["ABLVW"].asset_type == "warrant"
    assert symbols["BHP"].asset_type == "adr"


async def test_adapter_fetches_the_recorded_files_byte_for_byte(
    listing_server: ListingServer, client: httpx.AsyncClient
) -> None:
    nasdaq, other = _pair("2025-07-21")
    listing_server.routes["/nasdaqlisted.txt"] = Reply(body=nasdaq)
    listing_server.routes["/otherlisted.txt"] = Reply(body=other)
    source = NasdaqTraderSource(
        client,
        nasdaqlisted_url=listing_server.url("/nasdaqlisted.txt"),
        otherlisted_url=listing_server.url("/otherlisted.txt"),
    )
    assert isinstance(source, ListingSource)
    batch = await source.fetch()
    assert batch == parse_directory(nasdaq, other)
    assert batch.as_of == date(2025, 7, 21)


def _renamed_column(body: bytes) -> bytes:
    head, rest = body.split(b"\n", 1)
    return head.replace(b"|ETF|", b"|Exchange Traded Fund|") + b"\n" + rest


def _wrong_footer(body: bytes) -> bytes:
    return body.replace(b"File Creation Time: 0303202606:00|||||||", b"File Creation Time: 0303202606:00||")


def _short_row(body: bytes) -> bytes:
    return body.replace(b"AAPL|Apple Inc. - Common Stock|Q|N|N|100|N|N", b"AAPL|Apple Inc. - Common Stock|Q|N")


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Reply(body=HTML_PAGE, content_type="text/html"), "HTML"),
        (Reply(body=b""), "empty"),
        (Reply(body=truncated(recorded("nasdaqtrader/nasdaqlisted-2026-03-03.txt"))), "footer"),
        (Reply(body=_renamed_column(recorded("nasdaqtrader/nasdaqlisted-2026-03-03.txt"))), "lacks 'ETF'"),
        (Reply(body=_wrong_footer(recorded("nasdaqtrader/nasdaqlisted-2026-03-03.txt"))), "separators"),
        (Reply(body=_short_row(recorded("nasdaqtrader/nasdaqlisted-2026-03-03.txt"))), "fields, expected 8"),
        (Reply(body=b"\xff\xfe" + recorded("nasdaqtrader/nasdaqlisted-2026-03-03.txt")), "UTF-8"),
        (Reply(status=429, headers={"Retry-After": "30"}), "HTTP 429, retry after 30 s"),
        (Reply(status=503), "HTTP 503"),
        (Reply(status=404), "HTTP status 404"),
    ],
    ids=["html", "empty", "truncated", "renamed-column", "wrong-footer", "short-row", "not-utf8", "429", "503", "404"],
)
async def test_broken_answers_fail_with_a_reason(
    listing_server: ListingServer, client: httpx.AsyncClient, reply: Reply, reason: str
) -> None:
    listing_server.routes["/nasdaqlisted.txt"] = reply
    listing_server.routes["/otherlisted.txt"] = Reply(body=recorded("nasdaqtrader/otherlisted-2026-03-03.txt"))
    source = NasdaqTraderSource(
        client,
        nasdaqlisted_url=listing_server.url("/nasdaqlisted.txt"),
        otherlisted_url=listing_server.url("/otherlisted.txt"),
    )
    with pytest.raises(ListingSourceError) as caught:
        await source.fetch()
    assert reason in caught.value.reason
    assert caught.value.source == "nasdaq_trader"
    assert listing_server.base_url not in str(caught.value)  # no URL in the reason


async def test_a_hang_fails_within_the_deadline(listing_server: ListingServer, client: httpx.AsyncClient) -> None:
    listing_server.routes["/nasdaqlisted.txt"] = Reply(
        body=recorded("nasdaqtrader/nasdaqlisted-2026-03-03.txt"), delay_s=3
    )
    source = NasdaqTraderSource(
        client,
        nasdaqlisted_url=listing_server.url("/nasdaqlisted.txt"),
        otherlisted_url=listing_server.url("/otherlisted.txt"),
        deadline_s=0.3,
    )
    with pytest.raises(ListingSourceError, match="within 0.3 s"):
        await source.fetch()


async def test_a_server_that_never_answers(black_hole: tuple[str, int], client: httpx.AsyncClient) -> None:
    host, port = black_hole
    source = NasdaqTraderSource(
        client,
        nasdaqlisted_url=f"http://{host}:{port}/a.txt",
        otherlisted_url=f"http://{host}:{port}/b.txt",
        deadline_s=0.3,
    )
    with pytest.raises(ListingSourceError, match="within 0.3 s"):
        await source.fetch()
