"""The security master's values: a security (one listing's identity and attributes) and its symbol history.

These are plain frozen values, shared by the history builder, the shipped snapshot and the resolver, and shaped so
that phase 2 maps them one to one onto the store (storage/models.py): ``Security`` -> an ``assets`` row (``key`` is only the
snapshot's own id; the store's permanent id is its UUID), ``SymbolSpan`` -> ``asset_symbols`` rows, ``indices`` ->
``asset_indices`` rows.

Dates: ``valid_from`` is the first day a symbol belonged to the security, ``valid_to`` the first day it no longer
did (exclusive); None means "before our data" and "still", respectively. A boundary is exact when a cited corporate
action or a source's own date gives it (``exact=True``), and otherwise the first snapshot that showed the change —
then the change happened after ``changed_after`` (the last snapshot that still showed the old state).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

__all__ = ["ListingStatus", "Security", "SymbolSpan"]

ListingStatus = Literal["listed", "delisted"]
DateBasis = Literal["corporate_actions", "alpha_vantage", "snapshots", "pytickersymbols"]


@dataclass(frozen=True, slots=True)
class SymbolSpan:
    """One symbol one security used, for [valid_from, valid_to)."""

    symbol: str
    valid_from: date | None
    valid_to: date | None
    source: DateBasis  # what dated the *end* of the span (or its start, for the current span)
    exact: bool = True
    changed_after: date | None = None  # for a bounded (not exact) end: the last day the old symbol was seen

    def contains(self, when: date) -> bool:
        return (self.valid_from is None or self.valid_from <= when) and (self.valid_to is None or when < self.valid_to)


@dataclass(frozen=True, slots=True)
class Security:
    """One security (a listing of one issuer's share class, ETF, preferred, warrant …) with its history."""

    key: str  # unique within a snapshot, deterministic for the same inputs (not the store's permanent id)
    symbol: str  # current canonical symbol, or the last one for a delisted security
    name: str  # the security name as the most recent source states it
    asset_type: str
    listing_status: ListingStatus
    issuer: str | None = None  # the issuer's name where a source separates it (directory " - " names, SEC)
    exchange: str | None = None
    listed_on: date | None = None
    listed_on_source: DateBasis | None = None
    delisted_on: date | None = None
    delisted_on_source: DateBasis | None = None
    delisted_after: date | None = None  # last day seen listed, when delisted_on is bounded by snapshots
    last_seen: date | None = None
    cik: int | None = None
    isin: str | None = None
    country: str | None = None
    sector: str | None = None  # one of the 11 GICS sectors
    sector_source: str | None = None  # override | nasdaq_industry | pytickersymbols
    industry: str | None = None
    source_sector: str | None = None
    source_industry: str | None = None
    market_cap: float | None = None
    market_cap_as_of: date | None = None
    ipo_year: int | None = None
    indices: tuple[str, ...] = ()
    symbols: tuple[SymbolSpan, ...] = ()
    sources: tuple[str, ...] = ()
    region: Literal["us", "foreign", "index"] = "us"

    @property
    def is_listed(self) -> bool:
        return self.listing_status == "listed"

    def listed_at(self, when: date) -> bool:
        """Whether the security was listed on ``when`` (as far as the data shows)."""
        if self.listed_on is not None and when < self.listed_on:
            return False
        return self.delisted_on is None or when < self.delisted_on
