"""`universe-mcp listings build-snapshot|sync`: the security master's data (docs/SECURITY_MASTER.md)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from core.settings import Settings

__all__ = ["add_listings_commands"]


def _build_snapshot(args: argparse.Namespace) -> int:
    from services.security_master.build import main as build

    return build(["--from", str(args.source), *(["--out", str(args.out)] if args.out else [])])


async def _sync(settings: Settings, args: argparse.Namespace) -> Any:
    from server.preflight import check_store
    from services.security_master.sync import sync_from_dir
    from storage.db import make_engine, make_sessionmaker, unit_of_work

    await check_store(settings)  # migrates as the owner; a store it cannot use is one line (exit code 3)
    engine = make_engine(settings.admin_sqlalchemy_url)
    try:
        async with unit_of_work(make_sessionmaker(engine)) as session:
            return await sync_from_dir(session, args.from_dir, sources=args.source, force=args.force)
    finally:
        await engine.dispose()


def _run_sync(args: argparse.Namespace) -> int:
    from services.security_master.sync import describe

    if args.from_dir is None:
        print(
            "universe-mcp: live fetching of the listing sources is not built yet; sync from a directory of dated "
            "copies with --from-dir DIR (the layout `listings build-snapshot --from` reads)",
            file=sys.stderr,
        )
        return 2
    report = asyncio.run(_sync(Settings(), args))
    for line in describe(report):
        print(line)
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
        description="Apply the listing sources to the store: each source all or nothing, a failed or suspicious "
        "one (fewer than half its previous rows) keeps its previous data; every source synced is a listing_syncs "
        "row. Live fetching is not built yet: pass --from-dir.\n\nexample:\n  universe-mcp listings sync "
        "--from-dir ~/listings-copies",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sync.add_argument("--source", action="append", choices=SOURCES, help="only this source (repeatable)")
    sync.add_argument("--from-dir", type=Path, help="a directory of dated copies instead of fetching live")
    sync.add_argument("--force", action="store_true", help="apply a source even when its row count fell by half")
    sync.set_defaults(func=_run_sync)
