"""`universe-mcp listings build-snapshot|sync`: the security master's data (docs/SECURITY_MASTER.md)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.settings import Settings

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from services.universes import Limits

__all__ = ["add_listings_commands"]


def _build_snapshot(args: argparse.Namespace) -> int:
    from services.security_master.build import main as build

    return build(["--from", str(args.source), *(["--out", str(args.out)] if args.out else [])])


@dataclass
class _Store:
    """The store as the tables' owner, acting for each universe's owner on PostgreSQL (workers/batches.StoreEnv)."""

    sessions: async_sessionmaker[AsyncSession]
    scoped: bool
    limits: Limits

    def uow(self, owner_id: uuid.UUID | None = None) -> AbstractAsyncContextManager[AsyncSession]:
        from storage.db import unit_of_work

        return unit_of_work(self.sessions, owner_id=owner_id if self.scoped else None)


async def _sync(settings: Settings, args: argparse.Namespace) -> tuple[Any, Any]:
    """The sync's report and, when it changed the security master, the report of the rebalances that followed it
    (every scheduled dynamic universe once, as after the periodic sync: workers/runtime.py), else None."""
    from core.wiring import limits_from
    from server.preflight import check_store
    from services.security_master.live import sync_live
    from services.security_master.sync import sync_from_dir
    from storage.db import make_engine, make_sessionmaker, unit_of_work
    from workers.batches import rebalance_after_sync, sync_changed

    await check_store(settings)  # migrates as the owner; a store it cannot use is one line (exit code 3)
    engine = make_engine(settings.admin_sqlalchemy_url)
    try:
        sessions = make_sessionmaker(engine)
        if args.from_dir is None:
            report = await sync_live(lambda: unit_of_work(sessions), settings, sources=args.source, force=args.force)
        else:
            async with unit_of_work(sessions) as session:
                report = await sync_from_dir(session, args.from_dir, sources=args.source, force=args.force)
        sync_id = sync_changed(report)
        if sync_id is None:
            return report, None
        store = _Store(sessions, scoped=engine.dialect.name == "postgresql", limits=limits_from(settings))
        return report, await rebalance_after_sync(store, sync_id)
    finally:
        await engine.dispose()


def _describe_rebalances(report: Any) -> str:
    text = (
        f"rebalanced {report.applied} of {report.seen} scheduled dynamic universes for this sync "
        f"(+{report.additions} -{report.removals} members)"
    )
    if report.failed:
        codes = ", ".join(sorted({code for _, code in report.failures}))
        text += f"; {report.failed} not rebalanced ({codes}): their next scheduled rebalance tries again"
    return text


def _run_sync(args: argparse.Namespace) -> int:
    from services.security_master.sync import describe

    settings = Settings()
    if args.from_dir is None and settings.offline:
        print(
            "universe-mcp: offline=true: the listing sources are not fetched; sync from a directory of dated copies "
            "with --from-dir DIR, or set UNIVERSE_MCP_OFFLINE=false",
            file=sys.stderr,
        )
        return 2
    started = time.perf_counter()
    report, rebalances = asyncio.run(_sync(settings, args))
    for line in describe(report):
        print(line)
    if rebalances is not None:
        print(_describe_rebalances(rebalances))
    print(f"took {time.perf_counter() - started:.1f} s")
    return 0 if report.ok else 1


def add_listings_commands(sub: Any) -> None:
    from services.security_master.sync import SOURCES

    listings = sub.add_parser(
        "listings",
        help="the US listings data of the security master",
        description="The security master's US listings: build the shipped snapshot from recorded source copies, "
        "or apply sources to the store.",
    )
    actions = listings.add_subparsers(dest="listings_command", required=True)
    build = actions.add_parser(
        "build-snapshot",
        help="build the listings snapshot from a directory of recorded source copies",
        description="Build the compact, versioned listings snapshot from a directory of dated source copies (the "
        "same inputs give the same bytes).\n\nexample:\n  universe-mcp listings build-snapshot --from "
        "~/listings-copies",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    build.add_argument("--from", dest="source", required=True, type=Path, help="directory of dated copies")
    build.add_argument("--out", type=Path, help="output file (default: the snapshot inside the package)")
    build.set_defaults(func=_build_snapshot)
    sync = actions.add_parser(
        "sync",
        help="apply the listing sources to the store",
        description="Apply the listing sources to the store: fetched live (the NASDAQ Trader directory, the NASDAQ "
        "screener, SEC tickers with UNIVERSE_MCP_SEC_USER_AGENT, Alpha Vantage with a key) and merged into the "
        "master the store holds, or rebuilt from a directory of dated copies (--from-dir). Each source all or "
        "nothing: a failed or suspicious one (fewer than half its previous rows) keeps its previous data; every "
        "source synced is a listing_syncs row.\n\nexamples:\n  universe-mcp listings sync\n"
        "  universe-mcp listings sync --source nasdaq_trader\n  universe-mcp listings sync --from-dir "
        "~/listings-copies",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sync.add_argument("--source", action="append", choices=SOURCES, help="only this source (repeatable)")
    sync.add_argument("--from-dir", type=Path, help="a directory of dated copies instead of fetching live")
    sync.add_argument("--force", action="store_true", help="apply a source even when its row count fell by half")
    sync.set_defaults(func=_run_sync)
