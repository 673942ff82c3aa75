"""`listings sync` without --from-dir: each source fetched live (here from a local server serving the recorded
files byte for byte), applied all or nothing, merged into the master the store holds (history kept, ids kept), and
an unchanged re-sync writing no row."""

from __future__ import annotations

import csv
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from core.settings import Settings
from server.lifespan import open_app_state
from services.health import ServiceHealth, listings_health, with_listings
from services.history import HistoryService
from services.schemas import Caller
from services.security_master import live
from services.security_master.live import sync_live
from services.universes import UniverseService
from storage.models import Asset, AssetSymbol, ListingSync, UniverseAsset, UniverseAssetEvent
from storage.repositories.users import get_or_create_user
from tests.providers.listings.conftest import HTML_PAGE, RECORDED, ListingServer, Reply, recorded, truncated

pytestmark = pytest.mark.anyio

SCREENER = ("nasdaq", "nyse", "amex")


def serve(
    server: ListingServer,
    *,
    directory: str | None = None,
    screener: str | None = None,
    sec: str | None = None,
    alpha_vantage: str | None = None,
) -> None:
    """Serve the recorded copies of these dates where the settings of ``live_settings`` look for them."""
    routes = server.routes
    routes.clear()
    if directory:
        for name in ("nasdaqlisted", "otherlisted"):
            routes[f"/symdir/{name}.txt"] = Reply(body=recorded(f"nasdaqtrader/{name}-{directory}.txt"))
    if screener:
        for exchange in SCREENER:
            body = recorded(f"nasdaq_screener/{exchange}_full_tickers-{screener}.json")
            routes[("/screener", "exchange", exchange)] = Reply(body=body, content_type="application/json")
    if sec:
        body = recorded(f"sec/company_tickers_exchange-{sec}.json")
        routes["/sec.json"] = Reply(body=body, content_type="application/json")
    if alpha_vantage:
        for state in ("active", "delisted"):
            body = recorded(f"alpha_vantage_listing_status/listing_status-{state}-{alpha_vantage}.csv")
            routes[("/av", "state", state)] = Reply(body=body, content_type="application/x-download")


def live_settings(make_settings: Callable[..., Settings], server: ListingServer, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "seed_catalog": False,
        "listings_nasdaq_trader_url": server.url("/symdir"),
        "listings_nasdaq_screener_url": server.url("/screener"),
        "listings_sec_url": server.url("/sec.json"),
        "alpha_vantage_base_url": server.url("/av"),
        "alpha_vantage_api_key": "test-key",
        "sec_user_agent": "Universe MCP tests tests@example.com",
        "listings_fetch_deadline_s": 20.0,
    }
    values.update(overrides)
    return make_settings(**values)


async def _sync(state, **kwargs):
    return await sync_live(state.unit_of_work, state.settings, **kwargs)


async def _assets(state) -> dict:
    """Every master asset as (symbol, listing_status, delisted_on, updated_at), and every ticker span's id."""
    async with state.unit_of_work() as session:
        rows = await session.execute(
            select(Asset.id, Asset.symbol, Asset.listing_status, Asset.delisted_on, Asset.updated_at).where(
                Asset.master_key.is_not(None)
            )
        )
        spans = set(await session.scalars(select(AssetSymbol.id)))
    return {"assets": {r.id: tuple(r[1:]) for r in rows}, "spans": spans}


async def _syncs(state) -> list[tuple]:
    async with state.unit_of_work() as session:
        rows = await session.execute(
            select(ListingSync.source, ListingSync.status, ListingSync.as_of, ListingSync.rows, ListingSync.error)
            .where(ListingSync.source != "master")
            .order_by(ListingSync.id)
        )
        return [tuple(r) for r in rows]


async def test_every_source_syncs_live_from_the_recorded_files(
    make_settings: Callable[..., Settings], listing_server: ListingServer
) -> None:
    serve(listing_server, directory="2026-03-03", screener="2026-08-22", sec="2025-12-14", alpha_vantage="2026-04-09")
    async with open_app_state(live_settings(make_settings, listing_server)) as state:
        report = await _sync(state, today=date(2026, 8, 22))
        assert report.ok and report.applied is not None, report
        by_source = {o.source: o for o in report.outcomes}
        # Every row of every source (test issues dropped): 5,363 + 7,018 directory rows less 33 test issues.
        assert {s: (o.status, o.rows) for s, o in by_source.items()} == {
            "nasdaq_trader": ("ok", 12_348),
            "nasdaq_screener": ("ok", 4_179 + 2_711 + 292),
            "sec": ("ok", 10_218),
            "alpha_vantage_listing_status": ("ok", 13_267 + 9_337),
        }
        assert by_source["nasdaq_trader"].as_of == date(2026, 3, 3)  # the directory's own footer date
        # Each source's data reached the master: the directory's ETF flag, the screener's sector, the SEC's CIK,
        # Alpha Vantage's listing date.
        async with state.unit_of_work() as session:
            aapl = await session.scalar(select(Asset).where(Asset.symbol == "AAPL", Asset.listing_status == "listed"))
            arkk = await session.scalar(select(Asset).where(Asset.symbol == "ARKK", Asset.listing_status == "listed"))
        assert aapl is not None and arkk is not None
        assert (aapl.cik, aapl.sector, aapl.listed_on) == ("0000320193", "Information Technology", date(1980, 12, 12))
        assert arkk.asset_type == "etf"
    seen = {(r.path, r.headers.get("user-agent", "")) for r in listing_server.requests}
    assert ("/sec.json", "Universe MCP tests tests@example.com") in seen
    assert any(path == "/screener" and agent.startswith("Mozilla/5.0") for path, agent in seen)


def _oracle() -> list[dict[str, str]]:
    with (RECORDED / "changes" / "symbol_changes.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def _directory_symbols(day: str) -> set[str]:
    symbols: set[str] = set()
    for name in ("nasdaqlisted", "otherlisted"):
        lines = recorded(f"nasdaqtrader/{name}-{day}.txt").decode().splitlines()
        symbols.update(line.split("|")[0] for line in lines[1:] if "|" in line and "File Creation Time" not in line)
    return symbols


async def test_two_live_syncs_over_older_then_newer_copies_give_the_cited_history_keeping_ids(
    make_settings: Callable[..., Settings], listing_server: ListingServer
) -> None:
    """The oracle is the cited changes table: every rename whose old ticker the older copy lists and whose new one
    the newer copy lists is the same asset under the new ticker; every removal of a ticker the older copy lists is
    a delisting on the cited date. CIK continuity (the SEC copies): SQ -> XYZ and ZI -> GTM, uncited, are renames
    of the same asset too."""
    older, newer = _directory_symbols("2022-05-11"), _directory_symbols("2026-03-03")
    renames = [r for r in _oracle() if r["old_symbol"] in older and r["new_symbol"] and r["new_symbol"] in newer]
    removals = [r for r in _oracle() if r["old_symbol"] in older and not r["new_symbol"]]
    assert len(renames) >= 4 and len(removals) >= 5  # FB, ANTM, ABC, PEAK; TWTR, ZNGA, CERN, VMW, DOC ...
    async with open_app_state(live_settings(make_settings, listing_server)) as state:
        serve(listing_server, directory="2022-05-11")
        assert (await _sync(state, sources=["nasdaq_trader"], today=date(2022, 5, 11))).ok
        # Each ticker of the older copy, one asset each (some already known to be renamed or removed later on:
        # the cited table says so).
        listed = {symbol: asset_id for asset_id, (symbol, *_) in (await _assets(state))["assets"].items()}
        assert all(row["old_symbol"] in listed for row in renames + removals)
        # The SEC copy of 2024-12-19 gives the store its CIKs (SQ's and ZI's among them).
        serve(listing_server, sec="2024-12-19")
        assert (await _sync(state, sources=["sec"], today=date(2024, 12, 19))).ok

        # The newer directory copy alone: ZI and SQ are gone, GTM and XYZ new, and nothing links them yet.
        serve(listing_server, directory="2026-03-03")
        report = await _sync(state, sources=["nasdaq_trader"], today=date(2026, 3, 3))
        assert report.ok and report.applied is not None and report.applied.renamed >= len(renames)
        middle = (await _assets(state))["assets"]
        assert middle[listed["ZI"]][1:3] == ("delisted", date(2026, 3, 3))
        gtm = [i for i, (symbol, status, *_) in middle.items() if symbol == "GTM" and status == "listed"]
        assert gtm and gtm[0] != listed["ZI"]

        # Two days later the SEC copy shows ZoomInfo's CIK under GTM: the "delisting" was a rename of ZI's asset.
        serve(listing_server, sec="2025-12-14")
        assert (await _sync(state, sources=["sec"], today=date(2026, 3, 5))).ok
        after = (await _assets(state))["assets"]
        assert after[gtm[0]][1] == "delisted"  # the stand-in, retired

    for row in renames:
        old, new = row["old_symbol"], row["new_symbol"]
        assert after[listed[old]][:2] == (new, "listed"), row
    for row in removals:
        asset_id = listed[row["old_symbol"]]
        assert after[asset_id][1:3] == ("delisted", date.fromisoformat(row["effective_date"])), row
    for old, new in (("SQ", "XYZ"), ("ZI", "GTM")):
        assert after[listed[old]][:2] == (new, "listed")
    # FB is another security today (a ProShares ETF): a new asset, while Meta's keeps its FB years.
    fb_now = [i for i, (symbol, status, *_) in after.items() if symbol == "FB" and status == "listed"]
    assert fb_now and fb_now[0] != listed["FB"]
    async with open_app_state(live_settings(make_settings, listing_server)) as state:
        async with state.unit_of_work() as session:
            spans = (
                await session.execute(
                    select(AssetSymbol.symbol, AssetSymbol.valid_from, AssetSymbol.valid_to, AssetSymbol.exact)
                    .where(AssetSymbol.asset_id == listed["FB"])
                    .order_by(AssetSymbol.id)
                )
            ).all()
    assert [tuple(s) for s in spans] == [("FB", None, date(2022, 6, 9), True), ("META", date(2022, 6, 9), None, True)]


async def _universe(state, owner: str, name: str, symbols: list[str]) -> tuple[Caller, str]:
    async with state.unit_of_work() as session:
        user = await get_or_create_user(session, owner)
        who = Caller(owner_id=user.id, name=user.name)
        universe, _ = await UniverseService(session, who).create(name, symbols=symbols, validate=False)
    return who, universe.id


async def _add(state, who: Caller, universe_id: str, symbols: list[str]) -> None:
    async with state.unit_of_work() as session:
        _, report = await UniverseService(session, who).add_assets(universe_id, symbols, validate=False)
    assert report.counts.get("added") == len(symbols), report


async def _membership(state, universe_id: str) -> tuple[list[tuple], list[tuple]]:
    """(members as (asset id, position), events as (action, asset id, reason)) of one universe."""
    async with state.unit_of_work() as session:
        members = await session.execute(
            select(UniverseAsset.asset_id, UniverseAsset.position)
            .where(UniverseAsset.universe_id == uuid.UUID(universe_id))
            .order_by(UniverseAsset.position)
        )
        events = await session.execute(
            select(UniverseAssetEvent.action, UniverseAssetEvent.asset_id, UniverseAssetEvent.reason)
            .where(UniverseAssetEvent.universe_id == uuid.UUID(universe_id))
            .order_by(UniverseAssetEvent.id)
        )
        return [tuple(r) for r in members.all()], [tuple(r) for r in events.all()]


async def test_universes_holding_the_stand_in_hold_the_renamed_asset_once_the_sec_links_them(
    make_settings: Callable[..., Settings], listing_server: ListingServer
) -> None:
    """GTM, first seen as a new listing (ZI gone the same day), is ZoomInfo's ZI once the SEC copy shows its CIK
    under GTM: the stand-in is retired, and universes of every owner that held it hold ZoomInfo's asset at the
    same position (or only lose the stand-in when they hold ZoomInfo's asset already), with events naming the
    merge; the history they replay is their membership; a re-sync moves nothing."""
    async with open_app_state(live_settings(make_settings, listing_server)) as state:
        serve(listing_server, directory="2022-05-11")
        assert (await _sync(state, sources=["nasdaq_trader"], today=date(2022, 5, 11))).ok
        alice, both = await _universe(state, "alice", "Both", ["ZI"])  # ZoomInfo's asset, listed as ZI
        serve(listing_server, sec="2024-12-19")
        assert (await _sync(state, sources=["sec"], today=date(2024, 12, 19))).ok
        serve(listing_server, directory="2026-03-03")
        assert (await _sync(state, sources=["nasdaq_trader"], today=date(2026, 3, 3))).ok
        assets = (await _assets(state))["assets"]
        [zoominfo] = [i for i, (symbol, *_) in assets.items() if symbol == "ZI"]
        [stand_in] = [i for i, (symbol, status, *_) in assets.items() if symbol == "GTM" and status == "listed"]
        _, mixed = await _universe(state, "alice", "Mixed", ["AAPL", "GTM", "MSFT"])
        await _add(state, alice, both, ["GTM"])
        bob, theirs = await _universe(state, "bob", "Theirs", ["GTM"])
        before, _ = await _membership(state, mixed)

        serve(listing_server, sec="2025-12-14")
        report = await _sync(state, sources=["sec"], today=date(2026, 3, 5))
        assert report.ok and (await _assets(state))["assets"][zoominfo][:2] == ("GTM", "listed")
        members, events = await _membership(state, mixed)
        assert members == [(zoominfo if a == stand_in else a, p) for a, p in before]
        assert report.applied is not None and report.applied.moved == 3
        reason = events[-1][2]
        assert [e[:2] for e in events[-2:]] == [("removed", stand_in), ("added", zoominfo)]
        assert events[-2][2] == reason and reason.startswith("GTM is ZoomInfo Technologies Inc. (formerly ZI), ")
        assert reason.endswith("as the listings sync of 2026-03-05 shows: its two records were merged into one")
        assert (await _membership(state, theirs))[0] == [(zoominfo, 0)]
        members, events = await _membership(state, both)
        assert members == [(zoominfo, 0)] and [e[:2] for e in events[-1:]] == [("removed", stand_in)]
        for who, universe_id in ((alice, mixed), (alice, both), (bob, theirs)):
            members, _ = await _membership(state, universe_id)
            async with state.unit_of_work() as session:
                service = UniverseService(session, who)
                now = await service.get(universe_id)
                then = await service.get(universe_id, as_of=datetime.now(UTC) + timedelta(seconds=1))
                turnover = await HistoryService(session, who).turnover(
                    universe_id, until=datetime.now(UTC) + timedelta(seconds=1)
                )
            symbols = [m.symbol for m in now.assets or []]
            assert len(symbols) == len(set(symbols)) == len(members)
            assert sorted(m.symbol for m in then.assets or []) == sorted(symbols)
            assert turnover.size_end == len(members)
            assert turnover.additions - turnover.removals == turnover.size_end - turnover.size_start
        assert [(m.symbol, m.former_symbol) for m in now.assets or []] == [("GTM", "ZI")]

        # The next day's sync of the same copy: nothing moves, no event is written.
        counted = [len((await _membership(state, u))[1]) for u in (mixed, both, theirs)]
        again = await _sync(state, sources=["sec"], today=date(2026, 3, 6))
        assert again.ok and again.applied is not None and again.applied.moved == 0
        assert [len((await _membership(state, u))[1]) for u in (mixed, both, theirs)] == counted


BROKEN = {
    "directory-html": ("nasdaq_trader", "/symdir/otherlisted.txt", Reply(body=HTML_PAGE, content_type="text/html"),
                       "HTML page"),
    "directory-truncated": ("nasdaq_trader", "/symdir/nasdaqlisted.txt",
                            Reply(body=truncated(recorded("nasdaqtrader/nasdaqlisted-2026-03-03.txt"))),
                            "no 'File Creation Time' footer"),
    "sec-429": ("sec", "/sec.json", Reply(status=429, body=b"slow down", headers={"Retry-After": "60"}),
                "rate limited (HTTP 429, retry after 60 s)"),
    "sec-503": ("sec", "/sec.json", Reply(status=503, body=b"unavailable"), "server error (HTTP 503)"),
    "screener-hang": ("nasdaq_screener", ("/screener", "exchange", "nyse"),
                      Reply(body=b"[]", content_type="application/json", delay_s=6.0),
                      "no complete answer within 2 s"),
    "alpha-vantage-truncated": ("alpha_vantage_listing_status", ("/av", "state", "delisted"),
                                Reply(body=truncated(recorded(
                                    "alpha_vantage_listing_status/listing_status-delisted-2026-04-09.csv"), 0.37)),
                                "truncated"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BROKEN))
async def test_a_broken_source_fails_with_its_reason_and_the_store_keeps_its_data(
    make_settings: Callable[..., Settings], listing_server: ListingServer, case: str
) -> None:
    source, route, reply, reason = BROKEN[case]
    serve(listing_server, directory="2026-03-03", screener="2026-08-22", sec="2025-12-14", alpha_vantage="2026-04-09")
    # A deadline short enough for the hang to miss it, long enough for a download from this machine under load.
    settings = live_settings(make_settings, listing_server, listings_fetch_deadline_s=2.0 if "hang" in case else 20.0)
    chosen = sorted({"nasdaq_trader", "sec", source})
    async with open_app_state(settings) as state:
        assert (await _sync(state, sources=chosen, today=date(2026, 8, 22))).ok
        before = await _assets(state)
        listing_server.routes[route] = reply
        report = await _sync(state, sources=chosen, today=date(2026, 8, 23))
        failed = [o for o in report.outcomes if o.status != "ok"]
        assert [(o.source, o.status) for o in failed] == [(source, "failed")]
        assert reason in failed[0].error, failed[0].error
        assert await _assets(state) == before  # the other sources said the same again: not a row written
        last = (await _syncs(state))[-len(chosen) :]
        assert [(row[0], row[1], row[4]) for row in last if row[0] == source] == [(source, "failed", failed[0].error)]


async def test_an_unchanged_resync_writes_no_row(
    make_settings: Callable[..., Settings], listing_server: ListingServer
) -> None:
    """The next day's sync of the same copies (the directory's own date unchanged, the others dated by the day of
    the request) finds nothing new: no asset row, no ticker span is written."""
    serve(listing_server, directory="2026-03-03", screener="2026-08-22", sec="2025-12-14")
    chosen = ["nasdaq_trader", "nasdaq_screener", "sec"]
    async with open_app_state(live_settings(make_settings, listing_server)) as state:
        first = await _sync(state, sources=chosen, today=date(2026, 8, 22))
        assert first.applied is not None and first.applied.new > 10_000
        before = await _assets(state)
        again = await _sync(state, sources=chosen, today=date(2026, 8, 23))
        assert again.ok and again.applied is not None
        assert (again.applied.new, again.applied.changed, again.applied.renamed, again.applied.delisted) == (0, 0, 0, 0)
        assert await _assets(state) == before


async def test_unconfigured_sources_are_skipped_with_the_setting_to_set(
    make_settings: Callable[..., Settings], listing_server: ListingServer
) -> None:
    serve(listing_server, sec="2025-12-14", alpha_vantage="2026-04-09")
    settings = live_settings(make_settings, listing_server, sec_user_agent=None, alpha_vantage_api_key=None)
    async with open_app_state(settings) as state:
        report = await _sync(state, sources=["sec", "alpha_vantage_listing_status"])
        assert report.ok and report.applied is None  # skipped is not a failure of the sync
        assert [(o.source, o.status) for o in report.outcomes] == [
            ("sec", "skipped"),
            ("alpha_vantage_listing_status", "skipped"),
        ]
        rows = await _syncs(state)
    assert [(r[0], r[1]) for r in rows] == [("sec", "failed"), ("alpha_vantage_listing_status", "failed")]
    assert "UNIVERSE_MCP_SEC_USER_AGENT" in rows[0][4] and "UNIVERSE_MCP_ALPHA_VANTAGE_API_KEY" in rows[1][4]
    assert listing_server.requests == []  # nothing was asked of either
    # Not configured is not a problem of the service (a failed fetch is).
    async with open_app_state(settings) as state:
        async with state.unit_of_work() as session:
            health = with_listings(
                ServiceHealth(status="ok", mode="embedded", providers=[]), await listings_health(session)
            )
    assert (health.status, health.problems) == ("ok", [])


async def test_a_source_that_keeps_failing_is_not_called_until_its_breaker_lets_it(
    make_settings: Callable[..., Settings], listing_server: ListingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "_BREAKERS", {})  # this test's breakers only
    listing_server.routes["/sec.json"] = Reply(status=503, body=b"unavailable")
    async with open_app_state(live_settings(make_settings, listing_server)) as state:
        for _ in range(live.BREAKER_FAILURES):
            report = await _sync(state, sources=["sec"])
            assert "server error (HTTP 503)" in report.outcomes[0].error
        asked = len(listing_server.requests)
        report = await _sync(state, sources=["sec"])
    assert report.outcomes[0].status == "failed" and report.outcomes[0].error.startswith("not fetched: 3 failures")
    assert len(listing_server.requests) == asked


async def test_a_directory_with_less_than_half_its_rows_is_refused_unless_forced(
    make_settings: Callable[..., Settings], listing_server: ListingServer
) -> None:
    serve(listing_server, directory="2026-03-03")
    async with open_app_state(live_settings(make_settings, listing_server)) as state:
        async with state.unit_of_work() as session:  # a previous sync that saw far more rows
            session.add(ListingSync(source="nasdaq_trader", as_of=date(2026, 2, 1), status="ok", rows=100_000))
        refused = await _sync(state, sources=["nasdaq_trader"])
        assert [(o.status, o.rows) for o in refused.outcomes] == [("refused", 12_348)] and refused.applied is None
        assert "fewer than half of the 100000" in refused.outcomes[0].error
        assert (await _assets(state))["assets"] == {}
        forced = await _sync(state, sources=["nasdaq_trader"], force=True)
        assert forced.ok and forced.applied is not None and forced.applied.securities > 12_000
