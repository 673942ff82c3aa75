"""Validation and get_asset answering from the security master (docs/SECURITY_MASTER.md, issue 12 item 7), offline and
with a fake provider that says "no such symbol" to everything."""

from __future__ import annotations

import json
from datetime import date

import pytest
from mcp import Client
from sqlalchemy import select

from core.settings import Settings
from providers.catalog import CatalogProvider
from providers.fake import FakeProvider
from server.app import build_server
from server.lifespan import open_app_state
from storage.models import Asset
from tests.conftest import Call

pytestmark = pytest.mark.anyio


@pytest.fixture
def mcall(master_client: Client) -> Call:
    return Call(master_client)


async def _verdicts(call: Call, *symbols: str) -> dict[str, dict]:
    data = await call.ok("validate_symbols", symbols=list(symbols))
    return {v["symbol"]: v for v in data["verdicts"]}


async def test_listed_symbols_are_valid_from_listings_with_the_data_date(mcall: Call) -> None:
    verdicts = await _verdicts(mcall, "AAPL", "SPY", "^GSPC", "VNX.F", "AC.PA")
    for symbol, verdict in verdicts.items():
        assert (verdict["status"], verdict["source"], verdict["as_of"]) == ("valid", "listings", "2026-08-22"), symbol
        assert verdict["listing_status"] == "listed"
    assert verdicts["AAPL"]["profile"]["sector"] == "Information Technology"


async def test_every_share_class_spelling_is_one_valid_asset(mcall: Call) -> None:
    data = await mcall.ok("validate_symbols", symbols=["BRK.B", "BRK-B", "BRK/B", "brk b", "$BRK.B"])
    assert [v["symbol"] for v in data["verdicts"]] == ["BRK.B"]  # one symbol after normalisation
    assert data["verdicts"][0]["status"] == "valid"
    universe = await mcall.ok("create_universe", name="berkshire", symbols=["BRK-B", "BRK/B"])
    assert universe["universe"]["asset_count"] == 1


async def test_delisted_symbols_are_invalid_with_the_date(mcall: Call) -> None:
    verdicts = await _verdicts(mcall, "TWTR", "ATVI")
    twtr = verdicts["TWTR"]
    assert (twtr["status"], twtr["source"], twtr["listing_status"]) == ("invalid", "listings", "delisted")
    assert twtr["delisted_on"] == "2022-11-08" and "delisted on 2022-11-08" in twtr["reason"]
    assert verdicts["ATVI"]["delisted_on"] == "2023-10-13"


async def test_a_former_ticker_points_at_the_current_one(mcall: Call) -> None:
    verdicts = await _verdicts(mcall, "ZI", "JBT", "ANTM")
    assert {s: (v["status"], v["renamed_to"]) for s, v in verdicts.items()} == {
        "ZI": ("invalid", "GTM"),
        "JBT": ("invalid", "JBTM"),
        "ANTM": ("invalid", "ELV"),
    }
    assert verdicts["ZI"]["listing_status"] == "renamed" and verdicts["ZI"]["candidates"] == ["GTM"]
    assert "renamed to GTM" in verdicts["ZI"]["reason"]


async def test_a_reused_ticker_is_its_current_holder_noting_the_former_one(mcall: Call) -> None:
    fb = (await _verdicts(mcall, "FB"))["FB"]
    assert fb["status"] == "valid" and fb["profile"]["asset_type"] == "etf"
    assert "Meta Platforms" in fb["reason"] and "META" in fb["reason"]


async def test_typos_get_candidates_never_themselves_also_from_the_cache(mcall: Call) -> None:
    for attempt in range(2):
        appl = (await _verdicts(mcall, "APPL"))["APPL"]
        assert appl["status"] == "pending"  # offline: no source can say it does not exist
        assert appl["candidates"][0] == "AAPL" and "APPL" not in appl["candidates"], attempt


async def test_a_provider_saying_not_found_never_overturns_the_master(
    master_settings: Settings,
) -> None:
    """The issue's case: a provider answering "no listing" for ^GSPC, VNX.F and BRK-B made them invalid and
    rewrote their stored rows. Now the master answers first; the provider is not even asked about them."""
    nobody = FakeProvider(name="alpha_vantage", known={})
    async with Client(build_server(master_settings, providers=[nobody, CatalogProvider()])) as client:
        call = Call(client)
        for force in (False, True):
            data = await call.ok("validate_symbols", symbols=["^GSPC", "VNX.F", "BRK-B"], force_refresh=force)
            assert {v["symbol"]: v["status"] for v in data["verdicts"]} == {
                "^GSPC": "valid",
                "VNX.F": "valid",
                "BRK.B": "valid",
            }
        # A symbol the master does not know is the provider's to judge: invalid, with candidates, also cached.
        for _ in range(2):
            unknown = (await call.ok("validate_symbols", symbols=["MSFY"]))["verdicts"][0]
            assert unknown["status"] == "invalid" and unknown["candidates"][:1] == ["MSFT"]
    assert nobody.calls_by_symbol["MSFY"] == 1 and not {"^GSPC", "VNX.F", "BRK.B", "BRK-B"} & set(
        nobody.calls_by_symbol
    )
    async with open_app_state(master_settings) as state, state.unit_of_work() as session:
        rows = {
            a.symbol: a
            for a in await session.scalars(select(Asset).where(Asset.symbol.in_(["^GSPC", "VNX.F", "BRK.B"])))
        }
    assert {s: (a.validation_status, a.validation_source) for s, a in rows.items()} == {
        s: ("valid", "listings") for s in ("^GSPC", "VNX.F", "BRK.B")
    }


async def test_get_asset_resolves_a_ticker_at_a_date(mcall: Call) -> None:
    then = await mcall.ok("get_asset", symbol="FB", as_of="2021-06-01")
    assert then["asset"]["symbol"] == "META" and then["former_symbol"] == "FB"
    assert "Meta Platforms" in then["asset"]["name"] and then["as_of"] == "2021-06-01"
    today = await mcall.ok("get_asset", symbol="FB")
    assert today["asset"]["symbol"] == "FB" and today["asset"]["asset_type"] == "etf"
    assert "Meta Platforms" in today["note"]
    renamed = await mcall.ok("get_asset", symbol="ZI")
    assert (renamed["asset"]["symbol"], renamed["former_symbol"]) == ("GTM", "ZI")
    gone = await mcall.ok("get_asset", symbol="TWTR")
    assert (gone["asset"]["listing_status"], gone["asset"]["delisted_on"]) == ("delisted", "2022-11-08")
    before = await mcall.error("get_asset", "not_found", symbol="GTM", as_of="2001-01-02")
    assert "not in use" in before["error"]["message"]


async def test_get_asset_refuses_a_future_date(mcall: Call) -> None:
    await mcall.error("get_asset", "invalid_argument", symbol="AAPL", as_of=date(2999, 1, 1).isoformat())


async def test_service_health_reports_the_listings_date(mcall: Call) -> None:
    report = await mcall.ok("get_service_health")
    assert report["listings"]["as_of"] == "2026-08-22"
    assert [(s["source"], s["status"], s["as_of"]) for s in report["listings"]["sources"]] == [
        ("snapshot", "ok", "2026-08-22")
    ]


def test_the_banner_shows_the_snapshot_date(master_settings: Settings) -> None:
    from server.transports import banner

    assert "listings     : US listings snapshot as of 2026-08-22" in banner(master_settings)


def test_serve_with_a_damaged_snapshot_exits_with_one_line(
    tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], small_snapshot
) -> None:
    from server.cli import main
    from server.preflight import EXIT_STORE_UNAVAILABLE

    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(small_snapshot.read_bytes()[:-100])
    monkeypatch.setenv("UNIVERSE_MCP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("UNIVERSE_MCP_LISTINGS_LOAD", "1")
    monkeypatch.setenv("UNIVERSE_MCP_LISTINGS_SNAPSHOT", str(broken))
    assert main(["serve", "--transport", "stdio"]) == EXIT_STORE_UNAVAILABLE
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"universe-mcp: listings snapshot {broken}: ") and "\n" not in err
    assert "Traceback" not in err


async def test_universes_show_delisted_and_renamed_members_and_export_current_symbols(
    make_settings, small_snapshot
) -> None:
    """Members added before the master knew them (an older store): after the load, TWTR is flagged delisted with a
    next action, ZI shows as GTM (formerly ZI), and the export carries GTM."""
    settings = make_settings()
    async with Client(build_server(settings)) as client:
        call = Call(client)
        created = await call.ok("create_universe", name="old list", symbols=["TWTR", "ZI", "AAPL"])
    universe_id = created["universe"]["id"]
    async with Client(build_server(make_settings(listings_load=True, listings_snapshot=small_snapshot))) as client:
        call = Call(client)
        envelope = await call("get_universe", universe_id=universe_id)
        detail = envelope["data"]
        members = {m["symbol"]: m for m in detail["assets"]}
        assert set(members) == {"TWTR", "GTM", "AAPL"}
        assert (members["TWTR"]["listing_status"], members["TWTR"]["delisted_on"]) == ("delisted", "2022-11-08")
        assert (members["GTM"]["former_symbol"], members["GTM"]["listing_status"]) == ("ZI", "listed")
        assert [m["symbol"] for m in detail["delisted_members"]] == ["TWTR"]
        review = [a for a in envelope["next_actions"] if a["tool"] == "remove_assets_from_universe"]
        assert review and review[0]["arguments"]["symbols"] == ["TWTR"] and "delisted" in review[0]["reason"]
        exported = await call.ok("export_universe_csv", universe_id=universe_id)
        csv_text = exported["csv"] if "csv" in exported else json.dumps(exported)
        assert "GTM" in csv_text and "ZI," not in csv_text


async def test_the_periodic_refresh_leaves_master_assets_to_the_listings_sync(master_settings: Settings) -> None:
    """Master assets are dated by their data (months old): re-validating them hourly would crowd out the rest."""
    from datetime import UTC, datetime

    from storage.repositories.jobs import refresh_candidates

    async with Client(build_server(master_settings)) as client:
        await Call(client).ok("create_universe", name="mixed", symbols=["AAPL", "ZZOLD"], validate=False)
    async with open_app_state(master_settings) as state:
        async with state.unit_of_work() as session:
            old = await session.scalar(select(Asset).where(Asset.symbol == "ZZOLD"))
            assert old is not None
            old.validation_status, old.last_validated_at = "valid", datetime(2020, 1, 1, tzinfo=UTC)
        async with state.unit_of_work() as session:
            due = await refresh_candidates(session, validated_before=datetime.now(UTC), limit=100)
    assert "ZZOLD" in due and "AAPL" not in due
