"""Every Redis client of every process, built in one place with the timeouts and retries of its purpose.

redis-py's ``from_url`` defaults (5 s socket timeouts, no health check; for the async client no retry at all) suit
no purpose here: a hung Redis must not hang a tool call, and a dropped pooled connection (after a Redis restart)
should be replaced at once rather than fail one call. Each purpose has one row:

| purpose | client | connect / socket timeout | retries (backoff) | on | health check | used by |
|---|---|---|---|---|---|---|
| ``cache`` | async, text | ``redis_timeout_s`` / ``redis_timeout_s`` (0.25 s) | 1 (immediate) | dropped connections only | — | storage/cache.py: the verdict cache, on every validation (a circuit breaker and the in-process cache take over when Redis fails) |
| ``live`` | async, text | 2 s / 2 s | 2 (exponential with jitter, 0.05–0.5 s) | connection errors, timeouts | 30 s | workers/live.py: a job's live counters, the runtime's broker health (server and workers) |
| ``broker`` | sync, bytes | 1 s / 5 s | 3 (exponential with jitter, 0.05–1 s) | connection errors, timeouts | 30 s | workers/: Dramatiq's RedisBroker (5 s: a worker's blocking fetch), worker heartbeats, the scheduler's lock |
| ``limits`` | async (the ``limits`` library's redis-py storage) | 0.5 s / 0.5 s | none | — | — | core/resilience.py FallbackLimiter: per-owner and per-provider rate limits (a failing Redis is replaced by in-process limits for a while) |
| ``probe`` | sync, bytes | 3 s / 3 s | none | — | — | deploy/healthcheck.py: one look, then the answer |

A client is built lazily (no connection until first used) and belongs to its caller, who closes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from redis.asyncio.retry import Retry as AsyncRetry
    from redis.retry import Retry as SyncRetry

    from core.settings import Settings

__all__ = ["POLICIES", "Purpose", "RedisPolicy", "limits_storage", "redis_client"]

Purpose = Literal["cache", "live", "broker", "limits", "probe"]


@dataclass(frozen=True, slots=True)
class RedisPolicy:
    sync: bool
    decode: bool
    connect_timeout_s: float | None  # None: the ``redis_timeout_s`` setting (or the caller's ``timeout_s``)
    timeout_s: float | None
    retries: int
    backoff: tuple[float, float] | None = None  # (base, cap) of exponential backoff with jitter; None: immediate
    connection_errors_only: bool = False  # retry a dropped connection, never a timeout (which would double it)
    health_check_s: int = 0


POLICIES: dict[Purpose, RedisPolicy] = {
    "cache": RedisPolicy(
        sync=False, decode=True, connect_timeout_s=None, timeout_s=None, retries=1, connection_errors_only=True
    ),
    "live": RedisPolicy(
        sync=False, decode=True, connect_timeout_s=2.0, timeout_s=2.0, retries=2, backoff=(0.05, 0.5), health_check_s=30
    ),
    "broker": RedisPolicy(
        sync=True, decode=False, connect_timeout_s=1.0, timeout_s=5.0, retries=3, backoff=(0.05, 1.0), health_check_s=30
    ),
    "limits": RedisPolicy(sync=False, decode=False, connect_timeout_s=0.5, timeout_s=0.5, retries=0),
    "probe": RedisPolicy(sync=True, decode=False, connect_timeout_s=3.0, timeout_s=3.0, retries=0),
}


def _url(source: Settings | str) -> str:
    if isinstance(source, str):
        return source
    if source.redis_url is None:
        raise ValueError("UNIVERSE_MCP_REDIS_URL is not set")
    return source.redis_url.get_secret_value()


def _options(purpose: Purpose, source: Settings | str, timeout_s: float | None) -> dict[str, Any]:
    from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError

    policy = POLICIES[purpose]
    fallback = timeout_s if timeout_s is not None else getattr(source, "redis_timeout_s", None)
    connect = timeout_s if timeout_s is not None else policy.connect_timeout_s
    socket = timeout_s if timeout_s is not None else policy.timeout_s
    if connect is None or socket is None:
        if fallback is None:
            raise ValueError(f"a {purpose} client on a bare URL needs timeout_s")
        connect, socket = connect or fallback, socket or fallback
    options: dict[str, Any] = {"socket_connect_timeout": connect, "socket_timeout": socket}
    if policy.decode:
        options["decode_responses"] = True
    if policy.health_check_s:
        options["health_check_interval"] = policy.health_check_s
    backoff = (
        ExponentialWithJitterBackoff(base=policy.backoff[0], cap=policy.backoff[1]) if policy.backoff else NoBackoff()
    )
    # The same constructor in two classes: the sync client's and the asyncio client's.
    Retry: type[SyncRetry] | type[AsyncRetry]
    if policy.sync:
        from redis.retry import Retry as SyncRetry

        Retry = SyncRetry
    else:
        from redis.asyncio.retry import Retry as AsyncRetry

        Retry = AsyncRetry
    if policy.connection_errors_only:
        options["retry"] = Retry(backoff, policy.retries, supported_errors=(RedisConnectionError,))
    else:
        options["retry"] = Retry(backoff, policy.retries)
    return options


def redis_client(source: Settings | str, purpose: Purpose, *, timeout_s: float | None = None) -> Any:
    """A Redis client for ``purpose`` (the table above) on the settings' ``redis_url`` or on ``source`` itself when it
    is a URL; ``timeout_s`` replaces both timeouts (the cache's ``redis_timeout_s`` when built from a URL)."""
    if purpose == "limits":
        raise ValueError("the limits library builds its own client: use limits_storage()")
    options = _options(purpose, source, timeout_s)
    if POLICIES[purpose].sync:
        import redis

        return redis.Redis.from_url(_url(source), **options)
    import redis.asyncio as aioredis

    return aioredis.Redis.from_url(_url(source), **options)


def limits_storage(source: Settings | str, *, timeout_s: float | None = None) -> Any:
    """A ``limits`` async storage on Redis (redis-py, not coredis) with the ``limits`` row's timeouts; its errors are
    wrapped in ``limits.errors.StorageError``."""
    from limits.storage import storage_from_string

    url = _url(source)
    return storage_from_string(
        url if url.startswith("async+") else f"async+{url}",
        implementation="redispy",
        wrap_exceptions=True,
        **_options("limits", source, timeout_s),
    )
