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

import pytest

from server.lifespan import AppState, open_app_state
from services.schemas import Caller
from services.universes import UniverseService
from storage.repositories import universes as repo
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
