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
    """Network error, timeout, unexpected answer or open circuit."""


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
