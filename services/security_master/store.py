"""The security master in the store: loading a snapshot into ``assets`` and answering symbol lookups from it.

Loading (``ensure_snapshot_loaded``): the shipped snapshot goes into the store on first start, in one transaction;
a later start whose snapshot has the checksum of the last successful load skips it (one small query). Each
security's snapshot key (``master_key``) finds the asset it already has, so a reload — a newer snapshot shipped
with a new version, or a revision such as delisted -> renamed — keeps every asset id. Assets created before the
master knew them (the offline catalog's rows, a user's add of a then-unknown ticker) are adopted by symbol: the
current holder of the ticker (or its last, delisted holder) takes the row over, so universes holding it keep
pointing at the same id. Master rows carry their verdict: listed -> ``valid``, delisted -> ``invalid`` ("delisted
on DATE"), source ``listings``. An asset retired into another (a stand-in the data later merged into an issuer's
security, a pending row under a ticker the master gives to another asset) hands its universe memberships to the
survivor in the same transaction (members.py).

Lookups (``StoreMaster``): the holders of a symbol (every asset whose ticker history has it) are read from the
store and judged by the same rules as the in-memory resolver (resolver.py); typo candidates come from an index of
the listed symbols, built once per data date.
"""

from __future__ import annotations

import dataclasses
import gc
import gzip
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from core.memory import release_freed_memory
from services.schemas import DelistedMember, UniverseMember
from services.security_master import members
from services.security_master.candidates import CandidateIndex
from services.security_master.model import Security, SymbolSpan
from services.security_master.resolver import Resolution, Resolver, describe_date
from services.security_master.snapshot import (
    FORMAT,
    SCHEMA_VERSION,
    Snapshot,
    SnapshotError,
    load_snapshot,
    shipped_snapshot_path,
)
from services.symbols import normalise_symbol
from storage.repositories import listings as repo

__all__ = [
    "LoadReport",
    "SNAPSHOT_SOURCE",
    "StoreMaster",
    "annotate_members",
    "delisted_members",
    "apply_snapshot",
    "check_snapshot_file",
    "ensure_snapshot_loaded",
    "master_as_of",
    "security_of_row",
]

logger = logging.getLogger(__name__)

SNAPSHOT_SOURCE = "snapshot"
SYNC_SOURCE = "master"  # the merged result of a `listings sync` (services/security_master/sync.py)
# Fields of a Security kept in asset_metadata["master"] (the columns hold the rest).
_META_FIELDS = (
    "issuer",
    "region",
    "listed_on_source",
    "delisted_on_source",
    "delisted_after",
    "last_seen",
    "sector_source",
    "sources",
)


@dataclass(frozen=True, slots=True)
class LoadReport:
    as_of: date
    loaded: bool  # False: the store already held this snapshot
    securities: int = 0
    new: int = 0
    changed: int = 0
    adopted: int = 0
    delisted: int = 0
    renamed: int = 0
    seconds: float = 0.0
    moved: int = 0  # universes whose members of retired assets moved to the surviving asset (members.py)
    sync_id: int | None = None  # its listing_syncs row: what the rebalances that follow a sync are keyed by


# --- the snapshot file ---------------------------------------------------------------------------------------------
_CHECKED: dict[tuple[str, int, int], dict[str, Any]] = {}


def check_snapshot_file(path: Path | str) -> dict[str, Any]:
    """The header of a snapshot file whose bytes are intact (gzip check, format, schema, record checksum), without
    parsing the records. Raises ``SnapshotError`` with one line. Remembered per file version within a process."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as exc:
        raise SnapshotError(
            f"listings snapshot {path}: cannot be read ({exc.strerror or type(exc).__name__})"
        ) from None
    memo = (str(path), stat.st_size, stat.st_mtime_ns)
    if memo in _CHECKED:
        return _CHECKED[memo]
    try:
        raw = gzip.decompress(path.read_bytes())
    except OSError as exc:
        reason = exc.strerror or f"not a complete gzip file ({type(exc).__name__})"
        raise SnapshotError(f"listings snapshot {path}: {reason}") from None
    except (EOFError, ValueError) as exc:
        raise SnapshotError(f"listings snapshot {path}: not a complete gzip file ({type(exc).__name__})") from None
    end = raw.find(b"\n")
    try:
        header = json.loads(raw[:end]) if end > 0 else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise SnapshotError(f"listings snapshot {path}: not a {FORMAT} file")
    if header.get("schema_version") != SCHEMA_VERSION:
        raise SnapshotError(
            f"listings snapshot {path}: schema version {header.get('schema_version')!r}; "
            f"this version of universe-mcp reads {SCHEMA_VERSION}"
        )
    if hashlib.sha256(raw[end + 1 :]).hexdigest() != header.get("sha256"):
        raise SnapshotError(f"listings snapshot {path}: content checksum mismatch (the file was altered or damaged)")
    _CHECKED[memo] = header
    return header


# --- security -> rows ----------------------------------------------------------------------------------------------
def delisted_reason(security: Security) -> str:
    last = security.symbols[-1]
    exact = last.exact and security.delisted_on_source != "snapshots"
    return f"{security.symbol} ({security.name}) was delisted {describe_date(security.delisted_on, exact)}"


def _meta(security: Security) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for name in _META_FIELDS:
        value = getattr(security, name)
        if value is None or value == ():
            continue
        meta[name] = (
            value.isoformat() if isinstance(value, date) else list(value) if isinstance(value, tuple) else value
        )
    return meta


def _asset_values(security: Security, validated_at: datetime, data_as_of: date) -> dict[str, Any]:
    listed = security.is_listed
    return {
        "master_key": security.key,
        "symbol": security.symbol,
        "name": security.name,
        "exchange": security.exchange,
        "asset_type": security.asset_type,
        "currency": "USD" if security.region == "us" else None,
        "sector": security.sector,
        "industry": security.industry,
        "source_sector": security.source_sector,
        "source_industry": security.source_industry,
        "country": security.country,
        "market_cap": security.market_cap,
        "market_cap_as_of": security.market_cap_as_of,
        "ipo_year": security.ipo_year,
        "cik": f"{security.cik:010d}" if security.cik is not None else None,
        "isin": security.isin,
        "listing_status": security.listing_status,
        "listed_on": security.listed_on,
        "delisted_on": security.delisted_on,
        "is_validated": listed,
        "validation_status": "valid" if listed else "invalid",
        "validation_source": "listings",
        "validation_reason": None if listed else delisted_reason(security)[:300],
        "last_validated_at": validated_at,
        "created_by": None,  # the master confirms it: every owner may see it
        "asset_metadata": {"master": _meta(security), "listings_as_of": data_as_of.isoformat()},
    }


def _span_rows(asset_id: uuid.UUID, security: Security) -> list[dict[str, Any]]:
    return [
        {
            "asset_id": asset_id,
            "symbol": span.symbol,
            "valid_from": span.valid_from,
            "valid_to": span.valid_to,
            "source": span.source,
            "exact": span.exact,
            "changed_after": span.changed_after,
        }
        for span in security.symbols
    ]


def _indices_as_of(snapshot: Snapshot) -> date | None:
    for source in snapshot.header.get("sources", ()):
        if isinstance(source, dict) and source.get("source") == "pytickersymbols":
            try:
                return date.fromisoformat(str(source.get("as_of")))
            except ValueError:
                return None
    return None


def _adoptions(
    securities: Sequence[Security], unmastered: Sequence[tuple[uuid.UUID, str]], placed: set[str]
) -> dict[str, tuple[uuid.UUID, str]]:
    """security key -> (existing asset id, its symbol) for assets the master did not place yet: each goes to the
    current holder of its ticker (any spelling), else to the last holder that was delisted under it."""
    by_symbol: dict[str, list[tuple[uuid.UUID, str]]] = {}
    for asset_id, symbol in unmastered:
        by_symbol.setdefault(normalise_symbol(symbol), []).append((asset_id, symbol))
    listed: dict[str, Security] = {}
    delisted: dict[str, Security] = {}
    for security in securities:
        if security.key in placed:
            continue
        if security.is_listed:
            listed[security.symbol] = security
        else:
            best = delisted.get(security.symbol)
            if best is None or (security.delisted_on or date.min) > (best.delisted_on or date.min):
                delisted[security.symbol] = security
    adopted: dict[str, tuple[uuid.UUID, str]] = {}
    for symbol, assets in by_symbol.items():
        holder = listed.get(symbol) or delisted.get(symbol)
        if holder is None:
            continue
        # The row spelled exactly like the canonical symbol first: it is the one the unique index would clash with.
        assets.sort(key=lambda item: (item[1] != symbol, item[1]))
        adopted[holder.key] = assets[0]
    # Then rows under a former ticker (a universe that held ZI before the master knew it holds GTM now), for
    # securities no row of their current ticker took.
    former: dict[str, tuple[date, Security]] = {}
    for security in securities:
        if security.key in placed:
            continue
        for span in security.symbols:
            if span.valid_to is not None and span.symbol != security.symbol:
                if span.symbol not in former or span.valid_to > former[span.symbol][0]:
                    former[span.symbol] = (span.valid_to, security)
    for symbol, assets in sorted(by_symbol.items()):
        if symbol in listed or symbol in delisted or symbol not in former:
            continue
        holder = former[symbol][1]
        if holder.key not in adopted:
            assets.sort(key=lambda item: (item[1] != symbol, item[1]))
            adopted[holder.key] = assets[0]
    return adopted


async def apply_snapshot(
    session: AsyncSession,
    snapshot: Snapshot,
    *,
    source: str = SNAPSHOT_SOURCE,
    sha256: str | None = None,
    retire: Collection[str] | None = None,
    successors: Mapping[str, str] | None = None,
) -> LoadReport:
    """Write ``snapshot`` into the store (no commit) and record a ``listing_syncs`` row. ``retire``: the keys of
    placed assets to retire when the snapshot lacks them; None: every one it lacks (the snapshot is the whole
    master). A live sync (live.py) passes only what today's data mentions, and retires only the securities it
    found to be another one's past. ``successors``: retired key -> the key of the security that absorbed it, as
    the live merge knows them; None: found from the tickers (``_survivors``).

    Universes holding a retired asset whose survivor is known hold the survivor afterwards (members.py), in the
    same transaction."""
    started = time.perf_counter()
    existing = await repo.master_keys(session)
    empty = await repo.store_is_empty(session)
    unmastered = await repo.unmastered_listed(session)
    adopted = _adoptions(snapshot.securities, unmastered, set(existing))
    # An unplaced row under the ticker a security the master already placed now uses (a pending NEWCO created
    # before the sync that shows NEWCO as an existing issuer's new ticker): the master's asset takes the ticker.
    taken = {s.symbol: s.key for s in snapshot.securities if s.key in existing and s.is_listed}
    adopted_ids = {asset_id for asset_id, _ in adopted.values()}
    superseded = [
        (asset_id, symbol, taken[normalise_symbol(symbol)])
        for asset_id, symbol in unmastered
        if asset_id not in adopted_ids and normalise_symbol(symbol) in taken
    ]
    # Hundreds of thousands of new dicts and tuples, none of them cyclic: the collector's passes over them would
    # cost more than building them.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return await _apply(
            session, snapshot, existing, adopted, source, sha256, started, empty, retire, successors, superseded
        )
    finally:
        if collecting:
            gc.enable()


async def _apply(
    session: AsyncSession,
    snapshot: Snapshot,
    existing: dict[str, tuple[uuid.UUID, str, str]],
    adopted: dict[str, tuple[uuid.UUID, str]],
    source: str,
    sha256: str | None,
    started: float,
    empty: bool,
    retire: Collection[str] | None = None,
    successors: Mapping[str, str] | None = None,
    superseded: Sequence[tuple[uuid.UUID, str, str]] = (),
) -> LoadReport:
    data_as_of = snapshot.as_of
    validated_at = datetime.combine(data_as_of, datetime.min.time(), tzinfo=UTC)
    indices_as_of = _indices_as_of(snapshot) or data_as_of

    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    moving: list[uuid.UUID] = []  # assets whose listed symbol changes: cleared first (repo.delist_temporarily)
    old_ids: list[uuid.UUID] = []
    spans_new: list[dict[str, Any]] = []
    spans_old: list[dict[str, Any]] = []
    indices_new: list[dict[str, Any]] = []
    indices_old: list[dict[str, Any]] = []
    renamed = delisted = 0
    asset_of: dict[str, uuid.UUID] = {}  # security key -> its asset, after this apply
    # Securities of the store the new data no longer has under their key: a later copy merged them into another
    # (GTM, first seen as a new listing, is ZoomInfo's ZI once an SEC copy links the two) or their key drifted.
    # A listed one whose ticker a new, unmatched security holds is that security (its id is kept); the others are
    # retired below, so that the ticker has one holder.
    keys = {security.key for security in snapshot.securities}
    orphans = {key: value for key, value in existing.items() if key not in keys}
    by_orphan_symbol = {symbol: key for key, (_, symbol, status) in orphans.items() if status == "listed"}
    for security in snapshot.securities:
        if security.key in existing or security.key in adopted or not security.is_listed:
            continue
        orphan = by_orphan_symbol.pop(security.symbol, None)
        if orphan is not None:
            existing = {**existing, security.key: orphans.pop(orphan)}
    for security in snapshot.securities:
        values = _asset_values(security, validated_at, data_as_of)
        if security.key in existing or security.key in adopted:
            asset_id, old_symbol, old_status = (
                existing[security.key] if security.key in existing else (*adopted[security.key], "listed")
            )
            if old_symbol != security.symbol or old_status != security.listing_status:
                moving.append(asset_id)
                if security.key in existing:
                    renamed += old_symbol != security.symbol
                    delisted += old_status == "listed" and security.listing_status == "delisted"
            updates.append({"id": asset_id, **values})
            old_ids.append(asset_id)
            spans, indices = spans_old, indices_old
        else:
            asset_id = uuid.uuid4()
            inserts.append({"id": asset_id, **values})
            spans, indices = spans_new, indices_new
        asset_of[security.key] = asset_id
        spans.extend(_span_rows(asset_id, security))
        indices.extend({"asset_id": asset_id, "index_name": i[:64], "as_of": indices_as_of} for i in security.indices)

    # Rows and histories the new data describes as the store already holds them are not written at all: a daily
    # sync changes a few hundred securities of thirty thousand, and rewriting the rest would cost time, bloat
    # PostgreSQL's tables and mark every row as updated when nothing happened to it.
    unchanged = await repo.unchanged_assets(session, updates)
    updates = [u for u in updates if u["id"] not in unchanged]
    history_changed = await repo.changed_history(session, old_ids, spans_old, indices_old)
    spans_old = [s for s in spans_old if s["asset_id"] in history_changed]
    indices_old = [i for i in indices_old if i["asset_id"] in history_changed]

    retired = [asset_id for key, (asset_id, _, _) in orphans.items() if retire is None or key in retire]
    merges = _merges(
        snapshot,
        {key: value for key, value in orphans.items() if retire is None or key in retire},
        successors,
        superseded,
        asset_of,
        f"the listings {'snapshot' if source == SNAPSHOT_SOURCE else 'sync'} of {data_as_of.isoformat()}",
    )
    # Before the first write: the universes whose members move are locked first, as a user's change locks them.
    await members.lock_holders(session, merges)
    await repo.retire_master_assets(
        session,
        [asset_id for asset_id, _, _ in superseded],
        "the security master lists this ticker as another asset",
    )
    await repo.retire_master_assets(
        session,
        retired,
        f"no longer in the listings data as of {data_as_of.isoformat()} (a later copy may have merged it into "
        "another security)",
    )
    await repo.replace_history(session, retired, [], [])
    await repo.delist_temporarily(session, moving)
    await repo.update_master_assets(session, updates)
    await repo.insert_master_assets(session, inserts, into_empty=empty)
    await repo.replace_history(session, sorted(history_changed), spans_old, indices_old)
    await repo.replace_history(session, [], spans_new, indices_new, new=True)
    moved = await members.move_members(session, merges)  # after the survivors' rows are written (foreign keys)
    report = LoadReport(
        as_of=data_as_of,
        loaded=True,
        securities=len(snapshot.securities),
        new=len(inserts),
        changed=len(updates),
        adopted=len(adopted),
        delisted=delisted,
        renamed=renamed,
        seconds=round(time.perf_counter() - started, 3),
        moved=moved,
    )
    row = await repo.record_sync(
        session,
        {
            "source": source,
            "as_of": data_as_of,
            "status": "ok",
            "rows": report.securities,
            "new": report.new,
            "changed": report.changed,
            "delisted": delisted,
            "renamed": renamed,
            "sha256": sha256 or str(snapshot.header.get("sha256") or ""),
        },
    )
    return dataclasses.replace(report, sync_id=row.id)


def _merges(
    snapshot: Snapshot,
    retired: Mapping[str, tuple[uuid.UUID, str, str]],
    successors: Mapping[str, str] | None,
    superseded: Sequence[tuple[uuid.UUID, str, str]],
    asset_of: Mapping[str, uuid.UUID],
    by: str,
) -> list[members.Merge]:
    """Each retired asset whose survivor is known, with the survivor's asset and the reason its members move.

    ``retired``: key -> (asset id, symbol, listing status) of the placed assets this apply retires. Their survivor
    is the one ``successors`` names (a live sync's merge knows which security took each one's rows); without it
    (a rebuild from copies, a snapshot load), a retired asset that was *listed* under a ticker a placed security of
    the new data lists now: the directory lists one security per ticker, so the data says the two are one (GTM, a
    stand-in new listing, once the SEC links ZoomInfo's ZI to it). Any other retired asset simply disappeared: no
    survivor, its members stay (and show as delisted). ``superseded``: (asset id, symbol, key of the placed
    security holding its ticker) of unplaced rows the master's asset takes the ticker of."""
    if not retired and not superseded:
        return []
    by_key = {security.key: security for security in snapshot.securities}
    listed = {s.symbol: s.key for s in snapshot.securities if s.is_listed}
    pairs: list[tuple[uuid.UUID, str, str | None]] = [(a, symbol, key) for a, symbol, key in superseded]
    for retired_key, (asset_id, symbol, status) in retired.items():
        if successors is not None:
            pairs.append((asset_id, symbol, successors.get(retired_key)))
        else:
            pairs.append((asset_id, symbol, listed.get(symbol) if status == "listed" else None))
    out: list[members.Merge] = []
    for asset_id, symbol, survivor_key in pairs:
        survivor = by_key.get(survivor_key) if survivor_key is not None else None
        if survivor is None or asset_of.get(survivor.key) in (None, asset_id):
            continue
        former = [span.symbol for span in survivor.symbols if span.symbol != survivor.symbol]
        name = survivor.name.split(" - ")[0]  # "ZoomInfo Technologies Inc. - Common Stock": the issuer is enough
        label = f"{name} (formerly {former[-1]})" if former else name
        head = symbol if symbol == survivor.symbol else f"{symbol} (now {survivor.symbol})"
        reason = f"{head} is {label}, as {by} shows: its two records were merged into one"
        out.append(members.Merge(asset_id, asset_of[survivor.key], reason[:300]))
    return out


async def ensure_snapshot_loaded(session: AsyncSession, path: Path | str | None = None) -> LoadReport:
    """Load the snapshot at ``path`` (default: the shipped one) unless the store already holds it. Raises
    ``SnapshotError`` (one line) for a missing or damaged file, whether or not it would have been loaded."""
    path = Path(path) if path is not None else shipped_snapshot_path()
    header = check_snapshot_file(path)
    sha256 = str(header["sha256"])
    done = await repo.snapshot_applied(session, SNAPSHOT_SOURCE, sha256)
    if done is not None and done.as_of is not None:
        return LoadReport(as_of=done.as_of, loaded=False, securities=done.rows)
    synced = await repo.last_ok_sync(session, SYNC_SOURCE)
    header_as_of = date.fromisoformat(str(header["as_of"]))
    if synced is not None and synced.as_of is not None and synced.as_of >= header_as_of:
        # A sync brought newer data than this snapshot: loading it would turn the clock back.
        return LoadReport(as_of=synced.as_of, loaded=False, securities=synced.rows)
    snapshot = await anyio.to_thread.run_sync(_parse, path)  # ~1 s of parsing: off the event loop
    return await apply_snapshot(session, snapshot, sha256=sha256)


def _parse(path: Path) -> Snapshot:
    collecting = gc.isenabled()
    gc.disable()  # see apply_snapshot
    try:
        return load_snapshot(path)
    finally:
        if collecting:
            gc.enable()


async def master_as_of(session: AsyncSession) -> date | None:
    """The date of the master's data: the newest successful load or sync."""
    return await repo.newest_ok_as_of(session)


# --- lookups -------------------------------------------------------------------------------------------------------
def security_of_row(row: Any, spans: Sequence[Any], indices: Sequence[str]) -> Security:
    """A master asset (repo.MASTER_COLUMNS), its ticker history and index names as the Security they store."""
    meta = (row.asset_metadata or {}).get("master", {}) if isinstance(row.asset_metadata, dict) else {}

    def day(name: str) -> date | None:
        value = meta.get(name)
        try:
            return date.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            return None

    return Security(
        key=row.master_key,
        symbol=row.symbol,
        name=row.name or row.symbol,
        asset_type=row.asset_type or "stock",
        listing_status=row.listing_status,
        issuer=meta.get("issuer"),
        exchange=row.exchange,
        listed_on=row.listed_on,
        listed_on_source=meta.get("listed_on_source"),
        delisted_on=row.delisted_on,
        delisted_on_source=meta.get("delisted_on_source"),
        delisted_after=day("delisted_after"),
        last_seen=day("last_seen"),
        cik=int(row.cik) if row.cik and row.cik.isdigit() else None,
        isin=row.isin,
        country=row.country,
        sector=row.sector,
        sector_source=meta.get("sector_source"),
        industry=row.industry,
        source_sector=row.source_sector,
        source_industry=row.source_industry,
        market_cap=row.market_cap,
        market_cap_as_of=row.market_cap_as_of,
        ipo_year=row.ipo_year,
        indices=tuple(indices),
        symbols=tuple(
            SymbolSpan(s.symbol, s.valid_from, s.valid_to, s.source or "snapshots", bool(s.exact), s.changed_after)
            for s in spans
        ),
        sources=tuple(meta.get("sources") or ()),
        region=meta.get("region") or "us",
    )


class StoreMaster:
    """Symbol lookups against the master in the store, shared by every request of a process (holds no session).

    ``data_as_of`` and the candidate index are refreshed when the master's data date changes (a sync, a reload),
    checked at most every ``refresh_s`` seconds.
    """

    def __init__(self, *, refresh_s: float = 60.0) -> None:
        self.refresh_s = refresh_s
        self._as_of: date | None = None
        self._checked_at = float("-inf")
        self._candidates: CandidateIndex | None = None
        self._candidates_as_of: date | None = None

    async def data_as_of(self, session: AsyncSession) -> date | None:
        now = time.monotonic()
        if now - self._checked_at >= self.refresh_s:
            self._as_of = await master_as_of(session)
            self._checked_at = now
        return self._as_of

    def forget(self) -> None:
        """Re-read the data date (and rebuild candidates) on next use: the master was just changed in-process."""
        self._checked_at = float("-inf")

    async def resolve_many(
        self, session: AsyncSession, symbols: Sequence[str], as_of: date | None = None
    ) -> dict[str, Resolution]:
        """Resolutions for the ``symbols`` (normalised) that some security of the master ever used; the others are
        absent (the master does not know them)."""
        data_as_of = await self.data_as_of(session)
        if data_as_of is None or not symbols:
            return {}
        found = await repo.holders(session, list(dict.fromkeys(symbols)))
        if not found:
            return {}
        ids = list({asset_id for ids in found.values() for asset_id in ids})
        rows = await repo.master_assets_by_id(session, ids)
        spans = await repo.spans_of(session, ids)
        indices = await repo.indices_of(session, ids)
        securities = [
            security_of_row(rows[i], spans.get(i, ()), indices.get(i, ())) for i in ids if i in rows and spans.get(i)
        ]
        resolver = Resolver(securities, data_as_of, candidates=False)
        out: dict[str, Resolution] = {}
        for symbol in symbols:
            if symbol in found:
                resolution = resolver.resolve(symbol, as_of)
                if resolution.status != "unknown" or as_of is not None:
                    out[symbol] = resolution
        return out

    async def candidates(self, session: AsyncSession, symbol: str, limit: int = 5) -> tuple[str, ...] | None:
        """Typo candidates among listed securities (never ``symbol``); None when the store has no master."""
        data_as_of = await self.data_as_of(session)
        if data_as_of is None:
            return None
        if self._candidates is None or self._candidates_as_of != data_as_of:
            rows = await repo.listed_master_rows(session)
            self._candidates = await anyio.to_thread.run_sync(_candidate_index, rows)
            self._candidates_as_of = data_as_of
            del rows
            # Building the index reads every listed security and makes ~170,000 keys: ~60 MB of short-lived
            # objects that malloc would otherwise keep (core/memory.py). Once per data date, off the event loop.
            await anyio.to_thread.run_sync(release_freed_memory)
        return self._candidates.candidates(symbol, limit)


async def annotate_members(
    session: AsyncSession, asset_ids: Sequence[uuid.UUID], members: list[UniverseMember]
) -> list[UniverseMember]:
    """Members with the previous ticker of those the master knows were renamed (ZI, today GTM)."""
    former = await repo.former_symbols(session, list(asset_ids))
    if not former:
        return members
    return [
        m.model_copy(update={"former_symbol": former[i][0], "renamed_on": former[i][1]}) if i in former else m
        for i, m in zip(asset_ids, members, strict=True)
    ]


async def delisted_members(session: AsyncSession, universe_id: uuid.UUID) -> list[DelistedMember]:
    return [
        DelistedMember(symbol=r.symbol, delisted_on=r.delisted_on, reason=r.validation_reason)
        for r in await repo.delisted_members(session, universe_id)
    ]


def _candidate_index(rows: Sequence[Any]) -> CandidateIndex:
    securities = []
    for row in rows:
        meta = (row.asset_metadata or {}).get("master", {}) if isinstance(row.asset_metadata, dict) else {}
        securities.append(
            Security(
                key=row.symbol,
                symbol=row.symbol,
                name=row.name or row.symbol,
                asset_type=row.asset_type or "stock",
                listing_status="listed",
                issuer=meta.get("issuer"),
                market_cap=row.market_cap,
                indices=("index",) if row.in_index else (),
                region=meta.get("region") or "us",
            )
        )
    return CandidateIndex(securities)
