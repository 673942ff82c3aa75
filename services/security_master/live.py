"""``universe-mcp listings sync`` without ``--from-dir``, and the daily listings job: fetch each listing source live
and merge what it says today into the master the store holds.

Fetching. Each chosen source is fetched through its adapter (providers/listings/): the URLs come from settings,
every download has connect/read timeouts and a deadline for the whole of it (``fetch_bytes``), and each source has
a circuit breaker in this process (three failures in a row, then no call for ``BREAKER_RESET_S``; a daily job is
never held back by it, repeated manual syncs are). A source is all or nothing: a failure of any of its requests or
rows leaves it out, with the adapter's reason in its ``listing_syncs`` row. Alpha Vantage runs only with a key; the
SEC only with ``UNIVERSE_MCP_SEC_USER_AGENT`` (its fair-access policy); without them the source is *skipped*
(recorded as failed with a reason starting "skipped:", which does not fail the sync). A source whose row count fell
below half its previous sync is refused unless ``force``, as with ``--from-dir``.

Merging (why incremental, not "archive every copy and rebuild"): the history the store holds came from copies that
are not shipped (the snapshot is built from recorded copies going back to 2022); a rebuild from the copies this
installation fetched itself would lose all of it. So the store's own state is the previous copy: every listed
security becomes a row of a synthetic directory copy dated at the previous directory copy's date, and every CIK a
row of a synthetic SEC copy dated at the previous SEC copy's date, each row carrying its asset's ``master_key``.
The same history builder as the snapshot (services/security_master/history.py) then runs on [store state, today's
copies]: a symbol in both continues its security; a CIK under a new ticker, a cited rename or the same name under
a new ticker links the two (a rename: same asset, the old ``asset_symbols`` span closed, a new one opened); a
listing gone without successor is delisted (dated by a cited removal, Alpha Vantage's delistingDate inside the
window, else the window: ``delisted_on`` = today's copy, ``delisted_after`` = the previous one). Each result that
continues a stored security keeps its key, so ``apply_snapshot`` writes it onto the same asset; its older history
(the stored spans before the current one) is kept as it is. Securities the store holds and today's data does not
mention (the delisted, index members) are left alone. Sources not fetched this time keep their say: the screener's
fields (sectors, market cap) of a security with no screener row today are the stored ones.

Writing: ``apply_snapshot`` writes only rows and histories that differ from what the store holds, so a sync that
changes nothing writes no asset row.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, cast, get_args

import anyio
import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from core.resilience import CircuitBreaker
from core.settings import Settings
from providers.listings.alpha_vantage import AlphaVantageListingSource
from providers.listings.base import AssetType, ListingRow, ListingSource, ListingSourceError, SourceBatch
from providers.listings.corporate_actions import load_corporate_actions
from providers.listings.indices import index_membership_batch
from providers.listings.nasdaq_screener import NasdaqScreenerSource
from providers.listings.nasdaq_trader import NasdaqTraderSource
from providers.listings.sec import SecTickersSource, sec_user_agent_problem
from providers.listings.sectors import issuer_overrides
from services.security_master.chains import LISTED_EXCHANGES, MasterInputs
from services.security_master.history import build_securities
from services.security_master.model import Security, SymbolSpan
from services.security_master.snapshot import Snapshot, SnapshotError, shipped_snapshot_path
from services.security_master.store import (
    SNAPSHOT_SOURCE,
    SYNC_SOURCE,
    LoadReport,
    apply_snapshot,
    check_snapshot_file,
    security_of_row,
)
from services.security_master.sync import SKIPPED, SOURCES, SourceOutcome, SyncReport, record_outcomes
from storage.repositories import listings as repo

__all__ = ["BREAKER_RESET_S", "live_sources", "merge_with_store", "sync_live"]


BREAKER_FAILURES = 3
BREAKER_RESET_S = 900.0
_BREAKERS: dict[str, CircuitBreaker] = {}
# What the screener alone says about a security: kept from the store when today's screener has no row for it.
_SCREENER_FIELDS = (
    "sector",
    "sector_source",
    "industry",
    "source_sector",
    "source_industry",
    "country",
    "market_cap",
    "market_cap_as_of",
    "ipo_year",
)

UnitOfWork = Callable[[], AbstractAsyncContextManager[AsyncSession]]


def _breaker(source: str) -> CircuitBreaker:
    if source not in _BREAKERS:
        _BREAKERS[source] = CircuitBreaker(f"listings {source}", BREAKER_FAILURES, BREAKER_RESET_S)
    return _BREAKERS[source]


def live_sources(settings: Settings, client: httpx.AsyncClient) -> dict[str, ListingSource[ListingRow] | str]:
    """Each listing source wired from settings, or the reason it is skipped."""
    deadline = settings.listings_fetch_deadline_s
    base = settings.listings_nasdaq_trader_url.rstrip("/")
    found: dict[str, ListingSource[ListingRow] | str] = {
        "nasdaq_trader": NasdaqTraderSource(
            client,
            nasdaqlisted_url=f"{base}/nasdaqlisted.txt",
            otherlisted_url=f"{base}/otherlisted.txt",
            deadline_s=deadline,
        ),
        "nasdaq_screener": NasdaqScreenerSource(client, url=settings.listings_nasdaq_screener_url, deadline_s=deadline),
    }
    problem = sec_user_agent_problem(settings.sec_user_agent)
    found["sec"] = (
        f"{SKIPPED}{problem}"
        if problem
        else SecTickersSource(client, settings.sec_user_agent, url=settings.listings_sec_url, deadline_s=deadline)
    )
    key = settings.alpha_vantage_api_key
    found["alpha_vantage_listing_status"] = (
        AlphaVantageListingSource(client, key, url=settings.alpha_vantage_base_url, deadline_s=deadline)
        if key is not None and key.get_secret_value().strip()
        else f"{SKIPPED}no Alpha Vantage API key (set UNIVERSE_MCP_ALPHA_VANTAGE_API_KEY)"
    )
    return found


@dataclass(frozen=True, slots=True)
class _Fetched:
    source: str
    batch: SourceBatch[ListingRow] | None
    error: str | None = None
    skipped: bool = False


async def _fetch_one(source: ListingSource[ListingRow], today: date) -> _Fetched:
    breaker = _breaker(source.name)
    ticket = breaker.acquire()
    if ticket is None:
        return _Fetched(
            source.name,
            None,
            f"not fetched: {breaker.failures} failures in a row; the next attempt is allowed "
            f"{BREAKER_RESET_S / 60:.0f} min after the last one",
        )
    try:
        batch = await source.fetch()
    except ListingSourceError as exc:
        breaker.failure(ticket)
        return _Fetched(source.name, None, exc.reason)
    except BaseException:
        breaker.release(ticket)
        raise
    breaker.success(ticket)
    if source.name != "nasdaq_trader":
        # The screener, the SEC and Alpha Vantage state no date: their data is of the day of the sync.
        batch = dataclasses.replace(batch, as_of=today)
    return _Fetched(source.name, batch)


async def _fetch(
    settings: Settings, chosen: Sequence[str], today: date, client: httpx.AsyncClient | None
) -> list[_Fetched]:
    async def run(http: httpx.AsyncClient) -> list[_Fetched]:
        wired = live_sources(settings, http)
        results: dict[str, _Fetched] = {}

        async def one(name: str) -> None:
            source = wired[name]
            if isinstance(source, str):
                results[name] = _Fetched(name, None, source, skipped=True)
            else:
                results[name] = await _fetch_one(source, today)

        async with anyio.create_task_group() as tg:  # the sources are independent: fetched side by side
            for name in chosen:
                tg.start_soon(one, name)
        return [results[name] for name in chosen]

    if client is not None:
        return await run(client)
    timeout = httpx.Timeout(settings.listings_fetch_timeout_s)
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=True, trust_env=True) as http:
        return await run(http)


# --- the store's state as the previous copy ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Previous:
    as_of: date | None
    rows: int


def _asset_type(value: str) -> AssetType:
    """A stored security's type as a listing row's (the store holds only the listing types; anything else: other)."""
    return cast(AssetType, value) if value in get_args(AssetType) else "other"


async def _previous(session: AsyncSession, settings: Settings) -> dict[str, _Previous]:
    """Each source's last applied copy: its date and row count, from its last successful sync, else from the
    header of the snapshot the store was loaded with (which lists every copy it was built from)."""
    found: dict[str, _Previous] = {}
    loaded = await repo.last_ok_sync(session, SNAPSHOT_SOURCE)
    if loaded is not None:
        try:
            header = check_snapshot_file(settings.listings_snapshot or shipped_snapshot_path())
        except SnapshotError:
            header = {}
        if header.get("sha256") == loaded.sha256:
            for entry in header.get("sources", ()):
                try:
                    source, as_of, rows = entry["source"], date.fromisoformat(entry["as_of"]), int(entry["rows"])
                except (KeyError, TypeError, ValueError):
                    continue
                seen = found[source].as_of if source in found else None
                if seen is None or as_of >= seen:
                    found[source] = _Previous(as_of, rows)
    for source in SOURCES:
        last = await repo.last_ok_sync(session, source)
        if last is not None and last.as_of is not None:
            known = found.get(source)
            if known is None or known.as_of is None or last.as_of >= known.as_of:
                found[source] = _Previous(last.as_of, last.rows)
    return found


async def _stored_securities(session: AsyncSession) -> list[Security]:
    rows = await repo.all_master_rows(session)
    spans = await repo.all_spans(session)
    indices = await repo.all_indices(session)

    def convert() -> list[Security]:
        # Assets a sync retired (merged into another security) keep their key but no history: not securities now.
        return [security_of_row(r, spans[r.id], indices.get(r.id, ())) for r in rows if spans.get(r.id)]

    return await anyio.to_thread.run_sync(convert)  # tens of thousands of rows: off the event loop


def _in_state(security: Security, directory_as_of: date | None) -> bool:
    """Whether the last directory copy listed ``security`` as far as the store knows: listed, or delisted after
    that copy (a cited removal or rename dated later, Alpha Vantage's delistingDate) — today's copy decides."""
    if security.region != "us":
        return False
    if security.is_listed:
        return True
    return (
        "nasdaq_trader" in security.sources
        and security.delisted_on is not None
        and directory_as_of is not None
        and security.delisted_on > directory_as_of
    )


def _state_batches(
    stored: Sequence[Security], dates: Mapping[str, date]
) -> tuple[SourceBatch[ListingRow], SourceBatch[ListingRow], SourceBatch[ListingRow]]:
    """The store's securities of the last copies (``_in_state``) as a directory, an SEC and a screener copy, each
    dated by that source's last copy and each row carrying its asset's key.

    A security no directory copy listed (only the SEC or the screener showed it, after the last directory copy) is
    not put in the directory copy: dated by it, it would be gone from a directory copy of the same day. It stays in
    the copy of the source that showed it, dated by that copy, as the snapshot builder saw it."""
    directory: list[ListingRow] = []
    sec: list[ListingRow] = []
    screener: list[ListingRow] = []
    for s in stored:
        extra = {"master_key": s.key}
        confirmed = "nasdaq_trader" in s.sources
        by_screener = not confirmed and "nasdaq_screener" in s.sources
        by_sec = not confirmed and not by_screener and s.cik is not None
        if s.exchange in LISTED_EXCHANGES and not by_sec and not by_screener:
            directory.append(
                ListingRow(
                    symbol=s.symbol,
                    raw_symbol=s.symbol,
                    name=s.name,
                    exchange=s.exchange,
                    asset_type=_asset_type(s.asset_type),
                    is_etf=s.asset_type == "etf",
                    extra=extra,
                )
            )
        if s.cik is not None:
            sec.append(
                ListingRow(
                    symbol=s.symbol,
                    raw_symbol=s.symbol,
                    name=s.issuer or s.name,
                    exchange=s.exchange,
                    asset_type=_asset_type(s.asset_type),
                    cik=s.cik,
                    extra=extra,
                )
            )
        if by_screener:
            screener.append(
                ListingRow(
                    symbol=s.symbol,
                    raw_symbol=s.symbol,
                    name=s.name,
                    exchange=s.exchange,
                    asset_type=_asset_type(s.asset_type),
                    is_etf=False,
                    source_sector=s.source_sector,
                    source_industry=s.source_industry,
                    country=s.country,
                    market_cap=s.market_cap,
                    ipo_year=s.ipo_year,
                    extra=extra,
                )
            )
    return (
        SourceBatch(source="nasdaq_trader", as_of=dates["nasdaq_trader"], rows=tuple(directory)),
        SourceBatch(source="sec", as_of=dates["sec"], rows=tuple(sec)),
        SourceBatch(source="nasdaq_screener", as_of=dates["nasdaq_screener"], rows=tuple(screener)),
    )


def _join(stored: Sequence[SymbolSpan], found: Sequence[SymbolSpan]) -> tuple[SymbolSpan, ...]:
    """The stored history, its current span continued by what today's data says happened since."""
    if not stored:
        return tuple(found)
    current = stored[-1]
    at = next((i for i, span in enumerate(found) if span.symbol == current.symbol), None)
    if at is None:
        return tuple(stored)  # nothing to continue (never happens: the state row carried this symbol)
    head = found[at]
    ended = head.valid_to is not None
    joined = SymbolSpan(
        current.symbol,
        current.valid_from,
        head.valid_to,
        head.source if ended else current.source,
        head.exact if ended else current.exact,
        head.changed_after if ended else current.changed_after,
    )
    return (*stored[:-1], joined, *found[at + 1 :])


def _continue(stored: Security, found: Security, screened: Collection[str], directory_as_of: date) -> Security:
    """``found`` (built from the store's state and today's copies) as the continuation of ``stored``;
    ``screened``: the symbols today's screener lists (for the others, the stored screener fields stand);
    ``directory_as_of``: the newest directory copy the result saw."""
    if (
        found.is_listed
        and not stored.is_listed
        and stored.delisted_on is not None
        and directory_as_of < stored.delisted_on
        and found.symbol == stored.symbol
    ):
        # A delisting dated after the newest directory copy (a cited removal, Alpha Vantage's date, which today's
        # data may lack): no copy contradicts it, so it stands.
        return stored
    values: dict[str, Any] = {
        "key": stored.key,
        "symbols": _join(stored.symbols, found.symbols),
        "sources": tuple(sorted({*stored.sources, *found.sources})),
        "isin": found.isin or stored.isin,
        "cik": found.cik or stored.cik,
        "issuer": found.issuer or stored.issuer,
    }
    if stored.listed_on is not None:  # the stored history saw more than today's data
        values["listed_on"], values["listed_on_source"] = stored.listed_on, stored.listed_on_source
    if found.symbol not in screened:
        values.update({name: getattr(stored, name) for name in _SCREENER_FIELDS})
    elif found.market_cap == stored.market_cap:
        values["market_cap_as_of"] = stored.market_cap_as_of
    return dataclasses.replace(found, **values)


def merge_with_store(
    stored: Sequence[Security],
    fetched: Mapping[str, SourceBatch[ListingRow]],
    previous: Mapping[str, _Previous],
    today: date,
) -> tuple[list[Security], dict[str, str | None]]:
    """The securities today's batches describe, continuing the stored ones (pure; see the module docstring), and
    the keys of stored securities that turned out to be part of another one (a ticker first seen on its own that
    today's data links to an issuer's earlier ticker), each with the key of the security that absorbed it (None
    where the result does not say). Securities the store holds and today's data does not mention are not in the
    result."""
    directory_date = previous.get("nasdaq_trader", _Previous(None, 0)).as_of or today
    dates = {
        source: previous.get(source, _Previous(None, 0)).as_of or directory_date
        for source in ("nasdaq_trader", "sec", "nasdaq_screener")
    }
    state = [s for s in stored if _in_state(s, directory_date)]
    copies: dict[str, list[SourceBatch[ListingRow]]] = {"nasdaq_trader": [], "sec": [], "nasdaq_screener": []}
    if state:
        for batch in _state_batches(state, dates):
            copies[batch.source].append(batch)
    for source, batches in copies.items():
        if source in fetched:
            batches.append(fetched[source])
    if not copies["nasdaq_trader"]:
        raise ValueError("neither the store nor today's data holds a symbol directory")
    # Sorted by date, stably: on a tie the store's state comes first and today's copy is the newer word.
    inputs = MasterInputs(
        directories=tuple(sorted(copies["nasdaq_trader"], key=lambda b: b.as_of)),
        screeners=tuple(sorted(copies["nasdaq_screener"], key=lambda b: b.as_of)),
        sec=tuple(sorted(copies["sec"], key=lambda b: b.as_of)),
        alpha_vantage=(fetched["alpha_vantage_listing_status"],) if "alpha_vantage_listing_status" in fetched else (),
        indices=index_membership_batch(),
        actions=load_corporate_actions(),
        sector_overrides=issuer_overrides(),
        reserved_keys=frozenset(s.key for s in state),
    )
    by_key = {s.key: s for s in stored}
    continued = inputs.reserved_keys
    screened = {row.symbol for row in fetched["nasdaq_screener"].rows} if "nasdaq_screener" in fetched else set()
    out: list[Security] = []
    merged: dict[str, str] = {}  # stored key -> the stored key of the security whose chains took its rows
    for security in build_securities(inputs, merged):
        before = by_key.get(security.key)
        if before is not None and security.key in continued:
            out.append(_continue(before, security, screened, inputs.directories[-1].as_of))
        elif before is not None and before.symbols and not security.is_listed and not before.is_listed:
            out.append(before)  # a delisting the store already knows, said again (Alpha Vantage's older records)
        else:
            out.append(security)
    kept = {s.key for s in out}
    absorbed: dict[str, str | None] = {key: merged.get(key) for key in continued if key not in kept}
    revised = _revise_by_cik(out, stored)
    absorbed.update((key, survivor) for key, survivor in revised.items() if key in by_key)
    # A survivor that was itself a stand-in the CIK revision replaced: the security that took its place.
    return out, {key: revised.get(survivor, survivor) if survivor else None for key, survivor in absorbed.items()}


_EQUITY = frozenset({"stock", "adr", "fund", "etf"})


def _revise_by_cik(out: list[Security], stored: Sequence[Security]) -> dict[str, str]:
    """Turn an earlier "delisting" into a rename when today's SEC copy shows the gone ticker's CIK under a ticker
    that appeared the very day it went (ZI gone and GTM new on one day, the SEC catching up a few days later): the
    gone security's asset continues under the new ticker. Rewrites ``out`` in place; returns the keys of the
    stand-ins it replaced (to be retired, as the snapshot's rebuild retires them), each with the key of the gone
    security that took its place."""
    gone: dict[int, list[Security]] = {}
    for s in stored:
        if not s.is_listed and s.region == "us" and s.cik is not None and s.delisted_on_source == "snapshots":
            gone.setdefault(s.cik, []).append(s)
    replaced: dict[str, str] = {}
    taken: set[str] = set()
    for index, new in enumerate(out):
        if not new.is_listed or new.cik is None or new.cik not in gone or len(new.symbols) != 1:
            continue
        start = new.symbols[0].valid_from
        matches = [
            g
            for g in gone[new.cik]
            if g.key not in taken
            and g.delisted_on == start
            and g.symbol != new.symbol
            and (g.asset_type == new.asset_type or {g.asset_type, new.asset_type} <= _EQUITY)
        ]
        if start is None or len(matches) != 1:
            continue
        old = matches[0]
        last = old.symbols[-1]
        spans = (
            *old.symbols[:-1],
            SymbolSpan(last.symbol, last.valid_from, start, "snapshots", False, old.delisted_after),
            SymbolSpan(new.symbol, start, None, "snapshots", False),
        )
        replaced[new.key] = old.key
        taken.add(old.key)
        out[index] = dataclasses.replace(
            new,
            key=old.key,
            symbols=spans,
            listed_on=old.listed_on or new.listed_on,
            listed_on_source=old.listed_on_source if old.listed_on else new.listed_on_source,
            sources=tuple(sorted({*old.sources, *new.sources})),
        )
    return replaced


# --- the sync ------------------------------------------------------------------------------------------------------
async def sync_live(
    uow: UnitOfWork,
    settings: Settings,
    *,
    sources: Collection[str] | None = None,
    force: bool = False,
    today: date | None = None,
    client: httpx.AsyncClient | None = None,
) -> SyncReport:
    """Fetch ``sources`` (default: all) live and apply them to the store opened by ``uow`` (one transaction, after
    every download has finished). ``today`` dates the sources that state no date (default: today, UTC)."""
    today = today or datetime.now(UTC).date()
    chosen = [s for s in SOURCES if not sources or s in sources]
    started = time.perf_counter()
    fetched = await _fetch(settings, chosen, today, client)
    fetch_s = time.perf_counter() - started
    async with uow() as session:
        report = await _apply_fetched(session, settings, fetched, force=force, today=today)
    return dataclasses.replace(report, timings=(("fetch and parse", fetch_s), *report.timings))


async def _apply_fetched(
    session: AsyncSession, settings: Settings, fetched: Sequence[_Fetched], *, force: bool, today: date
) -> SyncReport:
    previous = await _previous(session, settings)
    outcomes: list[SourceOutcome] = []
    usable: dict[str, SourceBatch[ListingRow]] = {}
    for item in fetched:
        if item.batch is None:
            status = "skipped" if item.skipped else "failed"
            outcomes.append(SourceOutcome(source=item.source, status=status, error=item.error))
            continue
        batch = item.batch
        last = previous.get(item.source)
        if last is not None and last.rows and len(batch.rows) < last.rows / 2 and not force:
            outcomes.append(
                SourceOutcome(
                    source=item.source,
                    status="refused",
                    as_of=batch.as_of,
                    rows=len(batch.rows),
                    error=f"{len(batch.rows)} rows, fewer than half of the {last.rows} of its last sync "
                    f"({last.as_of}); pass --force if the drop is real",
                )
            )
            continue
        usable[item.source] = batch
        outcomes.append(SourceOutcome(source=item.source, status="ok", as_of=batch.as_of, rows=len(batch.rows)))

    applied: LoadReport | None = None
    stored: list[Security] = []
    timings: list[tuple[str, float]] = []
    if usable:
        started = time.perf_counter()
        stored = await _stored_securities(session)
        timings.append(("read the master", time.perf_counter() - started))
    if usable and ("nasdaq_trader" in usable or any(s.is_listed for s in stored)):
        started = time.perf_counter()
        securities, absorbed = await anyio.to_thread.run_sync(merge_with_store, stored, usable, previous, today)
        timings.append(("merge", time.perf_counter() - started))
        indices = index_membership_batch()
        header = {
            "as_of": max(b.as_of for b in usable.values()).isoformat(),
            "sources": [
                *({"source": b.source, "as_of": b.as_of.isoformat(), "rows": len(b.rows)} for b in usable.values()),
                {"source": indices.source, "as_of": indices.as_of.isoformat(), "rows": len(indices.rows)},
            ],
        }
        applied = await apply_snapshot(
            session,
            Snapshot(header=header, securities=tuple(securities)),
            source=SYNC_SOURCE,
            retire=absorbed,
            successors={key: survivor for key, survivor in absorbed.items() if survivor is not None},
        )
    outcomes = await record_outcomes(session, outcomes, applied=applied, force=force)
    if applied is not None:
        timings.append(("write", applied.seconds))
    return SyncReport(tuple(outcomes), applied, tuple(timings))
