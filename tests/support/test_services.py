"""The service fixtures yield working servers, and the CI rule fails instead of skipping."""

from __future__ import annotations

import os
import uuid

import asyncpg
import pytest
import redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.services import (
    REDIS_CLAIM_KEY,
    ThrowawayPostgres,
    ThrowawayRedis,
    find_postgres_bindir,
    require_service,
)


def test_redis_url_is_a_claimed_non_zero_database(redis_url: str) -> None:
    db = int(redis_url.rsplit("/", 1)[1])
    assert 1 <= db <= 15
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        assert client.ping()
        holder = client.get(REDIS_CLAIM_KEY)
        assert holder is not None and f":{os.getpid()}:" in holder


def test_throwaway_redis_stops_and_restarts_on_the_same_port(throwaway_redis: ThrowawayRedis) -> None:
    url = throwaway_redis.url
    with redis.Redis.from_url(url, socket_connect_timeout=0.3) as client:
        assert client.ping()
    throwaway_redis.stop()
    assert not throwaway_redis.running
    with redis.Redis.from_url(url, socket_connect_timeout=0.3) as client, pytest.raises(redis.ConnectionError):
        client.ping()
    throwaway_redis.start()
    assert throwaway_redis.url == url
    with redis.Redis.from_url(url, socket_connect_timeout=0.3) as client:
        assert client.ping()


@pytest.mark.anyio
async def test_postgres_url_is_a_fresh_database(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql+asyncpg://")
    engine = create_async_engine(postgres_url)
    try:
        async with engine.connect() as conn:
            name = await conn.scalar(text("SELECT current_database()"))
            tables = await conn.scalar(text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"))
        assert name.startswith("umcp_test_") and postgres_url.endswith(name)
        assert tables == 0
    finally:
        await engine.dispose()


@pytest.mark.anyio
async def test_postgres_admin_dsn_can_create_roles(postgres_admin_dsn: str) -> None:
    role = f"umcp_test_role_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(postgres_admin_dsn)
    try:
        await conn.execute(f'CREATE ROLE "{role}" NOLOGIN')
        assert await conn.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = $1", role) == 1
    finally:
        await conn.execute(f'DROP ROLE IF EXISTS "{role}"')
        await conn.close()


@pytest.mark.parametrize("value", ["", "false", "0", "no"])
def test_require_service_skips_outside_ci(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.skip.Exception, match="SERVICE UNAVAILABLE: Redis: nothing listens"):
        require_service("Redis", "nothing listens")


@pytest.mark.parametrize("value", ["true", "1", "TRUE"])
def test_require_service_fails_under_ci(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="Redis is required because CI is set"):
        require_service("Redis", "nothing listens")


@pytest.mark.anyio
async def test_throwaway_postgres_starts_answers_and_cleans_up() -> None:
    """The path a machine without a PostgreSQL server takes (as root it runs pg_ctl as the postgres user)."""
    bindir = find_postgres_bindir()
    if bindir is None:
        require_service("PostgreSQL binaries", "no initdb/pg_ctl found")
    try:
        server = ThrowawayPostgres(bindir)
    except RuntimeError as exc:  # e.g. root without a "postgres" user to run pg_ctl as
        require_service("PostgreSQL throwaway server", str(exc))
    try:
        server.start()
        conn = await asyncpg.connect(server.admin_dsn)
        try:
            assert await conn.fetchval("SELECT current_user") == "postgres"
        finally:
            await conn.close()
    finally:
        server.cleanup()
    assert not server.root.exists()
