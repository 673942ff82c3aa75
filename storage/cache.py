"""The validation cache: Redis shared by every process, with an in-process TTL cache as its fallback.

Two backends implement one small :class:`Cache` protocol (string values, per-entry TTLs, batch get/set):

* :class:`MemoryCache` — a bounded in-process TTL cache with LRU eviction. It is the whole cache in the embedded
  run mode and the fallback inside :class:`RedisCache`.
* :class:`RedisCache` — Redis through ``redis.asyncio`` with short timeouts, one immediate retry for dropped
  connections and a :class:`CircuitBreaker`. When Redis fails or the breaker is open, reads and writes are served by
  the in-process fallback instead, in microseconds, and nothing is raised to the caller. The breaker lets one probe
  through after ``reset_timeout_s`` and closes again when the probe succeeds, so the cache recovers by itself.

Keys are namespaced and versioned by a ``prefix`` (default ``umcp:v1:``) applied inside the cache: callers pass bare
keys, and a format change is a prefix bump. TTLs are jittered by ±10 % so entries written together (a bulk
validation) do not all expire, and hit the providers, together.

Importing this module has no side effects; ``redis`` itself is only imported when a :class:`RedisCache` is built.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from core.redis import redis_client
from core.resilience import CircuitBreaker

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "DEFAULT_PREFIX",
    "Cache",
    "MemoryCache",
    "RedisCache",
    "build_cache",
    "jittered_ttl",
]

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "umcp:v1:"
DEFAULT_JITTER = 0.1

T = TypeVar("T")


@runtime_checkable
class Cache(Protocol):
    """What the services need from a cache. Keys are bare (the cache adds its prefix); values are strings."""

    async def get(self, key: str) -> str | None:
        """The value stored under ``key``, or None when absent or expired."""
        ...

    async def get_many(self, keys: Iterable[str]) -> dict[str, str]:
        """The entries found among ``keys`` (missing keys are left out), in one round trip."""
        ...

    async def set(self, key: str, value: str, ttl_s: int) -> None:
        """Store ``value`` for about ``ttl_s`` seconds (±10 % jitter)."""
        ...

    async def delete(self, key: str) -> None:
        """Forget ``key``. Deleting a missing key is not an error."""
        ...

    async def health(self) -> dict[str, Any]:
        """``{"backend": "redis"|"memory", "state": "up"|"degraded", "breaker": ...}`` plus details."""
        ...

    async def aclose(self) -> None:
        """Release connections. Safe to call twice."""
        ...


def jittered_ttl(ttl_s: int, jitter: float = DEFAULT_JITTER) -> int:
    """``ttl_s`` moved by a random amount within ±``jitter`` (a fraction), never below one second.

    Entries written in one batch would otherwise expire in the same second and send the whole batch back to the
    providers at once.
    """
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or ttl_s < 1:
        raise ValueError(f"ttl_s must be a positive whole number of seconds, got {ttl_s!r}")
    if jitter <= 0:
        return ttl_s
    spread = ttl_s * jitter
    return max(1, round(ttl_s + random.uniform(-spread, spread)))


class MemoryCache:
    """An in-process TTL cache bounded to ``max_entries`` with least-recently-used eviction.

    Expired entries are dropped when they are next touched, or evicted like any other entry; the size bound holds
    either way. A lock makes it safe to share with the in-process worker thread of the embedded mode.
    """

    backend = "memory"

    def __init__(
        self,
        *,
        prefix: str = DEFAULT_PREFIX,
        max_entries: int = 100_000,
        jitter: float = DEFAULT_JITTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.prefix = prefix
        self.max_entries = max_entries
        self._jitter = jitter
        self._clock = clock
        # key -> (expires_at on self._clock, value); order = recency, oldest first.
        self._data: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    # -- the Cache protocol --------------------------------------------------------------------------------------

    async def get(self, key: str) -> str | None:
        return self.peek(key)

    async def get_many(self, keys: Iterable[str]) -> dict[str, str]:
        return self.peek_many(keys)

    async def set(self, key: str, value: str, ttl_s: int) -> None:
        self.put(key, value, jittered_ttl(ttl_s, self._jitter))

    async def delete(self, key: str) -> None:
        self.discard(key)

    async def health(self) -> dict[str, Any]:
        # No breaker: there is nothing remote to fail.
        return {
            "backend": self.backend,
            "state": "up",
            "breaker": None,
            "entries": len(self._data),
            "max_entries": self.max_entries,
        }

    async def aclose(self) -> None:
        with self._lock:
            self._data.clear()

    # -- synchronous core, also used by RedisCache for its fallback (no await, no jitter of its own) ---------------

    def peek(self, key: str) -> str | None:
        """:meth:`get` without the coroutine."""
        now = self._clock()
        with self._lock:
            return self._get_locked(self.prefix + key, now)

    def peek_many(self, keys: Iterable[str]) -> dict[str, str]:
        """:meth:`get_many` without the coroutine."""
        now = self._clock()
        found: dict[str, str] = {}
        with self._lock:
            for key in keys:
                value = self._get_locked(self.prefix + key, now)
                if value is not None:
                    found[key] = value
        return found

    def put(self, key: str, value: str, ttl_s: float) -> None:
        """Store ``value`` for exactly ``ttl_s`` seconds (no jitter: the caller has already applied it)."""
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be positive, got {ttl_s!r}")
        expires_at = self._clock() + ttl_s
        with self._lock:
            self._put_locked(self.prefix + key, value, expires_at)

    def put_many(self, items: Iterable[tuple[str, str, float]]) -> None:
        """Store ``(key, value, exact ttl_s)`` triples under one lock acquisition."""
        now = self._clock()
        with self._lock:
            for key, value, ttl_s in items:
                self._put_locked(self.prefix + key, value, now + ttl_s)

    def discard(self, key: str) -> None:
        """:meth:`delete` without the coroutine."""
        with self._lock:
            self._data.pop(self.prefix + key, None)

    def _get_locked(self, full_key: str, now: float) -> str | None:
        item = self._data.get(full_key)
        if item is None:
            return None
        expires_at, value = item
        if expires_at <= now:
            del self._data[full_key]
            return None
        self._data.move_to_end(full_key)
        return value

    def _put_locked(self, full_key: str, value: str, expires_at: float) -> None:
        if not isinstance(value, str):
            raise TypeError(f"cache values are str, got {type(value).__name__}")
        self._data[full_key] = (expires_at, value)
        self._data.move_to_end(full_key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)


class _Failed:
    """Marks a Redis call that failed or was not attempted (distinct from a None reply)."""


_FAILED = _Failed()


def _text(value: bytes | str) -> str:
    """A reply of the cache's client: str already, as that client decodes replies (core/redis.py)."""
    return value if isinstance(value, str) else value.decode()


class RedisCache:
    """Redis as the shared cache, degrading to an in-process :class:`MemoryCache` and recovering by itself.

    Every write goes to Redis and to the local fallback (with a TTL of at most ``fallback_ttl_s``), and every value
    read from Redis is kept locally the same way, so while Redis is unreachable this process still answers the keys
    it recently used instead of sending them all to the providers. While Redis answers it is the only source of
    truth for reads: a key deleted or expired there is a miss here too.

    Redis errors are never raised to callers: they count against the circuit breaker and the call is answered by the
    fallback. A write or delete made while Redis is failing reaches only this process's fallback.
    """

    backend = "redis"

    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        timeout_s: float = 0.25,
        fail_max: int = 3,
        reset_timeout_s: float = 5.0,
        fallback_ttl_s: int = 300,
        fallback_max_entries: int = 20_000,
        jitter: float = DEFAULT_JITTER,
    ) -> None:
        # Imported here: the embedded mode never talks to Redis, and importing redis costs ~150 ms of start-up.
        from redis.exceptions import RedisError

        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        if fallback_ttl_s < 1:
            raise ValueError("fallback_ttl_s must be at least 1")
        self.prefix = prefix
        self._jitter = jitter
        self._fallback_ttl_s = fallback_ttl_s
        # The fallback shares the prefix, so the same bare keys work on both sides.
        self._fallback = MemoryCache(prefix=prefix, max_entries=fallback_max_entries, jitter=0)
        self._breaker = CircuitBreaker("cache", fail_max=fail_max, reset_timeout_s=reset_timeout_s)
        # Short timeouts bound a hung server; the single immediate retry, on a dropped connection only, replaces a
        # pooled connection the server dropped (after a Redis restart) without doubling timeouts (core/redis.py).
        self._client: Redis = redis_client(url, "cache", timeout_s=timeout_s)
        # OSError covers socket errors redis-py lets through unwrapped (TimeoutError is an OSError too).
        self._errors: tuple[type[BaseException], ...] = (RedisError, OSError)
        self._last_error: str | None = None

    @property
    def breaker(self) -> CircuitBreaker:
        return self._breaker

    @property
    def fallback(self) -> MemoryCache:
        return self._fallback

    async def _redis(self, op: Callable[[], Awaitable[T]]) -> T | _Failed:
        """Run one Redis operation through the breaker; ``_FAILED`` if it failed or was not attempted."""
        ticket = self._breaker.acquire()
        if ticket is None:
            return _FAILED
        try:
            result = await op()
        except self._errors as exc:
            self._breaker.failure(ticket)
            # Only the class name: a message may carry the host, and this is read back by health().
            self._last_error = type(exc).__name__
            log.debug("redis cache call failed (%s); served from the in-process fallback", type(exc).__name__)
            return _FAILED
        except BaseException:
            self._breaker.release(ticket)
            raise
        self._breaker.success(ticket)
        return result

    def _local_ttl(self, ttl_s: int) -> int:
        return min(ttl_s, self._fallback_ttl_s)

    async def get(self, key: str) -> str | None:
        full_key = self.prefix + key
        value = await self._redis(lambda: self._client.get(full_key))
        if isinstance(value, _Failed):
            return self._fallback.peek(key)
        if value is None:
            return None
        text = _text(value)
        self._fallback.put(key, text, self._fallback_ttl_s)
        return text

    async def get_many(self, keys: Iterable[str]) -> dict[str, str]:
        wanted = list(dict.fromkeys(keys))  # dedupe, keep order
        if not wanted:
            return {}
        full_keys = [self.prefix + key for key in wanted]
        values = await self._redis(lambda: self._client.mget(full_keys))
        if isinstance(values, _Failed):
            return self._fallback.peek_many(wanted)
        found = {key: _text(value) for key, value in zip(wanted, values, strict=True) if value is not None}
        if found:
            self._fallback.put_many((key, value, self._fallback_ttl_s) for key, value in found.items())
        return found

    async def set(self, key: str, value: str, ttl_s: int) -> None:
        if not isinstance(value, str):
            raise TypeError(f"cache values are str, got {type(value).__name__}")
        ttl = jittered_ttl(ttl_s, self._jitter)
        self._fallback.put(key, value, self._local_ttl(ttl))
        full_key = self.prefix + key
        await self._redis(lambda: self._client.set(full_key, value, ex=ttl))

    async def delete(self, key: str) -> None:
        self._fallback.discard(key)
        full_key = self.prefix + key
        await self._redis(lambda: self._client.delete(full_key))

    async def health(self) -> dict[str, Any]:
        """Ping Redis through the breaker: an open breaker answers at once, a half-open one uses this as its probe."""
        started = time.perf_counter()
        pong = await self._redis(self._client.ping)
        up = not isinstance(pong, _Failed)
        report: dict[str, Any] = {
            "backend": self.backend,
            # "degraded", not "down": the in-process fallback keeps answering while Redis is away.
            "state": "up" if up else "degraded",
            "breaker": self._breaker.state,
            "fallback_entries": len(self._fallback),
        }
        if up:
            report["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
        else:
            report["last_error"] = self._last_error
        return report

    async def aclose(self) -> None:
        try:
            await self._client.aclose()
        except self._errors:  # closing a client whose server is gone must not fail a shutdown
            log.debug("error while closing the redis cache client", exc_info=True)


def build_cache(redis_url: str | None, *, timeout_s: float = 0.25, prefix: str = DEFAULT_PREFIX) -> Cache:
    """The cache for a run mode: :class:`RedisCache` when a Redis URL is configured, else :class:`MemoryCache`."""
    if redis_url:
        return RedisCache(redis_url, timeout_s=timeout_s, prefix=prefix)
    return MemoryCache(prefix=prefix)
