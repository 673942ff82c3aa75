"""services/universes.py where the tool tests cannot reach it on their own: membership events when replicas' clocks
disagree, and a name lost to a concurrent writer between the check and the write (PostgreSQL, where two
universes' writers do not wait for each other; on SQLite the single writer makes that race impossible).

The clock is the service's own (``services.universes.utcnow``), set ahead as a replica with a fast clock would
be; the races use two real transactions on a real PostgreSQL, as the non-owner role under row-level security.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

import services.universes as universes_module
from providers.base import AssetProfile
from providers.fake import FakeProvider
from server.lifespan import open_app_state
from services.errors import LimitExceeded, UniverseExists
from services.schemas import Caller
from services.universes import UniverseService
from storage.repositories.users import get_or_create_user
from tests.conftest import Call
from tests.support.stores import Store, pg_store, serve, store  # noqa: F401

pytestmark = pytest.mark.anyio


def symbols_of(detail: dict) -> list[str]:
    return [a["symbol"] for a in detail["assets"]]


async def test_events_replay_in_commit_order_when_a_replicas_clock_ran_ahead(call, monkeypatch):
    """A replica whose clock runs an hour ahead stamps its add an hour ahead; a later add or removal from a replica
    with the right time must still come after it in the history, or as_of would replay them in the wrong order."""
    uid = (await call.ok("create_universe", name="Skewed", symbols=["AAPL", "MSFT"], validate=False))["universe"]["id"]
    ahead = datetime.now(UTC) + timedelta(hours=1)
    monkeypatch.setattr(universes_module, "utcnow", lambda: ahead)
    await call.ok("add_assets_to_universe", universe_id=uid, symbols=["NVDA"], validate=False)  # stamped `ahead`
    await call.ok("remove_assets_from_universe", universe_id=uid, symbols=["MSFT"])  # stamped `ahead` too
    monkeypatch.undo()  # back to the right time, which is before `ahead`

    await call.ok("remove_assets_from_universe", universe_id=uid, symbols=["NVDA"])
    await call.ok("add_assets_to_universe", universe_id=uid, symbols=["MSFT"], validate=False)
    later = (ahead + timedelta(minutes=1)).isoformat()
    now = await call.ok("get_universe", universe_id=uid)
    assert symbols_of(now) == ["AAPL", "MSFT"]
    # The history as of after every event agrees with the members: NVDA's removal came after its add, and MSFT's
    # re-add after its removal, although the right clock read earlier than both.
    then = await call.ok("get_universe", universe_id=uid, as_of=later)
    assert symbols_of(then) == ["AAPL", "MSFT"]
    readded = {a["symbol"]: datetime.fromisoformat(a["added_at"]) for a in then["assets"]}
    assert readded["MSFT"] >= ahead
    window = await call.ok("get_universe_turnover", universe_id=uid, until=later)
    assert (window["additions"], window["removals"], window["size_end"]) == (4, 2, 2)


async def _owner(state, store: Store, name: str) -> Caller:  # noqa: F811
    async with state.unit_of_work() as session:
        user = await get_or_create_user(session, store.user(name))
        return Caller(owner_id=user.id, name=user.name)


async def _blocked(task: asyncio.Task) -> bool:
    """Whether ``task`` is still waiting after a few hundred milliseconds (on a lock held by the other writer)."""
    for _ in range(30):
        if task.done():
            return False
        await asyncio.sleep(0.01)
    return not task.done()


@pytest.mark.parametrize("store", ["postgres"], indirect=True)
async def test_a_rename_that_loses_the_name_to_a_concurrent_rename_is_already_exists(store):  # noqa: F811
    async with open_app_state(store()) as state:
        alice = await _owner(state, store, "alice")
        ids = []
        for name in ("First", "Second"):
            async with state.unit_of_work(alice.owner_id) as session:
                ids.append(uuid.UUID((await UniverseService(session, alice).create(name))[0].id))

        async def second_rename() -> None:
            async with state.unit_of_work(alice.owner_id) as session:
                await UniverseService(session, alice).update(str(ids[1]), name="Wanted", description="second")

        async with state.unit_of_work(alice.owner_id) as first:
            await UniverseService(first, alice).update(str(ids[0]), name="WANTED")  # written, not yet committed
            racing = asyncio.create_task(second_rename())
            # The second writer's check saw no "Wanted" yet; its write waits on the first one's name ...
            assert await _blocked(racing)
        # ... and once the first commits, it is refused with the name's holder, not a database error.
        with pytest.raises(UniverseExists) as lost:
            await asyncio.wait_for(racing, 30)
        assert lost.value.details == {"existing_id": str(ids[0]), "existing_name": "WANTED"}
        async with state.unit_of_work(alice.owner_id) as session:
            second = await UniverseService(session, alice).get(str(ids[1]), include_assets=False)
            assert (second.universe.name, second.universe.description) == ("Second", None)  # nothing of it written


@pytest.mark.parametrize("store", ["postgres"], indirect=True)
async def test_a_create_that_loses_the_name_to_a_concurrent_create_is_already_exists(store):  # noqa: F811
    async with open_app_state(store()) as state:
        alice = await _owner(state, store, "alice")

        async def second_create() -> None:
            async with state.unit_of_work(alice.owner_id) as session:
                await UniverseService(session, alice).create("wanted", symbols=["AAPL"], validate=False)

        async with state.unit_of_work(alice.owner_id) as first:
            winner, _ = await UniverseService(first, alice).create("Wanted")
            racing = asyncio.create_task(second_create())
            assert await _blocked(racing)
        with pytest.raises(UniverseExists) as lost:
            await asyncio.wait_for(racing, 30)
        assert lost.value.details == {"existing_id": winner.id, "existing_name": "Wanted"}
        async with state.unit_of_work(alice.owner_id) as session:
            page = await UniverseService(session, alice).list()
            assert [(u.name, u.asset_count) for u in page.universes] == [("Wanted", 0)]


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
        alice = await _owner(state, store, "alice")
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
            assert await _blocked(racing)  # waiting for the universe's lock
        with pytest.raises(LimitExceeded) as refused:
            await asyncio.wait_for(racing, 30)
        assert refused.value.details == {"quota": "members_per_universe", "limit": 5, "current": 5, "requested": 2}
        assert refused.value.next_actions == [
            ("get_universe", {"universe_id": universe.id, "include_assets": False}, "see the counts")
        ]
        async with state.unit_of_work(alice.owner_id) as session:
            detail = await UniverseService(session, alice).get(universe.id)
            assert [a.symbol for a in detail.assets] == ["AAPL", "MSFT", "NVDA", "AMZN", "TSLA"]
