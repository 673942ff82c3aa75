"""Domain shapes returned by services; the tool layer wraps them in the result envelope."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, field_validator, model_serializer

__all__ = [
    "AssetInfo",
    "AssetHit",
    "ScreenPage",
    "Caller",
    "DelistedMember",
    "DynamicDefinition",
    "RebalanceChange",
    "RebalanceResult",
    "RebalanceRunInfo",
    "MembershipReport",
    "SymbolOutcome",
    "UniverseDetail",
    "UniverseMember",
    "UniversePage",
    "UniverseSummary",
    "SymbolVerdict",
    "ValidationStatus",
]

ValidationStatus = Literal["valid", "invalid", "pending", "unknown"]
Outcome = Literal["added", "already_present", "rejected", "removed", "not_present"]
ALL_SCOPES = frozenset({"read", "write", "validate"})


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: every service call is scoped to ``owner_id``."""

    owner_id: UUID
    name: str
    scopes: frozenset[str] = field(default_factory=lambda: ALL_SCOPES)


class _Model(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class UniverseSummary(_Model):
    id: str = Field(description="Universe id (UUID).")
    name: str
    description: str | None = None
    kind: Literal["static", "dynamic"] = "static"
    asset_count: int = Field(description="Current number of member assets.")
    created_at: datetime
    updated_at: datetime


class AssetInfo(_Model):
    symbol: str = Field(description="Current ticker.")
    name: str | None = None
    exchange: str | None = None
    asset_type: str | None = None
    currency: str | None = None
    sector: str | None = Field(None, description="One of the 11 GICS sectors, when known.")
    industry: str | None = None
    country: str | None = None
    market_cap: float | None = None
    pe_ratio: float | None = None
    dividend_yield: float | None = Field(None, description="A fraction: 0.0123 means 1.23 %.")
    validation_status: ValidationStatus
    validation_source: str | None = Field(
        None, description="listings (the security master) | yahoo | alpha_vantage | catalog, when validated."
    )
    last_validated_at: datetime | None = None
    listing_status: Literal["listed", "delisted"] = "listed"
    delisted_on: date | None = Field(None, description="For a delisted security: the day it stopped trading.")


# Security names as the listing files write them carry the share's description ("Apple Inc. - Common Stock"):
# a result list drops the common-share boilerplate, which says nothing a model can use and costs a page 1-2 KB.
_SHARE_BOILERPLATE = re.compile(
    r"\s*-?\s*(?:Class [A-Z] )?(?:Common Stock|Common Shares|Ordinary Shares)(?:,? (?:par value|\$).*)?$",
    re.IGNORECASE,
)


class AssetHit(_Model):
    """One security a search or a screen found: the compact fields (get_asset has the rest). Unknown fields are
    left out rather than sent as null, listing_status only appears for a delisted security and validation_status
    only when it is not valid."""

    symbol: str
    name: str | None = None
    asset_type: str | None = None
    exchange: str | None = None
    sector: str | None = None
    industry: str | None = None
    country: str | None = None
    market_cap: float | None = Field(None, description="US dollars, as of the listings data.")
    ipo_year: int | None = None
    listing_status: Literal["listed", "delisted"] = Field("listed", description="Left out when listed.")
    validation_status: ValidationStatus = Field(
        "valid", description="Left out when valid; pending, unknown or invalid are shown (check those first)."
    )
    source: str | None = Field(
        None,
        description="Where an online search found it (yahoo, alpha_vantage) when the server's store had too few "
        "matches; left out for the store's own securities.",
    )

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str | None) -> str | None:
        if name is None:
            return None
        return _SHARE_BOILERPLATE.sub("", name) or name

    @model_serializer(mode="wrap")
    def _compact(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        cap = data.get("market_cap")
        if isinstance(cap, float) and cap.is_integer():
            data["market_cap"] = int(cap)  # 28890822815, not 28890822815.0: two bytes a row of a 12 KB page
        # The usual values are left out too, as defaults a model reads from the schema: a page of 50 hits is mostly
        # listed, valid securities, and saying so 50 times cost ~1.3 KB of the 12 KB a page may take (issue 13).
        return {k: v for k, v in data.items() if v is not None and _DEFAULTS.get(k) != v}


_DEFAULTS = {"listing_status": "listed", "validation_status": "valid"}


class ScreenPage(BaseModel):
    total: int = Field(
        description="How many securities match the rules in all (this page is part of them), counted up to 1,000: "
        "when total_capped is true, more than that match."
    )
    total_capped: bool = Field(
        False, description="True when more securities match than total says (the count stops at 1,000)."
    )
    assets: list[AssetHit]
    rules: dict[str, Any] = Field(
        description="The rules as applied: checked and normalised (sector and other names in their stored spelling)."
    )
    sort_by: str
    data_as_of: date | None = Field(None, description="The date of the listings data the screen ran on.")
    next_cursor: str | None = Field(None, description="Pass as cursor (with the same rules) for the next page.")


class UniverseMember(AssetInfo):
    position: int | None = Field(None, description="Order of the asset in the universe (0-based, gaps allowed).")
    added_at: datetime | None = None
    former_symbol: str | None = Field(
        None, description="The security's previous ticker, when it was renamed (symbol is the ticker today)."
    )
    renamed_on: date | None = Field(None, description="When the ticker changed from former_symbol (or by when).")


class DelistedMember(BaseModel):
    symbol: str
    delisted_on: date | None = None
    reason: str | None = None


class UniversePage(BaseModel):
    universes: list[UniverseSummary]
    next_cursor: str | None = Field(None, description="Pass as cursor to get the next page; null on the last page.")


class UniverseDetail(BaseModel):
    universe: UniverseSummary
    counts_by_status: dict[str, int] = Field(description="Member assets per validation status.")
    assets: list[UniverseMember] | None = Field(None, description="Members in position order (null when not asked).")
    next_cursor: str | None = None
    as_of: datetime | None = Field(None, description="Set when the membership shown is as it was at this time.")
    delisted_members: list[DelistedMember] = Field(
        default_factory=list,
        description="Members whose security is delisted (up to 20; a static universe keeps them, a dynamic one drops "
        "them at its next rebalance): review them.",
    )
    definition: DynamicDefinition | None = Field(
        None, description="For a dynamic universe: its rules, pins, schedule, next and last rebalance."
    )


class RebalanceRunInfo(_Model):
    id: str
    trigger: Literal["create", "manual", "scheduled", "listings_sync"]
    period: str | None = Field(None, description="Schedule slot (2026-12, 2026-W49).")
    rules_version: int
    data_as_of: date | None = Field(None, description="Security-master data date.")
    started_at: datetime
    size_before: int
    size_after: int
    additions: int
    removals: int
    turnover: float | None = Field(None, description="min(additions, removals) / average size.")

    @field_validator("id", mode="before")
    @classmethod
    def _id_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, UUID) else value


class RebalanceFailure(BaseModel):
    """A scheduled or after-sync rebalance that could not be applied; the universe kept its members."""

    at: datetime
    trigger: Literal["scheduled", "listings_sync"]
    period: str | None = Field(None, description="The slot it was for (2026-W49, sync:42).")
    code: str = Field(description="The error's code (limit_exceeded, conflict, ...).")
    message: str


class DynamicDefinition(BaseModel):
    """What makes a universe dynamic: the rules it is rebalanced to, its pins and its schedule."""

    rules: dict[str, Any] = Field(description="As screen_assets takes them.")
    rules_version: int
    rebalance: Literal["daily", "weekly", "monthly", "quarterly"] | None = Field(
        None, description="null: only by rebalance_universe."
    )
    include: list[str] = Field(default_factory=list, description="Pinned in.")
    exclude: list[str] = Field(default_factory=list, description="Pinned out.")
    next_rebalance_at: datetime | None = None
    last_run: RebalanceRunInfo | None = None
    last_failure: RebalanceFailure | None = Field(
        None, description="The last scheduled rebalance that failed, until one succeeds."
    )


class RebalanceChange(BaseModel):
    symbol: str
    name: str | None = None
    reason: str


class RebalanceResult(BaseModel):
    universe: UniverseSummary
    dry_run: bool
    run: RebalanceRunInfo | None = Field(None, description="The applied run; null for a dry run.")
    rules_version: int
    data_as_of: date | None = Field(None, description="Security-master data date.")
    size_before: int
    size_after: int
    additions: list[RebalanceChange] = Field(description="Joining, largest first (the first ones).")
    removals: list[RebalanceChange] = Field(description="Leaving (the first ones).")
    addition_count: int
    removal_count: int
    unchanged: int
    one_way_turnover: float | None = None
    truncated: bool = Field(False, description="Not every change listed; all in report_uri.")
    report_uri: str | None = None
    concurrent: bool = Field(False, description="Another call's run, made meanwhile, is returned.")
    warnings: list[str] = Field(default_factory=list)


class SymbolOutcome(BaseModel):
    symbol: str
    outcome: Outcome = Field(
        description="added | already_present | rejected (see reason) | removed | not_present (was not a member)."
    )
    validation_status: ValidationStatus | None = None
    source: str | None = Field(None, description="Who settled the validation: yahoo | alpha_vantage | catalog | cache.")
    reason: str | None = None
    candidates: list[str] = Field(default_factory=list, description="Similar known symbols, for rejected ones.")


class MembershipReport(BaseModel):
    results: list[SymbolOutcome] = Field(
        description="Per-symbol outcomes in input order; in a tool's answer, when they do not all fit, the first "
        "ones that need attention (rejected, pending ...) and truncated is true."
    )
    counts: dict[str, int] = Field(description="How many symbols had each outcome (all of them).")
    asset_count: int = Field(description="Members after the change.")
    truncated: bool = Field(False, description="True when results lists only some of the symbols.")
    report_uri: str | None = Field(None, description="When truncated: the resource with every symbol's outcome.")

    @classmethod
    def build(cls, results: list[SymbolOutcome], asset_count: int) -> MembershipReport:
        counts: dict[str, int] = {}
        for r in results:
            counts[r.outcome] = counts.get(r.outcome, 0) + 1
        return cls(results=results, counts=counts, asset_count=asset_count)


class SymbolVerdict(BaseModel):
    """The validation verdict on one symbol. Fields that do not apply (null, or no candidates) are left out."""

    symbol: str
    status: ValidationStatus = Field(
        description="valid (listed, or a provider knows it) | invalid (delisted, renamed, or a provider said it does "
        "not exist) | pending (no source could answer yet; re-checked in the background)."
    )
    source: str | None = Field(
        None, description="listings (the security master) | yahoo | alpha_vantage | catalog: who gave the verdict."
    )
    reason: str | None = None
    checked_at: datetime | None = Field(
        None, description="When the verdict was made (for listings and the catalog: their data date)."
    )
    as_of: date | None = Field(None, description="For listings and catalog verdicts: the date their data describes.")
    cached: bool = Field(False, description="True when answered from the verdict cache.")
    stale: bool = Field(False, description="True when an older stored verdict is shown because no provider answered.")
    retry_after_s: float | None = Field(None, description="For pending symbols held up by a provider's rate limit.")
    profile: dict[str, str | float | int | None] | None = Field(
        None,
        description="Name, exchange, currency, sector, industry, market_cap, pe_ratio, dividend_yield ... when valid; "
        "for a delisted or renamed ticker (source listings), the security's, under its last or current symbol.",
    )
    candidates: list[str] = Field(
        default_factory=list, description="Symbols you may have meant (never this one), for invalid and pending ones."
    )
    listing_status: Literal["listed", "delisted", "renamed"] | None = Field(
        None,
        description="What the security master (US listings, source `listings`) says: listed, delisted (see "
        "delisted_on), or renamed (this ticker moved: use renamed_to). Left out when it does not know the symbol.",
    )
    renamed_to: str | None = Field(None, description="For a former ticker: the security's ticker today.")
    delisted_on: date | None = Field(None, description="For a delisted security: the day it stopped trading.")
    current_symbol: str | None = Field(
        None, description="For a delisted security that traded under another ticker last: that ticker."
    )

    @model_serializer(mode="wrap")
    def _compact(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Half of a verdict's fields apply only to some verdicts (a reason, a delisting, candidates ...). Sent as
        # nulls they cost a model tokens and every client a check against the output schema per field: a cached
        # one-symbol validate_symbols spent 10 % more instructions end to end with them (bench scenario 1).
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if v is not None and v != []}

    @classmethod
    def unknown(cls, symbol: str) -> SymbolVerdict:
        """The verdict of a symbol nobody was asked about (added with validate=false)."""
        return cls(symbol=symbol, status="unknown")
