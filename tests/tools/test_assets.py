"""The assets toolset and validation-on-add through the in-memory MCP client, with fake and real providers."""

from __future__ import annotations

import json
import logging
import time

import anyio
import pytest
from mcp import Client
from sqlalchemy import event
from sqlalchemy.engine import Engine

from providers.alpha_vantage import AlphaVantageProvider
from providers.base import AssetProfile
from providers.catalog import CatalogProvider
from providers.fake import FakeProvider
from server.app import build_server
from tests.conftest import Call
from tests.providers.conftest import Reply, av_server, black_hole, fixture_bytes  # noqa: F401 - fixtures
from tests.support.redis_traffic import RedisTraffic

pytestmark = pytest.mark.anyio

NVDA = AssetProfile(
    symbol="NVDA",
    name="NVIDIA Corporation",
    exchange="NMS",
    asset_type="equity",
    currency="USD",
    sector="Information Technology",
    market_cap=4.0e12,
    pe_ratio=50.0,
    dividend_yield=0.0003,
)
ACME = AssetProfile(
    symbol="ACMEX", name="Acme Explosives Inc", exchange="NYQ", asset_type="equity", currency="USD", sector="Materials"
)


class QueryCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *args, **kwargs) -> None:
        self.count += 1


@pytest.fixture
def fake() -> FakeProvider:
    return FakeProvider(name="yahoo", known={"NVDA": NVDA, "ACMEX": ACME})


@pytest.fixture
async def fake_call(make_settings, fake):
    async with Client(build_server(make_settings(), providers=[fake, CatalogProvider()])) as c:
        yield Call(c)


async def test_validate_symbols_gives_verdicts_with_sources_and_caches_them(fake_call, fake):
    data = await fake_call.ok("validate_symbols", symbols=["nvda", "ACMEX", "NOTREAL1", "AAPL"])
    by = {v["symbol"]: v for v in data["verdicts"]}
    assert by["NVDA"]["status"] == "valid" and by["NVDA"]["source"] == "yahoo"
    assert by["NVDA"]["profile"]["name"] == "NVIDIA Corporation" and by["NVDA"]["profile"]["dividend_yield"] == 0.0003
    assert by["NOTREAL1"]["status"] == "invalid" and by["NOTREAL1"]["source"] == "yahoo"
    # AAPL is in the offline catalog: the store already holds the catalog's (older) verdict, so the provider is
    # asked first; the fake does not know AAPL and says invalid.
    assert by["AAPL"]["status"] == "invalid"
    assert data["counts"] == {"valid": 2, "invalid": 2}
    calls = fake.calls

    again = await fake_call.ok("validate_symbols", symbols=["NVDA", "ACMEX", "NOTREAL1"])
    assert all(v["cached"] for v in again["verdicts"])
    assert fake.calls == calls  # answered from the cache
    # Fields that do not apply are left out, fresh or cached: no nulls, no empty candidate lists.
    for verdict in [*data["verdicts"], *again["verdicts"]]:
        assert None not in verdict.values() and verdict.get("candidates") != [], verdict
    assert {"reason", "listing_status", "renamed_to", "retry_after_s"}.isdisjoint(again["verdicts"][0])


async def test_a_cached_verdict_costs_no_provider_call_and_no_database_query(fake_call, fake):
    await fake_call.ok("validate_symbols", symbols=["NVDA"])
    calls = fake.calls
    queries = QueryCounter()
    event.listen(Engine, "before_cursor_execute", queries)
    try:
        data = await fake_call.ok("validate_symbols", symbols=["NVDA"])
    finally:
        event.remove(Engine, "before_cursor_execute", queries)
    assert data["verdicts"][0]["cached"] and fake.calls == calls
    assert queries.count == 0


async def test_invalid_symbols_get_candidates_from_the_catalog(fake_call):
    data = await fake_call.ok("validate_symbols", symbols=["MSFTT"])
    verdict = data["verdicts"][0]
    assert verdict["status"] == "invalid" and "MSFT" in verdict["candidates"]


async def test_force_refresh_asks_the_provider_again(fake_call, fake):
    await fake_call.ok("validate_symbols", symbols=["NVDA"])
    calls = fake.calls
    data = await fake_call.ok("validate_symbols", symbols=["NVDA"], force_refresh=True)
    assert not data["verdicts"][0]["cached"] and fake.calls == calls + 1


async def test_over_50_symbols_point_to_bulk_validation_and_junk_is_named(fake_call):
    envelope = await fake_call.error("validate_symbols", "limit_exceeded", symbols=[f"S{i}" for i in range(51)])
    assert "start_bulk_validation" in envelope["error"]["hint"]
    junk = await fake_call.error("validate_symbols", "invalid_argument", symbols=["AAPL", "a b", "!!"])
    assert set(junk["error"]["details"]["invalid_symbols"]) == {"a b", "!!"}


async def test_a_hanging_provider_gives_pending_within_the_deadline_and_nothing_is_cached(make_settings):
    hang = FakeProvider(name="yahoo", hang=True)
    settings = make_settings(validation_deadline_s=0.5)
    async with Client(build_server(settings, providers=[hang])) as c:
        call = Call(c)
        # The provider hangs forever: without the deadline this call would never return (a hang detector, not a
        # speed bound); "deadline" in the reason below says which limit ended it.
        with anyio.fail_after(60):
            data = await call.ok("validate_symbols", symbols=["NVDA", "ZZZZ"])
        nvda, unknown = data["verdicts"]
        # NVDA has an earlier verdict (the offline catalog's): it is kept, marked stale, not turned into pending.
        assert (nvda["status"], nvda["stale"], nvda["source"]) == ("valid", True, "catalog")
        assert unknown["status"] == "pending" and "deadline" in unknown["reason"]
        envelope = await call("validate_symbols", symbols=["ZZZZ"])
        assert not envelope["data"]["verdicts"][0]["cached"]  # an unsettled symbol is never cached


async def test_black_holed_alpha_vantage_is_pending_within_the_deadline_and_never_leaks_the_key(
    make_settings,
    black_hole,
    caplog,  # noqa: F811
):
    host, port = black_hole
    av = AlphaVantageProvider("SECRETKEY123", base_url=f"http://{host}:{port}/query", timeout_s=30)
    settings = make_settings(validation_deadline_s=1.0)
    caplog.set_level(logging.DEBUG)
    async with Client(build_server(settings, providers=[av])) as c:
        with anyio.fail_after(60):  # a hang detector, not a speed bound
            result = await c.call_tool("validate_symbols", {"symbols": ["ZZIBM"]})  # not in the offline catalog
    verdict = result.structured_content["data"]["verdicts"][0]
    # The 1 s validation deadline ended the call, not the provider's own 30 s time-out.
    assert verdict["status"] == "pending" and "deadline" in verdict["reason"], verdict
    assert "SECRETKEY123" not in json.dumps(result.structured_content) + caplog.text


async def test_alpha_vantage_error_bodies_never_leak_the_key_and_unknown_is_invalid(make_settings, av_server, caplog):  # noqa: F811
    av_server.routes[("OVERVIEW", "IBM")] = Reply(body=fixture_bytes("alpha_vantage", "overview_aapl.json"))
    av_server.routes[("OVERVIEW", "GONE")] = Reply(body=b"{}")
    av_server.routes[("SYMBOL_SEARCH", "GONE")] = Reply(body=b'{"bestMatches": []}')
    av_server.routes[("OVERVIEW", "BAD")] = Reply(
        body=fixture_bytes("alpha_vantage", "error_message_invalid_api_call.json")
    )
    av_server.routes[("OVERVIEW", "LIMIT")] = Reply(
        body=fixture_bytes("alpha_vantage", "information_rate_limit_burst.json")
    )
    av = AlphaVantageProvider("SECRETKEY123", base_url=av_server.base_url, timeout_s=2)
    caplog.set_level(logging.DEBUG)
    async with Client(build_server(make_settings(), providers=[av])) as c:
        result = await c.call_tool("validate_symbols", {"symbols": ["IBM", "GONE", "BAD", "LIMIT"]})
    verdicts = {v["symbol"]: v for v in result.structured_content["data"]["verdicts"]}
    assert verdicts["GONE"]["status"] == "invalid" and verdicts["GONE"]["source"] == "alpha_vantage"
    assert verdicts["BAD"]["status"] == "pending" and verdicts["LIMIT"]["status"] == "pending"
    everything = json.dumps(result.structured_content) + "".join(c.text for c in result.content) + caplog.text
    assert "SECRETKEY123" not in everything
    assert all("SECRETKEY123" in "".join(q.get("apikey", [])) for q in av_server.requests)  # it was really used


async def test_create_and_add_validate_by_default(fake_call):
    data = await fake_call.ok("create_universe", name="Checked", symbols=["NVDA", "NOTREAL1", "MSFT"])
    results = {r["symbol"]: r for r in data["report"]["results"]}
    assert results["NVDA"]["outcome"] == "added" and results["NVDA"]["validation_status"] == "valid"
    assert results["NOTREAL1"]["outcome"] == "rejected" and results["NOTREAL1"]["validation_status"] == "invalid"
    assert data["universe"]["asset_count"] == 1 + (results["MSFT"]["outcome"] == "added")
    detail = await fake_call.ok("get_universe", universe_id=data["universe"]["id"])
    assert "NOTREAL1" not in [a["symbol"] for a in detail["assets"]]
    nvda = next(a for a in detail["assets"] if a["symbol"] == "NVDA")
    assert nvda["name"] == "NVIDIA Corporation" and nvda["sector"] == "Information Technology"


async def test_symbols_no_provider_can_settle_are_added_as_pending(make_settings):
    down = FakeProvider(name="yahoo", fail_rate=1.0)
    async with Client(build_server(make_settings(), providers=[down])) as c:
        call = Call(c)
        data = await call.ok("create_universe", name="P", symbols=["NEWCO1"])
        assert data["report"]["results"][0]["validation_status"] == "pending"
        assert data["report"]["results"][0]["outcome"] == "added"
        got = await call.ok("get_universe", universe_id=data["universe"]["id"])
        assert got["counts_by_status"] == {"pending": 1}


async def test_per_owner_rate_limit_trips_with_retry_after(make_settings, fake):
    # auth=none: per-owner limits apply to the local user only when local_rate_limits is on (issue 10 item 19).
    settings = make_settings(rate_limit_validate="2/minute", local_rate_limits=True)
    async with Client(build_server(settings, providers=[fake])) as c:
        call = Call(c)
        await call.ok("validate_symbols", symbols=["NVDA"])
        await call.ok("validate_symbols", symbols=["NVDA"])
        envelope = await call.error("validate_symbols", "rate_limited", symbols=["NVDA"])
        assert 0 < envelope["error"]["details"]["retry_after_s"] <= 60
        await call.ok("list_universes")  # other tool classes have their own budget


async def test_search_assets_by_prefix_name_and_sector_with_pagination(fake_call):
    by_symbol = await fake_call.ok("search_assets", query="MSF")
    assert by_symbol["assets"][0]["symbol"] == "MSFT"
    by_name = await fake_call.ok("search_assets", query="micro")
    assert "MSFT" in [a["symbol"] for a in by_name["assets"]]
    assert all(a.get("validation_status", "valid") in ("valid", "pending", "unknown") for a in by_name["assets"])
    tech = await fake_call.ok("search_assets", query="a", sector="technology", limit=5)
    assert tech["sector"] == "Information Technology"
    assert all(a["sector"] == "Information Technology" for a in tech["assets"])
    nxt = await fake_call.ok("search_assets", query="a", sector="technology", limit=5, cursor=tech["next_cursor"])
    assert {a["symbol"] for a in nxt["assets"]}.isdisjoint({a["symbol"] for a in tech["assets"]})
    misspelt = await fake_call.error("search_assets", "invalid_argument", query="a", sector="Helth Care")
    assert "Health Care" in misspelt["error"]["details"]["candidates"]
    assert misspelt["next_actions"][0]["tool"] == "list_sectors"
    nothing = await fake_call("search_assets", query="qqqzzzxx")
    assert nothing["data"]["assets"] == [] and nothing["next_actions"][0]["tool"] == "validate_symbols"


async def test_get_asset_known_on_demand_and_invalid(fake_call):
    msft = await fake_call.ok("get_asset", symbol="msft")
    assert msft["asset"]["symbol"] == "MSFT" and msft["asset"]["validation_source"] == "catalog"
    nvda = await fake_call.ok("get_asset", symbol="ACMEX")  # not in the store: validated on the spot
    assert nvda["asset"]["name"] == "Acme Explosives Inc" and nvda["asset"]["validation_status"] == "valid"
    await fake_call.error("get_asset", "invalid_symbol", symbol="NOTREAL1")
    await fake_call.error("get_asset", "invalid_argument", symbol="not a ticker")


async def test_list_sectors_lists_all_eleven_with_counts(fake_call):
    sectors = (await fake_call.ok("list_sectors"))["sectors"]
    assert len(sectors) == 11
    assert sum(s["asset_count"] for s in sectors) > 1000


async def test_tools_keep_answering_when_redis_stops_mid_run_and_recover(
    make_settings, fake, throwaway_redis, monkeypatch
):
    import redis.asyncio as aioredis

    # local_rate_limits: the local user's calls go through the shared (Redis) rate limiter too.
    settings = make_settings(redis_url=throwaway_redis.url, local_rate_limits=True)
    server = build_server(settings, providers=[fake, CatalogProvider()])
    async with Client(server) as c:
        call = Call(c)
        await call.ok("validate_symbols", symbols=["NVDA"])
        direct = aioredis.from_url(throwaway_redis.url)
        assert await direct.exists("umcp:v1:verdict:NVDA")
        await direct.aclose()
        calls = fake.calls

        throwaway_redis.stop()
        # The cache's breaker reads a stopped clock during the outage, so however slowly a loaded machine runs the
        # calls below, its reset timeout never elapses and no half-open probe adds a connection attempt.
        breaker = server.app_state.cache.breaker
        stopped_at = time.monotonic()
        monkeypatch.setattr(breaker, "_clock", lambda: stopped_at)
        traffic = RedisTraffic(monkeypatch)
        with anyio.fail_after(60):  # a hang detector, not a speed bound
            data = await call.ok("validate_symbols", symbols=["NVDA"])  # from the in-process fallback
            assert data["verdicts"][0]["cached"] and fake.calls == calls
            fresh = await call.ok("validate_symbols", symbols=["ACMEX"])  # a miss still reaches the provider
            assert fresh["verdicts"][0]["status"] == "valid"
            # Noticing the outage costs a few refused connections and no retry back-off (what made calls slow) ...
            noticed = traffic.connects
            assert 0 < noticed <= 8 and traffic.backoff_sleeps == [], (noticed, traffic.backoff_sleeps)
            # ... then the cache's breaker is open and rate limits are per-process: the dead Redis is not asked again.
            await call.ok("list_universes")
            await call.ok("validate_symbols", symbols=["NVDA"])
            await call.ok("validate_symbols", symbols=["ZZTOP2"])
            assert traffic.connects == noticed and traffic.backoff_sleeps == []

        throwaway_redis.start()
        monkeypatch.setattr(breaker, "_clock", time.monotonic)
        with anyio.fail_after(60):  # a hang detector: the cache's breaker probes again after its reset timeout
            while True:
                await call.ok("validate_symbols", symbols=["ZZTOP1"])
                direct = aioredis.from_url(throwaway_redis.url)
                back = await direct.exists("umcp:v1:verdict:ZZTOP1")
                await direct.aclose()
                if back:
                    break
                await anyio.sleep(0.5)
                await call.ok("validate_symbols", symbols=["ZZTOP1"], force_refresh=True)
