"""Per-owner quotas and the visibility of unconfirmed assets (issue 10, item 9), on SQLite and on PostgreSQL.

The attack from the issue: one tenant mass-creates prefix-like tickers with validate=false, which used to take over
every other tenant's prefix search ("AA" returned AA0 ... AA9). Another tenant's searches, lookups and results must
not change; the creator still sees its own; a provider's confirmation makes an asset everyone's.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select

from providers.base import AssetProfile
from providers.fake import FakeProvider
from server.lifespan import open_app_state
from services.errors import LimitExceeded
from services.universes import UniverseService
from storage.db import make_engine, make_sessionmaker, unit_of_work
from storage.models import Asset, User
from tests.conftest import Call
from tests.support.stores import caller, pg_store, serve, still_waiting, store  # noqa: F401

pytestmark = pytest.mark.anyio


async def created_by(settings, user: str) -> int:
    """Assets the store records as created (unconfirmed) by ``user`` — read as the table owner."""
    engine = make_engine(settings.admin_sqlalchemy_url)
    try:
        async with unit_of_work(make_sessionmaker(engine)) as session:
            owner = await session.scalar(select(User.id).where(User.name == user))
            return int(await session.scalar(select(func.count()).where(Asset.created_by == owner)) or 0)
    finally:
        await engine.dispose()


def symbols_of(page: dict) -> list[str]:
    return [a["symbol"] for a in page["assets"]]


async def test_one_tenants_made_up_tickers_never_reach_another_tenants_searches(store):
    alice, bob = store.user("alice"), store.user("bob")
    async with serve(store(local_user=alice)) as a, serve(store(local_user=bob)) as b:
        alice_call, bob_call = Call(a), Call(b)
        before = {q: symbols_of(await bob_call.ok("search_assets", query=q, limit=50)) for q in ("AA", "AAP", "A")}
        assert "AAPL" in before["AA"]

        # The attack: tickers that sort before every real one under the prefix, without validation.
        tag = uuid.uuid4().hex[:3].upper()
        fakes = [f"AA{d}" for d in range(10)] + [f"AA{d}{tag}" for d in range(10)] + [f"AAP{tag}{d}" for d in range(9)]
        uid = (await alice_call.ok("create_universe", name="Squat", symbols=fakes, validate=False))["universe"]["id"]

        after = {q: symbols_of(await bob_call.ok("search_assets", query=q, limit=50)) for q in ("AA", "AAP", "A")}
        assert after == before  # the other tenant's results did not move
        assert not set(symbols_of(await bob_call.ok("search_assets", query="AA0", limit=50))) & set(fakes)
        missing = await bob_call.error("get_asset", "not_found", symbol="AA0")
        assert "AA0" in missing["error"]["message"]

        # The creator still sees its own tickers, ranked as before the fix.
        assert symbols_of(await alice_call.ok("search_assets", query="AA", limit=10))[:10] == [
            f"AA{d}" for d in range(10)
        ]
        assert (await alice_call.ok("get_asset", symbol="AA0"))["asset"]["symbol"] == "AA0"
        assert [
            m["symbol"] for m in (await alice_call.ok("get_universe", universe_id=uid, limit=200))["assets"]
        ] == fakes

        # Bob adding the same ticker to his own universe may see it there (and look it up), never in searches.
        bob_uid = (await bob_call.ok("create_universe", name="Mine", symbols=["AA0"], validate=False))["universe"]["id"]
        assert [m["symbol"] for m in (await bob_call.ok("get_universe", universe_id=bob_uid))["assets"]] == ["AA0"]
        assert (await bob_call.ok("get_asset", symbol="AA0"))["asset"]["symbol"] == "AA0"
        assert symbols_of(await bob_call.ok("search_assets", query="AA", limit=50)) == before["AA"]


async def test_a_ticker_no_provider_knows_stays_its_adders_also_when_validated_on_add(store):
    """validate=true on add: the providers are asked first, and the pending asset their "no answer" leaves is still
    the adder's alone: out of everyone else's searches and lookups."""
    alice, bob = store.user("alice"), store.user("bob")
    symbol = f"ZQ{uuid.uuid4().hex[:4].upper()}"
    down = FakeProvider(fail_rate=1.0)  # every call fails: the verdict is pending, the asset kept unconfirmed
    async with serve(store(local_user=alice), providers=[down]) as a, serve(store(local_user=bob)) as b:
        alice_call, bob_call = Call(a), Call(b)
        created = await alice_call.ok("create_universe", name="Checked", symbols=[symbol], validate=True)
        assert [r["validation_status"] for r in created["report"]["results"]] == ["pending"]
        added = await alice_call.ok(
            "add_assets_to_universe", universe_id=created["universe"]["id"], symbols=[f"{symbol}B"]
        )
        assert [r["outcome"] for r in added["report"]["results"]] == ["added"]
        for ticker in (symbol, f"{symbol}B"):
            assert symbols_of(await bob_call.ok("search_assets", query=ticker)) == []
            await bob_call.error("get_asset", "not_found", symbol=ticker)
            assert ticker in symbols_of(await alice_call.ok("search_assets", query=ticker))


async def test_a_providers_confirmation_makes_an_asset_everyones(store):
    alice, bob = store.user("alice"), store.user("bob")
    symbol = f"ZQ{uuid.uuid4().hex[:4].upper()}"
    provider = FakeProvider(known={symbol: AssetProfile(symbol=symbol, name="Zeta Quux Industries")})
    async with serve(store(local_user=alice), providers=[provider]) as a, serve(store(local_user=bob)) as b:
        alice_call, bob_call = Call(a), Call(b)
        await alice_call.ok("create_universe", name="Early", symbols=[symbol], validate=False)
        assert symbols_of(await bob_call.ok("search_assets", query=symbol)) == []
        verdict = (await alice_call.ok("validate_symbols", symbols=[symbol]))["verdicts"][0]
        assert verdict["status"] == "valid"
        assert symbols_of(await bob_call.ok("search_assets", query=symbol)) == [symbol]
        assert symbols_of(await bob_call.ok("search_assets", query="zeta quux")) == [symbol]


async def test_universes_per_owner_quota(store):
    user = store.user("carol")
    async with serve(store(local_user=user, max_universes_per_owner=3)) as client:
        call = Call(client)
        for i in range(3):
            await call.ok("create_universe", name=f"U{i}")
        refused = await call.error("create_universe", "limit_exceeded", name="U3", symbols=["AAPL"])
        assert refused["error"]["details"] == {"quota": "universes_per_owner", "limit": 3, "current": 3}
        assert "delete_universe" in refused["error"]["hint"]
        names = [u["name"] for u in (await call.ok("list_universes"))["universes"]]
        assert names == ["U0", "U1", "U2"]  # nothing changed
        # Room again after a delete.
        await call.ok("delete_universe", universe_id=(await call.ok("list_universes"))["universes"][0]["id"])
        await call.ok("create_universe", name="U3")


async def test_members_per_universe_quota(store):
    async with serve(store(local_user=store.user("dan"), max_members_per_universe=5)) as client:
        call = Call(client)
        uid = (await call.ok("create_universe", name="Small", symbols=["AAPL", "MSFT", "NVDA"]))["universe"]["id"]
        refused = await call.error(
            "add_assets_to_universe", "limit_exceeded", universe_id=uid, symbols=["AMZN", "META", "GOOGL"]
        )
        details = refused["error"]["details"]
        assert details == {"quota": "members_per_universe", "limit": 5, "current": 3, "requested": 3}
        assert "at most 2" in refused["error"]["hint"]
        assert (await call.ok("get_universe", universe_id=uid))["universe"]["asset_count"] == 3  # nothing changed
        # Symbols already present do not count; two new ones fit exactly.
        report = (await call.ok("add_assets_to_universe", universe_id=uid, symbols=["AAPL", "MSFT", "AMZN", "META"]))[
            "report"
        ]
        assert report["counts"] == {"already_present": 2, "added": 2}
        await call.error("add_assets_to_universe", "limit_exceeded", universe_id=uid, symbols=["GOOGL"])
        big = await call.error("create_universe", "limit_exceeded", name="Big", symbols=["A", "B", "C", "D", "E", "F"])
        assert big["error"]["details"] == {"quota": "members_per_universe", "limit": 5, "current": 0, "requested": 6}
        assert [u["name"] for u in (await call.ok("list_universes"))["universes"]] == ["Small"]
        full = await call.ok("create_universe", name="Full", symbols=["A", "B", "C", "D", "E"], validate=False)
        assert full["universe"]["asset_count"] == 5  # exactly the quota fits


async def test_new_unconfirmed_assets_per_hour_quota(store):
    user = store.user("erin")
    settings = store(local_user=user, max_new_assets_per_hour=10)
    tag = uuid.uuid4().hex[:3].upper()
    async with serve(settings) as client:
        call = Call(client)
        uid = (
            await call.ok("create_universe", name="Made up", symbols=[f"Q{tag}{i}" for i in range(8)], validate=False)
        )["universe"]["id"]
        refused = await call.error(
            "add_assets_to_universe",
            "limit_exceeded",
            universe_id=uid,
            symbols=[f"R{tag}{i}" for i in range(5)],
            validate=False,
        )
        details = refused["error"]["details"]
        assert {k: details[k] for k in ("quota", "limit", "current", "requested")} == {
            "quota": "new_assets_per_hour",
            "limit": 10,
            "current": 8,
            "requested": 5,
        }
        assert 0 < details["resets_in_s"] <= 3600
        assert "validate=true" in refused["error"]["hint"]
        assert await created_by(settings, user) == 8  # the refused call created nothing
        # Catalog-confirmed symbols are real securities: they never count.
        await call.ok("add_assets_to_universe", universe_id=uid, symbols=["AAPL", "MSFT", "NVDA"], validate=False)
        # Unknown symbols found pending by validation count too (validate_symbols creates them for the re-check).
        await call.ok("validate_symbols", symbols=[f"S{tag}0", f"S{tag}1"])
        await call.error("validate_symbols", "limit_exceeded", symbols=[f"T{tag}0"])
        assert await created_by(settings, user) == 10


async def test_concurrent_creators_cannot_pass_the_new_asset_quota(store):
    user = store.user("fay")
    settings = store(local_user=user, max_new_assets_per_hour=12)
    tag = uuid.uuid4().hex[:3].upper()
    async with serve(settings) as client:
        call = Call(client)
        uids = [(await call.ok("create_universe", name=f"C{i}"))["universe"]["id"] for i in range(8)]
        results = await asyncio.gather(
            *[
                client.call_tool(
                    "add_assets_to_universe",
                    {"universe_id": uid, "symbols": [f"C{tag}{i}X{j}" for j in range(5)], "validate": False},
                )
                for i, uid in enumerate(uids)
            ]
        )
        codes = [r.structured_content["error"]["code"] if r.is_error else "ok" for r in results]
        assert set(codes) <= {"ok", "limit_exceeded"}, codes
        assert codes.count("ok") == 2  # 2 x 5 fit in 12; a third call would make 15
        assert await created_by(settings, user) == 10


async def test_a_full_universe_is_refused_before_any_provider_is_asked(make_settings):
    provider = FakeProvider(known={s: AssetProfile(symbol=s) for s in ("AAPL", "MSFT", "NVDA")})
    async with serve(make_settings(max_members_per_universe=2), providers=[provider]) as client:
        call = Call(client)
        uid = (await call.ok("create_universe", name="Full", symbols=["AAPL", "MSFT"], validate=False))["universe"][
            "id"
        ]
        refused = await call.error("add_assets_to_universe", "limit_exceeded", universe_id=uid, symbols=["NVDA"])
        assert refused["error"]["details"] == {
            "quota": "members_per_universe",
            "limit": 2,
            "current": 2,
            "requested": 1,
        }
        assert refused["next_actions"] == [
            {
                "tool": "get_universe",
                "arguments": {"universe_id": uid, "include_assets": False},
                "reason": "see the counts",
            }
        ]
        assert provider.calls == 0  # the quota is looked at first: a full universe costs no provider call
        # Symbols already present are not new: re-adding them is no growth, and the provider is asked about them.
        again = await call.ok("add_assets_to_universe", universe_id=uid, symbols=["MSFT", "AAPL"])
        assert again["report"]["counts"] == {"already_present": 2} and provider.calls == 2


@pytest.mark.parametrize("store", ["postgres"], indirect=True)
async def test_two_adds_that_each_fit_but_not_together_are_settled_under_the_lock(store):  # noqa: F811
    async with open_app_state(store(max_members_per_universe=5)) as state:
        alice = await caller(state, store, "alice")
        async with state.unit_of_work(alice.owner_id) as session:
            universe, _ = await UniverseService(session, alice).create(
                "Nearly full", symbols=["AAPL", "MSFT", "NVDA"], validate=False
            )

        async def second_add() -> None:
            async with state.unit_of_work(alice.owner_id) as session:
                await UniverseService(session, alice, limits=state.limits).add_assets(
                    universe.id, ["META", "GOOGL"], validate=False
                )

        async with state.unit_of_work(alice.owner_id) as first:
            await UniverseService(first, alice, limits=state.limits).add_assets(
                universe.id, ["AMZN", "TSLA"], validate=False
            )
            racing = asyncio.create_task(second_add())  # its first look sees 3 members: 3 + 2 fits
            assert await still_waiting(racing)  # waiting for the universe's lock
        with pytest.raises(LimitExceeded) as refused:
            await asyncio.wait_for(racing, 30)
        assert refused.value.details == {"quota": "members_per_universe", "limit": 5, "current": 5, "requested": 2}
        assert refused.value.next_actions == [
            ("get_universe", {"universe_id": universe.id, "include_assets": False}, "see the counts")
        ]
        async with state.unit_of_work(alice.owner_id) as session:
            detail = await UniverseService(session, alice).get(universe.id)
            assert [a.symbol for a in detail.assets] == ["AAPL", "MSFT", "NVDA", "AMZN", "TSLA"]
