"""The validation cache: the memory backend, Redis for real, and Redis failing (unreachable, hung, stopped mid-run)."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest
import redis.asyncio as aioredis

from core.resilience import CircuitBreaker
from storage.cache import (
    DEFAULT_PREFIX,
    Cache,
    MemoryCache,
    RedisCache,
    build_cache,
    jittered_ttl,
)
from tests.support.redis_traffic import RedisTraffic
from tests.support.services import ThrowawayRedis, free_port


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# ---------------------------------------------------------------------------------------------------------------
# TTL jitter and the memory backend
# ---------------------------------------------------------------------------------------------------------------


def test_jittered_ttl_stays_within_ten_percent_and_varies() -> None:
    ttls = [jittered_ttl(1000) for _ in range(200)]
    assert all(900 <= ttl <= 1100 for ttl in ttls)
    assert len(set(ttls)) > 20, "jitter should spread expiries, not pin them"
    assert jittered_ttl(1) == 1
    assert jittered_ttl(1000, 0) == 1000


@pytest.mark.parametrize("bad", [0, -5, 1.5, True, None])
def test_jittered_ttl_rejects_non_positive_or_non_integer_ttls(bad: object) -> None:
    with pytest.raises(ValueError):
        jittered_ttl(bad)  # type: ignore[arg-type]  # the wrong types are the point


@pytest.mark.anyio
async def test_memory_round_trip_batch_and_delete() -> None:
    cache = MemoryCache()
    assert isinstance(cache, Cache)
    await cache.set("AAPL", '{"valid": true}', 60)
    await cache.set("MSFT", "m", 60)
    await cache.set("IBM", "i", 60)
    assert await cache.get("AAPL") == '{"valid": true}'
    assert await cache.get("NOPE") is None
    assert await cache.get_many(["AAPL", "NOPE", "IBM", "MSFT"]) == {"AAPL": '{"valid": true}', "IBM": "i", "MSFT": "m"}
    await cache.delete("AAPL")
    await cache.delete("AAPL")  # deleting a missing key is fine
    assert await cache.get("AAPL") is None
    assert (await cache.health())["state"] == "up"
    await cache.aclose()


@pytest.mark.anyio
async def test_memory_entries_expire_after_their_ttl() -> None:
    clock = FakeClock()
    cache = MemoryCache(jitter=0, clock=clock)
    await cache.set("short", "s", 10)
    await cache.set("long", "l", 100)
    clock.advance(9.9)
    assert await cache.get("short") == "s"
    clock.advance(0.1)
    assert await cache.get("short") is None
    assert await cache.get_many(["short", "long"]) == {"long": "l"}
    clock.advance(100)
    assert await cache.get_many(["long"]) == {}
    assert len(cache) == 0, "expired entries are dropped when touched"


@pytest.mark.anyio
async def test_memory_ttls_are_jittered_by_ten_percent() -> None:
    clock = FakeClock()
    cache = MemoryCache(clock=clock)
    for i in range(200):
        await cache.set(f"k{i}", "v", 100)
    clock.advance(89.9)
    assert len(await cache.get_many(f"k{i}" for i in range(200))) == 200
    clock.advance(20.2)
    assert await cache.get_many(f"k{i}" for i in range(200)) == {}


@pytest.mark.anyio
async def test_memory_is_bounded_and_evicts_the_least_recently_used() -> None:
    cache = MemoryCache(max_entries=3)
    for key, value in {"a": "1", "b": "2", "c": "3"}.items():
        await cache.set(key, value, 60)
    assert await cache.get("a") == "1"  # "a" is now the most recently used; "b" the least
    await cache.set("d", "4", 60)
    assert len(cache) == 3
    assert await cache.get_many(["a", "b", "c", "d"]) == {"a": "1", "c": "3", "d": "4"}


@pytest.mark.anyio
async def test_memory_rejects_non_string_values_and_bad_ttls() -> None:
    cache = MemoryCache()
    with pytest.raises(TypeError):
        await cache.set("k", {"valid": True}, 60)  # type: ignore[arg-type]  # a dict where a str belongs, on purpose
    with pytest.raises(ValueError):
        await cache.set("k", "v", 0)


def test_build_cache_picks_the_backend_from_the_url() -> None:
    assert isinstance(build_cache(None), MemoryCache)
    assert isinstance(build_cache(""), MemoryCache)
    cache = build_cache("redis://127.0.0.1:1/0", timeout_s=0.1, prefix="x:")
    assert isinstance(cache, RedisCache) and cache.prefix == "x:"
    assert MemoryCache().prefix == DEFAULT_PREFIX == "umcp:v1:"


# ---------------------------------------------------------------------------------------------------------------
# The circuit breaker
# ---------------------------------------------------------------------------------------------------------------


def test_breaker_opens_after_fail_max_consecutive_failures() -> None:
    breaker = CircuitBreaker(fail_max=3, reset_timeout_s=10, clock=FakeClock())
    for _ in range(2):
        breaker.failure(breaker.acquire() or "call")
    breaker.success(breaker.acquire() or "call")  # a success resets the count
    for _ in range(3):
        ticket = breaker.acquire()
        assert ticket == "call"
        breaker.failure(ticket)
    assert breaker.state == "open"
    assert breaker.acquire() is None


def test_breaker_half_open_lets_exactly_one_probe_through() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(fail_max=1, reset_timeout_s=10, clock=clock)
    breaker.failure(breaker.acquire() or "call")
    clock.advance(9.9)
    assert breaker.acquire() is None
    clock.advance(0.1)
    assert breaker.state == "half_open"
    assert breaker.acquire() == "probe"
    assert breaker.acquire() is None, "only one probe at a time"
    breaker.failure("probe")
    assert breaker.state == "open", "a failed probe re-opens for a full reset timeout"
    clock.advance(10)
    probe = breaker.acquire()
    assert probe == "probe"
    breaker.success(probe)
    assert breaker.state == "closed"
    assert breaker.acquire() == "call"


def test_breaker_cancelled_probe_lets_another_caller_probe() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(fail_max=1, reset_timeout_s=1, clock=clock)
    breaker.failure("call")
    clock.advance(1)
    breaker.release(breaker.acquire() or "call")
    assert breaker.acquire() == "probe"


# ---------------------------------------------------------------------------------------------------------------
# The machine's real Redis
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture
def prefix() -> str:
    # A prefix per test: other sessions may share the server, and tests must not see each other's keys.
    return f"umcp-test:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def rcache(redis_url: str, prefix: str) -> AsyncIterator[RedisCache]:
    cache = RedisCache(redis_url, prefix=prefix)
    yield cache
    await cache.aclose()


@pytest.mark.anyio
async def test_redis_round_trip_batch_and_delete(rcache: RedisCache, raw: aioredis.Redis, prefix: str) -> None:
    assert isinstance(rcache, Cache)
    await rcache.set("AAPL", '{"valid": true}', 600)
    await rcache.set("MSFT", "m", 600)
    await rcache.set("IBM", "i", 600)
    assert await rcache.get("AAPL") == '{"valid": true}'
    assert await rcache.get("NOPE") is None
    assert await rcache.get_many(["AAPL", "NOPE", "IBM", "MSFT", "IBM"]) == {
        "AAPL": '{"valid": true}',
        "IBM": "i",
        "MSFT": "m",
    }
    assert await rcache.get_many([]) == {}
    await rcache.delete("AAPL")
    assert await rcache.get("AAPL") is None
    assert await raw.exists(f"{prefix}AAPL") == 0
    assert await rcache.health() == {
        "backend": "redis",
        "state": "up",
        "breaker": "closed",
        "fallback_entries": 2,
        "latency_ms": pytest.approx(0, abs=250),
    }


@pytest.mark.anyio
async def test_redis_keys_carry_the_prefix_and_a_jittered_ttl(
    rcache: RedisCache, raw: aioredis.Redis, prefix: str
) -> None:
    await rcache.set("one", "1", 1000)
    for i in range(50):
        await rcache.set(f"k{i}", str(i), 1000)
    assert await raw.get(f"{prefix}one") == "1"
    assert await raw.get("one") is None, "the bare key is never written"
    assert 900 <= await raw.ttl(f"{prefix}one") <= 1100
    ttls = [await raw.ttl(f"{prefix}k{i}") for i in range(50)]
    assert all(900 <= ttl <= 1100 for ttl in ttls)
    assert len(set(ttls)) > 5, "TTLs of one batch are spread out"
    assert await raw.get(f"{prefix}k7") == "7"


@pytest.mark.anyio
async def test_redis_default_prefix_is_versioned(redis_url: str, raw: aioredis.Redis) -> None:
    key = f"test-default-prefix-{uuid.uuid4().hex}"
    cache = RedisCache(redis_url)
    try:
        await cache.set(key, "v", 60)
        assert await raw.get(f"umcp:v1:{key}") == "v"
    finally:
        await cache.delete(key)
        await cache.aclose()


@pytest.mark.anyio
async def test_redis_get_many_is_one_mget(rcache: RedisCache, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(100):
        await rcache.set(f"k{i}", str(i), 60)
    client = rcache._client
    calls: list[str] = []
    real_mget = client.mget

    async def counting_mget(*args: Any, **kwargs: Any) -> Any:
        calls.append("mget")
        return await real_mget(*args, **kwargs)

    async def no_get(*_: object, **__: object) -> object:
        raise AssertionError("get_many must not issue GETs")

    monkeypatch.setattr(client, "mget", counting_mget)
    monkeypatch.setattr(client, "get", no_get)
    found = await rcache.get_many([f"k{i}" for i in range(150)])
    assert len(found) == 100 and calls == ["mget"]


# ---------------------------------------------------------------------------------------------------------------
# Redis unreachable or hung: prompt answers from the fallback, never an exception
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_unreachable_redis_answers_promptly_from_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    traffic = RedisTraffic(monkeypatch)
    cache = RedisCache(f"redis://127.0.0.1:{free_port()}/0", fail_max=3, reset_timeout_s=60)
    with anyio.fail_after(60):  # a hang detector, not a speed bound
        await cache.set("AAPL", "a", 3600)
        # A refused connection fails fast: one attempt plus the single immediate retry, no back-off sleep (redis-py's
        # default policy retries with exponential back-off, seconds in all).
        assert traffic.connects <= 2 and traffic.backoff_sleeps == [], (traffic.connects, traffic.backoff_sleeps)

        assert await cache.get("AAPL") == "a"
        await cache.set("MSFT", "m", 3600)
        assert cache.breaker.state == "open"
        assert traffic.connects <= 6 and traffic.backoff_sleeps == []

        # With the breaker open no call touches the network: not one connection attempt in 600 calls.
        before = traffic.connects
        for _ in range(200):
            assert await cache.get("AAPL") == "a"
            assert await cache.get_many(["AAPL", "MSFT", "NOPE"]) == {"AAPL": "a", "MSFT": "m"}
            await cache.set("X", "x", 60)
        assert traffic.connects == before, "with the breaker open calls must not touch the network"

        await cache.delete("MSFT")
        assert await cache.get("MSFT") is None
        health = await cache.health()
        assert traffic.connects == before
    assert health["state"] == "degraded" and health["breaker"] == "open"
    assert health["last_error"] == "ConnectionError"
    await cache.aclose()


class HungServer:
    """A listener that accepts connections and never answers (a hung Redis), counting the connections it accepts."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.05)
        self.port: int = self._sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(conn)  # kept open and never read: the client waits for a reply that never comes

    def count(self) -> int:
        # The kernel completes a handshake before accept(): let the thread pick up what is already queued.
        deadline = 200
        while deadline and self._backlog_pending():
            time.sleep(0.01)
            deadline -= 1
        return len(self.accepted)

    def _backlog_pending(self) -> bool:
        import select

        return bool(select.select([self._sock], [], [], 0)[0])

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for conn in self.accepted:
            conn.close()
        self._sock.close()


@pytest.fixture
def hung_server() -> Iterator[HungServer]:
    server = HungServer()
    try:
        yield server
    finally:
        server.close()


@pytest.mark.anyio
async def test_hung_redis_costs_one_timeout_per_failure_until_the_breaker_opens(
    hung_server: HungServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    traffic = RedisTraffic(monkeypatch)
    cache = RedisCache(f"redis://127.0.0.1:{hung_server.port}/0", timeout_s=0.1, fail_max=2, reset_timeout_s=60)
    # Without the short socket timeout the first call would wait forever on the silent server: this is the hang
    # detector, generous on purpose (the timeout itself is proven by the calls returning and the TimeoutError below).
    with anyio.fail_after(60):
        await cache.set("k", "v", 60)  # failure 1
        assert await cache.get("k") == "v"  # failure 2: opens the breaker
        # One timed-out connection per failing call: a timeout is not retried (that would double every wait).
        assert hung_server.count() == 2 and traffic.connects == 2, (hung_server.count(), traffic.connects)
        assert traffic.backoff_sleeps == []
        assert cache.breaker.state == "open"
        assert (await cache.health())["last_error"] == "TimeoutError"
        for _ in range(100):
            assert await cache.get("k") == "v"  # the fallback answers; the hung server is not asked again
    assert hung_server.count() == 2 and traffic.connects == 2
    await cache.aclose()


# ---------------------------------------------------------------------------------------------------------------
# Redis stopped mid-run and restarted (a private server: the machine's one is never stopped)
# ---------------------------------------------------------------------------------------------------------------


async def _wait_for_breaker(cache: RedisCache, state: str) -> None:
    # A hang detector, not a speed bound: the breaker's reset timeout is 0.2 s, a loaded machine may take longer.
    with anyio.fail_after(60):
        while True:
            await cache.health()  # health() pings through the breaker, so it doubles as the half-open probe
            if cache.breaker.state == state:
                return
            await anyio.sleep(0.02)


@pytest.mark.anyio
async def test_redis_stopped_mid_run_degrades_then_recovers(throwaway_redis: ThrowawayRedis) -> None:
    cache = RedisCache(throwaway_redis.url, fail_max=2, reset_timeout_s=0.2)
    direct = aioredis.Redis.from_url(throwaway_redis.url, decode_responses=True)
    try:
        await cache.set("before", "b", 3600)
        await cache.set("many", "m", 3600)
        assert await direct.get(f"{DEFAULT_PREFIX}before") == "b"

        throwaway_redis.stop()
        assert await cache.get("before") == "b", "values written before the outage are served by the fallback"
        await cache.set("during", "d", 3600)
        assert await cache.get_many(["before", "many", "during"]) == {"before": "b", "many": "m", "during": "d"}
        health = await cache.health()
        assert health["state"] == "degraded" and health["breaker"] in {"open", "half_open"}
        assert cache.breaker.state == "open"

        throwaway_redis.start()
        await direct.aclose()  # its pooled connection died with the server; check with a fresh client
        direct = aioredis.Redis.from_url(throwaway_redis.url, decode_responses=True)
        await _wait_for_breaker(cache, "closed")
        assert (await cache.health())["state"] == "up"
        await cache.set("after", "a", 3600)
        await cache.set("after2", "a2", 3600)
        assert await direct.get(f"{DEFAULT_PREFIX}after") == "a", "writes reach Redis again"
        assert await direct.get(f"{DEFAULT_PREFIX}after2") == "a2"
        assert 3240 <= await direct.ttl(f"{DEFAULT_PREFIX}after") <= 3960
        # The restarted server has no persistence: Redis is the source of truth again, so this is a miss.
        assert await cache.get("before") is None
    finally:
        await direct.aclose()
        await cache.aclose()


@pytest.mark.anyio
async def test_redis_restart_between_calls_costs_no_failure(throwaway_redis: ThrowawayRedis) -> None:
    """Pooled connections the server dropped are replaced by the one immediate retry, without tripping anything."""
    cache = RedisCache(throwaway_redis.url, fail_max=1, reset_timeout_s=60)
    try:
        for i in range(5):
            await cache.set(f"k{i}", "v", 60)
        async with anyio.create_task_group() as tg:  # open several pooled connections
            for i in range(5):
                tg.start_soon(cache.get, f"k{i}")
        throwaway_redis.stop()
        throwaway_redis.start()
        async with anyio.create_task_group() as tg:
            for i in range(5):
                tg.start_soon(cache.set, f"n{i}", "v", 60)
        await cache.set("m", "v", 60)
        throwaway_redis.stop()
        throwaway_redis.start()
        assert await cache.get_many(["m", "n0"]) == {}, "a fresh, empty server answered"
        throwaway_redis.stop()
        throwaway_redis.start()
        await cache.set("p", "v", 60)
        assert await cache.get("p") == "v"
        assert cache.breaker.state == "closed" and cache.breaker.failures == 0
    finally:
        await cache.aclose()
