"""Index membership (S&P 500, NASDAQ 100, DOW JONES, …) and non-US index members, from pytickersymbols.

The data is the offline catalog's (``providers.catalog``: read once per process from the installed package), so the
two never disagree. What the security master takes from it, and what it does not:
- membership of the US indices (``US_INDICES``) for US listings, matched by canonical symbol;
- members of the non-US indices that carry a Yahoo exchange suffix (``SAP.DE``, ``VNX.F``), as foreign listings;
- index symbols themselves (``^GSPC``);
- a GICS sector only as a last resort, for a US listing no other source classifies (its industry labels are
  free text of mixed quality: it files AMD under Industrials);
- never the name of a US listing (it calls the NYSE's ``STM`` "STABILUS SE").
"""

from __future__ import annotations

import anyio

from providers.catalog import CatalogProvider, catalog_as_of
from providers.listings.base import ListingRow, SourceBatch, SourceName
from providers.listings.symbols import parse_symbol

__all__ = ["US_INDICES", "IndexMembershipSource", "index_membership_batch"]

SOURCE: SourceName = "pytickersymbols"
US_INDICES = frozenset({"S&P 500", "NASDAQ 100", "DOW JONES", "S&P 100", "S&P 600"})


def index_membership_batch() -> SourceBatch[ListingRow]:
    """Every catalog entry as a row: canonical symbol, Yahoo spelling, indices, and the catalog's own attributes."""
    rows: list[ListingRow] = []
    for profile in CatalogProvider().entries():
        parsed = parse_symbol(profile.symbol, "yahoo")
        listed_in = profile.extra.get("indices")  # the catalog's list of index names (providers/catalog.py)
        indices = tuple(sorted(str(i) for i in listed_in)) if isinstance(listed_in, list) else ()
        is_index = profile.asset_type == "index"
        rows.append(
            ListingRow(
                symbol=parsed.canonical,
                raw_symbol=profile.symbol,
                name=profile.name,
                exchange=profile.exchange,
                asset_type="index" if is_index else "stock",
                country=profile.country,
                source_industry=profile.industry,
                indices=indices,
                extra={"gics_sector": profile.sector, "isin": profile.isin, "currency": profile.currency},
            )
        )
    rows.sort(key=lambda row: row.symbol)
    return SourceBatch(source=SOURCE, as_of=catalog_as_of(), rows=tuple(rows))


class IndexMembershipSource:
    """The catalog's index membership as a listing source (no network; the first read runs in a thread)."""

    name: SourceName = SOURCE

    async def fetch(self) -> SourceBatch[ListingRow]:
        return await anyio.to_thread.run_sync(index_membership_batch)
