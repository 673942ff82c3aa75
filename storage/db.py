"""Engine and session factories, the declarative base and the one place a unit of work commits.

SQLite (the embedded default) runs in WAL mode with foreign keys on; PostgreSQL is used through asyncpg.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from sqlalchemy import DateTime, Engine, MetaData, Table, TypeDecorator, create_engine, event, text
from sqlalchemy.engine import CursorResult, Dialect, Result, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Session, SessionTransaction, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.schema import CreateIndex

__all__ = [
    "Base",
    "UTCDateTime",
    "begin_write",
    "driver_connection",
    "make_engine",
    "make_sessionmaker",
    "refresh_planner_statistics",
    "rowcount",
    "run_write",
    "unit_of_work",
    "utcnow",
]

T = TypeVar("T")

# Explicit constraint names, so migrations can name what they drop on both SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    # Every model here maps one Table (DeclarativeBase types it as any FromClause); the repositories' Core
    # statements use its insert() and indexes.
    __table__: ClassVar[Table]


@compiles(CreateIndex, "sqlite")
def _sqlite_create_index(element: CreateIndex, compiler: Any, **kw: Any) -> str:
    """SQLite's CREATE INDEX takes no NULLS FIRST/LAST. The indexes that say NULLS LAST (storage/models.py, the
    market-cap orders) say it with DESC, where SQLite puts NULLs last anyway: the clause is dropped, not its meaning."""
    ddl: str = compiler.visit_create_index(element, **kw)
    return ddl.replace(" DESC NULLS LAST", " DESC")


# The tables whose plans depend on their statistics most: screens, filtered searches, ticker lookups.
STATISTICS_TABLES = ("assets", "asset_name_words", "asset_indices", "asset_symbols")


async def refresh_planner_statistics(conn: AsyncConnection) -> None:
    """Give the query planner statistics about the store: that a sector holds 9,000 assets and an index 500, so that
    it starts a screen from the index, and that "listed" is nearly every row.

    SQLite keeps none unless asked, and takes every equality on an indexed column to be selective: a screen of
    "index and sector" read the sector's 9,000 rows to find its 45 index members, and an ``any`` of five conditions
    united five index ranges (15,000 rows) and sorted them instead of walking the market-cap order for one page.
    Here a full ANALYZE (0.4 s on 100,000 assets; a sampled one, PRAGMA analysis_limit, misjudged a sector 17-fold)
    runs when the store has no statistics for its assets or their number moved by more than a tenth since.
    PostgreSQL's autovacuum keeps them, but only some time after a bulk load, and not at all where it is off; a
    table never analyzed was planned as if it held a handful of rows (a filtered search then joined every listed
    asset with its candidates, seconds per call). So the tables above are analyzed here when PostgreSQL holds no
    statistics for them or more than a tenth of their rows changed since (autovacuum's own threshold). Only the
    tables' owner may; another role's ANALYZE is skipped with a warning, so call this as the owner.
    Called on start, after the listings are loaded and the catalog seeded, and after each listings sync."""
    if conn.dialect.name == "sqlite":
        recorded = None
        if (await conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'")).first():
            # The first figure of an index's statistics is the number of rows the table had.
            stat = await conn.exec_driver_sql("SELECT stat FROM sqlite_stat1 WHERE tbl = 'assets' ORDER BY idx LIMIT 1")
            row = stat.first()
            recorded = int(str(row[0]).split()[0]) if row else None
        assets = int((await conn.exec_driver_sql("SELECT count(*) FROM assets")).scalar_one())
        if recorded is None or abs(assets - recorded) > 50 + recorded // 10:
            await conn.exec_driver_sql("ANALYZE")
        return
    if conn.dialect.name != "postgresql":
        return
    stale = await conn.execute(
        text(
            "SELECT relname FROM pg_stat_user_tables WHERE relname = ANY(:tables) AND schemaname = current_schema() "
            "AND (coalesce(last_analyze, last_autoanalyze) IS NULL OR n_mod_since_analyze > 50 + n_live_tup / 10)"
        ),
        {"tables": list(STATISTICS_TABLES)},
    )
    names = [str(name) for name in stale.scalars()]
    if names:
        await conn.exec_driver_sql("ANALYZE " + ", ".join(names))  # names from the fixed list above


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite hands back naive values otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use an aware UTC datetime")
        value = value.astimezone(UTC)
        # SQLite compares timestamps as text: store them naive and uniform so ordering is right.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run while one writer writes; NORMAL sync is durable across process crashes in WAL mode.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # SQLite has one writer at a time; under many concurrent writers a short wait starves some of them into
    # "database is locked" (bench scenario 5). 30 s matches the driver timeout given in make_engine.
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An async engine for ``url``; creates the SQLite file's directory when needed."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # A pool as wide as the load: with the default 5 + 10 connections, 32 clients queued for a connection
        # (readers behind writers waiting for the single writer) and reads took 0.5 s (bench scenario 5). A
        # connection is a file handle and a thread, opened on demand.
        if parsed.drivername == "sqlite+aiosqlite":
            from storage import sqlite_driver  # registers the dialect

            parsed = parsed.set(drivername=f"sqlite+{sqlite_driver.DRIVER}")
        engine = create_async_engine(
            parsed, echo=echo, connect_args={"timeout": 30}, pool_size=16, max_overflow=48, pool_timeout=60
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_async_engine(url, echo=echo, pool_size=10, max_overflow=20)
    event.listen(engine.sync_engine, "checkin", _stamp_checkin)
    event.listen(engine.sync_engine, "checkout", _ping_if_idle)
    return engine


# A pooled connection is pinged at checkout only when it sat idle this long. SQLAlchemy's pre-ping pinged every
# checkout: BEGIN, ";", ROLLBACK — three round trips before each call's own, on a machine where each costs ~0.6 ms
# under load (docs/BENCHMARKS.md, scenario 5). A connection used moments ago is as alive as a ping would show; one
# that a restarted server dropped in that moment fails its call once (a retryable error) and leaves the pool.
IDLE_PING_S = 10.0


def _stamp_checkin(_dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
    record.info["checked_in_at"] = time.monotonic()


def _ping_if_idle(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry, _proxy: Any) -> None:
    checked_in = record.info.get("checked_in_at")
    if checked_in is None or time.monotonic() - checked_in < IDLE_PING_S:
        return  # new (just connected) or used moments ago
    try:
        ping(dbapi_connection)
    except Exception as exc:
        # The pool discards this connection and checks out another (a new one if need be), as pre-ping does.
        raise DisconnectionError("a pooled connection did not answer its ping") from exc


def ping(dbapi_connection: DBAPIConnection) -> None:
    """SQLAlchemy's ping of a pooled (adapted asyncpg) connection; raises when the server is gone."""
    dbapi_connection.ping()


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: results are converted to schemas after the commit at the tool boundary.
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def unit_of_work(
    sessions: async_sessionmaker[AsyncSession], *, owner_id: uuid.UUID | None = None
) -> AsyncIterator[AsyncSession]:
    """One transaction: commit when the block succeeds, roll back when it raises. Services never commit.

    With ``owner_id`` (PostgreSQL), the transaction's ``app.owner_id`` is set first: the row-level security
    policies show and accept only that owner's rows, a second wall behind the services' own owner filters.
    """
    async with sessions() as session:
        try:
            if owner_id is not None:
                from storage.tenancy import set_current_owner

                await set_current_owner(session, owner_id)
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


# --- one writer at a time on SQLite ------------------------------------------------------------------------------
# SQLite lets one transaction write at a time. Left to itself, a waiting writer polls (the busy handler sleeps
# 1, 2, 5, ... 100 ms between tries), so under many writers some wait far longer than others and the tail latency
# explodes (bench scenario 5: p99 1.6 s). This process's writers queue instead, in one of two ways:
#
# * run_write (membership changes, the hot path): the unit runs as one plain function on the store's writer
#   thread, over a synchronous connection to the same file. The thread's queue is the FIFO; units follow each other
#   without a turn of the event loop in between, and one holds SQLite's lock for the time SQLite takes (about a
#   millisecond), not for the 3-4 event-loop hops per statement that aiosqlite costs under load (a nine-statement
#   add held it ~90 ms, so writes ran at ~11/s; docs/BENCHMARKS.md, scenario 5).
# * begin_write (everything else that writes, rarely): the session takes a FIFO asyncio lock, parks the writer
#   thread (a unit in its queue that waits until the session's transaction ends), then opens its transaction with
#   BEGIN IMMEDIATE on its own connection.
#
# Either way BEGIN IMMEDIATE takes the database's write lock at once (waiting, with busy_timeout, only for other
# processes), so what a writer reads is current until it commits: read-then-write sequences (the next position,
# "is it a member?") cannot interleave with another writer.
_writer_locks: weakref.WeakKeyDictionary[Engine, asyncio.Lock] = weakref.WeakKeyDictionary()
_WRITER = "storage.db.writer"


class _SQLiteWriter:
    """One thread and one connection that run write units against one SQLite file, one at a time."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url, connect_args={"timeout": 30}, pool_size=1, max_overflow=0)
        event.listen(self.engine, "connect", _sqlite_pragmas)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")

    def run(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        with self.sessions() as session:
            session.connection().exec_driver_sql("BEGIN IMMEDIATE")
            try:
                result = fn(session, *args)
                session.commit()
            except BaseException:
                session.rollback()
                raise
            return result

    def park(self) -> tuple[Future[None], threading.Event]:
        """Hold the thread: (a future done once it is held, the event that lets it go)."""
        held: Future[None] = Future()
        release = threading.Event()

        def wait() -> None:
            held.set_result(None)
            release.wait()

        self.thread.submit(wait)
        return held, release

    def close(self) -> None:
        self.thread.shutdown(wait=False, cancel_futures=True)
        self.engine.dispose()


_writers: weakref.WeakKeyDictionary[Engine, _SQLiteWriter | None] = weakref.WeakKeyDictionary()


def _writer_for(engine: Engine, *, create: bool = True) -> _SQLiteWriter | None:
    """The engine's writer (made on first use), or None where a second connection would not see the same database
    (in memory)."""
    if engine in _writers or not create:
        return _writers.get(engine)
    database = engine.url.database or ""
    writer = None
    if database and database != ":memory:" and "mode=memory" not in str(engine.url):
        writer = _SQLiteWriter(engine.url.set(drivername="sqlite+pysqlite").render_as_string(hide_password=False))
        event.listen(engine, "engine_disposed", lambda _conn: _close_writer(engine))
    _writers[engine] = writer
    return writer


def _close_writer(engine: Engine) -> None:
    writer = _writers.pop(engine, None)
    if writer is not None:
        writer.close()


def _engine_of(session: AsyncSession) -> Engine:
    """The engine behind the session: the key of its writer and lock (sessions here are bound to an engine)."""
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine


def _writer_lock(engine: Engine) -> asyncio.Lock:
    lock = _writer_locks.get(engine)
    if lock is None:
        lock = _writer_locks[engine] = asyncio.Lock()
    return lock


async def begin_write(session: AsyncSession) -> None:
    """Make the session's transaction its store's single writer until it ends (SQLite; a no-op elsewhere, where
    the repositories lock the rows they change). Safe to call more than once per transaction."""
    bind = _engine_of(session)
    if bind.dialect.name != "sqlite" or session.info.get(_WRITER):
        return
    connection = await session.connection()
    if not event.contains(session.sync_session, "after_transaction_end", _release_writer):
        event.listen(session.sync_session, "after_transaction_end", _release_writer)
    if await _has_written(session):
        # The transaction has written already, so it holds the database's write lock: waiting for the in-process
        # lock now could deadlock with its holder, which waits for this transaction's database lock.
        session.info[_WRITER] = True
        return
    lock = _writer_lock(bind)
    await lock.acquire()
    session.info[_WRITER] = lock
    try:
        writer = _writer_for(bind, create=False)
        if writer is not None:
            held, session.info[_PARKED] = writer.park()
            await asyncio.wrap_future(held)
        await connection.exec_driver_sql("BEGIN IMMEDIATE")
    except BaseException:
        _release(session.sync_session)
        raise


_PARKED = "storage.db.parked"


def _release(sync_session: Session) -> None:
    parked = sync_session.info.pop(_PARKED, None)
    if parked is not None:
        parked.set()
    lock = sync_session.info.pop(_WRITER, None)
    if isinstance(lock, asyncio.Lock) and lock.locked():
        lock.release()


def _release_writer(sync_session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost transaction ended (commit, rollback or close); not a savepoint
        _release(sync_session)


async def _holds_write_lock(session: AsyncSession) -> bool:
    """Whether the session's own transaction is the writer already, or has written (and so holds SQLite's lock)."""
    if session.info.get(_WRITER):
        return True
    return session.in_transaction() and await _has_written(session)


async def _has_written(session: AsyncSession) -> bool:
    """Whether SQLite is inside a transaction on the session's connection (it begins one at the first write)."""
    return bool((await driver_connection(await session.connection())).in_transaction)


def rowcount(result: Result[Any]) -> int:
    """The rows an UPDATE or DELETE matched: Session.execute types every result as Result, and for those
    statements it is a CursorResult."""
    assert isinstance(result, CursorResult), type(result)
    return result.rowcount


async def driver_connection(connection: AsyncConnection) -> Any:
    """The driver's own connection under ``connection`` (aiosqlite's here), for what SQLAlchemy does not expose."""
    raw = await connection.get_raw_connection()
    assert raw.driver_connection is not None, "a checked-out connection always has its driver's connection"
    return raw.driver_connection


async def run_write(session: AsyncSession, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(sync_session, *args)`` as one write that no other writer interleaves with; returns its result.

    SQLite: on the store's writer thread, in a transaction of its own that commits before this returns (unless the
    session's own transaction has written already: then ``fn`` runs inside it, as below). ``fn`` must not use
    ``session`` or anything async; the objects it returns are detached. A caller cancelled while its unit waits in
    the queue withdraws it; once running, the unit commits or rolls back on its own. Elsewhere: inside the session's
    transaction (``AsyncSession.run_sync``), where ``fn`` locks the rows it changes (SELECT ... FOR UPDATE).
    """
    bind = _engine_of(session)
    sqlite = bind.dialect.name == "sqlite"
    writer = _writer_for(bind) if sqlite else None
    if writer is None or await _holds_write_lock(session):
        if sqlite:
            await begin_write(session)
        return await session.run_sync(fn, *args)
    return await asyncio.wrap_future(writer.thread.submit(writer.run, fn, args))
