"""Yahoo adapter through yfinance, with recorded Yahoo bodies served by a requests transport (the session seam)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from providers.base import MarketDataProvider, ProviderRateLimited, ProviderUnavailable
from providers.yahoo import YahooProvider, clamp_session
from tests.providers.conftest import BOOTSTRAP_ROUTES, CannedYahoo, fixture_bytes

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("yahoo_env")]

TIMEOUT_S = 0.5
SEARCH_AAPL = (r"/v1/finance/search\?.*q=AAPL&", 200, fixture_bytes("yahoo", "search_aapl_with_non_yahoo_entry.json"))
SUMMARY_AAPL = (r"/v10/finance/quoteSummary/AAPL\?", 200, fixture_bytes("yahoo", "quote_summary_aapl.json"))
QUOTE_AAPL = (r"/v7/finance/quote\?", 200, fixture_bytes("yahoo", "quote_aapl.json"))
# Not recorded (README "Not found"); the README's own harness answered this trailingPegRatio call with a 404.
TIMESERIES_404 = (r"/fundamentals-timeseries/", 404, b"{}")


def make(canned: CannedYahoo, cache_dir: Path, **kwargs: Any) -> YahooProvider:
    return YahooProvider(
        timeout_s=kwargs.pop("timeout_s", 3.0), cache_dir=cache_dir, session_factory=canned.session_factory(), **kwargs
    )


async def wait_until_idle(provider: YahooProvider, limit_s: float = 5.0) -> None:
    """Poll until abandoned yfinance threads have ended (their timeouts are clamped, so this is quick)."""
    for _ in range(int(limit_s / 0.05)):
        if not provider.in_flight:
            return
        await anyio.sleep(0.05)
    raise AssertionError(f"{provider.in_flight} yfinance thread(s) still running after {limit_s} s")


async def test_valid_symbol_is_enriched_from_info(yahoo_env: Path):
    canned = CannedYahoo([*BOOTSTRAP_ROUTES, SEARCH_AAPL, SUMMARY_AAPL, QUOTE_AAPL, TIMESERIES_404])
    provider = make(canned, yahoo_env)

    verdict = await provider.validate("AAPL")

    assert isinstance(provider, MarketDataProvider)
    assert verdict.status == "valid" and verdict.source == "yahoo"
    p = verdict.profile
    assert p is not None
    assert (p.symbol, p.name, p.exchange, p.asset_type) == ("AAPL", "Apple Inc.", "NASDAQ", "equity")
    assert (p.currency, p.country, p.industry) == ("USD", "United States", "Consumer Electronics")
    assert p.sector == "Information Technology"
    assert p.market_cap == 4035351412736
    assert p.pe_ratio == pytest.approx(36.40118)
    # .info says 0.38 (percent points, from the v7 quote); stored as the fraction 0.0038.
    assert p.dividend_yield == pytest.approx(0.0038)
    assert canned.count("/v1/finance/search") == 1
    await provider.aclose()


async def test_unknown_symbol_is_invalid_and_not_enriched(yahoo_env: Path):
    canned = CannedYahoo(
        [*BOOTSTRAP_ROUTES, (r"/v1/finance/search", 200, fixture_bytes("yahoo", "search_no_results.json"))]
    )
    provider = make(canned, yahoo_env)

    verdict = await provider.validate("NO0010123060")

    assert verdict.status == "invalid" and verdict.reason
    assert canned.count("quoteSummary") == 0


async def test_no_exact_match_is_invalid_and_names_close_symbols(yahoo_env: Path):
    body = fixture_bytes("yahoo", "search_company_name_evolution.json")
    canned = CannedYahoo([*BOOTSTRAP_ROUTES, (r"/v1/finance/search", 200, body)])
    provider = make(canned, yahoo_env)

    verdict = await provider.validate("EVO")

    assert verdict.status == "invalid"
    assert verdict.reason == "Yahoo Finance has no symbol EVO; closest Yahoo symbols: 0RQ6.IL, E3G1.SG"


async def test_an_exact_match_of_an_unsupported_type_is_invalid(yahoo_env: Path):
    canned = CannedYahoo([*BOOTSTRAP_ROUTES, (r"/v1/finance/search", 200, fixture_bytes("yahoo", "search_aapl.json"))])
    provider = make(canned, yahoo_env, enrich=False)

    verdict = await provider.validate("AAPL260116P00255000")

    assert verdict.status == "invalid" and "option" in (verdict.reason or "")


async def test_search_keeps_yahoo_securities_only(yahoo_env: Path):
    canned = CannedYahoo([*BOOTSTRAP_ROUTES, SEARCH_AAPL])
    provider = make(canned, yahoo_env)

    results = await provider.search("AAPL")

    # 7 quotes: 1 equity, 1 ETF, 4 options and a Crunchbase entry without a symbol.
    assert [(p.symbol, p.asset_type) for p in results] == [("AAPL", "equity"), ("AAPU", "etf")]
    assert results[1].name == "Direxion Daily AAPL Bull 2X Shares"


async def test_company_name_search(yahoo_env: Path):
    body = fixture_bytes("yahoo", "search_company_name_evolution.json")
    canned = CannedYahoo([*BOOTSTRAP_ROUTES, (r"/v1/finance/search", 200, body)])
    provider = make(canned, yahoo_env)

    results = await provider.search("Evolution Gaming Group", limit=5)

    assert [p.symbol for p in results] == ["0RQ6.IL", "E3G1.SG"]
    assert results[0].sector == "Consumer Discretionary"  # Yahoo's "Consumer Cyclical"
    assert results[0].extra["previous_name"] == "Evolution Gaming Group AB (publ)"


async def test_http_429_is_rate_limited(yahoo_env: Path):
    canned = CannedYahoo(
        [*BOOTSTRAP_ROUTES, (r"/v1/finance/search", 429, fixture_bytes("yahoo", "rate_limited_429.txt"))]
    )
    provider = make(canned, yahoo_env)

    with pytest.raises(ProviderRateLimited) as raised:
        await provider.validate("AAPL")

    assert 1 <= raised.value.retry_after_s <= 300


async def test_401_on_quote_keeps_a_valid_verdict(yahoo_env: Path):
    unauthorized = (r"/v7/finance/quote\?", 401, fixture_bytes("yahoo", "quote_unauthorized_401.json"))
    canned = CannedYahoo([*BOOTSTRAP_ROUTES, SEARCH_AAPL, SUMMARY_AAPL, unauthorized, TIMESERIES_404])
    provider = make(canned, yahoo_env)

    verdict = await provider.validate("AAPL")

    assert verdict.status == "valid"
    assert verdict.profile is not None and verdict.profile.name == "Apple Inc."
    assert verdict.profile.sector == "Information Technology"
    # Without the v7 quote, .info holds quoteSummary's summaryDetail only: its dividendYield is already a fraction.
    assert verdict.profile.dividend_yield == pytest.approx(0.0038)


async def test_enrichment_that_finds_nothing_keeps_the_search_data(yahoo_env: Path):
    canned = CannedYahoo(
        [
            *BOOTSTRAP_ROUTES,
            SEARCH_AAPL,
            TIMESERIES_404,
            (r"/v10/finance/quoteSummary/", 404, fixture_bytes("yahoo", "quote_summary_module_missing_404.json")),
            (r"/v7/finance/quote\?", 200, fixture_bytes("yahoo", "quote_unknown_symbol.json")),
        ]
    )
    provider = make(canned, yahoo_env)

    verdict = await provider.validate("AAPL")

    assert verdict.status == "valid"
    assert verdict.profile is not None
    assert (verdict.profile.name, verdict.profile.exchange) == ("Apple Inc.", "NASDAQ")


async def test_an_error_page_from_search_is_unavailable_not_invalid(yahoo_env: Path):
    canned = CannedYahoo([*BOOTSTRAP_ROUTES, (r"/v1/finance/search", 500, b"<html>Will be back soon</html>")])
    provider = make(canned, yahoo_env)

    with pytest.raises(ProviderUnavailable):
        await provider.validate("AAPL")


async def test_enrich_false_makes_one_data_request(yahoo_env: Path):
    canned = CannedYahoo([*BOOTSTRAP_ROUTES, SEARCH_AAPL, SUMMARY_AAPL, QUOTE_AAPL])
    provider = make(canned, yahoo_env, enrich=False)

    verdict = await provider.validate("AAPL")

    assert verdict.status == "valid" and verdict.profile and verdict.profile.market_cap is None
    assert canned.count("quoteSummary") == 0 and canned.count("/v7/finance/quote") == 0


async def test_a_black_holed_network_fails_within_the_timeout(yahoo_env: Path, black_hole: tuple[str, int]):
    import requests

    host, port = black_hole

    def factory() -> requests.Session:
        session = requests.Session()  # a plain session: the provider must clamp its timeouts itself
        session.trust_env = False
        session.proxies = {"http": f"http://{host}:{port}", "https": f"http://{host}:{port}"}
        return session

    provider = YahooProvider(timeout_s=TIMEOUT_S, cache_dir=yahoo_env, session_factory=factory, max_in_flight=1)
    # Either the call's deadline or the clamped request timeout ends it (both are TIMEOUT_S); fail_after only turns
    # a hang into a failure.
    with anyio.fail_after(30), pytest.raises(ProviderUnavailable):
        await provider.validate("AAPL")

    # The abandoned thread still holds the only slot: the next call fails at once instead of queueing.
    with pytest.raises(ProviderUnavailable, match="still running"):
        await provider.validate("MSFT")

    # Clamped timeouts end the abandoned thread soon (and must, before the next test reuses yfinance's singleton).
    await wait_until_idle(provider)
    await provider.aclose()


async def test_the_default_session_is_clamped_too(yahoo_env: Path, black_hole: tuple[str, int]):
    from yfinance.config import YfConfig

    host, port = black_hole
    YfConfig.network.proxy = f"http://{host}:{port}"  # yfinance routes its own session through the black hole
    provider = YahooProvider(timeout_s=TIMEOUT_S, cache_dir=yahoo_env)
    try:
        with anyio.fail_after(30), pytest.raises(ProviderUnavailable):  # fail_after: a hang fails, never blocks
            await provider.search("Apple")
        await wait_until_idle(provider)
    finally:
        YfConfig.network.proxy = None
        await provider.aclose()


def test_clamp_session_caps_every_timeout():
    seen: list[Any] = []

    class Recorder:
        def request(self, method: str, url: str, *args: Any, timeout: Any = None, **kwargs: Any) -> None:
            seen.append(timeout)

    session = clamp_session(Recorder(), 2.0)
    assert clamp_session(session, 9.0) is session  # idempotent
    session.request("GET", "https://example.invalid", timeout=30)
    session.request("GET", "https://example.invalid", timeout=(30, 1))
    session.request("GET", "https://example.invalid")
    assert seen == [2.0, (2.0, 1.0), 2.0]
