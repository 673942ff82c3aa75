"""Counting what a redis-py asyncio client does on the wire, so tests assert behaviour instead of timing it."""

from __future__ import annotations

import pytest


class RedisTraffic:
    """TCP connection attempts and retry back-off sleeps of every redis-py asyncio client in this process.

    A retry storm is many attempts or any back-off sleep; a call answered by an open breaker (or another fallback) is
    no attempt at all. Counting these keeps a test independent of how loaded the machine is.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import redis.asyncio.connection as connection
        import redis.asyncio.retry as retry

        self.connects = 0
        self.backoff_sleeps: list[float] = []
        real_connect, real_sleep = connection.Connection._connect, retry.sleep

        async def counting_connect(conn: connection.Connection) -> None:
            self.connects += 1
            await real_connect(conn)

        async def counting_sleep(delay: float) -> None:
            self.backoff_sleeps.append(delay)
            await real_sleep(delay)

        monkeypatch.setattr(connection.Connection, "_connect", counting_connect)
        monkeypatch.setattr(retry, "sleep", counting_sleep)
