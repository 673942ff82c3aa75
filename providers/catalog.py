"""The offline catalog: index constituents shipped inside the ``pytickersymbols`` package.

It answers without a network, so it is the last resort of the validation chain and the whole of ``offline`` mode.
Its limits are part of its contract: it only knows the members of ~20 large indices (about 3,400 Yahoo symbols),
and its data is as old as the package. So a symbol it knows is ``valid`` (labelled ``source="catalog"`` with the
data's date in ``as_of``), and a symbol it does not know raises ``ProviderCannotAnswer`` (a ``ProviderUnavailable``
that retrying will not cure): absence from a list of index members is no proof that a security does not exist, and
``invalid`` must always mean "a provider said so".

The data is read once per process, on first use (never at import: importing the package's 1.9 MB data module
takes a noticeable fraction of a second).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import anyio

from core.memory import release_freed_memory
from providers.base import AssetProfile, ProviderCannotAnswer, ProviderName, Verdict
from providers.sectors import GICS_SECTORS, sector_from_industries

__all__ = ["CatalogProvider", "catalog_as_of"]

# Google Finance exchange prefixes ("NASDAQ:AAPL") and Yahoo suffixes ("SAP.F") -> an exchange name.
_GOOGLE_EXCHANGES = {
    "NASDAQ": "NASDAQ",
    "NYSE": "NYSE",
    "OTCMKTS": "OTC Markets",
    "FRA": "Frankfurt",
    "ETR": "XETRA",
    "LON": "London",
    "TYO": "Tokyo",
    "AMS": "Amsterdam",
    "BME": "Madrid",
    "STO": "Stockholm",
    "EBR": "Brussels",
    "HEL": "Helsinki",
    "EPA": "Paris",
    "MCX": "Moscow",
    "SWX": "SIX Swiss",
    "BIT": "Milan",
}
_YAHOO_SUFFIXES = {
    "F": "Frankfurt",
    "DE": "XETRA",
    "L": "London",
    "T": "Tokyo",
    "AS": "Amsterdam",
    "MC": "Madrid",
    "ST": "Stockholm",
    "BR": "Brussels",
    "HE": "Helsinki",
    "PA": "Paris",
    "ME": "Moscow",
    "SW": "SIX Swiss",
    "MI": "Milan",
}
_SUFFIX_CURRENCIES = {
    "F": "EUR",
    "DE": "EUR",
    "L": "GBP",
    "T": "JPY",
    "AS": "EUR",
    "MC": "EUR",
    "ST": "SEK",
    "BR": "EUR",
    "HE": "EUR",
    "PA": "EUR",
    "ME": "RUB",
    "SW": "CHF",
    "MI": "EUR",
}
# pytickersymbols' "country" is often a headquarters ("Cupertino, California"); these states mean United States.
_US_STATES = frozenset(
    "alabama alaska arizona arkansas california colorado connecticut delaware florida georgia hawaii idaho illinois "
    "indiana iowa kansas kentucky louisiana maine maryland massachusetts michigan minnesota mississippi missouri "
    "montana nebraska nevada ohio oklahoma oregon pennsylvania tennessee texas utah vermont virginia washington "
    "wisconsin wyoming d.c.".split()
) | {
    "new hampshire",
    "new jersey",
    "new mexico",
    "new york",
    "north carolina",
    "north dakota",
    "rhode island",
    "south carolina",
    "south dakota",
    "west virginia",
    "puerto rico",
}
# Wikipedia renders a founding date as "1991-09-21 ... 34 years ago": date + years is a lower bound of the day the
# page was read, which is the best evidence of the data's age that the package carries.
_YEARS_AGO = re.compile(r"(\d{1,3})\s+years?\s+ago\s*\(\s*(\d{4})-(\d{2})-(\d{2})\s*\)")
_WORDS = re.compile(r"[a-z0-9]+")


@dataclass(slots=True)
class _Catalog:
    profiles: dict[str, AssetProfile]
    as_of: date
    as_of_basis: str
    ordered: list[str] = field(default_factory=list)  # symbols sorted, for prefix search
    name_words: dict[str, tuple[str, ...]] = field(default_factory=dict)


_LOCK = threading.Lock()
_CATALOG: _Catalog | None = None


def _country(raw: Any) -> str | None:
    if not isinstance(raw, str) or not raw.strip() or raw.strip().lower() == "none":
        return None
    last = raw.split(";")[0].split(",")[-1].strip()
    if last.lower() in _US_STATES:
        return "United States"
    return last or None


def _exchange(yahoo: str, google: str | None) -> str | None:
    if google and ":" in google:
        return _GOOGLE_EXCHANGES.get(google.split(":", 1)[0])
    if "." in yahoo:
        return _YAHOO_SUFFIXES.get(yahoo.rsplit(".", 1)[1])
    return None


def _industry(industries: list[str]) -> str | None:
    # The first label that is not itself a sector name is the most specific one the data offers.
    sector_names = {name.lower() for name in GICS_SECTORS}
    for label in industries:
        if label and label.strip().lower() not in sector_names and "," not in label:
            return label.strip()
    return None


def _data_date(indices: dict[str, Any]) -> tuple[date, str]:
    found: date | None = None
    for index in indices.values():
        for company in index.get("companies") or []:
            founded = str((company.get("metadata") or {}).get("founded") or "")
            for years, year, month, day in _YEARS_AGO.findall(founded):
                try:
                    seen = date(int(year) + int(years), int(month), int(day))
                except ValueError:  # 29 February in a non-leap year
                    seen = date(int(year) + int(years), int(month), 28)
                found = seen if found is None or seen > found else found
    today = datetime.now(UTC).date()
    if found is not None:
        return min(found, today), "read date of the package's Wikipedia data (founding date + 'N years ago')"
    try:  # no evidence in the data: the day the package was installed is an upper bound of its age
        dist = metadata.distribution("pytickersymbols")
        installed = Path(str(dist.locate_file(f"pytickersymbols-{dist.version}.dist-info/METADATA")))
        return datetime.fromtimestamp(installed.stat().st_mtime, UTC).date(), "install date of pytickersymbols"
    except (OSError, metadata.PackageNotFoundError):
        return today, "unknown (today)"


def _build() -> _Catalog:
    from pytickersymbols import PyTickerSymbols  # imported here: the data module is large
    from pytickersymbols.indices_data import INDICES

    source = PyTickerSymbols()
    members: dict[str, list[str]] = {}
    rows: dict[str, dict[str, Any]] = {}
    for index_name in source.get_all_indices():
        index_symbol = source.index_to_yahoo_symbol(index_name)
        if index_symbol:
            rows.setdefault(index_symbol.upper(), {"index": index_name})
        for company in source.get_stocks_by_index(index_name):
            for listing in company.get("symbols") or []:
                yahoo = (listing.get("yahoo") or "").strip().upper()
                if not yahoo or yahoo == "-":
                    continue
                rows.setdefault(yahoo, {"company": company, "listing": listing})
                members.setdefault(yahoo, [])
                if index_name not in members[yahoo]:
                    members[yahoo].append(index_name)
            # The company's own "symbol" is often its home listing in Yahoo form (SAP.DE, ABN.AS) without a
            # matching "symbols" entry; keep it when its suffix is a Yahoo exchange suffix ("BRK.B" is not).
            primary = str(company.get("symbol") or "").strip().upper()
            if "." in primary and primary.rsplit(".", 1)[1] in _YAHOO_SUFFIXES and primary not in rows:
                currency = _SUFFIX_CURRENCIES.get(primary.rsplit(".", 1)[1])
                rows[primary] = {"company": company, "listing": {"yahoo": primary, "currency": currency}}
                members.setdefault(primary, [])
            if primary in members and index_name not in members[primary]:
                members[primary].append(index_name)

    profiles: dict[str, AssetProfile] = {}
    for symbol, row in rows.items():
        if "index" in row:
            profiles[symbol] = AssetProfile(symbol=symbol, name=row["index"], asset_type="index")
            continue
        company, listing = row["company"], row["listing"]
        industries = [label for label in company.get("industries") or [] if isinstance(label, str)]
        isins = company.get("isins") or []
        profiles[symbol] = AssetProfile(
            symbol=symbol,
            name=company.get("name"),
            exchange=_exchange(symbol, listing.get("google")),
            asset_type="equity",
            currency=listing.get("currency") or None,
            sector=sector_from_industries(industries),
            industry=_industry(industries),
            country=_country(company.get("country")),
            isin=isins[0] if isins else None,
            extra={"indices": members.get(symbol, []), "primary_symbol": company.get("symbol")},
        )
    as_of, basis = _data_date(INDICES)
    ordered = sorted(profiles)
    name_words = {sym: tuple(_WORDS.findall((p.name or "").lower())) for sym, p in profiles.items()}
    return _Catalog(profiles=profiles, as_of=as_of, as_of_basis=basis, ordered=ordered, name_words=name_words)


def _catalog() -> _Catalog:
    global _CATALOG
    if _CATALOG is None:
        with _LOCK:
            if _CATALOG is None:
                _CATALOG = _build()
                # Importing pytickersymbols' data module and walking it peaks ~120 MB for ~7 MB kept: give the
                # rest back once (core/memory.py).
                release_freed_memory()
    return _CATALOG


def catalog_as_of() -> date:
    """The date the offline data describes (loads the catalog if needed)."""
    return _catalog().as_of


class CatalogProvider:
    """Validation and search against the offline catalog. Never touches the network.

    ``validate`` says ``valid`` for a known symbol and raises ``ProviderCannotAnswer`` for any other: the catalog
    knowing nothing about a symbol does not mean it does not exist.
    """

    name: ProviderName = "catalog"

    @property
    def as_of(self) -> date:
        """The date the catalog's data describes; see ``as_of_basis`` for how it was derived."""
        return _catalog().as_of

    @property
    def as_of_basis(self) -> str:
        return _catalog().as_of_basis

    def entries(self) -> list[AssetProfile]:
        """Every symbol in the catalog, sorted by symbol."""
        catalog = _catalog()
        return [catalog.profiles[symbol] for symbol in catalog.ordered]

    def get(self, symbol: str) -> AssetProfile | None:
        """The catalog's profile of ``symbol`` (case-insensitive), or None."""
        return _catalog().profiles.get(symbol.strip().upper())

    async def _ensure_loaded(self) -> _Catalog:
        if _CATALOG is not None:
            return _CATALOG
        # The first load parses a large module; do it off the event loop.
        return await anyio.to_thread.run_sync(_catalog)

    async def validate(self, symbol: str) -> Verdict:
        catalog = await self._ensure_loaded()
        key = symbol.strip().upper()
        profile = catalog.profiles.get(key)
        if profile is None:
            raise ProviderCannotAnswer(
                self.name, f"{key} is not in the offline catalog (which only lists index members)"
            )
        return Verdict(symbol=key, status="valid", source=self.name, profile=profile, as_of=catalog.as_of)

    async def search(self, query: str, limit: int = 10) -> list[AssetProfile]:
        catalog = await self._ensure_loaded()
        return _search(catalog, query, limit)

    async def aclose(self) -> None:
        return None


def _search(catalog: _Catalog, query: str, limit: int) -> list[AssetProfile]:
    """Rank: exact symbol, symbol prefix (shorter first), all query words prefixing name words, name substring."""
    text = query.strip()
    if not text or limit <= 0:
        return []
    upper, lower = text.upper(), text.lower()
    words = _WORDS.findall(lower)
    scored: list[tuple[int, int, str]] = []
    for symbol in catalog.ordered:
        profile = catalog.profiles[symbol]
        if symbol == upper:
            rank = 0
        elif symbol.startswith(upper):
            rank = 1
        elif words and all(any(w.startswith(q) for w in catalog.name_words[symbol]) for q in words):
            rank = 2
        elif lower in (profile.name or "").lower():
            rank = 3
        else:
            continue
        scored.append((rank, len(symbol), symbol))
    scored.sort()
    return [catalog.profiles[symbol] for _, _, symbol in scored[:limit]]
