"""Universes, their members and their membership events. Every query filters by owner."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import Integer, Select, String, Uuid, and_, delete, func, literal, or_, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from storage.db import begin_write, rowcount
from storage.models import Asset, Universe, UniverseAsset, UniverseAssetEvent

__all__ = [
    "add_members",
    "count_members",
    "count_members_by_status",
    "delete_universe",
    "get_universe",
    "get_universe_by_name_key",
    "holders_of",
    "list_members",
    "list_members_as_of",
    "list_universes",
    "lock_universe",
    "lock_universes_holding",
    "lock_writes",
    "locked_universe",
    "member_asset_ids",
    "member_positions",
    "member_symbols",
    "members_by_symbol",
    "membership_state",
    "record_added_events",
    "record_events",
    "remove_members",
    "turnover_counts",
    "universe_ids_with_prefix",
]


async def get_universe(session: AsyncSession, owner_id: uuid.UUID, universe_id: uuid.UUID) -> Universe | None:
    return await session.scalar(select(Universe).where(Universe.id == universe_id, Universe.owner_id == owner_id))


def _locking(owner_id: uuid.UUID, universe_id: uuid.UUID) -> Select:
    return (
        select(Universe)
        .where(Universe.id == universe_id, Universe.owner_id == owner_id)
        .with_for_update()  # rendered only where rows can be locked (not on SQLite, which has one writer)
        .execution_options(populate_existing=True)
    )


async def lock_universe(session: AsyncSession, owner_id: uuid.UUID, universe_id: uuid.UUID) -> Universe | None:
    """The universe, re-read and locked until the transaction ends, or None when it is gone (or not the owner's).

    Every change to a universe's membership or name takes this first (or runs as a storage.db.run_write unit that
    takes locked_universe), so changes to one universe are serialised: on PostgreSQL by the row lock (SELECT ...
    FOR UPDATE; a concurrent delete either waits for us or makes this return None), on SQLite by taking the store's
    write lock (begin_write). Whatever the transaction reads after it is current until it commits.
    """
    await begin_write(session)
    return await session.scalar(_locking(owner_id, universe_id))


async def lock_universes_holding(session: AsyncSession, asset_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """Lock, until the transaction ends, every universe (of any owner) holding one of ``asset_ids``; returns their
    ids. For a system task (the security master's apply) that will move those members later in its transaction:
    taking the locks before it writes anything else keeps a user's add, which locks its universe and then the
    asset rows it references, from waiting on it while it waits on them. Read again until no new holder appears,
    so an add that committed meanwhile is among them. Sees every owner only as a role row-level security does not
    apply to (the table owner: workers, the scheduler, the CLI)."""
    await begin_write(session)
    ids = list(asset_ids)
    locked: set[uuid.UUID] = set()
    while ids:
        holders = set(
            await session.scalars(select(UniverseAsset.universe_id).where(UniverseAsset.asset_id.in_(ids)).distinct())
        )
        new = sorted(holders - locked)
        if not new:
            break
        # In id order: two such tasks at once lock in the same order.
        await session.execute(select(Universe.id).where(Universe.id.in_(new)).order_by(Universe.id).with_for_update())
        locked.update(new)
    return sorted(locked)


# --- inside a write unit (storage.db.run_write): plain functions over a synchronous session ------------------------
# The membership writes run as one function on SQLite's writer thread (or inside the caller's transaction on
# PostgreSQL), so the statements below are synchronous: each is a call into SQLite, not a hop through the event loop.


def locked_universe(session: Session, owner_id: uuid.UUID, universe_id: uuid.UUID) -> Universe | None:
    """lock_universe inside a write unit: the write lock is already held on SQLite; FOR UPDATE on PostgreSQL."""
    return session.scalar(_locking(owner_id, universe_id))


def member_asset_ids(session: Session, universe_id: uuid.UUID, asset_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    ids = list(asset_ids)
    if not ids:
        return set()
    rows = session.scalars(
        select(UniverseAsset.asset_id).where(UniverseAsset.universe_id == universe_id, UniverseAsset.asset_id.in_(ids))
    )
    return set(rows)


def holders_of(session: Session, asset_ids: Sequence[uuid.UUID]) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(universe id, owner id) of every universe of any owner holding one of ``asset_ids``, in universe id order."""
    if not asset_ids:
        return []
    rows = session.execute(
        select(UniverseAsset.universe_id, UniverseAsset.owner_id)
        .where(UniverseAsset.asset_id.in_(list(asset_ids)))
        .distinct()
        .order_by(UniverseAsset.universe_id)
    )
    return [(universe_id, owner_id) for universe_id, owner_id in rows.all()]


def member_positions(session: Session, universe_id: uuid.UUID, asset_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Which of ``asset_ids`` are members, each with its position, in position order."""
    if not asset_ids:
        return {}
    rows = session.execute(
        select(UniverseAsset.asset_id, UniverseAsset.position)
        .where(UniverseAsset.universe_id == universe_id, UniverseAsset.asset_id.in_(list(asset_ids)))
        .order_by(UniverseAsset.position)
    )
    return {asset_id: int(position) for asset_id, position in rows.all()}


def members_by_symbol(session: Session, universe_id: uuid.UUID, symbols: Sequence[str]) -> dict[str, uuid.UUID]:
    """Members whose current ticker is one of ``symbols``: symbol -> asset id."""
    if not symbols:
        return {}
    rows = session.execute(
        select(Asset.symbol, Asset.id)
        .join(UniverseAsset, UniverseAsset.asset_id == Asset.id)
        .where(UniverseAsset.universe_id == universe_id, Asset.symbol.in_(list(symbols)))
    )
    return {symbol: asset_id for symbol, asset_id in rows.all()}


def member_symbols(session: Session, universe_id: uuid.UUID) -> list[tuple[str, uuid.UUID]]:
    """Every member's (current ticker, asset id), in position order."""
    rows = session.execute(
        select(Asset.symbol, Asset.id)
        .join(UniverseAsset, UniverseAsset.asset_id == Asset.id)
        .where(UniverseAsset.universe_id == universe_id)
        .order_by(UniverseAsset.position)
    )
    return [(symbol, asset_id) for symbol, asset_id in rows.all()]


def membership_state(session: Session, universe_id: uuid.UUID) -> tuple[int, datetime | None, int]:
    """(next free position, when the latest membership event took effect, member count) in one statement: what
    an add needs under the universe's lock, in one round trip (on PostgreSQL) instead of three."""
    top = select(func.max(UniverseAsset.position)).where(UniverseAsset.universe_id == universe_id).scalar_subquery()
    last = (
        select(func.max(UniverseAssetEvent.effective_at))
        .where(UniverseAssetEvent.universe_id == universe_id)
        .scalar_subquery()
    )
    count = select(func.count()).where(UniverseAsset.universe_id == universe_id).scalar_subquery()
    row = session.execute(select(top, last, count)).one()
    return (0 if row[0] is None else int(row[0]) + 1), row[1], int(row[2] or 0)


def add_members(
    session: Session,
    *,
    universe_id: uuid.UUID,
    owner_id: uuid.UUID,
    asset_ids: Sequence[uuid.UUID],
    first_position: int,
    at: datetime,
) -> None:
    """Insert members ``asset_ids`` at positions ``first_position``, ``first_position + 1``, ... in one statement.

    The ids go in as one array parameter that the database unrolls (SQLite's json_each, PostgreSQL's unnest WITH
    ORDINALITY), and the values shared by every row as single parameters: an executemany of 1,000 rows spent most
    of its time in SQLAlchemy's per-row parameter processing (three UUIDs and a timestamp a row), more than SQLite
    took to insert them. Raises (and inserts nothing) when one of them is a member already.
    """
    if not asset_ids:
        return
    table = UniverseAsset.__table__
    dialect = session.get_bind().dialect.name
    shared = [
        literal(universe_id, table.c.universe_id.type),
        literal(owner_id, table.c.owner_id.type),
    ]
    columns = ["universe_id", "owner_id", "asset_id", "position", "added_at"]
    added_at = literal(at, table.c.added_at.type)
    if dialect == "sqlite":
        to_text = table.c.asset_id.type.bind_processor(session.get_bind().dialect)
        assert to_text is not None, "SQLite stores a UUID as its 32 hex digits"
        ids = func.json_each(literal(json.dumps([to_text(a) for a in asset_ids]), String)).table_valued("key", "value")
        rows = select(*shared, ids.c.value, literal(first_position, Integer) + ids.c.key, added_at)
    elif dialect == "postgresql":
        ids = (
            func.unnest(literal(list(asset_ids), postgresql.ARRAY(Uuid)))
            .table_valued("value", with_ordinality="n")
            .render_derived(name="ids")
        )
        rows = select(*shared, ids.c.value, literal(first_position - 1, Integer) + ids.c.n, added_at)
    else:  # any other store: a plain executemany
        session.execute(
            table.insert(),
            [
                {
                    "universe_id": universe_id,
                    "owner_id": owner_id,
                    "asset_id": a,
                    "position": first_position + i,
                    "added_at": at,
                }
                for i, a in enumerate(asset_ids)
            ],
        )
        return
    session.execute(table.insert().from_select(columns, rows))


def record_added_events(
    session: Session,
    *,
    universe_id: uuid.UUID,
    owner_id: uuid.UUID,
    first_position: int,
    at: datetime,
    reason: str | None,
) -> None:
    """One ``added`` event for every member at ``first_position`` or after, in position order: under the universe's
    lock, right after add_members(first_position=the next free position), exactly the rows that add inserted.

    One INSERT ... SELECT over the members just written, so no row travels through Python again (an executemany of
    1,000 events cost twice what inserting the members did).
    """
    members = UniverseAsset.__table__
    events = UniverseAssetEvent.__table__
    rows = (
        select(
            members.c.universe_id,
            literal(owner_id, events.c.owner_id.type),
            members.c.asset_id,
            literal("added", events.c.action.type),
            literal(at, events.c.effective_at.type),
            literal(at, events.c.recorded_at.type),
            literal(reason, events.c.reason.type),
        )
        .where(members.c.universe_id == universe_id, members.c.position >= first_position)
        .order_by(members.c.position)  # event ids follow the members' order, as one executemany's did
    )
    session.execute(
        events.insert().from_select(
            ["universe_id", "owner_id", "asset_id", "action", "effective_at", "recorded_at", "reason"], rows
        )
    )


def remove_members(session: Session, universe_id: uuid.UUID, asset_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """Delete these members; returns the ids of the rows actually deleted (the only ones that get an event)."""
    if not asset_ids:
        return []
    result = session.execute(
        delete(UniverseAsset)
        .where(UniverseAsset.universe_id == universe_id, UniverseAsset.asset_id.in_(asset_ids))
        .returning(UniverseAsset.asset_id)
    )
    return list(result.scalars())


def record_events(
    session: Session,
    *,
    universe_id: uuid.UUID,
    owner_id: uuid.UUID,
    asset_ids: Sequence[uuid.UUID],
    action: str,
    at: datetime,
    reason: str | None = None,
    reasons: Mapping[uuid.UUID, str] | None = None,
    run_id: uuid.UUID | None = None,
    recorded_at: datetime | None = None,
) -> None:
    """One event per asset; ``reasons``: a reason per asset (else ``reason`` for all); ``recorded_at``: when it
    differs from the effective time (a back-dated import)."""
    if not asset_ids:
        return
    session.execute(
        UniverseAssetEvent.__table__.insert(),
        [
            {
                "universe_id": universe_id,
                "owner_id": owner_id,
                "asset_id": a,
                "action": action,
                "effective_at": at,
                "recorded_at": recorded_at or at,
                "reason": (reasons.get(a, reason) if reasons else reason),
                "run_id": run_id,
            }
            for a in asset_ids
        ],
    )


async def lock_writes(session: AsyncSession) -> None:
    """Serialise with other writers before creating a universe (SQLite's single writer; PostgreSQL relies on the
    unique (owner, name) index and the owner's quota row instead)."""
    await begin_write(session)


async def get_universe_by_name_key(session: AsyncSession, owner_id: uuid.UUID, name_key: str) -> Universe | None:
    return await session.scalar(select(Universe).where(Universe.owner_id == owner_id, Universe.name_key == name_key))


async def list_universes(
    session: AsyncSession,
    owner_id: uuid.UUID,
    *,
    limit: int,
    after: tuple[str, str] | None = None,
    name_contains: str | None = None,
) -> list[tuple[Universe, int]]:
    """Universes ordered by (name_key, id) with their asset counts; keyset pagination after ``after``."""
    counts = (
        select(UniverseAsset.universe_id, func.count().label("n"))
        .where(UniverseAsset.owner_id == owner_id)
        .group_by(UniverseAsset.universe_id)
        .subquery()
    )
    stmt: Select = (
        select(Universe, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.universe_id == Universe.id)
        .where(Universe.owner_id == owner_id)
        .order_by(Universe.name_key, Universe.id)
        .limit(limit)
    )
    if name_contains:
        pattern = "%" + name_contains.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(Universe.name_key.like(pattern, escape="\\"))
    if after is not None:
        key, last_id = after
        stmt = stmt.where(
            or_(Universe.name_key > key, and_(Universe.name_key == key, Universe.id > uuid.UUID(last_id)))
        )
    return [(u, int(n)) for u, n in (await session.execute(stmt)).all()]


async def universe_ids_with_prefix(session: AsyncSession, owner_id: uuid.UUID, prefix: str, limit: int) -> list[str]:
    """Ids (as text) of the owner's universes, for completion; prefix-filtered in Python (ids are UUIDs)."""
    rows = await session.scalars(select(Universe.id).where(Universe.owner_id == owner_id).order_by(Universe.name_key))
    matches = [str(u) for u in rows if str(u).startswith(prefix)]
    return matches[:limit]


async def delete_universe(session: AsyncSession, owner_id: uuid.UUID, universe_id: uuid.UUID) -> int:
    result = await session.execute(delete(Universe).where(Universe.id == universe_id, Universe.owner_id == owner_id))
    return rowcount(result) or 0


async def count_members(session: AsyncSession, universe_id: uuid.UUID) -> int:
    return int(await session.scalar(select(func.count()).where(UniverseAsset.universe_id == universe_id)) or 0)


async def count_members_by_status(session: AsyncSession, universe_id: uuid.UUID) -> dict[str, int]:
    rows = await session.execute(
        select(Asset.validation_status, func.count())
        .join(UniverseAsset, UniverseAsset.asset_id == Asset.id)
        .where(UniverseAsset.universe_id == universe_id)
        .group_by(Asset.validation_status)
    )
    return {status: int(n) for status, n in rows.all()}


async def list_members(
    session: AsyncSession, universe_id: uuid.UUID, *, limit: int, after_position: int | None = None
) -> list[tuple[UniverseAsset, Asset]]:
    stmt = (
        select(UniverseAsset, Asset)
        .join(Asset, Asset.id == UniverseAsset.asset_id)
        .where(UniverseAsset.universe_id == universe_id)
        .order_by(UniverseAsset.position)
        .limit(limit)
    )
    if after_position is not None:
        stmt = stmt.where(UniverseAsset.position > after_position)
    return [(m, a) for m, a in (await session.execute(stmt)).all()]


async def list_members_as_of(
    session: AsyncSession, universe_id: uuid.UUID, as_of: datetime
) -> list[tuple[Asset, datetime]]:
    """Members at ``as_of``: assets whose latest event at or before then is 'added', in order of joining."""
    latest = (
        select(
            UniverseAssetEvent.asset_id,
            UniverseAssetEvent.action,
            UniverseAssetEvent.effective_at,
            func.row_number()
            .over(
                partition_by=UniverseAssetEvent.asset_id,
                order_by=(UniverseAssetEvent.effective_at.desc(), UniverseAssetEvent.id.desc()),
            )
            .label("rn"),
        )
        .where(UniverseAssetEvent.universe_id == universe_id, UniverseAssetEvent.effective_at <= as_of)
        .subquery()
    )
    stmt = (
        select(Asset, latest.c.effective_at)
        .join(latest, latest.c.asset_id == Asset.id)
        .where(latest.c.rn == 1, latest.c.action == literal("added"))
        .order_by(latest.c.effective_at, Asset.symbol)
    )
    return [(a, at) for a, at in (await session.execute(stmt)).all()]


async def turnover_counts(
    session: AsyncSession, universe_id: uuid.UUID, since: datetime | None, until: datetime
) -> tuple[int, int, int, int]:
    """(added in window, removed in window, members at window start, members at window end).

    The window is (since, until]; with no ``since`` it starts before the first event (size 0).
    """

    async def size_at(at: datetime) -> int:
        latest = (
            select(
                UniverseAssetEvent.action,
                func.row_number()
                .over(
                    partition_by=UniverseAssetEvent.asset_id,
                    order_by=(UniverseAssetEvent.effective_at.desc(), UniverseAssetEvent.id.desc()),
                )
                .label("rn"),
            )
            .where(UniverseAssetEvent.universe_id == universe_id, UniverseAssetEvent.effective_at <= at)
            .subquery()
        )
        n = await session.scalar(
            select(func.count()).select_from(latest).where(latest.c.rn == 1, latest.c.action == "added")
        )
        return int(n or 0)

    window = [UniverseAssetEvent.universe_id == universe_id, UniverseAssetEvent.effective_at <= until]
    if since is not None:
        window.append(UniverseAssetEvent.effective_at > since)
    rows = await session.execute(
        select(UniverseAssetEvent.action, func.count()).where(*window).group_by(UniverseAssetEvent.action)
    )
    by_action = {action: int(n) for action, n in rows.all()}
    start = 0 if since is None else await size_at(since)
    end = await size_at(until)
    return by_action.get("added", 0), by_action.get("removed", 0), start, end
