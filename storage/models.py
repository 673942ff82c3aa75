"""SQLAlchemy models for every table (docs/ARCHITECTURE.md, "Data model"). SQL is built only in storage/repositories/."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    false,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.db import Base, UTCDateTime, utcnow

__all__ = [
    "ApiToken",
    "Asset",
    "AssetIndex",
    "AssetNameWord",
    "AssetSymbol",
    "ListingSync",
    "OwnerQuota",
    "RebalanceRun",
    "ServerSecret",
    "Universe",
    "UniverseAsset",
    "UniverseAssetEvent",
    "UniverseRulesVersion",
    "User",
    "ValidationJob",
    "ValidationJobItem",
]

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex; the token itself is never stored
    prefix: Mapped[str] = mapped_column(String(16))  # first characters, to recognise a token in `token list`
    scopes: Mapped[str] = mapped_column(String(200))  # space separated: read write validate
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Asset(Base):
    """A security. ``id`` is permanent: a ticker change updates ``symbol`` and adds an AssetSymbol row."""

    __tablename__ = "assets"
    __table_args__ = (
        # The current ticker is unique among listed assets; delisted ones may share an old ticker.
        Index(
            "uq_assets_symbol_listed",
            "symbol",
            unique=True,
            sqlite_where=text("listing_status = 'listed'"),
            postgresql_where=text("listing_status = 'listed'"),
        ),
        # Byte-wise operator class on PostgreSQL, so that ticker-prefix ranges (~>=~, ~<~) use it whatever the
        # database's collation; a plain index on SQLite, which compares bytes anyway (replaced ix_assets_symbol, 0003).
        Index("ix_assets_symbol_pattern", "symbol", postgresql_ops={"symbol": "varchar_pattern_ops"}),
        # ix_assets_sector became ix_assets_sector_market_cap (migration 0011, below the class).
        Index("ix_assets_validation_status", "validation_status"),
        Index("ix_assets_is_validated", "is_validated"),
        Index("ix_assets_name_lower", text("lower(name)")),
        # Search ranks by (length(symbol), symbol): walking this index finds the first page of a common name word
        # without sorting every match (storage/repositories/assets.py, migration 0003).
        Index("ix_assets_symbol_order", text("length(symbol)"), "symbol"),
        # The security master (services/security_master/store.py, migration 0009): an issuer's listings, what is
        # delisted, and the snapshot's id of each security, which matches a snapshot row to its asset on reload.
        Index("ix_assets_cik", "cik"),
        Index("uq_assets_master_key", "master_key", unique=True),
        CheckConstraint("validation_status IN ('valid', 'invalid', 'pending', 'unknown')", name="validation_status"),
        CheckConstraint("listing_status IN ('listed', 'delisted')", name="listing_status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    symbol: Mapped[str] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(300))
    exchange: Mapped[str | None] = mapped_column(String(64))
    asset_type: Mapped[str | None] = mapped_column(String(32))
    currency: Mapped[str | None] = mapped_column(String(8))
    sector: Mapped[str | None] = mapped_column(String(64))
    industry: Mapped[str | None] = mapped_column(String(128))
    country: Mapped[str | None] = mapped_column(String(64))
    market_cap: Mapped[float | None] = mapped_column(Float)
    pe_ratio: Mapped[float | None] = mapped_column(Float)
    dividend_yield: Mapped[float | None] = mapped_column(Float)  # a fraction: 0.0123 is 1.23 %
    is_validated: Mapped[bool] = mapped_column(Boolean, default=False)
    validation_status: Mapped[str] = mapped_column(String(16), default="unknown")
    validation_source: Mapped[str | None] = mapped_column(String(32))
    validation_reason: Mapped[str | None] = mapped_column(String(300))
    last_validated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    listing_status: Mapped[str] = mapped_column(String(16), default="listed")
    isin: Mapped[str | None] = mapped_column(String(12))
    figi: Mapped[str | None] = mapped_column(String(12))
    cik: Mapped[str | None] = mapped_column(String(10))  # the issuer's SEC id, 10 digits zero-padded
    # Security master fields (docs/SECURITY_MASTER.md): null for assets the master does not know.
    listed_on: Mapped[date | None] = mapped_column(Date)
    delisted_on: Mapped[date | None] = mapped_column(Date)
    ipo_year: Mapped[int | None] = mapped_column(Integer)
    source_sector: Mapped[str | None] = mapped_column(String(64))  # the source's own words (NASDAQ's taxonomy)
    source_industry: Mapped[str | None] = mapped_column(String(128))
    market_cap_as_of: Mapped[date | None] = mapped_column(Date)
    master_key: Mapped[str | None] = mapped_column(String(80))
    asset_metadata: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The owner whose unvalidated add created this asset; null once a provider or the catalog confirms it (and for
    # every asset that was confirmed when created). Only that owner (and owners holding it in a universe) see an
    # asset with an owner here: one tenant's made-up tickers never reach another tenant's searches.
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


# Screening (storage/repositories/screening.py, migration 0011): a screen's page is the largest securities first,
# so each common filter column leads an index that goes on in that order (market cap largest first, unknown caps
# last, then the ticker, exactly the ORDER BY): a page of one sector is read off the index, 50 rows, instead of
# sorting the 9,000 the sector holds; the plain market-cap index serves broad screens (``any`` of several) the same
# way. Each index also serves equality and IN on its column alone (what ix_assets_sector did), and the OR of such
# conditions. asset_type and exchange lead none: a handful of values cover every row, and without statistics SQLite
# would walk such an index through most of the table (migration 0010). SQLite writes DESC without NULLS LAST
# (storage/db.py strips it): there, descending order puts NULLs last anyway.
def _cap_order() -> tuple[Any, ...]:
    return (Asset.market_cap.desc().nulls_last(), Asset.symbol)


Index("ix_assets_market_cap", *_cap_order())
Index("ix_assets_sector_market_cap", Asset.sector, *_cap_order())
Index("ix_assets_country_market_cap", Asset.country, *_cap_order())
Index("ix_assets_industry_market_cap", Asset.industry, *_cap_order())
Index("ix_assets_ipo_year_market_cap", Asset.ipo_year.desc().nulls_last(), *_cap_order())


# PostgreSQL compares words byte-wise ("C"), so that a prefix is a plain index range whatever the database locale.
SearchWord = String(300).with_variant(String(300, collation="C"), "postgresql")


class AssetNameWord(Base):
    """Search index of asset names: each word of a name (what follows its start or a space), lower-cased.

    Maintained by storage/repositories/assets.py wherever names are written. Candidates only: search re-checks every
    match with its exact predicate, so words may over-approximate (several lower-casings are indexed). ``sector``,
    ``symbol`` and ``market_cap`` are copied from the asset, so that a search can count a sector's candidates and
    rank them from the index alone; ``starts_name`` marks the word a name starts with (in any of its lower-casings).
    """

    __tablename__ = "asset_name_words"
    __table_args__ = (
        Index("ix_asset_name_words_asset_id", "asset_id"),
        Index("ix_asset_name_words_word_sector", "word", "sector", "symbol", "asset_id"),
    )

    word: Mapped[str] = mapped_column(SearchWord, primary_key=True)
    asset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True)
    sector: Mapped[str | None] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(32))
    market_cap: Mapped[float | None] = mapped_column(Float)
    starts_name: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


# A filtered search (storage/repositories/screening.py, migration 0014) reads a word's assets largest first, the order
# it ranks them in, and stops once a page passes the filters: a word one asset in 60 carries is 1,700 assets to read
# and sort otherwise. sector, market_cap and starts_name ride along so that the walk tests them without the asset row.
Index(
    "ix_asset_name_words_word_market_cap",
    AssetNameWord.word,
    AssetNameWord.market_cap.desc().nulls_last(),
    AssetNameWord.symbol,
    AssetNameWord.asset_id,
    AssetNameWord.sector,
    AssetNameWord.starts_name,
)


class AssetSymbol(Base):
    """Ticker history: which symbol an asset traded under, and when (FB -> META)."""

    __tablename__ = "asset_symbols"
    __table_args__ = (
        Index("ix_asset_symbols_symbol", "symbol"),
        # A ticker at a date: symbol = ? and (valid_from is null or valid_from <= ?) and (valid_to is null or ...).
        Index("ix_asset_symbols_symbol_valid_from", "symbol", "valid_from"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    asset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    symbol: Mapped[str] = mapped_column(String(32))
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    # What dated the span's end (corporate_actions | alpha_vantage | snapshots | pytickersymbols); an inexact end is
    # the first snapshot that showed the change, which happened after ``changed_after``.
    source: Mapped[str | None] = mapped_column(String(32))
    exact: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    changed_after: Mapped[date | None] = mapped_column(Date)


class AssetIndex(Base):
    """Index membership of an asset (S&P 500, NASDAQ 100 ...), as of the source's data date."""

    __tablename__ = "asset_indices"
    __table_args__ = (Index("ix_asset_indices_index_name", "index_name"),)

    asset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True)
    index_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    as_of: Mapped[date | None] = mapped_column(Date)


class ListingSync(Base):
    """One row per listing source per sync (and per load of the shipped snapshot, source ``snapshot``)."""

    __tablename__ = "listing_syncs"
    __table_args__ = (
        Index("ix_listing_syncs_source_fetched_at", "source", "fetched_at"),
        CheckConstraint("status IN ('ok', 'failed', 'refused')", name="status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64))
    as_of: Mapped[date | None] = mapped_column(Date)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(16))
    rows: Mapped[int] = mapped_column(Integer, default=0)
    new: Mapped[int] = mapped_column(Integer, default=0)
    delisted: Mapped[int] = mapped_column(Integer, default=0)
    renamed: Mapped[int] = mapped_column(Integer, default=0)
    changed: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(500))
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    sha256: Mapped[str | None] = mapped_column(String(64))  # of the data applied (the snapshot's records)


class Universe(Base):
    __tablename__ = "universes"
    __table_args__ = (
        # Names are unique per owner regardless of case and surrounding space ("AI Leaders" == "ai leaders ").
        UniqueConstraint("owner_id", "name_key"),
        CheckConstraint("kind IN ('static', 'dynamic')", name="kind"),
        CheckConstraint("rebalance IN ('daily', 'weekly', 'monthly', 'quarterly')", name="rebalance"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16), default="static")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Dynamic universes (DESIGN §12, migration 0012): the checked rule tree, pins, the schedule and when it is due.
    rules: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # No Python-side default: the store's fills it, so inserting a universe names no column older stores lack.
    rules_version: Mapped[int] = mapped_column(Integer, server_default="0")
    include_symbols: Mapped[list[str] | None] = mapped_column(JSON)
    exclude_symbols: Mapped[list[str] | None] = mapped_column(JSON)
    rebalance: Mapped[str | None] = mapped_column(String(16))
    next_rebalance_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # The last scheduled or after-sync rebalance that could not be applied (when, which slot, the error's code and
    # message), until a rebalance succeeds (migration 0015): get_universe shows it, where a log line reaches no one.
    rebalance_failure: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class UniverseAsset(Base):
    __tablename__ = "universe_assets"
    # Unique: keyset pages are ordered by position, so two members sharing one would be skipped (migration 0008).
    __table_args__ = (Index("uq_universe_assets_universe_id_position", "universe_id", "position", unique=True),)

    universe_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("universes.id", ondelete="CASCADE"), primary_key=True)
    asset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True)
    # Denormalised from the universe so row-level security needs no join.
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    position: Mapped[int] = mapped_column(Integer)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UniverseAssetEvent(Base):
    """Membership history: what turnover and point-in-time queries read. A rename is not an event."""

    __tablename__ = "universe_asset_events"
    __table_args__ = (
        # History pages read (effective_at, id) newest first off this index (migration 0013).
        Index("ix_universe_asset_events_universe_id_effective_at_id", "universe_id", "effective_at", "id"),
        CheckConstraint("action IN ('added', 'removed')", name="action"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    universe_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("universes.id", ondelete="CASCADE"))
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    asset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(8))
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reason: Mapped[str | None] = mapped_column(String(300))
    run_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # the rebalance run that made the change, if one did


class RebalanceRun(Base):
    """One rebalance of a dynamic universe, applied (a scheduled, manual or post-sync run; also one that changed
    nothing). ``period`` is the schedule's slot ("2026-12", "2026-W49", "sync:42"): unique per universe, so two
    schedulers, a retry or a restart can never run one universe twice in one slot."""

    __tablename__ = "rebalance_runs"
    __table_args__ = (
        UniqueConstraint("universe_id", "period"),
        Index("ix_rebalance_runs_universe_id_started_at", "universe_id", "started_at"),
        CheckConstraint("trigger IN ('create', 'manual', 'scheduled', 'listings_sync')", name="trigger"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    universe_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("universes.id", ondelete="CASCADE"))
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    trigger: Mapped[str] = mapped_column(String(16))
    period: Mapped[str | None] = mapped_column(String(32))
    rules_version: Mapped[int] = mapped_column(Integer)
    data_as_of: Mapped[date | None] = mapped_column(Date)  # the security master's date the rules were run on
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)  # also the effective time of its events
    size_before: Mapped[int] = mapped_column(Integer)
    size_after: Mapped[int] = mapped_column(Integer)
    additions: Mapped[int] = mapped_column(Integer)
    removals: Mapped[int] = mapped_column(Integer)
    turnover: Mapped[float | None] = mapped_column(Float)  # one-way: min(additions, removals) / average size


class UniverseRulesVersion(Base):
    """Every version of a dynamic universe's definition (rules, pins, schedule): a change of rules is history too."""

    __tablename__ = "universe_rules_versions"

    universe_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("universes.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    kind: Mapped[str] = mapped_column(String(16))
    rules: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    include_symbols: Mapped[list[str] | None] = mapped_column(JSON)
    exclude_symbols: Mapped[list[str] | None] = mapped_column(JSON)
    rebalance: Mapped[str | None] = mapped_column(String(16))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    change: Mapped[str] = mapped_column(String(300))  # what changed, in words ("rules, rebalance")


class ValidationJob(Base):
    __tablename__ = "validation_jobs"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'completed', 'failed', 'cancelled')", name="status"),
        Index("ix_validation_jobs_owner_id_created_at", "owner_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    universe_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("universes.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    force_refresh: Mapped[bool] = mapped_column(Boolean, default=False)
    total: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    valid_count: Mapped[int] = mapped_column(Integer, default=0)
    invalid_count: Mapped[int] = mapped_column(Integer, default=0)
    pending_count: Mapped[int] = mapped_column(Integer, default=0)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    # Times the remaining symbols were queued again with no progress in between (workers/batches.py watch).
    resumes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    message: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ValidationJobItem(Base):
    """One symbol's outcome in a job, keyed by (job, symbol) so a redelivered batch cannot count twice."""

    __tablename__ = "validation_job_items"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'valid', 'invalid', 'pending', 'error', 'cancelled')", name="status"),
        Index("ix_validation_job_items_job_id_position", "job_id", "position"),
    )

    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("validation_jobs.id", ondelete="CASCADE"), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    position: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    source: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(300))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OwnerQuota(Base):
    """Per-owner quota bookkeeping (services/quotas.py): the owner's lock row, and new unconfirmed assets counted
    in fixed one-hour windows. One row per owner, created on first use."""

    __tablename__ = "owner_quotas"

    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    new_assets_window_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    new_assets_used: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ServerSecret(Base):
    """Deployment-wide secrets every replica reads from the store it shares (e.g. the key that signs cursors)."""

    __tablename__ = "server_secrets"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
