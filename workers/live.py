"""Live job counters in a Redis hash (``<namespace>:job:<id>``), for pollers that should not hit the store.

The store's job row stays the durable record; this hash is a fast copy. Writers recount from the items and publish
the whole set; a Lua script keeps a publish with fewer processed symbols (an older recount that lost a race) from
overwriting a newer one, and never turns a finished status back into an active one. Every call is best effort:
a Redis failure is logged and ignored, and readers fall back to the store. Publishing and reading go through a
circuit breaker (core/resilience.py): while Redis keeps failing they are skipped at once instead of each waiting
for its timeouts and retries (a batch publishes after every few symbols).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from core.resilience import CircuitBreaker
from storage.repositories.jobs import ItemCounts

__all__ = ["RedisLiveCounters", "job_key", "queued_key"]

logger = logging.getLogger(__name__)

_PUBLISH = """
local cur = tonumber(redis.call('HGET', KEYS[1], 'processed') or '-1')
local was = redis.call('HGET', KEYS[1], 'status')
if tonumber(ARGV[1]) >= cur then
  for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
if was == 'completed' or was == 'cancelled' or was == 'failed' then redis.call('HSET', KEYS[1], 'status', was) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

_FIELDS = ("total", "processed", "valid", "invalid", "pending", "error", "cancelled", "queued", "retrying")


def job_key(namespace: str, job_id: str) -> str:
    return f"{namespace}:job:{job_id}"


def queued_key(namespace: str, job_id: str) -> str:
    """Set (next to the messages, in the broker's Redis) whenever a job's batches are queued: if Redis loses its
    data, the marker goes with the messages, and the watch knows the job's batches are gone."""
    return f"{namespace}:job:{job_id}:queued"


class RedisLiveCounters:
    def __init__(self, client: aioredis.Redis, namespace: str, ttl_s: int) -> None:
        self.client = client
        self.namespace = namespace
        self.ttl_ms = int(ttl_s * 1000)
        self._script = client.register_script(_PUBLISH)
        self.breaker = CircuitBreaker("live counters")

    async def publish(self, job_id: str, status: str, counts: ItemCounts) -> None:
        values = counts.as_dict()
        args: list[Any] = [values["processed"], self.ttl_ms, "status", status]
        for name in _FIELDS:
            args += [name, values[name]]
        ticket = self.breaker.acquire()
        if ticket is None:  # Redis keeps failing: the store has the durable counts; only the fast copy is missing
            return
        try:
            await self._script(keys=[job_key(self.namespace, job_id)], args=args)
        except RedisError as exc:
            self.breaker.failure(ticket)
            logger.warning("live counters of job %s not published (%s)", job_id, type(exc).__name__)
        except BaseException:
            self.breaker.release(ticket)
            raise
        else:
            self.breaker.success(ticket)

    async def lost(self, job_ids: Sequence[str]) -> set[str]:
        """Jobs whose queued-batches marker is gone (Redis lost its data); empty when Redis cannot tell.

        Not behind the breaker: the job watch runs once a minute and must ask Redis itself after it comes back."""
        if not job_ids:
            return set()
        try:
            pipe = self.client.pipeline(transaction=False)
            for job_id in job_ids:
                pipe.exists(queued_key(self.namespace, job_id))
            found = await pipe.execute()
        except RedisError as exc:  # cannot tell: the watch falls back to the no-progress rule
            logger.warning("queued markers unreadable (%s)", type(exc).__name__)
            return set()
        return {job_id for job_id, exists in zip(job_ids, found, strict=True) if not exists}

    async def read(self, job_id: str) -> dict[str, Any] | None:
        ticket = self.breaker.acquire()
        if ticket is None:  # Redis keeps failing: the reader falls back to the store
            return None
        try:
            raw = await self.client.hgetall(job_key(self.namespace, job_id))
        except RedisError as exc:
            self.breaker.failure(ticket)
            logger.warning("live counters of job %s unreadable (%s)", job_id, type(exc).__name__)
            return None
        except BaseException:
            self.breaker.release(ticket)
            raise
        self.breaker.success(ticket)
        if not raw or "status" not in raw:
            return None
        out: dict[str, Any] = {"status": raw["status"]}
        for name in _FIELDS:
            try:
                out[name] = int(raw.get(name, 0))
            except ValueError:
                out[name] = 0
        return out
