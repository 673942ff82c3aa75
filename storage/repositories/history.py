"""A universe's recorded history: its membership events page by page, the events of a window, its rebalance runs.

Events are ordered by (effective_at, id): the time a change took effect, then the order it was written in. Pages
are read newest first off ``ix_universe_asset_events_universe_id_effective_at_id`` (migration 0013) and continue
after the last (effective_at, id) of the previous page (keyset pagination), so a page costs the same however deep.
The caller has already checked that the universe is the caller's (services/history.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, literal, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from storage.db import UTCDateTime
from storage.models import (
    Asset,
    AssetSymbol,
    RebalanceRun,
    Universe,
    UniverseAsset,
    UniverseAssetEvent,
    UniverseRulesVersion,
)

__all__ = [
    "EventRow",
    "UniverseHeader",
    "add_dated_members",
    "asset_histories",
    "definitions_between",
    "events_in_window",
    "event_page",
    "first_event_at",
    "record_dated_events",
    "runs_between",
    "universe_header",
]

E = UniverseAssetEvent


@dataclass(frozen=True, slots=True)
class EventRow:
    id: int
    effective_at: datetime
    recorded_at: datetime
    symbol: str
    action: str
    reason: str | None
    run_id: uuid.UUID | None
    symbol_then: str | None = None  # the ticker at effective_at when it was another (FB before META's rename)


def _at(value: datetime) -> ColumnElement[datetime]:
    """A time as a bound value of the events' own type (SQLite compares the stored text form)."""
    return literal(value, UTCDateTime())


@dataclass(frozen=True, slots=True)
class UniverseHeader:
    """What reading a universe's history needs of the universe: three columns, not the whole row (its rules, pins
    and the ORM's bookkeeping cost a history page about a millisecond more)."""

    id: uuid.UUID
    created_at: datetime
    rules_version: int


async def universe_header(session: AsyncSession, owner_id: uuid.UUID, universe_id: uuid.UUID) -> UniverseHeader | None:
    row = (
        await session.execute(
            select(Universe.id, Universe.created_at, Universe.rules_version).where(
                Universe.id == universe_id, Universe.owner_id == owner_id
            )
        )
    ).first()
    return UniverseHeader(*row) if row is not None else None


def _window(universe_id: uuid.UUID, since: datetime | None, until: datetime | None) -> list[ColumnElement[bool]]:
    """Events of one universe in (since, until]."""
    where: list[ColumnElement[bool]] = [E.universe_id == universe_id]
    if since is not None:
        where.append(E.effective_at > _at(since))
    if until is not None:
        where.append(E.effective_at <= _at(until))
    return where


def _rows(
    result: Sequence[tuple[int, datetime, datetime, str, str, str | None, uuid.UUID | None, str | None]],
) -> list[EventRow]:
    return [EventRow(*row) for row in result]


# The ticker an event's security traded under at the event's time, when that was not today's: the span of its
# ticker history holding the time (valid_to: the day the next ticker took over; dates against timestamps compare as
# the day's start on both stores). One index probe per row of the page, in the page's statement.
_SYMBOL_THEN = (
    select(AssetSymbol.symbol)
    .where(
        AssetSymbol.asset_id == E.asset_id,
        AssetSymbol.symbol != Asset.symbol,
        AssetSymbol.valid_to.is_not(None),
        AssetSymbol.valid_to > E.effective_at,
        or_(AssetSymbol.valid_from.is_(None), AssetSymbol.valid_from <= E.effective_at),
    )
    .limit(1)  # an asset's spans do not overlap: at most one holds the time (no ORDER BY, so no sort per row)
    .scalar_subquery()
)
_COLUMNS = (E.id, E.effective_at, E.recorded_at, Asset.symbol, E.action, E.reason, E.run_id, _SYMBOL_THEN)


async def event_page(
    session: AsyncSession,
    universe_id: uuid.UUID,
    *,
    owner_id: uuid.UUID,
    since: datetime | None,
    until: datetime | None,
    after: tuple[datetime, int] | None,
    limit: int,
) -> tuple[list[EventRow], int | None]:
    """Up to ``limit`` events of (since, until], newest first, of the owner's universe, and the universe's rules
    version (None when no event came back: an empty window, or no such universe of the owner's). ``after``: the
    (effective_at, id) of the last event of the previous page, the page continuing with the events older than it.
    One statement: the owner check rides on the page (a statement costs a history page ~1.5 ms)."""
    where = _window(universe_id, since, until)
    if after is not None:
        at, last_id = after
        # A row value: both stores start the index range right after the cursor's (effective_at, id), also inside
        # a run of events sharing one time (an OR of the two conditions is no index range for SQLite).
        where.append(tuple_(E.effective_at, E.id) < tuple_(_at(at), literal(last_id, E.id.type)))
    stmt = (
        select(*_COLUMNS, Universe.rules_version)
        .join(Asset, Asset.id == E.asset_id)
        .join(Universe, and_(Universe.id == E.universe_id, Universe.owner_id == owner_id))
        .where(*where)
        .order_by(E.effective_at.desc(), E.id.desc())
        .limit(limit)
    )
    result = (await session.execute(stmt)).all()
    return [EventRow(*row[:-1]) for row in result], (int(result[0][-1]) if result else None)


async def events_in_window(
    session: AsyncSession, universe_id: uuid.UUID, *, since: datetime, until: datetime, action: str, limit: int
) -> list[EventRow]:
    """The newest ``limit`` events of one action in (since, until], newest first (turnover's names)."""
    stmt = (
        select(*_COLUMNS)
        .join(Asset, Asset.id == E.asset_id)
        .where(*_window(universe_id, since, until), E.action == action)
        .order_by(E.effective_at.desc(), E.id.desc())
        .limit(limit)
    )
    return _rows((await session.execute(stmt)).all())


async def first_event_at(session: AsyncSession, universe_id: uuid.UUID) -> datetime | None:
    """When the universe's earliest recorded change took effect (a back-dated import can predate its creation)."""
    return await session.scalar(select(func.min(E.effective_at)).where(E.universe_id == universe_id))


async def runs_between(
    session: AsyncSession,
    universe_id: uuid.UUID,
    *,
    after: datetime | None = None,
    since: datetime | None = None,
    before: datetime | None = None,
    through: datetime | None = None,
    limit: int,
) -> list[RebalanceRun]:
    """Up to ``limit`` rebalance runs started in a span, newest first. Its start: ``after`` (exclusive) or
    ``since`` (inclusive); its end: ``before`` (exclusive) or ``through`` (inclusive); any may be open."""
    where = [RebalanceRun.universe_id == universe_id, *_span(RebalanceRun.started_at, after, since, before, through)]
    stmt = (
        select(RebalanceRun).where(*where).order_by(RebalanceRun.started_at.desc(), RebalanceRun.id.desc()).limit(limit)
    )
    return list((await session.scalars(stmt)).all())


async def definitions_between(
    session: AsyncSession,
    universe_id: uuid.UUID,
    *,
    after: datetime | None = None,
    since: datetime | None = None,
    before: datetime | None = None,
    through: datetime | None = None,
    limit: int,
) -> list[UniverseRulesVersion]:
    """Up to ``limit`` versions of the universe's definition made in a span (as runs_between), newest first."""
    V = UniverseRulesVersion
    where = [V.universe_id == universe_id, *_span(V.changed_at, after, since, before, through)]
    stmt = select(V).where(*where).order_by(V.changed_at.desc(), V.version.desc()).limit(limit)
    return list((await session.scalars(stmt)).all())


def _span(
    column: Any, after: datetime | None, since: datetime | None, before: datetime | None, through: datetime | None
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if after is not None:
        where.append(column > _at(after))
    if since is not None:
        where.append(column >= _at(since))
    if before is not None:
        where.append(column < _at(before))
    if through is not None:
        where.append(column <= _at(through))
    return where


def asset_histories(
    session: Session, universe_id: uuid.UUID, asset_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[tuple[datetime, str]]]:
    """Inside a write unit: each asset's recorded (effective_at, action) events in this universe, oldest first (a
    back-dated import checks its changes against them)."""
    if not asset_ids:
        return {}
    rows = session.execute(
        select(E.asset_id, E.effective_at, E.action)
        .where(E.universe_id == universe_id, E.asset_id.in_(list(asset_ids)))
        .order_by(E.asset_id, E.effective_at, E.id)
    )
    histories: dict[uuid.UUID, list[tuple[datetime, str]]] = {}
    for asset_id, at, action in rows.all():
        histories.setdefault(asset_id, []).append((at, action))
    return histories


def record_dated_events(
    session: Session,
    *,
    universe_id: uuid.UUID,
    owner_id: uuid.UUID,
    events: Sequence[tuple[uuid.UUID, str, datetime]],
    recorded_at: datetime,
    reason: str,
) -> None:
    """Inside a write unit: back-dated events, (asset id, action, effective_at) each, in one statement."""
    if not events:
        return
    session.execute(
        E.__table__.insert(),
        [
            {
                "universe_id": universe_id,
                "owner_id": owner_id,
                "asset_id": asset_id,
                "action": action,
                "effective_at": at,
                "recorded_at": recorded_at,
                "reason": reason,
                "run_id": None,
            }
            for asset_id, action, at in events
        ],
    )


def add_dated_members(
    session: Session,
    *,
    universe_id: uuid.UUID,
    owner_id: uuid.UUID,
    members: Sequence[tuple[uuid.UUID, datetime]],
    first_position: int,
) -> None:
    """Inside a write unit: members that joined at a past time, (asset id, added_at) each, after the others."""
    if not members:
        return
    session.execute(
        UniverseAsset.__table__.insert(),
        [
            {
                "universe_id": universe_id,
                "owner_id": owner_id,
                "asset_id": asset_id,
                "position": first_position + i,
                "added_at": at,
            }
            for i, (asset_id, at) in enumerate(members)
        ],
    )
