"""SQLAlchemy's aiosqlite dialect with one thread hop per statement instead of four.

aiosqlite runs each SQLite call on a thread of its own and hands the result back to the event loop. SQLAlchemy's
adapter makes four such calls per statement (open a cursor, execute, fetch the rows, close the cursor), and under
load every hop waits for a turn of an event loop busy with every other request: with 32 HTTP clients a
five-statement read took 120-170 ms and a locked nine-statement write held the single writer ~90 ms, almost all
of it waiting (bench scenario 5, docs/BENCHMARKS.md). This cursor does the four steps in one function on
aiosqlite's thread, so a statement costs one hop.

It relies on two things outside the public API, both used by SQLAlchemy's own adapter (see its isolation_level
setter) and checked by tests/storage/test_sqlite_driver.py: ``aiosqlite.Connection._execute(fn, *args)`` (run a
function on the connection's thread) and ``aiosqlite.Connection._conn`` (the ``sqlite3.Connection``). Server-side
cursors (``stream``) keep SQLAlchemy's adapter.

``make_engine`` selects it for ``sqlite+aiosqlite`` URLs; the URL a user writes does not change.
"""

from __future__ import annotations

import collections
import sqlite3
from typing import Any

from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_connection
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
    SQLiteDialect_aiosqlite,
)
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

__all__ = ["DRIVER", "IndexHintCompiler", "OneHopDialect"]

DRIVER = "aiosqlite_onehop"


def _run(conn: sqlite3.Connection, many: bool, operation: str, parameters: Any) -> tuple[Any, list[Any], int, Any]:
    """On aiosqlite's thread: the whole statement, returning (description, rows, rowcount, lastrowid)."""
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """A DBAPI cursor whose execute runs, fetches and closes in one call on aiosqlite's thread."""

    __slots__ = ("_description", "_rowcount", "_lastrowid")

    def __init__(self, adapt_connection: AsyncAdapt_dbapi_connection) -> None:
        # No aiosqlite cursor: it would cost a hop to open and one to close.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]  # no cursor at all, as SQLAlchemy's adapter has once closed
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description = None
        self._rowcount = -1
        self._lastrowid = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass

    async def _async_soft_close(self) -> None:
        return None  # nothing is open on the thread

    def close(self) -> None:
        self._rows.clear()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            return await_(self._run(False, operation, parameters))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        try:
            return await_(self._run(True, operation, seq_of_parameters))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    async def _run(self, many: bool, operation: Any, parameters: Any) -> None:
        connection = self._connection
        async with self._adapt_connection._execute_mutex:
            description, rows, rowcount, lastrowid = await connection._execute(
                _run, connection._conn, many, operation, parameters
            )
        self._description, self._rowcount, self._lastrowid = description, rowcount, lastrowid
        self._rows = collections.deque(rows)


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneHopCursor

    # Every unit of work ends with a commit and every pool check-in with a rollback: two more hops per call, which
    # a read-only call (most calls) does not need. SQLite is in a transaction only after a write or an explicit
    # BEGIN; outside one, both are no-ops, so they are skipped without asking the thread.
    def commit(self) -> None:
        if self._connection._connection is not None and self._connection.in_transaction:
            super().commit()

    def rollback(self) -> None:
        if self._connection._connection is not None and self._connection.in_transaction:
            super().rollback()


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> OneHopConnection:
        adapted = super().connect(*arg, **kw)
        return OneHopConnection(self, adapted._connection)


class IndexHintCompiler(SQLiteCompiler):
    """Renders a statement's table hint (``select(...).with_hint(Asset, "INDEXED BY ix_...", "sqlite")``) after the
    table name, which SQLAlchemy's SQLite compiler drops: storage/repositories/screening.py names the index that
    gives a broad screen's order."""

    def get_from_hint_text(self, table: Any, text: str | None) -> str | None:
        return text


class OneHopDialect(SQLiteDialect_aiosqlite):
    driver = DRIVER
    supports_statement_cache = True
    statement_compiler = IndexHintCompiler

    @classmethod
    def import_dbapi(cls) -> OneHopDBAPI:
        return OneHopDBAPI(__import__("aiosqlite"), __import__("sqlite3"))


registry.register(f"sqlite.{DRIVER}", __name__, "OneHopDialect")
