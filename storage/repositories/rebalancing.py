"""Dynamic universes: the rules' result, the facts that explain a change, rebalance runs and definition versions.

Plain functions over a synchronous session: a rebalance computes and applies its changes inside one write unit
(storage.db.run_write), under the universe's lock, and a dry run calls the same functions through
``AsyncSession.run_sync``, so both read the same thing the same way.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from storage.db import rowcount
from storage.models import Asset, AssetIndex, RebalanceRun, Universe, UniverseRulesVersion
from storage.repositories.screening import Rule, order_by, screen_where

__all__ = [
    "asset_facts",
    "due_universes",
    "insert_run",
    "latest_run",
    "pinned_assets",
    "postpone_rebalance",
    "record_version",
    "run_for_period",
    "scheduled_universes",
    "set_next_rebalance",
    "target",
]

# What explains a change: the fields rules can name (services/rule_explain.py reads them).
_FACT_COLUMNS = (
    Asset.id,
    Asset.symbol,
    Asset.name,
    Asset.asset_type,
    Asset.exchange,
    Asset.sector,
    Asset.industry,
    Asset.country,
    Asset.market_cap,
    Asset.ipo_year,
    Asset.listing_status,
    Asset.delisted_on,
    Asset.validation_status,
)


def target(
    session: Session, rule: Rule, *, viewer: uuid.UUID, listed_only: bool, limit: int
) -> list[tuple[uuid.UUID, str]]:
    """(asset id, symbol) of the securities the rules select, largest market cap first, at most ``limit`` (one
    statement: the same predicate ``screen_assets`` runs)."""
    rows = session.execute(
        select(Asset.id, Asset.symbol)
        .where(*screen_where(rule, listed_only=listed_only, viewer=viewer))
        .order_by(*order_by("market_cap"))
        .limit(limit)
    )
    return [(asset_id, symbol) for asset_id, symbol in rows.all()]


def pinned_assets(session: Session, symbols: Sequence[str]) -> dict[str, uuid.UUID]:
    """Ticker -> asset id for pinned symbols (listed first: a ticker reused after a delisting means the listed one)."""
    if not symbols:
        return {}
    rows = session.execute(
        select(Asset.symbol, Asset.id)
        .where(Asset.symbol.in_(list(symbols)))
        .order_by(Asset.symbol, (Asset.listing_status == "listed").desc(), Asset.id)
    )
    found: dict[str, uuid.UUID] = {}
    for symbol, asset_id in rows.all():
        found.setdefault(symbol, asset_id)
    return found


def asset_facts(session: Session, asset_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    """The rule fields of each asset (plus ``index``: the set of its index names), to say why it changed."""
    facts: dict[uuid.UUID, dict[str, Any]] = {}
    ids = list(asset_ids)
    for start in range(0, len(ids), 500):  # SQLite caps bound parameters per statement
        chunk = ids[start : start + 500]
        for row in session.execute(select(*_FACT_COLUMNS).where(Asset.id.in_(chunk))).mappings():
            facts[row["id"]] = {**row, "index": set()}
        for asset_id, index_name in session.execute(
            select(AssetIndex.asset_id, AssetIndex.index_name).where(AssetIndex.asset_id.in_(chunk))
        ).all():
            facts[asset_id]["index"].add(index_name)
    return facts


def latest_run(session: Session, universe_id: uuid.UUID) -> RebalanceRun | None:
    return session.scalar(
        select(RebalanceRun)
        .where(RebalanceRun.universe_id == universe_id)
        .order_by(RebalanceRun.started_at.desc(), RebalanceRun.id.desc())
        .limit(1)
    )


def run_for_period(session: Session, universe_id: uuid.UUID, period: str) -> RebalanceRun | None:
    return session.scalar(
        select(RebalanceRun).where(RebalanceRun.universe_id == universe_id, RebalanceRun.period == period)
    )


def insert_run(session: Session, run: RebalanceRun) -> None:
    session.add(run)
    session.flush()


def set_next_rebalance(session: Session, universe_id: uuid.UUID, at: datetime | None) -> None:
    session.execute(update(Universe).where(Universe.id == universe_id).values(next_rebalance_at=at))


def record_version(session: Session, universe: Universe, *, change: str, at: datetime) -> None:
    """Store the universe's definition as it now is, as version ``universe.rules_version``."""
    session.add(
        UniverseRulesVersion(
            universe_id=universe.id,
            version=universe.rules_version,
            owner_id=universe.owner_id,
            kind=universe.kind,
            rules=universe.rules,
            include_symbols=universe.include_symbols,
            exclude_symbols=universe.exclude_symbols,
            rebalance=universe.rebalance,
            changed_at=at,
            change=change[:300],
        )
    )
    session.flush()


def due_universes(session: Session, now: datetime, *, limit: int) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(universe id, owner id) of dynamic universes whose scheduled rebalance is due, the longest-waiting first.

    Across owners: only a role row-level security does not apply to (the scheduler's) sees them all."""
    rows = session.execute(
        select(Universe.id, Universe.owner_id)
        .where(
            Universe.kind == "dynamic",
            Universe.rebalance.is_not(None),
            Universe.next_rebalance_at.is_not(None),
            Universe.next_rebalance_at <= now,
        )
        .order_by(Universe.next_rebalance_at, Universe.id)
        .limit(limit)
    )
    return [(universe_id, owner_id) for universe_id, owner_id in rows.all()]


def scheduled_universes(session: Session) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(universe id, owner id) of every dynamic universe with a schedule: what a listings sync is followed by."""
    rows = session.execute(
        select(Universe.id, Universe.owner_id)
        .where(Universe.kind == "dynamic", Universe.rebalance.is_not(None))
        .order_by(Universe.id)
    )
    return [(universe_id, owner_id) for universe_id, owner_id in rows.all()]


def note_rebalance_failure(session: Session, universe_id: uuid.UUID, failure: dict[str, Any]) -> None:
    """Keep ``failure`` as the universe's last failed rebalance (shown by get_universe until one succeeds)."""
    session.execute(
        update(Universe)
        .where(Universe.id == universe_id)
        .values(rebalance_failure=failure, updated_at=Universe.updated_at)  # the universe itself did not change
    )


def postpone_rebalance(session: Session, universe_id: uuid.UUID, due_by: datetime, until: datetime) -> bool:
    """Move a universe's next scheduled rebalance to ``until`` if it is still due by ``due_by`` (a scheduled run
    that cannot succeed as the universe stands is not tried again within its period); False when it was not."""
    result = session.execute(
        update(Universe)
        .where(Universe.id == universe_id, Universe.next_rebalance_at <= due_by)
        .values(next_rebalance_at=until, updated_at=Universe.updated_at)  # the universe itself did not change
    )
    return rowcount(result) > 0
