"""Universe names that look alike are one name (issue 10, item 17), on SQLite and on PostgreSQL; a name lost to a
concurrent create or rename is already_exists (PostgreSQL, where two universes' writers do not wait for each other
until the unique index makes the second wait; on SQLite the single writer makes that race impossible)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from server.lifespan import open_app_state
from services.errors import UniverseExists
from services.universes import UniverseService
from tests.conftest import Call
from tests.support.stores import caller, pg_store, serve, still_waiting, store  # noqa: F401

LOOKALIKES = [
    "\u0421onf Leaders",  # Cyrillic capital ES
    "Conf L\u0435aders",  # Cyrillic small IE
    "C\u03bfnf Leaders",  # Greek small omicron
    "Conf\u200b Leaders",  # zero-width space
    "Co\u200dnf Leaders",  # zero-width joiner
    "\ufeffConf Leaders",  # byte-order mark
    "Conf\u00a0Leaders",  # no-break space
    "\uff23\uff4f\uff4e\uff46 Leaders",  # fullwidth
    "Conf Leaders\ufe0f",  # variation selector
    "conf\u2003leaders",  # em space, lower case
    "Conf Le\u00adaders",  # soft hyphen
]


@pytest.mark.anyio
async def test_confusable_names_are_the_same_name(store):
    async with serve(store(local_user=store.user("conf"))) as client:
        call = Call(client)
        original = (await call.ok("create_universe", name="Conf Leaders"))["universe"]
        for name in LOOKALIKES:
            clash = await call.error("create_universe", "already_exists", name=name)
            assert clash["error"]["details"]["existing_id"] == original["id"], name
        other = (await call.ok("create_universe", name="Other"))["universe"]["id"]
        await call.error("update_universe", "already_exists", universe_id=other, name="\u0421onf Leaders")
        # ASCII look-alikes stay distinct (folding them would make "Modern" and "Modem" clash).
        for name in ("Modern", "Modem", "Top 10", "Top 1O", "Fund I", "Fund l"):
            await call.ok("create_universe", name=name)
        # A name is kept as written, minus zero-width spaces; a name of nothing visible is empty.
        kept = (await call.ok("create_universe", name="Se\u200bctor \u0416"))["universe"]
        assert kept["name"] == "Sector \u0416"
        await call.error("create_universe", "invalid_argument", name="\u200b\u200d\ufeff")
        # NFKC and case folding may lengthen a name past the key's column: refused, never a database error.
        too_long = await call.error("create_universe", "invalid_argument", name="\u00df" * 150)
        assert "normalised" in too_long["error"]["message"]
        names = {u["name"] for u in (await call.ok("list_universes", limit=100))["universes"]}
        assert names == {
            "Conf Leaders",
            "Other",
            "Modern",
            "Modem",
            "Top 10",
            "Top 1O",
            "Fund I",
            "Fund l",
            "Sector \u0416",
        }


@pytest.mark.anyio
@pytest.mark.parametrize("store", ["postgres"], indirect=True)
async def test_a_rename_that_loses_the_name_to_a_concurrent_rename_is_already_exists(store):  # noqa: F811
    async with open_app_state(store()) as state:
        alice = await caller(state, store, "alice")
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
            assert await still_waiting(racing)
        # ... and once the first commits, it is refused with the name's holder, not a database error.
        with pytest.raises(UniverseExists) as lost:
            await asyncio.wait_for(racing, 30)
        assert lost.value.details == {"existing_id": str(ids[0]), "existing_name": "WANTED"}
        async with state.unit_of_work(alice.owner_id) as session:
            second = await UniverseService(session, alice).get(str(ids[1]), include_assets=False)
            assert (second.universe.name, second.universe.description) == ("Second", None)  # nothing of it written


@pytest.mark.anyio
@pytest.mark.parametrize("store", ["postgres"], indirect=True)
async def test_a_create_that_loses_the_name_to_a_concurrent_create_is_already_exists(store):  # noqa: F811
    async with open_app_state(store()) as state:
        alice = await caller(state, store, "alice")

        async def second_create() -> None:
            async with state.unit_of_work(alice.owner_id) as session:
                await UniverseService(session, alice).create("wanted", symbols=["AAPL"], validate=False)

        async with state.unit_of_work(alice.owner_id) as first:
            winner, _ = await UniverseService(first, alice).create("Wanted")
            racing = asyncio.create_task(second_create())
            assert await still_waiting(racing)
        with pytest.raises(UniverseExists) as lost:
            await asyncio.wait_for(racing, 30)
        assert lost.value.details == {"existing_id": winner.id, "existing_name": "Wanted"}
        async with state.unit_of_work(alice.owner_id) as session:
            page = await UniverseService(session, alice).list()
            assert [(u.name, u.asset_count) for u in page.universes] == [("Wanted", 0)]
