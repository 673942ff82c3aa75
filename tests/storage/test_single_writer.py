"""SQLite's single writer (storage/db.py begin_write): writers queue (a FIFO asyncio.Lock), the lock is released however a
transaction ends, and a transaction that has already written never waits for it (which would deadlock)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from storage.db import begin_write, make_engine, make_sessionmaker, unit_of_work

pytestmark = pytest.mark.anyio


@pytest.fixture
async def sessions(tmp_path):
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE log (n INTEGER)"))
    yield make_sessionmaker(engine)
    await engine.dispose()


async def test_each_writer_reads_what_the_previous_one_committed(sessions):

    async def writer(n: int) -> None:
        async with unit_of_work(sessions) as session:
            await begin_write(session)
            # Read-then-write: without the writer lock, two of these could read the same count.
            seen = await session.scalar(text("SELECT count(*) FROM log"))
            await asyncio.sleep(0)  # let the others run up to their begin_write
            await session.execute(text("INSERT INTO log VALUES (:n)"), {"n": seen})

    await asyncio.wait_for(asyncio.gather(*(writer(i) for i in range(8))), 30)
    async with unit_of_work(sessions) as session:
        assert list(await session.scalars(text("SELECT n FROM log ORDER BY n"))) == list(range(8))


async def test_the_lock_is_released_when_the_transaction_fails(sessions):
    with pytest.raises(RuntimeError):
        async with unit_of_work(sessions) as session:
            await begin_write(session)
            raise RuntimeError("boom")
    async with unit_of_work(sessions) as session:
        await asyncio.wait_for(begin_write(session), 5)  # would wait for ever if the failed one kept the lock


async def test_a_transaction_that_already_wrote_does_not_wait_for_the_lock(sessions):
    wrote = asyncio.Event()
    proceed = asyncio.Event()

    async def early_writer() -> None:
        async with unit_of_work(sessions) as session:
            await session.execute(text("INSERT INTO log VALUES (1)"))  # holds the database's write lock now
            wrote.set()
            await proceed.wait()
            await begin_write(session)  # the other one holds the in-process lock and waits for our database lock

    async def queued_writer() -> None:
        await wrote.wait()
        async with unit_of_work(sessions) as session:
            proceed.set()
            await begin_write(session)
            await session.execute(text("INSERT INTO log VALUES (2)"))

    await asyncio.wait_for(asyncio.gather(early_writer(), queued_writer()), 20)
    async with unit_of_work(sessions) as session:
        assert sorted(await session.scalars(text("SELECT n FROM log"))) == [1, 2]
