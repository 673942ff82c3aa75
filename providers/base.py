"""The one interface every market-data provider implements, and the values they return.

Providers never raise anything but ``ProviderError`` subclasses: a caller can tell "the provider says this symbol
does not exist" (a ``Verdict`` with status ``invalid``) from "the provider could not answer" (an exception), and only
the first may ever be cached or shown as ``invalid``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal, Protocol, runtime_checkable

__all__ = [
    "network_failure",
    "AssetProfile",
    "MarketDataProvider",
    "ProviderCannotAnswer",
    "ProviderError",
    "ProviderMisconfigured",
    "ProviderRateLimited",
    "ProviderUnavailable",
    "Verdict",
]

ProviderName = Literal["yahoo", "alpha_vantage", "catalog", "fake"]


@dataclass(frozen=True, slots=True)
class AssetProfile:
    """What a provider knows about one listed security. Numbers are plain floats; dividend_yield is a fraction."""

    symbol: str
    name: str | None = None
    exchange: str | None = None
    asset_type: str | None = None  # equity | etf | index | currency | fund | crypto | other
    currency: str | None = None
    sector: str | None = None  # one of the 11 GICS sectors when the provider's sector maps onto one
    industry: str | None = None
    country: str | None = None
    market_cap: float | None = None
    pe_ratio: float | None = None
    dividend_yield: float | None = None
    isin: str | None = None
    figi: str | None = None
    cik: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A provider's answer about one symbol: it exists (with a profile) or it does not."""

    symbol: str
    status: Literal["valid", "invalid"]
    source: ProviderName
    profile: AssetProfile | None = None
    reason: str | None = None  # why invalid, in words a model can relay
    as_of: date | None = None  # for the offline catalog: the date its data describes


class ProviderError(Exception):
    """A provider could not answer. Never means the symbol is invalid; never cached."""

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.message = message


class ProviderUnavailable(ProviderError):
    """Network error, timeout, unexpected answer or open circuit.

    ``cause`` says which, in one word, for logs and metrics: ``dns_error``, ``timeout``, ``connection_refused``,
    ``circuit_open`` or ``unavailable`` (anything else)."""

    def __init__(self, provider: str, message: str, *, cause: str = "unavailable") -> None:
        super().__init__(provider, message)
        self.cause = cause


class ProviderCannotAnswer(ProviderUnavailable):
    """The provider works but does not cover this symbol (the offline catalog only lists index members), so asking
    it again soon will not help; only new data would. Never means the symbol is invalid.

    A ``ProviderUnavailable`` subclass, so code that treats every "could not answer" alike keeps working; bulk jobs
    tell it apart to record such a symbol ``pending`` at once instead of retrying it with backoff."""


class ProviderRateLimited(ProviderError):
    """The provider refused because of a rate limit or quota; try again after ``retry_after_s``."""

    def __init__(self, provider: str, message: str, retry_after_s: float) -> None:
        super().__init__(provider, message)
        self.retry_after_s = retry_after_s


class ProviderMisconfigured(ProviderError):
    """The provider rejected our configuration (e.g. a bad API key). Retrying will not help."""


@runtime_checkable
class MarketDataProvider(Protocol):
    """A source of symbol verdicts and search results."""

    name: ProviderName

    async def validate(self, symbol: str) -> Verdict:
        """Say whether ``symbol`` (already normalised, upper-case) is a listed security, with its profile if so.

        Raises ProviderError (or a subclass) when the provider cannot settle the question.
        """
        ...

    async def search(self, query: str, limit: int = 10) -> list[AssetProfile]:
        """Securities whose symbol or name matches ``query``, best first. Raises ProviderError."""
        ...

    async def aclose(self) -> None:
        """Release connections and threads."""
        ...


_DNS_TEXT = (
    "could not resolve host",
    "name or service not known",
    "temporary failure in name resolution",
    "nodename nor servname",
    "getaddrinfo failed",
    "no address associated with hostname",
)


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception it wraps (causes, contexts, urllib3's ``reason``, exceptions in ``args``)."""
    seen: list[BaseException] = []
    stack = [exc]
    while stack and len(seen) < 20:
        current = stack.pop()
        if any(current is s for s in seen):
            continue
        seen.append(current)
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        stack.extend(e for e in linked if isinstance(e, BaseException))
    return seen


def network_failure(provider: str, exc: BaseException) -> ProviderUnavailable:
    """The ``ProviderUnavailable`` for a request that got no HTTP answer, naming what went wrong.

    A DNS failure is said as such (curl_cffi reports it with a response whose status is 0, which used to be logged
    as "HTTP 0"). Only exception types and fixed words are used: library messages carry URLs with keys or crumbs.
    """
    import socket

    chain = _chain(exc)
    for e in chain:
        name = type(e).__name__
        is_curl = type(e).__module__.startswith("curl_cffi")
        if (
            isinstance(e, socket.gaierror)
            or name in ("DNSError", "NameResolutionError")
            or (is_curl and getattr(e, "code", None) == 6)  # CURLE_COULDNT_RESOLVE_HOST
            or any(t in str(e).lower() for t in _DNS_TEXT)
        ):
            return ProviderUnavailable(
                provider,
                "DNS lookup failed: the provider's host name did not resolve (no network, or a DNS problem)",
                cause="dns_error",
            )
    for e in chain:
        if isinstance(e, ConnectionRefusedError) or (
            type(e).__module__.startswith("curl_cffi") and getattr(e, "code", None) == 7
        ):
            return ProviderUnavailable(provider, "connection refused", cause="connection_refused")
    for e in chain:
        if isinstance(e, TimeoutError) or "Timeout" in type(e).__name__:
            return ProviderUnavailable(provider, f"request timed out ({type(exc).__name__})", cause="timeout")
    return ProviderUnavailable(provider, f"request failed ({type(exc).__name__})")
