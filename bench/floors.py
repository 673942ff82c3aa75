"""Storage floors: the statements a repository or service call runs, executed again on a bare connection.

A store-bound scenario's floor is the database work alone, measured in the same run on the same database file or
server: what the product's own statement builders produce (captured while the product runs them, never copied as
SQL text, so the floor follows the code), executed with plain SQLAlchemy Core in one transaction on a connection
that has nothing of the product's around it: no session, no unit of work, no MCP, no envelope, no thread hop.

* ``capture(...)`` wraps named functions (``module.attr`` or ``Class.method``) for the duration of a block; every
  Core ``execute`` made while one of them runs is recorded with its parameters (engine event ``before_execute``).
* ``bare_engine(url)`` opens the same database: on SQLite a synchronous pysqlite engine with the product's
  connection pragmas (WAL, synchronous=NORMAL, foreign keys; what the product's own writer thread uses) and its
  index-hint compiler; on PostgreSQL an asyncpg engine (the product's driver; no synchronous one is installed).
* ``replay(engine, statements)`` executes them in one transaction, fetching every row, and returns milliseconds.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


@dataclass
class Statement:
    """One captured Core execution: the statement object and its parameters (one dict, a list for executemany)."""

    clause: Any
    params: dict[str, Any] | list[dict[str, Any]] | None


@dataclass
class Captured:
    """The statements of each wrapped call made inside a ``capture`` block, in order (one list per call)."""

    calls: list[list[Statement]] = field(default_factory=list)
    _current: list[Statement] | None = None

    @property
    def last(self) -> list[Statement]:
        if not self.calls:
            raise RuntimeError("no captured call: the wrapped function did not run")
        return self.calls[-1]


def _resolve(target: str) -> tuple[Any, str]:
    """``"pkg.module.attr"`` or ``"pkg.module.Class.method"`` -> (owner object, attribute name)."""
    parts = target.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            owner: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:-1]:
            owner = getattr(owner, name)
        if not hasattr(owner, parts[-1]):
            raise AttributeError(f"{target}: no such function (the floor must follow the code; update bench)")
        return owner, parts[-1]
    raise ImportError(f"{target}: no importable module")


@contextlib.contextmanager
def capture(*targets: str) -> Iterator[Captured]:
    """Record the Core statements every call of ``targets`` (async functions) executes while the block runs."""
    captured = Captured()

    def hook(_conn: Any, clause: Any, multiparams: Any, params: Any, _options: Any) -> None:
        if captured._current is None:
            return
        if multiparams:
            values: Any = [dict(p) for p in multiparams] if len(multiparams) > 1 else dict(multiparams[0])
        else:
            values = dict(params) if params else None
        captured._current.append(Statement(clause, values))

    originals: list[tuple[Any, str, Any]] = []
    for target in targets:
        owner, name = _resolve(target)
        original = getattr(owner, name)
        # A method looked up on its class is a plain function; keep what was there (a staticmethod stays one).
        raw = inspect.getattr_static(owner, name)
        if not inspect.iscoroutinefunction(original):
            raise TypeError(f"{target} is not an async function")

        def wrap(fn: Any) -> Any:
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                if captured._current is not None:  # nested (one wrapped function calls another): one call
                    return await fn(*args, **kwargs)
                captured._current = []
                try:
                    return await fn(*args, **kwargs)
                finally:
                    captured.calls.append(captured._current)
                    captured._current = None

            return wrapper

        originals.append((owner, name, raw))
        setattr(owner, name, wrap(original))
    event.listen(Engine, "before_execute", hook)
    try:
        yield captured
    finally:
        event.remove(Engine, "before_execute", hook)
        for owner, name, raw in reversed(originals):
            setattr(owner, name, raw)


def floor_engine(url: str) -> tuple[Any, str | None]:
    """``bare_engine(url)`` and no error, or no engine and why: a floor that cannot open its database makes its
    row an error (never a pass), and the product's side is still measured."""
    from bench.common import error_text

    try:
        return bare_engine(url), None
    except Exception as exc:
        return None, error_text(exc)


def bare_engine(url: str) -> Engine | AsyncEngine:
    """A plain engine on the database ``url`` names (the product's async URL)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        from storage.db import _sqlite_pragmas
        from storage.sqlite_driver import IndexHintCompiler

        engine = create_engine(parsed.set(drivername="sqlite+pysqlite"), connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        # The product's dialect renders table hints (INDEXED BY) that SQLAlchemy's SQLite compiler drops.
        engine.dialect.statement_compiler = IndexHintCompiler
        return engine
    return create_async_engine(parsed, pool_size=2, max_overflow=0)


def _run_sync(conn: Any, statements: Sequence[Statement]) -> int:
    rows = 0
    for s in statements:
        result = conn.execute(s.clause, s.params) if s.params is not None else conn.execute(s.clause)
        if result.returns_rows:
            rows += len(result.all())
    return rows


async def replay(engine: Engine | AsyncEngine, statements: Sequence[Statement]) -> float:
    """Execute ``statements`` in one transaction on ``engine`` (every row fetched, then commit); milliseconds."""
    if isinstance(engine, AsyncEngine):
        started = time.perf_counter()
        async with engine.begin() as conn:
            await conn.run_sync(_run_sync, statements)
        return (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    with engine.begin() as conn:
        _run_sync(conn, statements)
    return (time.perf_counter() - started) * 1000


async def dispose(engine: Engine | AsyncEngine) -> None:
    if isinstance(engine, AsyncEngine):
        await engine.dispose()
    else:
        engine.dispose()
