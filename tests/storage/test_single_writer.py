"""SQLite's single writer (storage/db.py): begin_write sessions queue on a FIFO asyncio.Lock and park the writer
thread, run_write units queue on the writer thread; the lock is released however a transaction ends, and a
transaction that has already written never waits for it (which would deadlock)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from storage.db import begin_write, make_engine, make_sessionmaker, run_write, unit_of_work

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


# --- run_write: units on the writer thread ------------------------------------------------------------------------
def _read_then_write(session: Session, n: int) -> int:
    seen = session.scalar(text("SELECT count(*) FROM log"))
    session.execute(text("INSERT INTO log VALUES (:n)"), {"n": seen})
    return seen


async def test_units_and_async_writers_take_turns(sessions):
    """Units on the writer thread and begin_write sessions interleave without one seeing a half-done other: each
    reads the count and writes it, so any overlap would repeat a number."""

    async def unit(n: int) -> None:
        async with unit_of_work(sessions) as session:
            await run_write(session, _read_then_write, n)

    async def async_writer(n: int) -> None:
        async with unit_of_work(sessions) as session:
            await begin_write(session)
            seen = await session.scalar(text("SELECT count(*) FROM log"))
            await asyncio.sleep(0.01)  # a unit queued meanwhile must wait for this commit
            await session.execute(text("INSERT INTO log VALUES (:n)"), {"n": seen})

    jobs = [unit(i) if i % 3 else async_writer(i) for i in range(30)]
    await asyncio.wait_for(asyncio.gather(*jobs), 60)
    async with unit_of_work(sessions) as session:
        assert list(await session.scalars(text("SELECT n FROM log ORDER BY n"))) == list(range(30))


async def test_a_unit_runs_on_the_writer_thread_and_commits_on_its_own(sessions):
    import threading

    threads: list[str] = []

    def unit(session: Session) -> None:
        threads.append(threading.current_thread().name)
        session.execute(text("INSERT INTO log VALUES (7)"))

    with pytest.raises(RuntimeError):
        async with unit_of_work(sessions) as session:
            await run_write(session, unit)
            raise RuntimeError("the caller's own transaction fails afterwards")
    assert threads == [threads[0]] and threads[0].startswith("sqlite-writer")
    async with unit_of_work(sessions) as session:
        assert list(await session.scalars(text("SELECT n FROM log"))) == [7]


async def test_a_failing_unit_changes_nothing(sessions):
    def unit(session: Session) -> None:
        session.execute(text("INSERT INTO log VALUES (1)"))
        raise LookupError("refused halfway")

    async with unit_of_work(sessions) as session:
        with pytest.raises(LookupError):
            await run_write(session, unit)
        assert await session.scalar(text("SELECT count(*) FROM log")) == 0


async def test_a_session_that_wrote_runs_the_unit_in_its_own_transaction(sessions):
    """Its transaction holds SQLite's lock: the writer thread could not get it until this session commits."""
    import threading

    def unit(session: Session) -> str:
        session.execute(text("INSERT INTO log VALUES (2)"))
        return threading.current_thread().name

    with pytest.raises(RuntimeError):
        async with unit_of_work(sessions) as session:
            await session.execute(text("INSERT INTO log VALUES (1)"))
            where = await asyncio.wait_for(run_write(session, unit), 10)
            raise RuntimeError("roll both back")
    assert not where.startswith("sqlite-writer")
    async with unit_of_work(sessions) as session:
        assert await session.scalar(text("SELECT count(*) FROM log")) == 0


async def test_a_caller_cancelled_while_queued_withdraws_its_unit(sessions):
    started = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:  # an async writer: the thread is parked until it commits
        async with unit_of_work(sessions) as session:
            await begin_write(session)
            started.set()
            await release.wait()

    def unit(session: Session) -> None:
        session.execute(text("INSERT INTO log VALUES (9)"))

    async def queued() -> None:
        async with unit_of_work(sessions) as session:
            await run_write(session, unit)

    async with unit_of_work(sessions) as session:  # make the writer exist before the holder parks it
        await run_write(session, lambda s: None)
    task = asyncio.create_task(holder())
    await started.wait()
    waiting = asyncio.create_task(queued())
    await asyncio.sleep(0.05)
    waiting.cancel()
    release.set()
    await task
    with pytest.raises(asyncio.CancelledError):
        await waiting
    async with unit_of_work(sessions) as session:
        await run_write(session, lambda s: None)  # the queue still works
        assert await session.scalar(text("SELECT count(*) FROM log")) == 0


async def test_an_async_writer_takes_its_turn_among_queued_units(sessions):
    """FIFO across both kinds: a begin_write session parks the writer thread in the queue's order instead of polling
    SQLite's lock, which a thread running units back to back would hold nearly all the time (it would wait for
    every unit queued after it too)."""
    import time

    order: list[str] = []

    def unit(session: Session, n: int) -> None:
        session.execute(text("INSERT INTO log VALUES (:n)"), {"n": n})
        time.sleep(0.02)  # holds SQLite's lock meanwhile
        order.append(f"unit {n}")

    async def run_unit(n: int) -> None:
        async with unit_of_work(sessions) as session:
            await run_write(session, unit, n)

    async def async_writer() -> None:
        async with unit_of_work(sessions) as session:
            await begin_write(session)
            await session.execute(text("INSERT INTO log VALUES (-1)"))
            order.append("async writer")

    first = [asyncio.create_task(run_unit(n)) for n in range(10)]
    await asyncio.sleep(0)  # the units are queued on the thread
    writer = asyncio.create_task(async_writer())
    await asyncio.sleep(0.01)  # the writer is waiting for its turn
    later = [asyncio.create_task(run_unit(n)) for n in range(10, 20)]
    await asyncio.wait_for(asyncio.gather(*first, writer, *later), 60)
    assert order.index("async writer") == 10, order
