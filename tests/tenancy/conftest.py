"""Multi-tenant servers for the tenancy tests: token auth over real HTTP, on SQLite or on PostgreSQL with RLS."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy.engine import make_url

from core.settings import Settings
from services.tokens import issue_token, parse_duration, revoke_token
from storage import migrate
from storage.db import make_engine, make_sessionmaker, unit_of_work
from tests.support.servers import http_server


@dataclass
class Deployment:
    """One store (and its settings as environment variables) that server processes are started against."""

    kind: str
    env: dict[str, str]
    settings: Settings
    app_dsn: str | None = None  # PostgreSQL only: the server's own (non-owner) role
    tokens: dict[str, str] = field(default_factory=dict)

    async def token(self, user: str, scopes: list[str] | None = None, expires: str | None = None) -> str:
        engine = make_engine(self.settings.admin_sqlalchemy_url)
        try:
            await migrate.upgrade(engine, app_role=self.settings.database_app_role)
            async with unit_of_work(make_sessionmaker(engine)) as session:
                issued = await issue_token(session, user, scopes, parse_duration(expires) if expires else None)
        finally:
            await engine.dispose()
        return issued.token

    async def revoke(self, token: str) -> None:
        engine = make_engine(self.settings.admin_sqlalchemy_url)
        try:
            async with unit_of_work(make_sessionmaker(engine)) as session:
                await revoke_token(session, token[:12])
        finally:
            await engine.dispose()

    @contextlib.contextmanager
    def server(self, data_dir: Path, **extra: str) -> Iterator[str]:
        with http_server(data_dir, UNIVERSE_MCP_AUTH="token", **self.env, **extra) as url:
            yield url


@contextlib.asynccontextmanager
async def connect(url: str, token: str | None, mode: str = "auto") -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    http = httpx2.AsyncClient(headers=headers, timeout=30)
    async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
        yield client


@pytest.fixture(params=["sqlite", "postgres"])
async def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Deployment]:
    if request.param == "sqlite":
        env = {"UNIVERSE_MCP_DATA_DIR": str(tmp_path / "store")}
        yield Deployment("sqlite", env, Settings(data_dir=tmp_path / "store", offline=True))
        return
    admin_url = request.getfixturevalue("postgres_url")  # a fresh database for this test session
    import asyncpg

    url = make_url(admin_url)
    database = f"umcp_tenancy_{secrets.token_hex(4)}"
    role = f"umcp_app_{secrets.token_hex(4)}"
    admin_dsn = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f"CREATE DATABASE {database}")
        await conn.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS")
    finally:
        await conn.close()
    owner_url = url.set(database=database).render_as_string(hide_password=False)
    app_url = url.set(database=database, username=role, password=None).render_as_string(hide_password=False)
    env = {
        "UNIVERSE_MCP_DATA_DIR": str(tmp_path / "store"),
        "UNIVERSE_MCP_DATABASE_URL": app_url,
        "UNIVERSE_MCP_DATABASE_ADMIN_URL": owner_url,
        "UNIVERSE_MCP_DATABASE_APP_ROLE": role,
    }
    settings = Settings(
        data_dir=tmp_path / "store",
        offline=True,
        database_url=app_url,
        database_admin_url=owner_url,
        database_app_role=role,
    )
    try:
        yield Deployment(
            "postgres",
            env,
            settings,
            app_dsn=url.set(drivername="postgresql", database=database, username=role, password=None).render_as_string(
                hide_password=False
            ),
        )
    finally:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            await conn.execute(f"DROP ROLE IF EXISTS {role}")
        finally:
            await conn.close()


def envelope(result: Any) -> dict[str, Any]:
    return result.structured_content


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.2)


__all__ = ["Deployment", "connect", "envelope", "uuid", "wait_until"]
