"""Alpha Vantage adapter against a real local HTTP server serving recorded bodies (and the guide's quoted texts)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import anyio
import httpx
import pytest

from providers.alpha_vantage import AlphaVantageProvider, classify_error_body, parse_number
from providers.base import (
    MarketDataProvider,
    ProviderError,
    ProviderMisconfigured,
    ProviderRateLimited,
    ProviderUnavailable,
)
from tests.providers.conftest import LocalServer, Reply, fixture_bytes, json_bytes

pytestmark = pytest.mark.anyio

KEY = "SECRETKEY123"
TIMEOUT_S = 0.5

# No verbatim recordings exist for these (fixtures/README.md, "Not found"); the texts are quoted from the provider
# guide, section C2, which collected them from client code and issues.
DAILY = {
    "Information": "Thank you for using Alpha Vantage! Our standard API rate limit is 25 requests per day. "
    "Please subscribe to any of the premium plans at https://www.alphavantage.co/premium/ to instantly remove "
    "all daily rate limits."
}
BURST_WITH_RATE = {
    "Information": "Thank you for using Alpha Vantage! Please consider spreading out your free API "
    "requests more sparingly (1 request per second). You may subscribe to any of the premium plans at "
    "https://www.alphavantage.co/premium/ to lift the free key rate limit (25 requests per day), raise "
    "the per-second burst limit, and instantly unlock all premium endpoints."
}
PREMIUM = {
    "Information": "Thank you for using Alpha Vantage! This is a premium endpoint. You may subscribe to any of "
    "the premium plans at https://www.alphavantage.co/premium/ to instantly unlock all premium endpoints."
}
DEMO = {
    "Information": "The **demo** API key is for demo purposes only. Please claim your free API key at "
    "(https://www.alphavantage.co/support/#api-key) to explore our full API offerings. It takes fewer than 20 "
    "seconds."
}
BAD_KEY = {
    "Error Message": "the parameter apikey is invalid or missing. Please claim your free API key on "
    "(https://www.alphavantage.co/support/#api-key). It should take less than 20 seconds."
}
NO_FUNCTION = {"Error Message": "This API function (GLOBAL_QUOT) does not exist."}
# The README describes a daily-limit variant that echoes the key; built here with our fake key to prove redaction.
DAILY_ECHOING_KEY = {
    "Information": f"We have detected your API key as {KEY} and our standard API rate limit is 25 "
    "requests per day. Please subscribe to any of the premium plans."
}
UNKNOWN_NOTICE = {"Information": "Something new that Alpha Vantage has never said before."}

# (route subject, reply, expected exception type, (min, max) retry_after_s or None)
ERROR_CASES = [
    ("BADKEY", Reply(body=json_bytes(BAD_KEY)), ProviderMisconfigured, None),
    (
        "BADCALL",
        Reply(body=fixture_bytes("alpha_vantage", "error_message_invalid_api_call.json")),
        ProviderUnavailable,
        None,
    ),
    ("NOFUNC", Reply(body=json_bytes(NO_FUNCTION)), ProviderUnavailable, None),
    (
        "BURST",
        Reply(body=fixture_bytes("alpha_vantage", "information_rate_limit_burst.json")),
        ProviderRateLimited,
        (0.5, 60),
    ),
    ("BURST2", Reply(body=json_bytes(BURST_WITH_RATE)), ProviderRateLimited, (0.5, 60)),
    ("LEGACY", Reply(body=fixture_bytes("alpha_vantage", "note_rate_limit_legacy.json")), ProviderRateLimited, (1, 60)),
    ("DAILY", Reply(body=json_bytes(DAILY)), ProviderRateLimited, (1, 86_400)),
    ("DAILYKEY", Reply(body=json_bytes(DAILY_ECHOING_KEY)), ProviderRateLimited, (1, 86_400)),
    ("PREMIUM", Reply(body=json_bytes(PREMIUM)), ProviderMisconfigured, None),
    ("DEMO", Reply(body=json_bytes(DEMO)), ProviderMisconfigured, None),
    ("ODDNOTE", Reply(body=json_bytes(UNKNOWN_NOTICE)), ProviderUnavailable, None),
    ("HTTP500", Reply(status=500, body=b"Internal Server Error", content_type="text/plain"), ProviderUnavailable, None),
    (
        "HTTP429",
        Reply(status=429, body=b"slow down", content_type="text/plain", headers={"Retry-After": "7"}),
        ProviderRateLimited,
        (7, 7),
    ),
    (
        "NONJSON",
        Reply(body=b"<html><body>Bad gateway</body></html>", content_type="text/html"),
        ProviderUnavailable,
        None,
    ),
    ("JSONLIST", Reply(body=b"[1, 2, 3]"), ProviderUnavailable, None),
    ("SLOW", Reply(body=b"{}", delay_s=TIMEOUT_S + 1.0), ProviderUnavailable, None),
]


@pytest.fixture
async def provider(av_server: LocalServer):
    for subject, reply, _, _ in ERROR_CASES:
        av_server.routes[("OVERVIEW", subject)] = reply
        av_server.routes[("SYMBOL_SEARCH", subject)] = reply
    p = AlphaVantageProvider(KEY, base_url=av_server.base_url, timeout_s=TIMEOUT_S)
    yield p
    await p.aclose()


def _assert_no_key(*texts: str) -> None:
    for text in texts:
        assert KEY not in text


async def test_validate_reads_the_current_overview_payload(provider: AlphaVantageProvider, av_server: LocalServer):
    av_server.routes[("OVERVIEW", "AAPL")] = Reply(body=fixture_bytes("alpha_vantage", "overview_aapl.json"))

    verdict = await provider.validate("AAPL")

    assert verdict.status == "valid" and verdict.source == "alpha_vantage"
    profile = verdict.profile
    assert profile is not None
    assert (profile.symbol, profile.name, profile.exchange, profile.currency) == ("AAPL", "Apple Inc", "NASDAQ", "USD")
    assert profile.asset_type == "equity"
    assert profile.sector == "Information Technology"
    assert profile.industry == "Electronic Computers"
    assert profile.country == "USA"
    assert profile.market_cap == 3189540127000
    assert profile.pe_ratio == pytest.approx(33.26)
    assert profile.dividend_yield == pytest.approx(0.0051)  # already a fraction
    assert profile.cik == "320193"
    assert av_server.requests[-1]["apikey"] == [KEY] and av_server.requests[-1]["function"] == ["OVERVIEW"]
    assert isinstance(provider, MarketDataProvider)


async def test_old_overview_schema_with_placeholders(provider: AlphaVantageProvider, av_server: LocalServer):
    av_server.routes[("OVERVIEW", "TSLA")] = Reply(body=fixture_bytes("alpha_vantage", "overview_tsla_2023.json"))

    profile = (await provider.validate("tsla")).profile

    assert profile is not None and profile.symbol == "TSLA"
    # "MANUFACTURING" is ambiguous on its own; the industry (motor vehicles) settles it.
    assert profile.sector == "Consumer Discretionary"
    assert profile.dividend_yield is None  # "0" is Alpha Vantage's placeholder, not a measured yield
    assert profile.pe_ratio == pytest.approx(44.64)


async def test_empty_overview_is_confirmed_by_an_exact_symbol_search_match(
    provider: AlphaVantageProvider, av_server: LocalServer
):
    # OVERVIEW's {} for a symbol it does not cover is unverified (README "Not found"); ETFs are the usual case.
    av_server.routes[("OVERVIEW", "APLE")] = Reply(body=b"{}")
    av_server.routes[("SYMBOL_SEARCH", "APLE")] = Reply(body=fixture_bytes("alpha_vantage", "symbol_search_apple.json"))

    verdict = await provider.validate("APLE")

    assert verdict.status == "valid"
    assert verdict.profile is not None
    assert verdict.profile.name == "Apple Hospitality REIT Inc" and verdict.profile.currency == "USD"
    assert verdict.profile.extra["region"] == "United States"


async def test_unknown_symbol_is_invalid_with_a_reason(provider: AlphaVantageProvider, av_server: LocalServer):
    av_server.routes[("OVERVIEW", "ZZZZ")] = Reply(body=b"{}")
    # {"bestMatches": []} is the documented but unrecorded no-match shape (README "Not found").
    av_server.routes[("SYMBOL_SEARCH", "ZZZZ")] = Reply(body=b'{"bestMatches": []}')

    verdict = await provider.validate("ZZZZ")

    assert verdict.status == "invalid" and verdict.profile is None
    assert verdict.reason and "ZZZZ" in verdict.reason


async def test_a_throttled_confirmation_never_turns_into_invalid(
    provider: AlphaVantageProvider, av_server: LocalServer
):
    av_server.routes[("OVERVIEW", "QQQ")] = Reply(body=b"{}")
    av_server.routes[("SYMBOL_SEARCH", "QQQ")] = Reply(
        body=fixture_bytes("alpha_vantage", "information_rate_limit_burst.json")
    )

    with pytest.raises(ProviderRateLimited):
        await provider.validate("QQQ")


@pytest.mark.parametrize(("subject", "reply", "expected", "retry_range"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
async def test_error_bodies_and_http_failures_are_classified(
    provider: AlphaVantageProvider, subject, reply, expected, retry_range, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)

    with anyio.fail_after(30), pytest.raises(ProviderError) as raised:  # fail_after: a hang fails, never blocks
        await provider.validate(subject)

    assert type(raised.value) is expected, raised.value
    assert raised.value.provider == "alpha_vantage"
    retry = getattr(raised.value, "retry_after_s", None)
    assert (retry is None) == (retry_range is None), retry
    assert retry_range is None or retry_range[0] <= retry <= retry_range[1]
    if subject == "SLOW":  # the body would come 1 s after the timeout: the timeout, not the body, must decide
        assert raised.value.message == f"no answer within {TIMEOUT_S:g} s"
    _assert_no_key(str(raised.value), repr(raised.value), repr(raised.value.args), caplog.text, repr(provider))
    assert raised.value.__cause__ is None and raised.value.__context__ is None  # no chained httpx text


async def test_search_errors_are_classified_too(provider: AlphaVantageProvider):
    with pytest.raises(ProviderRateLimited):
        await provider.search("DAILY")
    with pytest.raises(ProviderMisconfigured):
        await provider.search("BADKEY")


async def test_the_key_never_leaks_into_logs_even_from_httpx(
    provider: AlphaVantageProvider, av_server: LocalServer, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    av_server.routes[("OVERVIEW", "AAPL")] = Reply(body=fixture_bytes("alpha_vantage", "overview_aapl.json"))

    await provider.validate("AAPL")
    with pytest.raises(ProviderError):
        await provider.validate("DAILYKEY")

    assert "apikey=REDACTED" in caplog.text  # httpx logged the URL, redacted
    _assert_no_key(caplog.text)


async def test_search_returns_matches_in_provider_order(provider: AlphaVantageProvider, av_server: LocalServer):
    av_server.routes[("SYMBOL_SEARCH", "Apple")] = Reply(
        body=fixture_bytes("alpha_vantage", "symbol_search_apple.json")
    )
    av_server.routes[("SYMBOL_SEARCH", "Microsoft")] = Reply(
        body=fixture_bytes("alpha_vantage", "symbol_search_microsoft.json")
    )

    apple = await provider.search("Apple", limit=3)
    microsoft = await provider.search("Microsoft")

    assert [p.symbol for p in apple] == ["APLE", "AAPL", "AAPL34.SAO"]
    assert apple[1].name == "Apple Inc" and apple[2].currency == "BRL"
    assert len(microsoft) == 7 and microsoft[1].symbol == "MSFT"
    assert await provider.search("   ") == []


async def test_a_black_holed_endpoint_fails_within_the_timeout(black_hole: tuple[str, int]):
    host, port = black_hole
    provider = AlphaVantageProvider(KEY, base_url=f"http://{host}:{port}/query", timeout_s=TIMEOUT_S)
    try:
        with anyio.fail_after(30), pytest.raises(ProviderUnavailable) as raised:
            await provider.validate("AAPL")
    finally:
        await provider.aclose()
    assert raised.value.message == f"no answer within {TIMEOUT_S:g} s"
    _assert_no_key(str(raised.value), repr(raised.value))


async def test_missing_key_is_misconfigured_without_a_request(av_server: LocalServer):
    provider = AlphaVantageProvider("", base_url=av_server.base_url)
    with pytest.raises(ProviderMisconfigured):
        await provider.validate("AAPL")
    await provider.aclose()
    assert av_server.requests == []


async def test_a_shared_client_is_not_closed(av_server: LocalServer):
    av_server.routes[("OVERVIEW", "AAPL")] = Reply(body=fixture_bytes("alpha_vantage", "overview_aapl.json"))
    async with httpx.AsyncClient() as client:
        provider = AlphaVantageProvider(KEY, base_url=av_server.base_url, client=client)
        await provider.aclose()
        assert not client.is_closed
        assert (await provider.validate("AAPL")).status == "valid"


def test_classification_order_matches_the_guide():
    burst = classify_error_body(BURST_WITH_RATE)
    daily = classify_error_body(DAILY)
    assert isinstance(burst, ProviderRateLimited) and burst.retry_after_s <= 60  # mentions "per day", still a burst
    assert isinstance(daily, ProviderRateLimited)
    now = datetime.now(UTC)
    to_midnight = 86_400 - (now.hour * 3600 + now.minute * 60 + now.second)
    assert abs(daily.retry_after_s - to_midnight) < 5
    assert isinstance(classify_error_body(PREMIUM), ProviderMisconfigured)  # "premium plans" appears in all three
    assert isinstance(classify_error_body(BAD_KEY), ProviderMisconfigured)
    assert classify_error_body({"Symbol": "AAPL"}) is None
    assert classify_error_body({}) is None


def test_numbers_are_parsed_leniently():
    assert parse_number("33.26") == pytest.approx(33.26)
    assert [parse_number(v) for v in ("None", "-", "", "0", "N/A", None, "abc", "nan")] == [None] * 8
    assert parse_number("0.52%") == pytest.approx(0.52)
