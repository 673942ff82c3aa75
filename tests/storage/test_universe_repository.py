"""storage/repositories/universes.py in process, on SQLite and on PostgreSQL (as the non-owner app role, under
row-level security, as a deployment runs it).

The concurrency tests (tests/concurrency) prove the same locks over HTTP with server processes, which mutation
testing cannot see; these drive the repository functions directly in the test process: the universe lock serialises
two writers and hands the second one the row the first committed, lookups answer only the owner, and the queries
the services build on (counts, pages, point-in-time membership, turnover windows) return exactly the rows they name.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from server.lifespan import AppState, open_app_state
from services.schemas import Caller
from services.universes import UniverseService
from storage.repositories import universes as repo
from storage.repositories.assets import get_assets_by_symbols
from storage.repositories.users import get_or_create_user
from tests.support.stores import Store, pg_store, store  # noqa: F401

pytestmark = pytest.mark.anyio


@dataclass
class Owner:
    id: uuid.UUID
    name: str


@asynccontextmanager
async def opened(store: Store) -> AsyncIterator[AppState]:  # noqa: F811
    async with open_app_state(store()) as state:
        yield state


async def owner(state: AppState, store: Store, name: str) -> Owner:  # noqa: F811
    async with state.unit_of_work() as session:
        user = await get_or_create_user(session, store.user(name))
        return Owner(user.id, user.name)


async def create(state: AppState, who: Owner, name: str, symbols: list[str] | None = None) -> uuid.UUID:
    async with state.unit_of_work(who.id) as session:
        universe, _ = await UniverseService(session, Caller(owner_id=who.id, name=who.name)).create(
            name, symbols=symbols or [], validate=False
        )
        return uuid.UUID(universe.id)


async def finished_early(task: asyncio.Task) -> bool:
    """Whether ``task`` completes within a few hundred milliseconds (a task blocked on a lock does not)."""
    for _ in range(30):
        if task.done():
            return True
        await asyncio.sleep(0.01)
    return task.done()


# --- the universe lock ----------------------------------------------------------------------------------------------
async def test_lock_universe_waits_for_the_writer_holding_it_and_returns_the_row_it_committed(store):  # noqa: F811
    async with opened(store) as state:
        alice = await owner(state, store, "alice")
        uid = await create(state, alice, "Before")

        async def second_writer() -> str:
            async with state.unit_of_work(alice.id) as session:
                seen = await repo.get_universe(session, alice.id, uid)  # loaded before the lock: now stale
                assert seen is not None and seen.name == "Before"
                locked = await repo.lock_universe(session, alice.id, uid)
                assert locked is seen  # the same identity, refreshed from the row as committed
                return locked.name

        async with state.unit_of_work(alice.id) as first:
            held = await repo.lock_universe(first, alice.id, uid)
            assert held is not None and held.name == "Before"
            waiting = asyncio.create_task(second_writer())
            # Until the first writer commits, the second cannot have its lock (SQLite: the store's single writer;
            # PostgreSQL: FOR UPDATE on the row) ...
            assert not await finished_early(waiting)
            held.name = "After"
        # ... and once it has it, it reads what the first one committed, not its own earlier copy.
        assert await asyncio.wait_for(waiting, 30) == "After"


async def test_lock_universe_answers_none_for_another_owner_or_a_missing_universe(store):  # noqa: F811
    async with opened(store) as state:
        alice, bob = await owner(state, store, "alice"), await owner(state, store, "bob")
        uid = await create(state, alice, "Alice's")
        async with state.unit_of_work(bob.id) as session:
            assert await repo.lock_universe(session, bob.id, uid) is None
            assert await repo.lock_universe(session, bob.id, uuid.uuid4()) is None
        async with state.unit_of_work(alice.id) as session:
            assert await repo.lock_universe(session, alice.id, uuid.uuid4()) is None
            assert (await repo.lock_universe(session, alice.id, uid)).name == "Alice's"


async def test_a_universe_deleted_while_waiting_for_its_lock_is_gone(store):  # noqa: F811
    async with opened(store) as state:
        alice = await owner(state, store, "alice")
        uid = await create(state, alice, "Doomed", ["AAPL"])

        async def second_writer():
            async with state.unit_of_work(alice.id) as session:
                return await repo.lock_universe(session, alice.id, uid)

        async with state.unit_of_work(alice.id) as first:
            assert await repo.lock_universe(first, alice.id, uid) is not None
            waiting = asyncio.create_task(second_writer())
            assert not await finished_early(waiting)
            assert await repo.delete_universe(first, alice.id, uid) == 1
        assert await asyncio.wait_for(waiting, 30) is None


async def test_lock_writes_serialises_writers_on_sqlite(make_settings):
    # Creating a universe takes lock_writes, not a row lock: on SQLite it must queue behind the writer in progress
    # and then see what that writer committed (PostgreSQL relies on the unique index instead; a no-op there).
    async with open_app_state(make_settings()) as state:
        async with state.unit_of_work() as session:
            user = await get_or_create_user(session, "alice")
        alice = Owner(user.id, user.name)

        async def second_writer() -> list[str]:
            async with state.unit_of_work() as session:
                await repo.lock_writes(session)
                return [u.name for u, _ in await repo.list_universes(session, alice.id, limit=10)]

        async with state.unit_of_work() as first:
            await repo.lock_writes(first)
            waiting = asyncio.create_task(second_writer())
            assert not await finished_early(waiting)
            await UniverseService(first, Caller(owner_id=alice.id, name=alice.name)).create("First", validate=False)
        assert await asyncio.wait_for(waiting, 30) == ["First"]


# --- every query answers for one owner and one universe -------------------------------------------------------------
async def members(state: AppState, who: Owner, uid: uuid.UUID) -> list[str]:
    async with state.unit_of_work(who.id) as session:
        return [symbol for symbol, _ in await session.run_sync(repo.member_symbols, uid)]


async def test_delete_universe_deletes_exactly_the_owners_universe_it_names(store):  # noqa: F811
    async with opened(store) as state:
        alice, bob = await owner(state, store, "alice"), await owner(state, store, "bob")
        doomed, kept = await create(state, alice, "Doomed", ["AAPL"]), await create(state, alice, "Kept", ["AAPL"])
        async with state.unit_of_work(bob.id) as session:
            assert await repo.delete_universe(session, bob.id, doomed) == 0  # not bob's: nothing happens
        async with state.unit_of_work(alice.id) as session:
            assert await repo.delete_universe(session, alice.id, uuid.uuid4()) == 0
            assert await repo.get_universe(session, alice.id, doomed) is not None
            assert await repo.delete_universe(session, alice.id, doomed) == 1
        async with state.unit_of_work(alice.id) as session:
            assert await repo.get_universe(session, alice.id, doomed) is None
            assert (await repo.get_universe(session, alice.id, kept)).name == "Kept"
        assert await members(state, alice, kept) == ["AAPL"]


async def test_membership_queries_see_only_the_universe_they_name(store):  # noqa: F811
    # Assets are shared by every universe of every owner: each membership query must stay inside its universe.
    unknown = f"ZQ{store.user('x')[-6:].upper()}"  # not in the catalog: added unvalidated, status unknown
    async with opened(store) as state:
        alice, bob = await owner(state, store, "alice"), await owner(state, store, "bob")
        mine = await create(state, alice, "Mine", ["MSFT", "AAPL", unknown])
        other = await create(state, alice, "Other", ["AAPL", "NVDA"])
        theirs = await create(state, bob, "Theirs", ["NVDA", "MSFT"])
        async with state.unit_of_work(alice.id) as session:
            ids = {
                s: a.id for s, a in (await get_assets_by_symbols(session, ["AAPL", "MSFT", "NVDA", unknown])).items()
            }
            assert await session.run_sync(repo.member_symbols, mine) == [(s, ids[s]) for s in ["MSFT", "AAPL", unknown]]
            assert await session.run_sync(repo.members_by_symbol, mine, ["NVDA", "AAPL", "KO"]) == {"AAPL": ids["AAPL"]}
            assert await session.run_sync(repo.member_asset_ids, mine, [ids["NVDA"], ids["MSFT"]]) == {ids["MSFT"]}
            assert await session.run_sync(repo.member_asset_ids, mine, []) == set()
            assert await session.run_sync(repo.members_by_symbol, mine, []) == {}
            assert await repo.count_members(session, mine) == 3
            assert await repo.count_members_by_status(session, mine) == {"valid": 2, "unknown": 1}
            assert await repo.count_members(session, other) == 2
            # Removing NVDA from "Mine" (where it is not a member) and AAPL removes only Mine's AAPL.
            assert await session.run_sync(repo.remove_members, mine, [ids["AAPL"], ids["NVDA"]]) == [ids["AAPL"]]
            assert await session.run_sync(repo.remove_members, mine, []) == []
        assert await members(state, alice, mine) == ["MSFT", unknown]
        assert await members(state, alice, other) == ["AAPL", "NVDA"]
        assert await members(state, bob, theirs) == ["NVDA", "MSFT"]


async def test_list_universes_counts_each_universes_members(store):  # noqa: F811
    async with opened(store) as state:
        alice, bob = await owner(state, store, "alice"), await owner(state, store, "bob")
        await create(state, alice, "Big", ["AAPL", "MSFT", "NVDA"])
        await create(state, alice, "Empty")
        await create(state, alice, "Small", ["AAPL"])
        await create(state, bob, "Bob's", ["AAPL", "MSFT"])
        async with state.unit_of_work(alice.id) as session:
            rows = await repo.list_universes(session, alice.id, limit=10)
            assert [(u.name, n) for u, n in rows] == [("Big", 3), ("Empty", 0), ("Small", 1)]
            page = await repo.list_universes(
                session, alice.id, limit=1, after=(rows[0][0].name_key, str(rows[0][0].id))
            )
            assert [(u.name, n) for u, n in page] == [("Empty", 0)]


async def test_name_contains_matches_its_text_literally_whatever_the_store(store):  # noqa: F811
    names = ["100% Tech", "1000 Tech", "Fund_A", "FundXA", "Long\\Short", "LongShort", "Énergie"]
    async with opened(store) as state:
        alice = await owner(state, store, "alice")
        for name in names:
            await create(state, alice, name)
        async with state.unit_of_work(alice.id) as session:

            async def matching(text: str) -> list[str]:
                return [u.name for u, _ in await repo.list_universes(session, alice.id, limit=10, name_contains=text)]

            assert await matching("0% ") == ["100% Tech"]  # % is a percent sign, not "anything"
            assert await matching("d_a") == ["Fund_A"]  # _ is an underscore, not "any one character"
            assert await matching("g\\s") == ["Long\\Short"]  # a backslash is a backslash
            assert await matching("TECH") == ["100% Tech", "1000 Tech"]  # case does not matter ...
            assert await matching("ÉNER") == ["Énergie"]  # ... beyond ASCII too


async def test_membership_state_of_a_universe(store):  # noqa: F811
    async with opened(store) as state:
        alice = await owner(state, store, "alice")
        uid, other = await create(state, alice, "State"), await create(state, alice, "Elsewhere")
        async with state.unit_of_work(alice.id) as session:
            assert await session.run_sync(repo.membership_state, uid) == (0, None, 0)
            ids = [a.id for a in (await get_assets_by_symbols(session, ["AAPL", "MSFT", "NVDA"])).values()]
            at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
            await session.run_sync(
                repo.add_members, universe_id=uid, owner_id=alice.id, asset_ids=ids, first_position=0, at=at
            )
            await session.run_sync(
                repo.record_events, universe_id=uid, owner_id=alice.id, asset_ids=ids, action="added", at=at
            )
            # Another universe's later history is not this one's.
            await session.run_sync(
                repo.record_events,
                universe_id=other,
                owner_id=alice.id,
                asset_ids=ids,
                action="added",
                at=at + timedelta(days=1),
            )
            assert await session.run_sync(repo.membership_state, uid) == (3, at, 3)
            rows = await repo.list_members(session, uid, limit=10)
            assert [(m.position, m.added_at) for m, _ in rows] == [(0, at), (1, at), (2, at)]
            # Every member removed: no next position to continue from, but the history goes on.
            later = at + timedelta(hours=1)
            await session.run_sync(repo.remove_members, uid, ids)
            await session.run_sync(
                repo.record_events, universe_id=uid, owner_id=alice.id, asset_ids=ids, action="removed", at=later
            )
            assert await session.run_sync(repo.membership_state, uid) == (0, later, 0)


async def test_members_are_listed_in_position_order_not_insertion_order(store):  # noqa: F811
    async with opened(store) as state:
        alice = await owner(state, store, "alice")
        uid = await create(state, alice, "Ordered")
        symbols = ["AAPL", "MSFT", "NVDA", "KO", "PEP", "JNJ", "XOM", "JPM"]
        async with state.unit_of_work(alice.id) as session:
            assets = await get_assets_by_symbols(session, symbols)
            at = datetime(2026, 3, 1, tzinfo=UTC)
            for position, symbol in reversed(list(enumerate(symbols))):  # inserted last position first
                await session.run_sync(
                    repo.add_members, universe_id=uid, owner_id=alice.id, asset_ids=[assets[symbol].id],
                    first_position=position, at=at,
                )  # fmt: skip
        async with state.unit_of_work(alice.id) as session:
            assert [s for s, _ in await session.run_sync(repo.member_symbols, uid)] == symbols
            assert [a.symbol for _, a in await repo.list_members(session, uid, limit=20)] == symbols
            page = await repo.list_members(session, uid, limit=3, after_position=2)
            assert [(m.position, a.symbol) for m, a in page] == [(3, "KO"), (4, "PEP"), (5, "JNJ")]


async def test_completion_ids_come_in_name_order_and_stop_at_the_limit(store):  # noqa: F811
    async with opened(store) as state:
        alice = await owner(state, store, "alice")
        by_name = {name: await create(state, alice, name) for name in ["Delta", "Alpha", "Charlie", "Bravo"]}
        async with state.unit_of_work(alice.id) as session:
            expected = [str(by_name[n]) for n in ["Alpha", "Bravo", "Charlie", "Delta"]]
            assert await repo.universe_ids_with_prefix(session, alice.id, "", 10) == expected
            assert await repo.universe_ids_with_prefix(session, alice.id, "", 2) == expected[:2]
            one = str(by_name["Charlie"])
            assert await repo.universe_ids_with_prefix(session, alice.id, one[:8], 10) == [one]


async def test_simultaneous_events_are_ordered_by_when_they_were_recorded(store):  # noqa: F811
    # Two events of one asset can share an instant (an event is never dated before the universe's latest one, so a
    # replica whose clock is behind dates its event exactly then): the one recorded last decides.
    async with opened(store) as state:
        alice = await owner(state, store, "alice")
        uid, other = await create(state, alice, "Same instant"), await create(state, alice, "Other universe")
        at = datetime(2026, 3, 1, tzinfo=UTC)
        async with state.unit_of_work(alice.id) as session:
            assets = await get_assets_by_symbols(session, ["AAPL", "MSFT"])
            aapl, msft = assets["AAPL"].id, assets["MSFT"].id
            for asset, action in [
                (aapl, "added"),
                (msft, "added"),
                (aapl, "removed"),
                (msft, "removed"),
                (msft, "added"),
            ]:
                await session.run_sync(
                    repo.record_events, universe_id=uid, owner_id=alice.id, asset_ids=[asset], action=action, at=at
                )
            # The same asset's history in another universe of the same owner is not this one's.
            await session.run_sync(
                repo.record_events, universe_id=other, owner_id=alice.id, asset_ids=[aapl], action="added", at=at
            )
        async with state.unit_of_work(alice.id) as session:
            assert [a.symbol for a, _ in await repo.list_members_as_of(session, uid, at)] == ["MSFT"]
            assert await repo.turnover_counts(session, uid, None, at) == (3, 2, 0, 1)


async def test_an_add_writes_its_members_in_order_and_an_event_for_each_row_it_inserted(store):  # noqa: F811
    # add_members unrolls the ids in the database (json_each / unnest) and record_added_events copies the rows from
    # the first new position on: the positions follow the ids' order, the events follow the positions, and the
    # members (and history) the universe had before are left as they were.
    from sqlalchemy import select
    from sqlalchemy.exc import IntegrityError

    from storage.models import UniverseAssetEvent
    from storage.repositories.assets import asset_refs_by_symbols

    async with opened(store) as state:
        alice = await owner(state, store, "alice")
        uid = await create(state, alice, "Growing", ["AAPL", "MSFT"])
        at = datetime(2030, 3, 1, 12, 0, tzinfo=UTC)
        async with state.unit_of_work(alice.id) as session:
            refs = await asset_refs_by_symbols(session, ["PEP", "NVDA", "KO", "NOSUCH1"])
            assert sorted(refs) == ["KO", "NVDA", "PEP"]
            new = [refs[s].id for s in ["PEP", "NVDA", "KO"]]
            first, _, count = await session.run_sync(repo.membership_state, uid)
            assert (first, count) == (2, 2)
            await session.run_sync(
                repo.add_members, universe_id=uid, owner_id=alice.id, asset_ids=new, first_position=first, at=at
            )
            await session.run_sync(
                repo.record_added_events,
                universe_id=uid,
                owner_id=alice.id,
                first_position=first,
                at=at,
                reason="added by hand",
            )
        async with state.unit_of_work(alice.id) as session:
            rows = await repo.list_members(session, uid, limit=10)
            assert [(m.position, a.symbol, m.added_at == at) for m, a in rows] == [
                (0, "AAPL", False),
                (1, "MSFT", False),
                (2, "PEP", True),
                (3, "NVDA", True),
                (4, "KO", True),
            ]
            assert all(m.owner_id == alice.id for m, _ in rows)
            events = (
                await session.scalars(
                    select(UniverseAssetEvent)
                    .where(UniverseAssetEvent.universe_id == uid)
                    .order_by(UniverseAssetEvent.id)
                )
            ).all()
            symbols = {a.id: a.symbol for _, a in rows}
            assert [(symbols[e.asset_id], e.reason) for e in events] == [
                ("AAPL", "created with the universe"),
                ("MSFT", "created with the universe"),
                ("PEP", "added by hand"),
                ("NVDA", "added by hand"),
                ("KO", "added by hand"),
            ]
            assert all(e.action == "added" and e.owner_id == alice.id and e.run_id is None for e in events)
            assert [(e.effective_at, e.recorded_at) for e in events[2:]] == [(at, at)] * 3
        # A member added again is refused by the key, and nothing of that statement is written.
        with pytest.raises(IntegrityError):
            async with state.unit_of_work(alice.id) as session:
                await session.run_sync(
                    repo.add_members,
                    universe_id=uid,
                    owner_id=alice.id,
                    asset_ids=[refs["KO"].id, refs["PEP"].id],
                    first_position=5,
                    at=at,
                )
        async with state.unit_of_work(alice.id) as session:
            assert await session.run_sync(repo.membership_state, uid) == (5, at, 5)


async def test_asset_refs_are_the_listed_assets_of_any_number_of_symbols(store):  # noqa: F811
    # One statement with the symbols as one parameter, past SQLite's limit of bound parameters; the same assets
    # (id, status, source) as the ORM lookup finds, unknown symbols left out.
    from storage.repositories.assets import AssetRef, asset_refs_by_symbols, listed_symbols

    async with opened(store) as state:
        async with state.unit_of_work() as session:
            listed = await listed_symbols(session)
            wanted = listed[:600] + [f"NOSUCH{i}" for i in range(700)]
            refs = await asset_refs_by_symbols(session, wanted)
            assets = await get_assets_by_symbols(session, wanted)
            assert refs == {s: AssetRef.of(a) for s, a in assets.items()}
            assert len(refs) == min(600, len(listed))
            assert await asset_refs_by_symbols(session, []) == {}
