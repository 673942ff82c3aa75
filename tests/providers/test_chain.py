"""The real provider chain, Yahoo -> Alpha Vantage -> offline catalog, as production builds it, against local servers.

The server is ``build_server(settings)`` with network providers on: ``core.wiring.build_providers`` makes the real
YahooProvider (yfinance, on its own requests session with clamped timeouts), the real AlphaVantageProvider (httpx),
the catalog, each behind its circuit breaker and rate limit, exactly as ``universe-mcp serve`` does. Only the
network destination differs:

* Alpha Vantage is configured with ``alpha_vantage_base_url`` pointing at a local HTTP server (tests/providers/
  conftest.py ``av_server``) that serves the recorded bodies of fixtures/alpha_vantage/.
* Yahoo's URLs are fixed inside yfinance, so every request the ``requests`` transport sends to a ``*.yahoo.com`` host
  is re-addressed to a local HTTP server speaking the recorded bodies of fixtures/yahoo/ (the way fixtures/README.md
  describes yfinance reading them: a dummy cookie and crumb, quoteSummary, quote, fundamentals-timeseries 404).
  Any other non-local destination is refused, so nothing here can reach the internet.

Checked: the order (the first provider that answers decides; later ones are not asked), the fallback when a provider
is down, rate limited or hangs, the call's deadline, and coverage of a mixed list.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import pytest
from mcp import Client

from core.wiring import build_providers
from providers.alpha_vantage import AlphaVantageProvider
from providers.catalog import CatalogProvider
from providers.guard import GuardedProvider
from providers.yahoo import YahooProvider
from server.app import build_server
from tests.conftest import Call
from tests.providers.conftest import LocalServer, Reply, fixture_bytes

if TYPE_CHECKING:
    import requests
    import requests.adapters

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("yahoo_env")]

AV_KEY = "LOCALTESTKEY"


@dataclass
class YahooServer:
    """A local HTTP server answering yfinance's Yahoo requests; ``failing`` symbols get HTTP 503 on search."""

    port: int
    failing: set[str] = field(default_factory=set)
    rate_limited: bool = False
    searches: list[str] = field(default_factory=list)


def _yahoo_reply(state: YahooServer, path: str, query: dict[str, list[str]]) -> tuple[int, bytes]:
    if path == "/v1/test/getcrumb":
        return 200, b"test-crumb"
    if path == "/v1/finance/search":
        q = query.get("q", [""])[0].upper()
        state.searches.append(q)
        if state.rate_limited:
            return 429, fixture_bytes("yahoo", "rate_limited_429.txt")
        if q in state.failing:
            return 503, b"Service Unavailable"
        if q == "AAPL":
            return 200, fixture_bytes("yahoo", "search_aapl_with_non_yahoo_entry.json")
        return 200, fixture_bytes("yahoo", "search_no_results.json")
    if path.startswith("/v10/finance/quoteSummary/AAPL"):
        return 200, fixture_bytes("yahoo", "quote_summary_aapl.json")
    if path.startswith("/v10/finance/quoteSummary/"):
        return 404, fixture_bytes("yahoo", "quote_summary_unknown_symbol_404.json")
    if path == "/v7/finance/quote":
        symbols = query.get("symbols", [""])[0].upper()
        name = "quote_aapl.json" if symbols == "AAPL" else "quote_unknown_symbol.json"
        return 200, fixture_bytes("yahoo", name)
    if path == "/":
        return 200, b""  # fc.yahoo.com: the cookie page
    return 404, b"{}"  # fundamentals-timeseries (not recorded; fixtures/README.md answered it with 404 too)


@pytest.fixture
def yahoo_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[YahooServer]:
    state = YahooServer(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            parts = urlsplit(self.path)
            status, body = _yahoo_reply(state, parts.path, parse_qs(parts.query))
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json;charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    redirect_to(monkeypatch, state.port)
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def redirect_to(monkeypatch: pytest.MonkeyPatch, port: int) -> None:
    """Send every ``requests`` call for a Yahoo host to 127.0.0.1:``port``; refuse any other non-local host."""
    import requests
    import requests.adapters

    original = requests.adapters.HTTPAdapter.send

    def send(
        self: requests.adapters.HTTPAdapter, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        assert request.url is not None  # a prepared request has its URL
        parts = urlsplit(request.url)
        host = parts.hostname or ""
        if host == "yahoo.com" or host.endswith(".yahoo.com"):
            request.url = urlunsplit(("http", f"127.0.0.1:{port}", parts.path or "/", parts.query, ""))
        elif host not in ("127.0.0.1", "localhost"):
            raise requests.ConnectionError(f"the tests refuse a request to {host}")
        return original(self, request, **kwargs)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", send)


def av_symbols(av: LocalServer) -> list[str]:
    return [q.get("symbol", q.get("keywords", [""]))[0] for q in av.requests]


@pytest.fixture
def chain_settings(make_settings, av_server):
    def make(**overrides):
        values = dict(
            offline=False,
            alpha_vantage_api_key=AV_KEY,
            alpha_vantage_base_url=av_server.base_url,
            alpha_vantage_rate_limit="100/second",
            yahoo_rate_limit="100/second",
            yahoo_timeout_s=3.0,
            alpha_vantage_timeout_s=3.0,
            validation_deadline_s=20.0,
        )
        values.update(overrides)
        return make_settings(**values)

    return make


async def validate(settings, *symbols: str) -> dict[str, dict]:
    async with Client(build_server(settings)) as client:
        data = await Call(client).ok("validate_symbols", symbols=list(symbols))
    return {v["symbol"]: v for v in data["verdicts"]}


def test_production_wiring_builds_yahoo_then_alpha_vantage_then_the_catalog(chain_settings):
    chain = build_providers(chain_settings())
    assert [p.name for p in chain] == ["yahoo", "alpha_vantage", "catalog"]
    assert isinstance(chain[0], GuardedProvider) and isinstance(chain[0].inner, YahooProvider)
    assert isinstance(chain[1], GuardedProvider) and isinstance(chain[1].inner, AlphaVantageProvider)
    assert isinstance(chain[2], CatalogProvider)
    assert [p.name for p in build_providers(chain_settings(alpha_vantage_api_key=None))] == ["yahoo", "catalog"]
    assert [p.name for p in build_providers(chain_settings(offline=True))] == ["catalog"]


async def test_yahoo_answers_first_and_the_others_are_not_asked(chain_settings, yahoo_server, av_server):
    av_server.routes[("OVERVIEW", "AAPL")] = Reply(body=fixture_bytes("alpha_vantage", "overview_aapl.json"))
    verdicts = await validate(chain_settings(), "AAPL", "NO0010123060")
    aapl = verdicts["AAPL"]
    assert (aapl["status"], aapl["source"]) == ("valid", "yahoo")
    assert aapl["profile"]["name"] == "Apple Inc." and aapl["profile"]["industry"] == "Consumer Electronics"
    # Yahoo's "no such symbol" is an answer too: final, not a reason to ask Alpha Vantage.
    unknown = verdicts["NO0010123060"]
    assert (unknown["status"], unknown["source"]) == ("invalid", "yahoo")
    assert sorted(yahoo_server.searches) == ["AAPL", "NO0010123060"]
    assert av_server.requests == []


async def test_yahoo_down_falls_back_to_alpha_vantage_then_the_catalog(chain_settings, yahoo_server, av_server):
    yahoo_server.failing = {"AAPL", "MSFT"}
    av_server.routes[("OVERVIEW", "AAPL")] = Reply(body=fixture_bytes("alpha_vantage", "overview_aapl.json"))
    av_server.routes[("OVERVIEW", "MSFT")] = Reply(status=503, body=b"down", content_type="text/plain")
    verdicts = await validate(chain_settings(), "AAPL", "MSFT")
    assert (verdicts["AAPL"]["status"], verdicts["AAPL"]["source"]) == ("valid", "alpha_vantage")
    assert verdicts["AAPL"]["profile"]["name"] == "Apple Inc"  # Alpha Vantage's spelling, from its OVERVIEW body
    assert (verdicts["MSFT"]["status"], verdicts["MSFT"]["source"]) == ("valid", "catalog")
    assert verdicts["MSFT"]["as_of"]  # the catalog says how old its knowledge is
    assert set(yahoo_server.searches) == {"AAPL", "MSFT"}  # (yfinance itself retries a failed search once)
    assert sorted(av_symbols(av_server)) == ["AAPL", "MSFT"]


async def test_yahoo_unreachable_falls_back(chain_settings, av_server, monkeypatch, unused_port):
    redirect_to(monkeypatch, unused_port)  # connection refused
    av_server.routes[("OVERVIEW", "TSLA")] = Reply(body=fixture_bytes("alpha_vantage", "overview_tsla_2023.json"))
    verdicts = await validate(chain_settings(), "TSLA")
    assert (verdicts["TSLA"]["status"], verdicts["TSLA"]["source"]) == ("valid", "alpha_vantage")
    assert verdicts["TSLA"]["profile"]["name"] == "Tesla Inc"


async def test_a_rate_limited_yahoo_is_skipped_until_its_wait_is_over(chain_settings, yahoo_server, av_server):
    yahoo_server.rate_limited = True
    av_server.routes[("OVERVIEW", "AAPL")] = Reply(body=fixture_bytes("alpha_vantage", "overview_aapl.json"))
    av_server.routes[("OVERVIEW", "TSLA")] = Reply(body=fixture_bytes("alpha_vantage", "overview_tsla_2023.json"))
    async with Client(build_server(chain_settings())) as client:
        call = Call(client)
        first = (await call.ok("validate_symbols", symbols=["AAPL"]))["verdicts"][0]
        second = (await call.ok("validate_symbols", symbols=["TSLA"]))["verdicts"][0]
    assert (first["source"], second["source"]) == ("alpha_vantage", "alpha_vantage")
    assert set(yahoo_server.searches) == {"AAPL"}  # after the 429, Yahoo is not asked again during its cooldown


async def test_a_hanging_yahoo_costs_its_timeout_then_alpha_vantage_answers(
    chain_settings, black_hole, av_server, monkeypatch
):
    redirect_to(monkeypatch, black_hole[1])  # accepts the connection, never answers
    av_server.routes[("OVERVIEW", "AAPL")] = Reply(body=fixture_bytes("alpha_vantage", "overview_aapl.json"))
    verdicts = await validate(chain_settings(yahoo_timeout_s=0.3), "AAPL")
    assert (verdicts["AAPL"]["status"], verdicts["AAPL"]["source"]) == ("valid", "alpha_vantage")


async def test_the_deadline_leaves_unsettled_symbols_pending_never_invalid(
    chain_settings, black_hole, av_server, monkeypatch
):
    redirect_to(monkeypatch, black_hole[1])
    av_server.routes[("OVERVIEW", "ZZQQ")] = Reply(body=fixture_bytes("alpha_vantage", "overview_aapl.json"))
    # Yahoo would wait up to 5 s; the call's deadline is 0.5 s: nothing answers in time, not even the catalog.
    verdicts = await validate(chain_settings(yahoo_timeout_s=5.0, validation_deadline_s=0.5), "ZZQQ", "MSFT")
    for symbol in ("ZZQQ", "MSFT"):
        verdict = verdicts[symbol]
        assert verdict["status"] in ("pending", "valid") and verdict["status"] != "invalid"
    assert verdicts["ZZQQ"]["status"] == "pending"
    assert verdicts["ZZQQ"]["reason"] == "no provider answered within the deadline"
    assert av_server.requests == []  # the chain never got past the hanging Yahoo
    assert verdicts["MSFT"]["status"] == "valid" and verdicts["MSFT"]["stale"]  # the catalog's stored verdict, kept


async def test_coverage_each_symbol_settled_by_the_first_provider_that_can(chain_settings, yahoo_server, av_server):
    yahoo_server.failing = {"TSLA", "MSFT", "ZZQQ"}
    av_server.routes[("OVERVIEW", "TSLA")] = Reply(body=fixture_bytes("alpha_vantage", "overview_tsla_2023.json"))
    for symbol in ("MSFT", "ZZQQ"):
        av_server.routes[("OVERVIEW", symbol)] = Reply(status=503, body=b"down", content_type="text/plain")
    verdicts = await validate(chain_settings(), "AAPL", "TSLA", "MSFT", "ZZQQ")
    assert {s: (v["status"], v.get("source")) for s, v in verdicts.items()} == {
        "AAPL": ("valid", "yahoo"),
        "TSLA": ("valid", "alpha_vantage"),
        "MSFT": ("valid", "catalog"),
        "ZZQQ": ("pending", None),
    }
    # Every provider's answer, in chain order: the outages ahead of the catalog's miss are not lost.
    assert verdicts["ZZQQ"]["reason"].startswith(
        "no provider could answer (yahoo: Yahoo Finance search answered without a quotes list; "
        "alpha_vantage: Alpha Vantage answered HTTP 503; catalog: ZZQQ is not in the offline catalog"
    )
    assert set(yahoo_server.searches) == {"AAPL", "MSFT", "TSLA", "ZZQQ"}
    assert sorted(av_symbols(av_server)) == ["MSFT", "TSLA", "ZZQQ"]  # never AAPL: Yahoo had answered it


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
