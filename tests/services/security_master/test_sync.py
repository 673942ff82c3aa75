"""`listings sync --from-dir`: history from diffs over the dated copies (ids kept across revisions), each source
all or nothing, suspicious drops refused unless forced, every source a listing_syncs row."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.settings import Settings
from server.lifespan import open_app_state
from services import universes
from services.security_master.sync import sync_from_dir
from services.universes import UniverseService
from storage.models import Asset, ListingSync, UniverseAsset, UniverseAssetEvent
from tests.providers.listings.conftest import RECORDED

pytestmark = pytest.mark.anyio

DIRECTORY = {
    day: [f"nasdaqtrader/nasdaqlisted-{day}.txt", f"nasdaqtrader/otherlisted-{day}.txt"]
    for day in ("2022-05-11", "2025-07-21", "2026-03-03")
}
SEC = {day: [f"sec/company_tickers_exchange-{day}.json"] for day in ("2024-12-19", "2025-12-14")}


def stage(target: Path, files: list[str]) -> Path:
    """A directory of some of the recorded copies, byte for byte."""
    for name in files:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(RECORDED / name, target / name)
    return target


async def _holders(state, *symbols: str) -> dict[str, list[tuple]]:
    async with state.unit_of_work() as session:
        rows = await session.scalars(select(Asset).where(Asset.symbol.in_(symbols), Asset.master_key.is_not(None)))
        found: dict[str, list[tuple]] = {s: [] for s in symbols}
        for a in rows:
            found[a.symbol].append((a.id, a.listing_status, a.delisted_on))
        return found


async def _sync(state, directory: Path, **kwargs):
    async with state.unit_of_work() as session:
        return await sync_from_dir(session, directory, **kwargs)


async def test_syncing_the_copies_in_turn_reproduces_the_history_keeping_ids(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """The oracle: the cited changes (FB -> META 2022-06-09, Twitter removed 2022-11-08) and CIK continuity (ZI ->
    GTM, JBT -> JBTM: by 2025-07-21 the old ticker is gone and the new one has appeared, unlinked — a delisting;
    the SEC copy of 2025-12-14 shows the same CIK under the new ticker — a rename of the same asset)."""
    first = stage(tmp_path / "a", DIRECTORY["2022-05-11"])
    second = stage(tmp_path / "b", DIRECTORY["2022-05-11"] + DIRECTORY["2025-07-21"] + SEC["2024-12-19"])
    third = stage(tmp_path / "c", sum([*DIRECTORY.values(), *SEC.values()], []))
    async with open_app_state(make_settings(seed_catalog=False)) as state:
        report = await _sync(state, first, sources=["nasdaq_trader"])
        assert report.ok and report.applied is not None
        a = await _holders(state, "FB", "ZI", "JBT", "TWTR")
        [(zi_id, zi_status, _)] = a["ZI"]
        [(jbt_id, _, _)] = a["JBT"]
        [(meta_id, _, _)] = a["FB"]
        assert zi_status == "listed" and a["TWTR"][0][1:] == ("delisted", date(2022, 11, 8))

        await _sync(state, second, sources=["nasdaq_trader", "sec"])
        b = await _holders(state, "META", "ZI", "GTM", "JBTM")
        assert [row[0] for row in b["META"]] == [meta_id]  # the rename kept Meta's asset
        assert b["ZI"] == [(zi_id, "delisted", date(2025, 7, 21))]  # gone, nothing links it yet
        assert [row[1] for row in b["GTM"]] == ["listed"] and b["GTM"][0][0] != zi_id
        stand_in = b["GTM"][0][0]
        async with state.unit_of_work() as session:  # a universe holding the stand-in, between the two syncs
            universe, _ = await UniverseService(session, state.local_caller).create(
                "Software", symbols=["AAPL", "GTM"], validate=False
            )

        report = await _sync(state, third, sources=["nasdaq_trader", "sec"])
        c = await _holders(state, "ZI", "GTM", "JBT", "JBTM")
        assert c["ZI"] == [] and c["JBT"] == []
        # Revised: the "delisting" was a rename — the same asset, listed under GTM; the stand-in is retired.
        assert (zi_id, "listed", None) in c["GTM"] and [r[:2] for r in c["GTM"] if r[0] != zi_id] == [
            (stand_in, "delisted")
        ]
        # ... and the universe that held the stand-in holds ZoomInfo's asset in its place, the events saying why.
        async with state.unit_of_work() as session:
            members = await session.execute(
                select(UniverseAsset.asset_id, UniverseAsset.position)
                .where(UniverseAsset.universe_id == uuid.UUID(universe.id))
                .order_by(UniverseAsset.position)
            )
            assert [tuple(m) for m in members.all()][1:] == [(zi_id, 1)]
            # Every event has a reason; the merge's are those not written at the universe's creation.
            reasons = await session.scalars(
                select(UniverseAssetEvent.reason).where(UniverseAssetEvent.reason != universes.REASON_CREATED)
            )
            reason = (
                "GTM is ZoomInfo Technologies Inc. (formerly ZI), as the listings sync of 2026-03-03 shows: its two"
            )
            assert list(reasons) == [f"{reason} records were merged into one"] * 2
        assert (jbt_id, "listed", None) in c["JBTM"]
        assert report.applied is not None and report.applied.renamed > 0
        async with state.unit_of_work() as session:
            rows = list(await session.scalars(select(ListingSync).order_by(ListingSync.id)))
        assert {(r.source, r.status) for r in rows} == {("nasdaq_trader", "ok"), ("sec", "ok"), ("master", "ok")}
        last_directory = [r for r in rows if r.source == "nasdaq_trader"][-1]
        assert (last_directory.as_of, last_directory.rows) == (date(2026, 3, 3), report.outcomes[0].rows)
        assert last_directory.renamed == report.applied.renamed


async def test_a_source_with_less_than_half_its_rows_is_refused_unless_forced(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    copies = stage(tmp_path / "d", DIRECTORY["2026-03-03"])
    async with open_app_state(make_settings(seed_catalog=False)) as state:
        async with state.unit_of_work() as session:  # a previous sync that saw far more rows
            session.add(ListingSync(source="nasdaq_trader", as_of=date(2026, 2, 1), status="ok", rows=100_000))
        refused = await _sync(state, copies)
        assert [(o.source, o.status) for o in refused.outcomes] == [
            ("nasdaq_trader", "refused"),
            ("nasdaq_screener", "failed"),
            ("sec", "failed"),
            ("alpha_vantage_listing_status", "failed"),
        ]
        assert "fewer than half of the 100000" in refused.outcomes[0].error and refused.applied is None
        async with state.unit_of_work() as session:
            assert not await session.scalar(
                select(func.count()).select_from(Asset).where(Asset.master_key.is_not(None))
            )
        forced = await _sync(state, copies, sources=["nasdaq_trader"], force=True)
        assert forced.ok and forced.applied is not None and forced.applied.new > 10_000
        async with state.unit_of_work() as session:
            last = await session.scalar(
                select(ListingSync).where(ListingSync.source == "nasdaq_trader").order_by(ListingSync.id.desc())
            )
        assert last is not None and (last.status, last.forced, last.new) == ("ok", True, forced.applied.new)


@pytest.mark.parametrize(
    ("name", "body", "reason"),
    [
        ("sec/company_tickers_exchange-2025-12-14.json", b"<html><body>Access denied</body></html>", "sec"),
        ("nasdaqtrader/nasdaqlisted-2026-03-03.txt", b"Symbol|Security Name\nAAPL|Apple\n", "nasdaq"),
    ],
    ids=["sec-html", "directory-truncated"],
)
async def test_a_damaged_source_fails_with_a_reason_and_changes_nothing(
    make_settings: Callable[..., Settings], tmp_path: Path, name: str, body: bytes, reason: str
) -> None:
    copies = stage(tmp_path / "e", DIRECTORY["2026-03-03"] + SEC["2025-12-14"])
    (copies / name).write_bytes(body)
    async with open_app_state(make_settings(seed_catalog=False)) as state:
        report = await _sync(state, copies)
        assert report.applied is None and not report.ok
        failed = [o for o in report.outcomes if o.status == "failed"]
        assert failed and all(o.error and "Traceback" not in o.error for o in failed)
        async with state.unit_of_work() as session:
            assert not await session.scalar(
                select(func.count()).select_from(Asset).where(Asset.master_key.is_not(None))
            )
            statuses = set(await session.scalars(select(ListingSync.status)))
        assert statuses == {"failed"}


def test_the_cli_syncs_from_a_directory_or_live_and_not_live_when_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], listing_server
) -> None:
    from server.cli import main
    from tests.services.security_master.test_live_sync import serve

    copies = stage(tmp_path / "f", DIRECTORY["2026-03-03"])
    monkeypatch.setenv("UNIVERSE_MCP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("UNIVERSE_MCP_SEED_CATALOG", "0")
    assert main(["listings", "sync", "--from-dir", str(copies), "--source", "nasdaq_trader"]) == 0
    out = capsys.readouterr().out
    assert "nasdaq_trader: ok, 12,348 rows as of 2026-03-03" in out and "master:" in out

    serve(listing_server, directory="2026-03-03")
    monkeypatch.setenv("UNIVERSE_MCP_LISTINGS_NASDAQ_TRADER_URL", listing_server.url("/symdir"))
    assert main(["listings", "sync", "--source", "nasdaq_trader"]) == 0
    out = capsys.readouterr().out
    # The same copy again, fetched live: nothing to write.
    assert "nasdaq_trader: ok, 12,348 rows as of 2026-03-03" in out and "(0 new, 0 updated," in out
    assert [r.path for r in listing_server.requests] == ["/symdir/nasdaqlisted.txt", "/symdir/otherlisted.txt"]

    monkeypatch.setenv("UNIVERSE_MCP_OFFLINE", "true")
    assert main(["listings", "sync"]) == 2
    assert "--from-dir" in capsys.readouterr().err


def test_a_sync_from_the_command_line_rebalances_each_scheduled_dynamic_universe_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As after the server's or a worker's periodic sync (tests/workers/test_rebalance_jobs.py): the names a manual
    sync lists join the scheduled dynamic universes that select them, once per sync; one without a schedule waits."""
    import asyncio

    from server.cli import main
    from services.rebalancing import DynamicUniverses
    from storage.models import RebalanceRun
    from storage.repositories import universes as universes_repo

    for name, value in {"DATA_DIR": str(tmp_path / "data"), "SEED_CATALOG": "0", "LISTINGS_LOAD": "0"}.items():
        monkeypatch.setenv(f"UNIVERSE_MCP_{name}", value)
    monkeypatch.setenv("UNIVERSE_MCP_OFFLINE", "true")
    rules = {"field": "symbol", "op": "in", "value": ["AAPL", "ZION"]}

    async def create() -> tuple[str, str]:
        async with open_app_state(Settings()) as state, state.unit_of_work() as session:
            service = DynamicUniverses(session, state.local_caller)
            scheduled, _ = await service.create("Two names", rules, rebalance="daily")
            on_request, _ = await service.create("Two names, on request", rules, rebalance=None)
            return scheduled.id, on_request.id

    async def read(uid: str) -> tuple[set[str], list[str]]:
        async with open_app_state(Settings()) as state, state.unit_of_work() as session:
            members = {s for s, _ in await session.run_sync(universes_repo.member_symbols, uuid.UUID(uid))}
            triggers = await session.scalars(
                select(RebalanceRun.trigger).where(RebalanceRun.universe_id == uuid.UUID(uid))
            )
            return members, sorted(triggers)

    scheduled, on_request = asyncio.run(create())
    assert asyncio.run(read(scheduled)) == (set(), ["create"])  # an empty master: nothing to select yet

    copies = stage(tmp_path / "g", DIRECTORY["2026-03-03"])
    assert main(["listings", "sync", "--from-dir", str(copies), "--source", "nasdaq_trader"]) == 0
    out = capsys.readouterr().out
    assert "rebalanced 1 of 1 scheduled dynamic universes for this sync (+2 -0 members)" in out
    assert asyncio.run(read(scheduled)) == ({"AAPL", "ZION"}, ["create", "listings_sync"])
    assert asyncio.run(read(on_request)) == (set(), ["create"])

    # The same copies again change nothing in the master: no rebalance follows.
    assert main(["listings", "sync", "--from-dir", str(copies), "--source", "nasdaq_trader"]) == 0
    assert "rebalanced" not in capsys.readouterr().out
    assert asyncio.run(read(scheduled)) == ({"AAPL", "ZION"}, ["create", "listings_sync"])
