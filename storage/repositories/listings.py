"""The security master in the store: master assets, their ticker history and index membership, and listing syncs.

Bulk writes are Core ``executemany`` statements (no ORM unit of work): loading the shipped snapshot writes ~30,000
assets with their history on first start (services/security_master/store.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Date, DateTime, Index, TypeDecorator, bindparam, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import driver_connection
from storage.models import Asset, AssetIndex, AssetNameWord, AssetSymbol, ListingSync, UniverseAsset
from storage.repositories.asset_search import name_word_rows
from storage.repositories.assets import fit_sizes

__all__ = [
    "MasterRow",
    "all_indices",
    "all_master_rows",
    "all_spans",
    "changed_history",
    "unchanged_assets",
    "asset_by_master_key",
    "delisted_members",
    "former_symbols",
    "delist_temporarily",
    "holders",
    "insert_master_assets",
    "last_ok_sync",
    "latest_syncs",
    "listed_master_rows",
    "master_assets_by_id",
    "master_keys",
    "master_size",
    "newest_ok_as_of",
    "indices_of",
    "record_sync",
    "replace_history",
    "retire_master_assets",
    "snapshot_applied",
    "spans_of",
    "listed_symbols_among",
    "store_is_empty",
    "unmastered_listed",
    "update_master_assets",
]

_CHUNK = 500  # SQLite caps bound parameters per statement
_BULK = 2_000

# The columns a master lookup reads (services/security_master/store.py turns them back into Security values).
MASTER_COLUMNS = (
    Asset.id,
    Asset.master_key,
    Asset.symbol,
    Asset.name,
    Asset.asset_type,
    Asset.listing_status,
    Asset.exchange,
    Asset.listed_on,
    Asset.delisted_on,
    Asset.cik,
    Asset.isin,
    Asset.country,
    Asset.sector,
    Asset.industry,
    Asset.source_sector,
    Asset.source_industry,
    Asset.market_cap,
    Asset.market_cap_as_of,
    Asset.ipo_year,
    Asset.currency,
    Asset.asset_metadata,
)
MasterRow = Any  # a Row with MASTER_COLUMNS' names


_TEXT_SIZES: list[tuple[str, int]] = []
_REPEATING = (Date, DateTime, TypeDecorator)  # dates and timestamps repeat across a load: converted once each


def _memoised(process: Any) -> Any:
    seen: dict[Any, Any] = {}

    def convert(value: Any) -> Any:
        if value not in seen:
            seen[value] = process(value)
        return seen[value]

    return convert


def _fit(row: Mapping[str, Any]) -> dict[str, Any]:
    """``assets.fit`` for many rows: text cut to the column sizes (PostgreSQL refuses what SQLite would store)."""
    if not _TEXT_SIZES:
        _TEXT_SIZES.extend(fit_sizes().items())
    out = dict(row)
    for name, size in _TEXT_SIZES:
        value = out.get(name)
        if value.__class__ is str and len(value) > size:
            out[name] = value[:size]
    return out


# --- listing syncs -------------------------------------------------------------------------------------------------
async def record_sync(session: AsyncSession, values: Mapping[str, Any]) -> ListingSync:
    row = ListingSync(**{k: v for k, v in values.items() if v is not None or k == "error"})
    if row.error:
        row.error = row.error[:500]
    session.add(row)
    await session.flush()
    return row


async def snapshot_applied(session: AsyncSession, source: str, sha256: str) -> ListingSync | None:
    """The last successful load of ``source`` (the shipped snapshot) when its data had this checksum."""
    last = await last_ok_sync(session, source)
    return last if last is not None and last.sha256 == sha256 else None


async def last_ok_sync(session: AsyncSession, source: str) -> ListingSync | None:
    return await session.scalar(
        select(ListingSync)
        .where(ListingSync.source == source, ListingSync.status == "ok")
        .order_by(ListingSync.fetched_at.desc(), ListingSync.id.desc())
        .limit(1)
    )


async def latest_syncs(session: AsyncSession) -> list[ListingSync]:
    """The newest row of each source (whatever its status), by source name."""
    newest = select(ListingSync.source, func.max(ListingSync.id).label("id")).group_by(ListingSync.source).subquery()
    rows = await session.scalars(
        select(ListingSync).join(newest, newest.c.id == ListingSync.id).order_by(ListingSync.source)
    )
    return list(rows)


# --- loading the master --------------------------------------------------------------------------------------------
async def master_keys(session: AsyncSession) -> dict[str, tuple[uuid.UUID, str, str]]:
    """master_key -> (asset id, symbol, listing_status) of every asset the master already placed."""
    rows = await session.execute(
        select(Asset.master_key, Asset.id, Asset.symbol, Asset.listing_status).where(Asset.master_key.is_not(None))
    )
    # The WHERE leaves no NULL key; the test says so to the type checker.
    return {key: (asset_id, symbol, status) for key, asset_id, symbol, status in rows.all() if key is not None}


async def listed_symbols_among(session: AsyncSession, symbols: Sequence[str]) -> set[str]:
    """Which of ``symbols`` a listed asset uses as its ticker (symbols only: no rows loaded)."""
    found: set[str] = set()
    for start in range(0, len(symbols), _CHUNK):
        chunk = list(symbols[start : start + _CHUNK])
        found.update(
            await session.scalars(select(Asset.symbol).where(Asset.symbol.in_(chunk), Asset.listing_status == "listed"))
        )
    return found


async def store_is_empty(session: AsyncSession) -> bool:
    return await session.scalar(select(Asset.id).limit(1)) is None


async def unmastered_listed(session: AsyncSession) -> list[tuple[uuid.UUID, str]]:
    """Listed assets the master has not placed (the offline catalog's rows, assets users' adds created)."""
    rows = await session.execute(
        select(Asset.id, Asset.symbol).where(Asset.master_key.is_(None), Asset.listing_status == "listed")
    )
    return [(asset_id, symbol) for asset_id, symbol in rows.all()]


async def _insert_many(session: AsyncSession, table: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """Core INSERTs through the connection: one DBAPI executemany per chunk (the ORM's bulk path would send a
    statement per few rows, ten times slower on SQLite)."""
    if not rows:
        return
    connection = await session.connection()
    if connection.dialect.name == "sqlite":
        # On SQLite even Core's per-row parameter handling costs more than the inserts: bind the values with the
        # column types' own processors (the very conversion Core applies) and hand the driver one executemany.
        dialect = connection.dialect
        names = list(rows[0])
        processors = [table.c[name].type._cached_bind_processor(dialect) for name in names]
        quote = dialect.identifier_preparer.quote
        sql = (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) "
            f"VALUES ({', '.join('?' for _ in names)})"
        )
        getter = itemgetter(*names)
        converted = [
            (i, _memoised(p) if isinstance(table.c[names[i]].type, _REPEATING) else p)
            for i, p in enumerate(processors)
            if p is not None
        ]
        data = []
        for row in rows:
            values = list(getter(row)) if len(names) > 1 else [getter(row)]
            for i, process in converted:
                if values[i] is not None:
                    values[i] = process(values[i])
            data.append(values)
        await (await driver_connection(connection)).executemany(sql, data)
        return
    for start in range(0, len(rows), _BULK):
        await connection.execute(table.insert(), list(rows[start : start + _BULK]))


async def _index_names(session: AsyncSession, rows: Sequence[Mapping[str, Any]], *, new: bool) -> None:
    """The name-search index (storage/models.py AssetNameWord) of assets whose name, sector, symbol or market cap was
    written (``rows`` hold every master field, _asset_values in services/security_master/store.py)."""
    if not new:
        ids = [r["id"] for r in rows]
        for start in range(0, len(ids), _CHUNK):
            await session.execute(delete(AssetNameWord).where(AssetNameWord.asset_id.in_(ids[start : start + _CHUNK])))
    # Search never shows delisted assets (asset_search.py), so their names are not indexed. Rows in key order:
    # SQLite fills its B-trees several times faster in order than at random.
    words = [
        w
        for r in rows
        if r.get("name") and r.get("listing_status", "listed") == "listed"
        for w in name_word_rows(r["id"], r["name"], r.get("sector"), r["symbol"], r.get("market_cap"))
    ]
    words.sort(key=lambda w: (w["word"], w["asset_id"].bytes))
    await _insert_many(session, AssetNameWord.__table__, words)


def _drop_indexes(connection: Connection, indexes: list[Index]) -> None:
    for index in indexes:
        index.drop(connection)


def _create_indexes(connection: Connection, indexes: list[Index]) -> None:
    for index in indexes:
        index.create(connection)


async def insert_master_assets(
    session: AsyncSession, rows: Sequence[Mapping[str, Any]], *, into_empty: bool = False
) -> None:
    """New assets (each row with its ``id``), indexed for name search. ``into_empty``: the store holds no asset
    yet (first start), so on SQLite the secondary indexes are dropped for the load and built again after it, in
    the same transaction: sorting once beats updating a dozen B-trees per row (about a third of the load)."""
    if into_empty and session.get_bind().dialect.name == "sqlite":
        indexes = [*Asset.__table__.indexes, *AssetNameWord.__table__.indexes]
        connection = await session.connection()
        await connection.run_sync(_drop_indexes, indexes)
        await _insert_master_assets(session, rows)
        await connection.run_sync(_create_indexes, indexes)
        return
    await _insert_master_assets(session, rows)


async def _insert_master_assets(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    values = [{**_fit(r), "created_at": r["last_validated_at"], "updated_at": r["last_validated_at"]} for r in rows]
    values.sort(key=lambda v: v["id"].bytes)  # in primary-key order (see _index_names)
    await _insert_many(session, Asset.__table__, values)
    await _index_names(session, values, new=True)


async def delist_temporarily(session: AsyncSession, asset_ids: Sequence[uuid.UUID]) -> None:
    """Mark assets delisted before their new values are written: a ticker that passes from one security to another
    in the same load would otherwise hit the unique index on listed symbols halfway through."""
    for start in range(0, len(asset_ids), _CHUNK):
        await session.execute(
            update(Asset).where(Asset.id.in_(asset_ids[start : start + _CHUNK])).values(listing_status="delisted")
        )


async def retire_master_assets(session: AsyncSession, asset_ids: Sequence[uuid.UUID], reason: str) -> None:
    """Assets the master no longer holds as a security of their own: delisted, invalid with ``reason``. Rows
    already retired with that reason are left alone (a sync that changes nothing writes nothing)."""
    for start in range(0, len(asset_ids), _CHUNK):
        await session.execute(
            update(Asset)
            .where(
                Asset.id.in_(asset_ids[start : start + _CHUNK]),
                or_(
                    Asset.listing_status != "delisted",
                    Asset.validation_status != "invalid",
                    Asset.validation_reason.is_(None),
                    Asset.validation_reason != reason[:300],
                ),
            )
            .values(
                listing_status="delisted",
                validation_status="invalid",
                is_validated=False,
                validation_reason=reason[:300],
            )
        )


async def update_master_assets(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    """Overwrite master fields of existing assets (each row with its ``id``; every row the same keys)."""
    if not rows:
        return
    columns = [k for k in rows[0] if k != "id"]
    statement = (
        update(Asset.__table__)
        .where(Asset.__table__.c.id == bindparam("_id"))
        .values({c: bindparam(c) for c in columns})
    )
    values = [{**_fit({k: v for k, v in r.items() if k != "id"}), "_id": r["id"]} for r in rows]
    connection = await session.connection()
    for start in range(0, len(values), _BULK):
        await connection.execute(statement, values[start : start + _BULK])
    await _index_names(session, rows, new=False)


async def replace_history(
    session: AsyncSession,
    asset_ids: Sequence[uuid.UUID],
    spans: Sequence[Mapping[str, Any]],
    indices: Sequence[Mapping[str, Any]],
    *,
    new: bool = False,
) -> None:
    """Set the ticker history and index membership of ``asset_ids`` to ``spans`` and ``indices``."""
    if not new:
        for start in range(0, len(asset_ids), _CHUNK):
            chunk = list(asset_ids[start : start + _CHUNK])
            await session.execute(delete(AssetSymbol).where(AssetSymbol.asset_id.in_(chunk)))
            await session.execute(delete(AssetIndex).where(AssetIndex.asset_id.in_(chunk)))
    await _insert_many(session, AssetSymbol.__table__, spans)
    await _insert_many(session, AssetIndex.__table__, indices)


# --- what a sync would change ---------------------------------------------------------------------------------------
# Columns a master row is written with that say nothing about the security: the date of the data that last wrote
# it. A sync whose data is newer but says the same about a security leaves its row as it is.
_VOLATILE = frozenset({"last_validated_at"})


def _comparable(values: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in _fit(values).items() if k not in _VOLATILE and k != "id"}
    meta = out.get("asset_metadata")
    if isinstance(meta, dict):
        out["asset_metadata"] = {k: v for k, v in meta.items() if k != "listings_as_of"}
        master = meta.get("master")
        if isinstance(master, dict):  # the last copy that showed it: moves with every sync, says nothing new
            out["asset_metadata"]["master"] = {k: v for k, v in master.items() if k != "last_seen"}
    return out


async def unchanged_assets(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> set[uuid.UUID]:
    """The ids of ``rows`` (master values with ``id``, every row the same keys) that the store already holds with
    these values — apart from the data date they were last written with."""
    if not rows:
        return set()
    columns = [Asset.__table__.c[k] for k in rows[0] if k != "id"]
    wanted = {r["id"]: _comparable(r) for r in rows}
    ids = list(wanted)
    same: set[uuid.UUID] = set()
    table = Asset.__table__
    # Thousands of rows (a sync checks every security it mentions): one scan of the master beats IN-lists.
    conditions = (
        [[table.c.master_key.is_not(None)]]
        if len(ids) > _BULK
        else [[table.c.id.in_(ids[start : start + _CHUNK])] for start in range(0, len(ids), _CHUNK)]
    )
    for where in conditions:
        result = await session.execute(select(table.c.id, *columns).where(*where))
        for row in result.mappings():
            if row["id"] in wanted and _comparable(dict(row)) == wanted[row["id"]]:
                same.add(row["id"])
    return same


def _span_key(span: Mapping[str, Any] | Any) -> tuple:
    get = span.get if isinstance(span, Mapping) else lambda name: getattr(span, name)
    return (
        get("symbol"),
        get("valid_from"),
        get("valid_to"),
        get("source"),
        bool(get("exact")),
        get("changed_after"),
    )


async def changed_history(
    session: AsyncSession,
    asset_ids: Sequence[uuid.UUID],
    spans: Sequence[Mapping[str, Any]],
    indices: Sequence[Mapping[str, Any]],
) -> set[uuid.UUID]:
    """Which of ``asset_ids`` the store holds with another ticker history or index membership than ``spans`` and
    ``indices`` (rows with ``asset_id``)."""
    new_spans: dict[uuid.UUID, list[tuple]] = {i: [] for i in asset_ids}
    for span in spans:
        new_spans[span["asset_id"]].append(_span_key(span))
    new_indices: dict[uuid.UUID, set[tuple]] = {i: set() for i in asset_ids}
    for index in indices:
        new_indices[index["asset_id"]].add((index["index_name"], index["as_of"]))
    many = len(asset_ids) > _BULK  # one scan of each table beats IN-lists then
    old_spans = await (all_spans(session) if many else spans_of(session, asset_ids))
    index_query = select(AssetIndex.asset_id, AssetIndex.index_name, AssetIndex.as_of)
    chunks = (
        [index_query]
        if many
        else [
            index_query.where(AssetIndex.asset_id.in_(list(asset_ids[start : start + _CHUNK])))
            for start in range(0, len(asset_ids), _CHUNK)
        ]
    )
    old_indices: dict[uuid.UUID, set[tuple]] = {}
    for query in chunks:
        for asset_id, name, as_of in (await session.execute(query)).all():
            old_indices.setdefault(asset_id, set()).add((name, as_of))
    changed: set[uuid.UUID] = set()
    for asset_id in asset_ids:
        if [_span_key(s) for s in old_spans.get(asset_id, ())] != new_spans[asset_id]:
            changed.add(asset_id)
        elif old_indices.get(asset_id, set()) != new_indices[asset_id]:
            changed.add(asset_id)
    return changed


# --- reading the master --------------------------------------------------------------------------------------------
async def holders(session: AsyncSession, symbols: Sequence[str]) -> dict[str, list[uuid.UUID]]:
    """symbol -> the master assets that ever used it (any date), for each of ``symbols`` that any did."""
    found: dict[str, list[uuid.UUID]] = {}
    for start in range(0, len(symbols), _CHUNK):
        chunk = list(symbols[start : start + _CHUNK])
        rows = await session.execute(
            select(AssetSymbol.symbol, AssetSymbol.asset_id).where(AssetSymbol.symbol.in_(chunk)).distinct()
        )
        for symbol, asset_id in rows.all():
            found.setdefault(symbol, []).append(asset_id)
    return found


async def master_assets_by_id(session: AsyncSession, asset_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, MasterRow]:
    found: dict[uuid.UUID, MasterRow] = {}
    for start in range(0, len(asset_ids), _CHUNK):
        chunk = list(asset_ids[start : start + _CHUNK])
        rows = await session.execute(select(*MASTER_COLUMNS).where(Asset.id.in_(chunk), Asset.master_key.is_not(None)))
        found.update({row.id: row for row in rows.all()})
    return found


# A ticker span as the sync compares and rebuilds it (spans_of, all_spans).
SPAN_COLUMNS = (
    AssetSymbol.asset_id,
    AssetSymbol.symbol,
    AssetSymbol.valid_from,
    AssetSymbol.valid_to,
    AssetSymbol.source,
    AssetSymbol.exact,
    AssetSymbol.changed_after,
)


async def spans_of(session: AsyncSession, asset_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Any]]:
    """Each asset's ticker history, oldest first."""
    found: dict[uuid.UUID, list[Any]] = {}
    for start in range(0, len(asset_ids), _CHUNK):
        chunk = list(asset_ids[start : start + _CHUNK])
        rows = await session.execute(
            select(*SPAN_COLUMNS).where(AssetSymbol.asset_id.in_(chunk)).order_by(AssetSymbol.asset_id, AssetSymbol.id)
        )
        for row in rows.all():
            found.setdefault(row.asset_id, []).append(row)
    return found


async def indices_of(session: AsyncSession, asset_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    found: dict[uuid.UUID, list[str]] = {}
    for start in range(0, len(asset_ids), _CHUNK):
        chunk = list(asset_ids[start : start + _CHUNK])
        rows = await session.execute(
            select(AssetIndex.asset_id, AssetIndex.index_name)
            .where(AssetIndex.asset_id.in_(chunk))
            .order_by(AssetIndex.index_name)
        )
        for asset_id, name in rows.all():
            found.setdefault(asset_id, []).append(name)
    return found


async def all_master_rows(session: AsyncSession) -> list[MasterRow]:
    """Every asset the master placed (MASTER_COLUMNS), for an incremental sync (services/security_master/live.py)."""
    rows = await session.execute(select(*MASTER_COLUMNS).where(Asset.master_key.is_not(None)).order_by(Asset.id))
    return list(rows.all())


async def all_spans(session: AsyncSession) -> dict[uuid.UUID, list[Any]]:
    """The ticker history of every master asset, oldest first (as ``spans_of``)."""
    rows = await session.execute(
        select(*SPAN_COLUMNS)
        .join(Asset, Asset.id == AssetSymbol.asset_id)
        .where(Asset.master_key.is_not(None))
        .order_by(AssetSymbol.asset_id, AssetSymbol.id)
    )
    found: dict[uuid.UUID, list[Any]] = {}
    for row in rows.all():
        found.setdefault(row.asset_id, []).append(row)
    return found


async def all_indices(session: AsyncSession) -> dict[uuid.UUID, list[str]]:
    rows = await session.execute(
        select(AssetIndex.asset_id, AssetIndex.index_name).order_by(AssetIndex.asset_id, AssetIndex.index_name)
    )
    found: dict[uuid.UUID, list[str]] = {}
    for asset_id, name in rows.all():
        found.setdefault(asset_id, []).append(name)
    return found


async def listed_master_rows(session: AsyncSession) -> list[Any]:
    """Listed master assets with what the typo candidates rank by: symbol, name, kind, market cap, index member."""
    in_index = select(AssetIndex.asset_id).where(AssetIndex.asset_id == Asset.id).exists()
    rows = await session.execute(
        select(
            Asset.symbol,
            Asset.name,
            Asset.asset_type,
            Asset.market_cap,
            Asset.asset_metadata,
            in_index.label("in_index"),
        ).where(Asset.master_key.is_not(None), Asset.listing_status == "listed")
    )
    return list(rows.all())


async def former_symbols(
    session: AsyncSession, asset_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[str, date | None]]:
    """asset id -> (its previous ticker, the day it changed) for assets of ``asset_ids`` that were renamed."""
    found: dict[uuid.UUID, tuple[str, date | None]] = {}
    for start in range(0, len(asset_ids), _CHUNK):
        chunk = list(asset_ids[start : start + _CHUNK])
        rows = await session.execute(
            select(AssetSymbol.asset_id, AssetSymbol.symbol, AssetSymbol.valid_to)
            .join(Asset, Asset.id == AssetSymbol.asset_id)
            .where(
                AssetSymbol.asset_id.in_(chunk), AssetSymbol.valid_to.is_not(None), AssetSymbol.symbol != Asset.symbol
            )
            .order_by(AssetSymbol.asset_id, AssetSymbol.valid_to)
        )
        for asset_id, symbol, valid_to in rows.all():
            found[asset_id] = (symbol, valid_to)  # the latest wins
    return found


async def delisted_members(session: AsyncSession, universe_id: uuid.UUID, limit: int = 20) -> list[Any]:
    """Members of a universe whose security is delisted: symbol, delisted_on, validation_reason (position order)."""
    rows = await session.execute(
        select(Asset.symbol, Asset.delisted_on, Asset.validation_reason)
        .join(UniverseAsset, UniverseAsset.asset_id == Asset.id)
        .where(UniverseAsset.universe_id == universe_id, Asset.listing_status == "delisted")
        .order_by(UniverseAsset.position)
        .limit(limit)
    )
    return list(rows.all())


async def asset_by_master_key(session: AsyncSession, key: str) -> Asset | None:
    return await session.scalar(select(Asset).where(Asset.master_key == key))


async def master_size(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Asset).where(Asset.master_key.is_not(None))) or 0)


async def newest_ok_as_of(session: AsyncSession) -> date | None:
    """The data date of the newest successful load or sync of any source."""
    return await session.scalar(select(func.max(ListingSync.as_of)).where(ListingSync.status == "ok"))
