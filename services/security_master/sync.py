"""``universe-mcp listings sync --from-dir DIR``: rebuild the security master from a directory of dated source
copies and apply the difference to the store.

Per source (the NASDAQ Trader directory, the NASDAQ screener, SEC tickers, Alpha Vantage LISTING_STATUS):
- its copies are read with the strict parsers of ``providers.listings`` — a damaged file fails the read with a
  readable reason, recorded as a ``failed`` row, and the store is left as it was;
- its newest copy is *refused* as suspicious when it has fewer than half the rows of that source's previous
  successful sync (a truncated download reads as thousands of delistings), unless ``force``; the previous data then
  stays in effect (the master is rebuilt without that copy);
- every source synced gets a ``listing_syncs`` row (ok | failed | refused, rows, and for the directory — the only
  source that can say "gone" — the counts of new, delisted, renamed and changed securities).

The rebuilt master is applied in one transaction by ``store.apply_snapshot``: each security finds its asset by its
key, so asset ids never change, and the history is the one the copies show (a later copy can turn a "delisting"
into a rename: ZI -> GTM once the SEC copy links their CIK).

Live fetching (no ``--from-dir``) is services/security_master/live.py: it merges today's copies into the store's
state instead of rebuilding from copies.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from providers.listings.base import ListingSourceError
from providers.listings.recorded import RecordedListings, read_recorded
from services.security_master.history import build_securities
from services.security_master.snapshot import Snapshot, _inputs, snapshot_header
from services.security_master.store import SYNC_SOURCE, LoadReport, apply_snapshot
from storage.repositories import listings as repo

__all__ = ["SKIPPED", "SOURCES", "SourceOutcome", "SyncReport", "describe", "record_outcome", "sync_from_dir"]

# How the error of a source that was not configured (not fetched at all) begins: recorded as failed, never a problem.
SKIPPED = "skipped: "

# The listing sources a directory of copies holds, by the name their batches (and listing_syncs rows) carry.
SOURCES = ("nasdaq_trader", "nasdaq_screener", "sec", "alpha_vantage_listing_status")
_FIELDS = {
    "nasdaq_trader": "directories",
    "nasdaq_screener": "screeners",
    "sec": "sec",
    "alpha_vantage_listing_status": "alpha_vantage",
}


@dataclass(frozen=True, slots=True)
class SourceOutcome:
    source: str
    status: str  # ok | failed | refused | skipped (not configured: recorded as failed, with the reason)
    as_of: date | None = None
    rows: int = 0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SyncReport:
    outcomes: tuple[SourceOutcome, ...]
    applied: LoadReport | None
    timings: tuple[tuple[str, float], ...] = ()  # (phase, seconds) of a live sync: fetch, read, merge

    @property
    def ok(self) -> bool:
        return all(o.status in ("ok", "skipped") for o in self.outcomes)


def _read(directory: Path) -> RecordedListings:
    if not directory.is_dir():
        raise ListingSourceError("recorded", f"{directory} is not a directory")
    return read_recorded(directory)


async def sync_from_dir(
    session: AsyncSession, directory: Path, *, sources: Collection[str] | None = None, force: bool = False
) -> SyncReport:
    """Sync ``sources`` (default: all) from ``directory`` (the layout of providers/listings/recorded.py)."""
    chosen = [s for s in SOURCES if not sources or s in sources]
    try:
        recorded = await anyio.to_thread.run_sync(_read, Path(directory))
    except ListingSourceError as exc:
        # The directory is read all or nothing: the source whose file is damaged fails (every chosen one when the
        # damage is not a source's), and the store keeps what it has.
        named = [s for s in chosen if s == exc.source] or chosen
        failed = [SourceOutcome(source=s, status="failed", error=exc.reason[:500]) for s in named]
        for outcome in failed:
            await record_outcome(session, outcome, force=force)
        return SyncReport(tuple(failed), None)

    kept = {name: getattr(recorded, field) for name, field in _FIELDS.items()}
    outcomes: list[SourceOutcome] = []
    for name in chosen:
        batches = kept[name]
        if not batches:
            outcomes.append(SourceOutcome(source=name, status="failed", error=f"{directory} holds no copy of it"))
            continue
        newest = batches[-1]
        previous = await repo.last_ok_sync(session, name)
        if previous is not None and previous.rows and len(newest.rows) < previous.rows / 2 and not force:
            outcomes.append(
                SourceOutcome(
                    source=name,
                    status="refused",
                    as_of=newest.as_of,
                    rows=len(newest.rows),
                    error=f"{len(newest.rows)} rows, fewer than half of the {previous.rows} of its last sync "
                    f"({previous.as_of}); pass --force if the drop is real",
                )
            )
            kept[name] = batches[:-1]  # the previous data stays in effect
            continue
        outcomes.append(SourceOutcome(source=name, status="ok", as_of=newest.as_of, rows=len(newest.rows)))

    applied: LoadReport | None = None
    if kept["nasdaq_trader"] and any(o.status == "ok" for o in outcomes):
        fields: dict[str, Any] = {_FIELDS[name]: tuple(batches) for name, batches in kept.items()}
        inputs = dataclasses.replace(_inputs(recorded), **fields)
        securities = await anyio.to_thread.run_sync(build_securities, inputs)
        header = snapshot_header(recorded, inputs)
        applied = await apply_snapshot(
            session, Snapshot(header=header, securities=tuple(securities)), source=SYNC_SOURCE
        )
    outcomes = await record_outcomes(session, outcomes, applied=applied, force=force)
    return SyncReport(tuple(outcomes), applied)


async def record_outcomes(
    session: AsyncSession, outcomes: list[SourceOutcome], *, applied: LoadReport | None, force: bool
) -> list[SourceOutcome]:
    """One ``listing_syncs`` row per source. When nothing was applied, no source's new data is in effect: the ones
    fetched fine are recorded as failed, saying why. Returns the outcomes as recorded."""
    if applied is None:
        outcomes = [
            dataclasses.replace(
                o, status="failed", error="not applied: no symbol directory to build on (it was refused or failed)"
            )
            if o.status == "ok"
            else o
            for o in outcomes
        ]
    for outcome in outcomes:
        await record_outcome(
            session, outcome, force=force, applied=applied if outcome.source == "nasdaq_trader" else None
        )
    return outcomes


async def record_outcome(
    session: AsyncSession, outcome: SourceOutcome, *, force: bool, applied: LoadReport | None = None
) -> None:
    """The ``listing_syncs`` row of one source of one sync (a skipped source is a failed row: it was not synced,
    and its error says why)."""
    values: dict = {
        "source": outcome.source,
        "as_of": outcome.as_of,
        "status": "failed" if outcome.status == "skipped" else outcome.status,
        "rows": outcome.rows,
        "error": outcome.error,
        "forced": force,
    }
    if applied is not None:
        values.update(new=applied.new, delisted=applied.delisted, renamed=applied.renamed, changed=applied.changed)
    await repo.record_sync(session, values)


def describe(report: SyncReport) -> Sequence[str]:
    """One line per source, for the command line."""
    lines = []
    for o in report.outcomes:
        detail = f"{o.rows:,} rows as of {o.as_of}" if o.as_of else ""
        lines.append(
            f"{o.source}: {o.status}" + (f", {detail}" if detail else "") + (f" — {o.error}" if o.error else "")
        )
    if report.applied is not None:
        a = report.applied
        lines.append(
            f"master: {a.securities:,} securities as of {a.as_of} applied in {a.seconds:.1f} s "
            f"({a.new} new, {a.changed} updated, {a.delisted} newly delisted, {a.renamed} renamed)"
            + (f"; members of merged securities moved in {a.moved} universes" if a.moved else "")
        )
    else:
        lines.append("master: unchanged")
    if report.timings:
        lines.append("time: " + ", ".join(f"{phase} {seconds:.1f} s" for phase, seconds in report.timings))
    return lines
