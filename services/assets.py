"""Asset lookups: search (store, which holds the offline catalog; online providers when it has too little), one
asset, and sectors with counts."""

from __future__ import annotations

import difflib
import re
import uuid
from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from providers.catalog import CatalogProvider
from providers.sectors import GICS_SECTORS, to_gics_sector
from services import quotas, screening
from services.errors import InvalidArgument, InvalidSymbol, LimitExceeded, NotFound
from services.online_search import Found, OnlineSearch
from services.pagination import decode_cursor, encode_cursor, invalid_cursor
from services.schemas import AssetHit, AssetInfo
from services.security_master.resolver import Resolution
from services.symbols import normalise_symbol, symbol_problem
from services.validation import PROFILE_FIELDS, ValidationService
from storage.repositories import assets as repo
from storage.repositories import listings as listings_repo
from storage.repositories import screening as screening_repo

__all__ = [
    "AssetLookup",
    "AssetService",
    "IndustryCount",
    "SearchPage",
    "SectorCount",
    "resolve_sector",
    "seed_catalog",
]

MAX_SEARCH_OFFSET = 1_000
_WORD = re.compile(r"[a-z0-9&]+")
_ISIN = re.compile(r"[A-Z]{2}[A-Z0-9]{9}[0-9]")
_FIGI = re.compile(r"BBG[A-Z0-9]{9}")
_CIK = re.compile(r"(?:CIK)?0*([0-9]{1,10})")


def _identifier(text: str) -> tuple[str, str] | None:
    """(kind, value) when ``text`` is an ISIN, a FIGI or a CIK (digits only, with or without CIK and zeros)."""
    upper = text.upper().replace(" ", "")
    if _ISIN.fullmatch(upper) and not upper.isalpha():
        return "isin", upper
    if _FIGI.fullmatch(upper):
        return "figi", upper
    cik = _CIK.fullmatch(upper)
    if cik and (upper.startswith("CIK") or len(upper) >= 6):  # short digit strings are tickers' prefixes too
        return "cik", cik.group(1).zfill(10)
    return None


class AssetLookup(BaseModel):
    asset: AssetInfo
    former_symbol: str | None = None
    note: str | None = None
    as_of: date | None = None


class SearchPage(BaseModel):
    assets: list[AssetHit]
    next_cursor: str | None = Field(None, description="Pass as cursor for more results; null when there are no more.")
    sector: str | None = Field(None, description="The GICS sector the results were filtered by (after correction).")
    filters: dict[str, Any] = Field(
        default_factory=dict, description="The filters as applied (names in their stored spelling)."
    )
    matched_by: Literal["isin", "cik", "figi"] | None = Field(
        None, description="Set when the query was an identifier, found exactly."
    )


class IndustryCount(BaseModel):
    industry: str
    asset_count: int


class SectorCount(BaseModel):
    sector: str
    asset_count: int = Field(description="Known listed assets in this sector.")
    industries: list[IndustryCount] = Field(
        default_factory=list,
        description="The listing sources' industries filed under this sector, most assets first: values for "
        "screen_assets' industry field.",
    )


def resolve_sector(text: str) -> str:
    """A GICS sector name from what the caller typed (case, aliases like 'Technology'), or invalid_argument."""
    exact = {s.casefold(): s for s in GICS_SECTORS}
    if text.strip().casefold() in exact:
        return exact[text.strip().casefold()]
    mapped = to_gics_sector(text)
    if mapped is not None:
        return mapped
    guesses = difflib.get_close_matches(text.strip().title(), GICS_SECTORS, n=3, cutoff=0.4)
    raise InvalidArgument(
        f"{text[:60]!r} is not a sector." + (f" Did you mean {guesses[0]!r}?" if guesses else ""),
        hint="Sectors are the 11 GICS sectors; list_sectors shows them with counts.",
        candidates=guesses or list(GICS_SECTORS),
        next_actions=[("list_sectors", {}, "see the valid sector names")],
    )


async def seed_catalog(session: AsyncSession, catalog: CatalogProvider) -> int:
    """Load the offline catalog into the store once, so search covers it. Returns rows inserted."""
    if await repo.catalog_seeded(session):
        return 0
    # In the canonical spelling (BRK-B is BRK.B), so that a ticker the security master already holds is skipped.
    entries = {normalise_symbol(e.symbol): e for e in catalog.entries()}
    existing = await listings_repo.listed_symbols_among(session, list(entries))
    # A ticker the security master has ever seen is its to answer for (an old catalog may list a delisted one).
    existing.update(await listings_repo.holders(session, list(entries)))
    validated_at = datetime.combine(catalog.as_of, datetime.min.time(), tzinfo=UTC)
    rows = [
        {
            **{k: getattr(e, k) for k in PROFILE_FIELDS},
            "symbol": symbol,
            "validation_status": "valid",
            "is_validated": True,
            "validation_source": "catalog",
            "last_validated_at": validated_at,
            "listing_status": "listed",
            "asset_metadata": {"catalog_as_of": catalog.as_of.isoformat()},
            "created_at": validated_at,
            "updated_at": validated_at,
        }
        for symbol, e in entries.items()
        if symbol not in existing
    ]
    await repo.insert_assets_bulk(session, rows)
    return len(rows)


def _pending_row(found: Found) -> dict[str, Any]:
    """The unconfirmed asset a provider's search hit becomes (validation confirms it later)."""
    profile = found.profile
    return {
        **{k: getattr(profile, k) for k in PROFILE_FIELDS if getattr(profile, k) is not None},
        "symbol": found.symbol,
        "validation_status": "pending",
        "validation_reason": f"found by a {found.source} search; not validated yet",
        "asset_metadata": {"found_by": found.source},
    }


def _provider_hit(found: Found) -> AssetHit:
    profile = found.profile
    return AssetHit(
        symbol=found.symbol,
        name=profile.name,
        asset_type=profile.asset_type,
        exchange=profile.exchange,
        sector=profile.sector,
        industry=profile.industry,
        country=profile.country,
        market_cap=profile.market_cap,
        validation_status="pending",
        source=found.source,
    )


class AssetService:
    """Asset reads for one caller (``viewer``): another owner's unconfirmed assets are not there for it
    (storage/models.py, Asset.created_by). ``viewer`` None sees confirmed assets only."""

    def __init__(
        self,
        session: AsyncSession,
        validation: ValidationService | None,
        *,
        page_size_max: int = 200,
        viewer: uuid.UUID | None = None,
        online: OnlineSearch | None = None,
    ) -> None:
        self.session = session
        self.validation = validation
        self.page_size_max = page_size_max
        self.viewer = viewer
        self.online = online

    async def search(
        self,
        query: str | None,
        *,
        sector: str | None = None,
        asset_type: str | None = None,
        industry: str | None = None,
        country: str | None = None,
        exchange: str | None = None,
        index: str | None = None,
        min_market_cap: float | None = None,
        max_market_cap: float | None = None,
        include_delisted: bool = False,
        limit: int = 20,
        cursor: str | None = None,
    ) -> SearchPage:
        """Ranked text search, exact identifier lookups, and filters (each combinable, each usable alone)."""
        text = (query or "").strip()
        wanted = {
            "asset_type": asset_type,
            "industry": industry,
            "country": country,
            "exchange": exchange,
            "index": index,
            "min_market_cap": min_market_cap,
            "max_market_cap": max_market_cap,
        }
        filters = {k: v for k, v in wanted.items() if v is not None}
        # A cursor is checked first: a forged or foreign one is named as such whatever else is missing.
        offset = decode_cursor("search", cursor) if cursor else 0
        if type(offset) is not int or not 0 <= offset <= MAX_SEARCH_OFFSET:
            raise invalid_cursor()
        if not text and not filters and not sector:
            raise InvalidArgument(
                "Give a query or at least one filter.",
                hint='Search by ticker prefix ("NVD"), company name words ("nvidia"), an ISIN or CIK, or filter by '
                "sector, industry, country, exchange, index, asset_type or market cap (screen_assets combines more).",
            )
        if not 1 <= limit <= self.page_size_max:
            raise InvalidArgument(f"limit must be between 1 and {self.page_size_max}; got {limit}.")
        identifier = _identifier(text)
        if identifier is not None:
            kind, value = identifier
            found = await screening_repo.asset_by_identifier(self.session, **{kind: value})
            if found:
                return SearchPage(assets=[AssetHit.model_validate(a) for a in found[:limit]], matched_by=kind)
        symbol_prefix = normalise_symbol(text) if text and symbol_problem(normalise_symbol(text)) is None else None
        words = _WORD.findall(text.casefold())[:6]
        if text and not words and not symbol_prefix:
            raise InvalidArgument(
                f"{text[:40]!r} holds no letters or digits to search for.",
                hint='Search by ticker prefix ("NVD") or company name words ("nvidia").',
            )
        if not filters and not include_delisted and text:
            page = await self._search_text(text, symbol_prefix, words, sector, offset, limit)
            # Online only for a plain name query on its first page: a provider's hit carries no reliable sector,
            # country or market cap, so it could not be held to a filter.
            if self.online is not None and words and not sector and offset == 0 and len(page.assets) < limit:
                page = await self._with_online(page, text, limit)
            return page
        return await self._search_filtered(text, symbol_prefix, words, sector, filters, include_delisted, offset, limit)

    async def _search_text(
        self, text: str, symbol_prefix: str | None, words: list[str], sector: str | None, offset: int, limit: int
    ) -> SearchPage:
        """A query, perhaps a sector: the word-index route (storage/repositories/asset_search.py), fast at any size."""
        gics = resolve_sector(sector) if sector else None
        rows = await repo.search_assets(
            self.session,
            symbol_prefix=symbol_prefix,
            name_words=words,
            sector=gics,
            offset=offset,
            limit=limit + 1,
            viewer=self.viewer,
        )
        more = len(rows) > limit and offset + limit < MAX_SEARCH_OFFSET
        return SearchPage(
            assets=[AssetHit.model_validate(a) for a in rows[:limit]],
            next_cursor=encode_cursor("search", offset + limit) if more else None,
            sector=gics,
            filters={"sector": gics} if gics else {},
        )

    async def _with_online(self, page: SearchPage, text: str, limit: int) -> SearchPage:
        """``page`` topped up with what the providers found (store hits first, one row per canonical symbol).

        A symbol the security master has ever seen is its to answer for: a listed one is shown as the store has it,
        a delisted or renamed one is left out. A new one is kept as an unconfirmed asset of the caller (``pending``,
        visible to it alone until validated, counted against its hourly quota); past the quota it is shown, not
        kept. Another owner's unconfirmed asset is shown as the provider describes it, never as stored.
        """
        assert self.online is not None
        have = {a.symbol for a in page.assets}
        fresh = [f for f in await self.online.find(text, limit) if f.symbol not in have][: limit - len(page.assets)]
        if not fresh:
            return page
        symbols = [f.symbol for f in fresh]
        stored = await repo.get_assets_by_symbols(self.session, symbols)
        visible = await repo.get_assets_by_symbols(self.session, symbols, viewer=self.viewer, visible_only=True)
        mastered = await listings_repo.holders(self.session, symbols)
        new = [f for f in fresh if f.symbol not in stored and f.symbol not in mastered]
        if new and self.viewer is not None:
            try:
                for created in await quotas.create_assets(
                    self.session, [_pending_row(f) for f in new], owner_id=self.viewer, quotas=self.online.quotas
                ):
                    if created.created_by == self.viewer:
                        visible[created.symbol] = created
            except LimitExceeded:
                pass  # nothing was written (services/quotas.py): the hits are shown, not kept
        hits = list(page.assets)
        for f in fresh:
            row = visible.get(f.symbol)
            if row is not None:
                hits.append(AssetHit.model_validate(row).model_copy(update={"source": f.source}))
            elif f.symbol not in mastered:
                hits.append(_provider_hit(f))
        return page.model_copy(update={"assets": hits})

    async def _search_filtered(
        self,
        text: str,
        symbol_prefix: str | None,
        words: list[str],
        sector: str | None,
        filters: dict[str, Any],
        include_delisted: bool,
        offset: int,
        limit: int,
    ) -> SearchPage:
        """Filters (and perhaps a query): the screening predicate (services/screening.py), ranked by the query, then
        by market cap."""
        low, high = filters.get("min_market_cap"), filters.get("max_market_cap")
        if low is not None and high is not None and low > high:
            raise InvalidArgument(f"min_market_cap ({low:g}) is above max_market_cap ({high:g}).")
        fields = {"min_market_cap": ("market_cap", "gte"), "max_market_cap": ("market_cap", "lte")}
        # industry is matched in part ("semiconductor" finds "Semiconductors"); the others are names to resolve.
        ops = {"industry": "contains"}
        conditions = [("sector", {"field": "sector", "op": "eq", "value": sector})] if sector else []
        for argument, value in filters.items():
            field, op = fields.get(argument, (argument, ops.get(argument, "eq")))
            conditions.append((argument, {"field": field, "op": op, "value": value}))
        tree, expansions = await screening.check_filters(self.session, conditions) if conditions else ({}, {})
        rows = await screening_repo.search_screened(
            self.session,
            screening.compiled(tree, expansions) if conditions else screening_repo.AllOf(()),
            symbol_prefix=symbol_prefix,
            words=words,
            phrase=text.casefold(),
            industries=await screening.industries_matching(self.session, words) if words else [],
            offset=offset,
            limit=limit + 1,
            listed_only=not include_delisted,
            viewer=self.viewer,
        )
        more = len(rows) > limit and offset + limit < MAX_SEARCH_OFFSET
        applied = {
            argument: condition["value"]
            for (argument, _), condition in zip(conditions, tree.get("all", []), strict=True)
        }
        return SearchPage(
            assets=[AssetHit.model_validate(a) for a in rows[:limit]],
            next_cursor=encode_cursor("search", offset + limit) if more else None,
            sector=applied.get("sector"),
            filters=applied | ({"include_delisted": True} if include_delisted else {}),
        )

    async def get(self, raw_symbol: str, as_of: date | None = None) -> AssetLookup:
        """The asset for a ticker (validated on demand when unknown); with ``as_of``, the security that held the
        ticker on that day (the security master's history: FB in 2021 is Meta Platforms, today an ETF)."""
        symbol = normalise_symbol(raw_symbol)
        if (problem := symbol_problem(symbol)) is not None:
            raise InvalidArgument(
                f"{raw_symbol[:40]!r} is not a ticker ({problem}).",
                hint="Use search_assets to find a ticker by company name.",
            )
        if as_of is not None and as_of > datetime.now(UTC).date():
            raise InvalidArgument(f"as_of {as_of.isoformat()} is in the future.", hint="Leave it out for today.")
        if self.validation is not None:
            resolution = await self.validation.resolve(self.session, symbol, as_of)
            if resolution is not None:
                return await self._from_master(symbol, resolution)
        asset, former = await self._get_current(symbol)
        note = None
        if as_of is not None:
            note = f"no ticker history is known for {symbol}: this is the security that uses it today"
        return AssetLookup(asset=asset, former_symbol=former, note=note)

    async def _from_master(self, symbol: str, resolution: Resolution) -> AssetLookup:
        if resolution.security is None:  # a date on which no security used the ticker
            raise NotFound(
                resolution.reason + ".",
                hint="Leave as_of out for the security that uses the ticker today.",
                candidates=list(resolution.candidates),
            )
        asset = await listings_repo.asset_by_master_key(self.session, resolution.security.key)
        if asset is None:
            raise NotFound(f"{symbol} is not in the store any more.", hint="Run `universe-mcp listings sync`.")
        former = symbol if asset.symbol != symbol else None
        note = resolution.reason
        if resolution.status == "renamed" and resolution.as_of is None:
            note = f"{resolution.reason}; shown under its ticker today, {asset.symbol}"
        return AssetLookup(
            asset=AssetInfo.model_validate(asset), former_symbol=former, note=note, as_of=resolution.as_of
        )

    async def _get_current(self, symbol: str) -> tuple[AssetInfo, str | None]:
        found = await repo.get_assets_by_symbols(self.session, [symbol], viewer=self.viewer, visible_only=True)
        asset = found.get(symbol)
        if asset is None:
            former = await repo.asset_by_past_symbol(self.session, symbol)
            if former is not None:
                return AssetInfo.model_validate(former), symbol
        if (asset is None or asset.validation_status in ("unknown", "pending")) and self.validation is not None:
            verdict = (await self.validation.validate(self.session, [symbol], owner_id=self.viewer))[0]
            if verdict.status == "invalid":
                raise InvalidSymbol(
                    f"{symbol} is not a listed security ({verdict.source} says: {verdict.reason or 'not found'}).",
                    hint="Check the ticker; search_assets finds tickers by company name.",
                    candidates=verdict.candidates,
                    next_actions=[("search_assets", {"query": symbol[:4]}, "look for similar tickers")],
                )
            found = await repo.get_assets_by_symbols(self.session, [symbol], viewer=self.viewer, visible_only=True)
            asset = found.get(symbol)
        if asset is None:
            raise NotFound(
                f"{symbol} is not known yet and could not be validated now.",
                hint="Try validate_symbols later, or search_assets by name.",
                next_actions=[("validate_symbols", {"symbols": [symbol]}, "try validating it again")],
            )
        return AssetInfo.model_validate(asset), None

    async def sectors(self) -> list[SectorCount]:
        counts = await repo.sector_counts(self.session)
        totals: dict[str, int] = {}
        industries: dict[str, list[IndustryCount]] = {}
        for (sector, industry), n in counts.items():
            if sector is None:
                continue
            totals[sector] = totals.get(sector, 0) + n
            if industry:
                industries.setdefault(sector, []).append(IndustryCount(industry=industry, asset_count=n))
        return [
            SectorCount(
                sector=s,
                asset_count=totals.get(s, 0),
                industries=sorted(industries.get(s, []), key=lambda i: (-i.asset_count, i.industry)),
            )
            for s in GICS_SECTORS
        ]
