"""The live job counters and the job broker stop calling a Redis that keeps failing (core/resilience.py's breaker):
after three failures a publish or read is skipped, and a submit refused, without touching the network."""

from __future__ import annotations

import anyio
import pytest
import redis.connection
from mcp import Client

from core.redis import redis_client
from server.app import build_server
from storage.repositories.jobs import ItemCounts
from tests.conftest import Call
from tests.support.redis_traffic import RedisTraffic
from tests.support.services import free_port
from workers.live import RedisLiveCounters

pytestmark = pytest.mark.anyio


async def test_live_counters_skip_a_failing_redis_without_touching_it(monkeypatch):
    traffic = RedisTraffic(monkeypatch)
    live = RedisLiveCounters(redis_client(f"redis://127.0.0.1:{free_port()}/0", "live"), "umcp-breaker-test", 60)
    counts = ItemCounts(total=3, queued=3)
    with anyio.fail_after(60):  # a hang detector, not a speed bound
        for _ in range(3):
            await live.publish("job-1", "queued", counts)  # refused, retried, logged: never raised
        assert traffic.connects >= 3 and live.breaker.state == "open"
        before = traffic.connects
        await live.publish("job-1", "running", counts)
        assert await live.read("job-1") is None  # the reader falls back to the store
    assert traffic.connects == before, "with the breaker open the live counters must not touch the network"


class SyncConnects:
    """TCP connection attempts of every synchronous redis-py client (the broker's) in this process."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = redis.connection.Connection._connect

        def counting(conn: redis.connection.Connection) -> None:
            self.count += 1
            return real(conn)

        monkeypatch.setattr(redis.connection.Connection, "_connect", counting)


async def test_a_broker_that_keeps_failing_refuses_submits_at_once(make_settings, monkeypatch):
    connects = SyncConnects(monkeypatch)
    settings = make_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0", broker_namespace="umcp-breaker-test")
    server = build_server(settings)
    async with Client(server) as client:
        call = Call(client)
        with anyio.fail_after(120):  # a hang detector, not a speed bound
            for _ in range(3):
                error = await call.error("start_bulk_validation", "provider_unavailable", symbols=["AAPL"])
                assert "queue is unreachable" in error["message"]
            assert connects.count >= 3
            assert server.app_state.jobs.broker_breaker.state == "open"
            before = connects.count
            error = await call.error("start_bulk_validation", "provider_unavailable", symbols=["MSFT"])
        assert "queue is unreachable" in error["message"]
    assert connects.count == before, "with the breaker open a submit must not touch the broker's Redis"
