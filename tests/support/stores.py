"""In-process servers on either store, for tests that must hold on SQLite and on PostgreSQL alike.

``store`` (parametrised sqlite / postgres) is a factory of Settings on one store per test: call it with
``local_user="alice"`` and ``local_user="bob"`` to get two tenants of the same store, each served by its own
in-process server (auth=none serves the configured local user). On PostgreSQL the server connects as a non-owner
role, so row-level security applies to it exactly as in a deployment; the database is migrated and seeded once per
session and shared, so tests there use their own user names (``store.user("alice")``) and symbols.

Import the fixtures into a test module: ``from tests.support.stores import pg_store, store  # noqa: F401``.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from sqlalchemy.engine import make_url

from core.settings import Settings
from server.app import build_server
from services.schemas import Caller
from tests.support.services import _run_async

__all__ = ["PgStore", "Store", "caller", "pg_store", "serve", "still_waiting", "store"]


@dataclass(frozen=True)
class PgStore:
    app_url: str
    owner_url: str
    role: str
    owner_dsn: str  # plain asyncpg DSN of the table owner, for direct checks


@pytest.fixture(scope="session")
def pg_store(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgStore]:
    """A database of its own with a non-owner app role, migrated and seeded with the catalog once per session."""
    import asyncpg

    from server.lifespan import open_app_state

    url = make_url(postgres_url)
    database = f"umcp_store_{secrets.token_hex(4)}"
    role = f"umcp_app_{secrets.token_hex(4)}"
    admin_dsn = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)

    async def create() -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(f"CREATE DATABASE {database}")
            await conn.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS")
        finally:
            await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            await conn.execute(f"DROP ROLE IF EXISTS {role}")
        finally:
            await conn.close()

    _run_async(create())
    store = PgStore(
        app_url=url.set(database=database, username=role, password=None).render_as_string(hide_password=False),
        owner_url=url.set(database=database).render_as_string(hide_password=False),
        role=role,
        owner_dsn=url.set(drivername="postgresql", database=database).render_as_string(hide_password=False),
    )

    async def seed() -> None:
        settings = Settings(
            data_dir=tmp_path_factory.mktemp("pg-seed"),
            offline=True,
            log_level="WARNING",
            database_url=store.app_url,
            database_admin_url=store.owner_url,
            database_app_role=role,
        )
        async with open_app_state(settings):
            pass

    try:
        _run_async(seed())
        yield store
    finally:
        _run_async(drop())


class Store:
    """Settings factory on one store; ``kind`` is "sqlite" or "postgres"."""

    def __init__(self, kind: str, make: Callable[..., Settings]) -> None:
        self.kind = kind
        self._make = make
        self._tag = secrets.token_hex(3)

    def user(self, name: str) -> str:
        """A user name unique to this test (the PostgreSQL database is shared by the session)."""
        return f"{name}-{self._tag}"

    def __call__(self, **overrides: Any) -> Settings:
        return self._make(**overrides)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, make_settings: Callable[..., Settings], tmp_path: Path) -> Store:
    if request.param == "sqlite":
        return Store("sqlite", make_settings)
    pg: PgStore = request.getfixturevalue("pg_store")

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "pg-data",
            "offline": True,
            "log_level": "WARNING",
            "database_url": pg.app_url,
            "database_admin_url": pg.owner_url,
            "database_app_role": pg.role,
        }
        values.update(overrides)
        return Settings(**values)

    return Store("postgres", make)


@asynccontextmanager
async def serve(settings: Settings, **kwargs: Any) -> AsyncIterator[Client]:
    """An in-memory MCP client of a server built on ``settings``."""
    async with Client(build_server(settings, **kwargs)) as client:
        yield client


async def caller(state: Any, store: Store, name: str) -> Caller:
    """The caller ``store.user(name)`` of an open app state (core.wiring.AppState), created on first use."""
    from storage.repositories.users import get_or_create_user

    async with state.unit_of_work() as session:
        user = await get_or_create_user(session, store.user(name))
        return Caller(owner_id=user.id, name=user.name)


async def still_waiting(task: asyncio.Task[Any]) -> bool:
    """Whether ``task`` is still waiting after a few hundred milliseconds (on a lock another writer holds)."""
    for _ in range(30):
        if task.done():
            return False
        await asyncio.sleep(0.01)
    return not task.done()
