"""core/redis.py: every purpose's client gets exactly the timeouts, retries and back-off of its row in the table.

Clients connect lazily, so each is checked on a connection its pool makes, without a server."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from core.redis import POLICIES, Purpose, limits_storage, redis_client
from core.settings import Settings

URL = "redis://127.0.0.1:1/0"

# purpose: (connect timeout, socket timeout, retries, (base, cap) or None, decode, health check interval)
EXPECTED = {
    "cache": (0.25, 0.25, 1, None, True, 0),
    "live": (2.0, 2.0, 2, (0.05, 0.5), True, 30),
    "broker": (1.0, 5.0, 3, (0.05, 1.0), False, 30),
    "probe": (3.0, 3.0, 0, None, False, 0),
}


def _connection(client: Any) -> Any:  # a redis or redis.asyncio client; its Connection, read by private fields
    return client.connection_pool.make_connection()


@pytest.mark.parametrize("purpose", sorted(EXPECTED))
def test_each_purpose_gets_its_row(purpose: Purpose) -> None:
    connect, timeout, retries, backoff, decode, health = EXPECTED[purpose]
    settings = Settings(redis_url=SecretStr(URL), redis_timeout_s=0.25)
    conn = _connection(redis_client(settings, purpose))
    assert (conn.socket_connect_timeout, conn.socket_timeout) == (connect, timeout)
    assert conn.retry._retries == retries
    if backoff is None:
        assert type(conn.retry._backoff).__name__ == "NoBackoff"
    else:
        assert (conn.retry._backoff._base, conn.retry._backoff._cap) == backoff
    assert conn.encoder.decode_responses is decode
    assert conn.health_check_interval == health
    assert POLICIES[purpose].sync is (type(conn).__module__ == "redis.connection")


def test_the_cache_retries_a_dropped_connection_only_never_a_timeout() -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError

    conn = _connection(redis_client(URL, "cache", timeout_s=0.1))
    assert conn.retry._supported_errors == (RedisConnectionError,)
    assert (conn.socket_connect_timeout, conn.socket_timeout) == (0.1, 0.1)


def test_the_limits_storage_uses_redis_py_with_the_limits_row() -> None:
    storage = limits_storage(URL, timeout_s=0.2)
    conn = _connection(storage.bridge.storage)
    assert (conn.socket_connect_timeout, conn.socket_timeout) == (0.2, 0.2)
    assert conn.retry._retries == 0
    assert type(storage.bridge.storage).__module__ == "redis.asyncio.client"


def test_misuse_is_refused() -> None:
    with pytest.raises(ValueError, match="REDIS_URL is not set"):
        redis_client(Settings(redis_url=None), "live")
    with pytest.raises(ValueError, match="limits_storage"):
        redis_client(URL, "limits")
    with pytest.raises(ValueError, match="needs timeout_s"):
        redis_client(URL, "cache")
