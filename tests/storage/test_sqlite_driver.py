"""storage/sqlite_driver.py: one aiosqlite hop per statement, none for the commit or rollback of a transaction that
never began, and the DBAPI behaviour SQLAlchemy relies on (rows, rowcount, RETURNING, executemany, errors)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from storage.db import make_engine, make_sessionmaker, unit_of_work
from storage.sqlite_driver import DRIVER

pytestmark = pytest.mark.anyio


@pytest.fixture
async def engine(tmp_path):
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'd.db'}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)"))
    yield engine
    await engine.dispose()


@pytest.fixture
def hops(monkeypatch):
    """Counts the functions queued on aiosqlite's threads."""
    counted: list[str] = []
    original = aiosqlite.Connection._execute

    async def counting(self: aiosqlite.Connection, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        counted.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counting)
    return counted


def test_the_aiosqlite_internals_it_uses_are_still_there():
    """A canary: the driver calls aiosqlite.Connection._execute and reads ._conn, outside aiosqlite's public API."""
    assert callable(getattr(aiosqlite.Connection, "_execute", None))
    assert isinstance(aiosqlite.Connection.__dict__.get("_conn"), property)


async def test_sqlite_urls_get_the_one_hop_driver(engine):
    assert engine.dialect.driver == DRIVER
    assert engine.url.drivername == f"sqlite+{DRIVER}"


async def test_a_statement_is_one_hop_and_a_read_only_unit_commits_without_one(engine, hops):
    sessions = make_sessionmaker(engine)
    async with unit_of_work(sessions) as session:  # the pool's first connection: opening it costs hops
        await session.execute(text("SELECT 1"))
    hops.clear()
    async with unit_of_work(sessions) as session:
        await session.execute(text("SELECT count(*) FROM t"))
        await session.execute(text("SELECT v FROM t WHERE id = 1"))
    assert hops == ["_run", "_run"]  # no cursor opened or closed, no commit, no rollback on check-in
    hops.clear()
    async with unit_of_work(sessions) as session:
        await session.execute(text("INSERT INTO t (v) VALUES ('a')"))
    assert hops == ["_run", "commit"]  # a unit that wrote commits


async def test_rows_rowcount_returning_and_executemany(engine):
    sessions = make_sessionmaker(engine)
    async with unit_of_work(sessions) as session:
        result = await session.execute(text("INSERT INTO t (v) VALUES (:v)"), [{"v": "x"}, {"v": "y"}, {"v": "z"}])
        assert result.rowcount == 3
        returned = await session.execute(text("INSERT INTO t (v) VALUES ('w') RETURNING id, v"))
        assert [tuple(r) for r in returned] == [(4, "w")]
        updated = await session.execute(text("UPDATE t SET v = v || '!' WHERE v IN ('x', 'y')"))
        assert updated.rowcount == 2
        rows = (await session.execute(text("SELECT v FROM t ORDER BY id"))).all()
        assert [r.v for r in rows] == ["x!", "y!", "z", "w"]
        assert (await session.execute(text("SELECT v FROM t WHERE id = 99"))).first() is None
    async with unit_of_work(sessions) as session:  # committed
        assert await session.scalar(text("SELECT count(*) FROM t")) == 4


async def test_errors_are_the_dbapi_errors_and_roll_back(engine):
    sessions = make_sessionmaker(engine)
    async with unit_of_work(sessions) as session:
        await session.execute(text("INSERT INTO t (v) VALUES ('dup')"))
    with pytest.raises(IntegrityError) as raised:
        async with unit_of_work(sessions) as session:
            await session.execute(text("INSERT INTO t (v) VALUES ('other')"))
            await session.execute(text("INSERT INTO t (v) VALUES ('dup')"))
    assert isinstance(raised.value.orig, sqlite3.IntegrityError)
    async with unit_of_work(sessions) as session:
        assert list(await session.scalars(text("SELECT v FROM t"))) == ["dup"]  # 'other' rolled back
