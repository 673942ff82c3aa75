"""The one interface every listing source implements, the rows they return, and the error they raise.

A listing source answers one question — "what does this source list, as of when?" — with a ``SourceBatch``: parsed
rows plus the date the source's data describes (its own footer date where it states one, the day of the request
where it does not). Sources never merge, diff or store anything; that is the security master's work
(``services/security_master``), which is why every row here is a plain value.

Failures are ``ListingSourceError`` (a ``ProviderError``: providers let nothing else escape) with a reason a person
can act on ("answered HTML instead of the symbol directory", "header lacks 'ETF'", "no answer within 20 s").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Generic, Literal, Protocol, TypeVar, runtime_checkable

from providers.base import ProviderError

__all__ = [
    "AssetType",
    "ListingRow",
    "ListingSource",
    "ListingSourceError",
    "SourceBatch",
    "SourceName",
]

SourceName = Literal[
    "nasdaq_trader",
    "nasdaq_screener",
    "sec",
    "alpha_vantage_listing_status",
    "pytickersymbols",
    "corporate_actions",
]
AssetType = Literal["stock", "etf", "fund", "adr", "preferred", "warrant", "unit", "right", "index", "other"]
RowT = TypeVar("RowT", covariant=True)


class ListingSourceError(ProviderError):
    """A listing source could not be fetched or its answer could not be trusted. ``reason`` says why, readably."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(source, reason)
        self.source = source
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ListingRow:
    """One security as one source lists it. ``symbol`` is canonical (``providers.listings.symbols``); the source's
    own spelling is kept in ``raw_symbol``. Fields a source does not carry are None."""

    symbol: str
    raw_symbol: str
    name: str | None = None  # the source's security name, trimmed ("Apple Inc. - Common Stock")
    exchange: str | None = None  # NASDAQ | NYSE | NYSE American | NYSE Arca | Cboe BZX | IEX | NYSE Texas | OTC | ...
    asset_type: AssetType | None = None
    is_etf: bool | None = None
    cik: int | None = None
    source_sector: str | None = None  # the source's own words, trimmed
    source_industry: str | None = None
    country: str | None = None
    market_cap: float | None = None  # None for the source's "0.00" placeholders and blanks
    ipo_year: int | None = None
    listed_on: date | None = None
    delisted_on: date | None = None
    status: Literal["active", "delisted"] | None = None
    indices: tuple[str, ...] = ()
    extra: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SourceBatch(Generic[RowT]):
    """Everything one fetch of one source returned.

    ``as_of`` is the date the data describes; ``created_at`` the source's own timestamp where it states one (the
    symbol directory's footer). ``dropped`` counts rows the parser left out on purpose (test issues), by reason.
    """

    source: SourceName
    as_of: date
    rows: tuple[RowT, ...]
    created_at: datetime | None = None
    dropped: Mapping[str, int] = field(default_factory=dict)
    detail: Mapping[str, object] = field(default_factory=dict)


@runtime_checkable
class ListingSource(Protocol[RowT]):
    """A source of listings: fetch -> parsed rows + the source's as_of. Raises ``ListingSourceError`` only."""

    name: SourceName

    async def fetch(self) -> SourceBatch[RowT]:
        """Fetch and parse the source's current data, all or nothing."""
        ...
