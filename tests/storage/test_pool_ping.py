"""PostgreSQL's pooled connections are pinged only after sitting idle (storage/db.py ``IDLE_PING_S``): a call that
checks out a connection used moments ago sends no ping round trips of its own, and a connection the server dropped
while it was idle is still replaced without the call seeing it."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from storage import db
from storage.db import make_engine, make_sessionmaker, unit_of_work

pytestmark = pytest.mark.anyio


async def backend_pid(sessions) -> int:
    async with unit_of_work(sessions) as session:
        return int(await session.scalar(text("SELECT pg_backend_pid()")))


async def test_a_connection_used_moments_ago_is_not_pinged_an_idle_one_is(postgres_url, monkeypatch):
    pings: list[object] = []
    real = db.ping
    monkeypatch.setattr(db, "ping", lambda connection: (pings.append(connection), real(connection))[-1])
    engine = make_engine(postgres_url)
    try:
        sessions = make_sessionmaker(engine)
        pids = {await backend_pid(sessions) for _ in range(5)}
        assert len(pids) == 1 and pings == []  # one pooled connection, reused at once: never pinged
        monkeypatch.setattr(db, "IDLE_PING_S", 0.0)  # every checkout now finds it idle long enough
        assert {await backend_pid(sessions) for _ in range(3)} == pids
        assert len(pings) == 3
    finally:
        await engine.dispose()


async def test_a_connection_dropped_while_idle_is_replaced_without_an_error(postgres_url, monkeypatch):
    engine, admin = make_engine(postgres_url), make_engine(postgres_url)
    try:
        sessions = make_sessionmaker(engine)
        first = await backend_pid(sessions)
        async with admin.begin() as conn:  # as a server restart or an idle timeout would
            assert await conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        monkeypatch.setattr(db, "IDLE_PING_S", 0.0)
        second = await backend_pid(sessions)  # the ping failed at checkout: a new connection, no error here
        assert second != first
    finally:
        await engine.dispose()
        await admin.dispose()
