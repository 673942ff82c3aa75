"""A request that got no HTTP answer is named for what went wrong: a DNS failure is "DNS lookup failed", not the
"HTTP 0" curl_cffi's empty response used to produce. No test touches the network: the failures are built here."""

from __future__ import annotations

import logging
import socket

import httpx
import pytest
from curl_cffi.requests.exceptions import ConnectionError as CurlConnectionError
from curl_cffi.requests.exceptions import DNSError
from prometheus_client import REGISTRY

from providers.alpha_vantage import AlphaVantageProvider
from providers.base import ProviderUnavailable, Verdict, network_failure
from providers.yahoo import _map_exception
from services.validation import ValidationService
from storage.cache import MemoryCache

pytestmark = pytest.mark.anyio


class _EmptyResponse:
    status_code = 0  # what curl_cffi attaches to a request that never got an answer


def test_curl_dns_error_with_status_0_is_a_dns_failure_for_yahoo():
    exc = DNSError("Failed to perform, curl: (6) Could not resolve host: query2.finance.yahoo.com", 6, _EmptyResponse())
    mapped = _map_exception(exc)
    assert isinstance(mapped, ProviderUnavailable) and mapped.cause == "dns_error"
    assert "DNS lookup failed" in mapped.message and "HTTP 0" not in mapped.message
    assert "yahoo.com" not in mapped.message  # no URL from the library's text


def test_other_connection_failures_are_not_called_http_0():
    refused = _map_exception(CurlConnectionError("curl: (7) Failed to connect", 7, _EmptyResponse()))
    assert refused.cause == "connection_refused" and "HTTP" not in refused.message

    class Answered(Exception):
        response = type("R", (), {"status_code": 503})()

    assert _map_exception(Answered()).message == "Yahoo Finance answered HTTP 503"


def test_dns_failures_are_found_wherever_the_library_wraps_them():
    # requests/urllib3 wrap socket.gaierror in NameResolutionError inside MaxRetryError.reason inside args[0].
    gai = socket.gaierror(-2, "Name or service not known")

    class MaxRetryError(Exception):
        def __init__(self, reason: BaseException) -> None:
            super().__init__("max retries")
            self.reason = reason

    wrapped = ConnectionError(MaxRetryError(gai))
    assert network_failure("yahoo", wrapped).cause == "dns_error"
    assert network_failure("yahoo", TimeoutError()).cause == "timeout"
    assert network_failure("yahoo", ValueError("boom")).cause == "unavailable"


async def test_alpha_vantage_dns_failure_is_logged_as_such(caplog):
    def resolve_fails(request: httpx.Request) -> httpx.Response:
        try:
            raise socket.gaierror(-2, "Name or service not known")
        except socket.gaierror as exc:
            raise httpx.ConnectError("[Errno -2] Name or service not known", request=request) from exc

    client = httpx.AsyncClient(transport=httpx.MockTransport(resolve_fails))
    provider = AlphaVantageProvider("SECRETKEY123", base_url="http://alpha.invalid/query", client=client)
    caplog.set_level(logging.WARNING, logger="providers.alpha_vantage")
    try:
        with pytest.raises(ProviderUnavailable) as raised:
            await provider.validate("AAPL")
    finally:
        await provider.aclose()
    assert raised.value.cause == "dns_error"
    assert any("DNS lookup failed" in r.getMessage() for r in caplog.records)
    assert "SECRETKEY123" not in caplog.text


async def test_provider_outcomes_are_counted_by_cause():
    class Unresolvable:
        name = "yahoo"

        async def validate(self, symbol: str) -> Verdict:
            raise network_failure(self.name, socket.gaierror(-2, "Name or service not known"))

        async def search(self, query: str, limit: int = 10) -> list:
            return []

        async def aclose(self) -> None:
            pass

    labels = {"provider": "yahoo", "outcome": "dns_error"}
    before = REGISTRY.get_sample_value("universe_mcp_provider_calls_total", labels) or 0.0
    service = ValidationService(cache=MemoryCache(), providers=[Unresolvable()])
    answers = await service._ask_providers(["AAPL", "MSFT"], budget_s=5)
    assert all(isinstance(a, list) for a in answers.values())
    assert REGISTRY.get_sample_value("universe_mcp_provider_calls_total", labels) == before + 2
