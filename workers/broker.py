"""The broker factory: RedisBroker when ``UNIVERSE_MCP_REDIS_URL`` is set, otherwise an in-memory StubBroker for the
embedded mode (its Worker runs inside the server process: workers/runtime.py).

Nothing here runs at import time, and nothing connects to Redis until the first command. Actors are declared by
workers/actors.py against the broker built here (dramatiq binds an actor to the broker that exists when it is
declared), never through dramatiq's global default broker.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from dramatiq import Broker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Middleware,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from core.redis import redis_client
from core.settings import Settings

__all__ = ["QUEUES", "build_broker", "middleware_for"]

# "validation": batches of user jobs. "background": the periodic refresh and cleanup, so they never hold up a user.
QUEUES = ("validation", "background")

_embedded_time_limit: TimeLimit | None = None
_embedded_lock = threading.Lock()


class _OnceTimeLimit(TimeLimit):
    """A TimeLimit whose monitor thread starts once per process however many embedded brokers boot (tests build
    many servers; the monitor is a never-ending daemon thread keyed by thread id, so one serves them all)."""

    _started = False

    def after_process_boot(self, broker: Any) -> None:
        with _embedded_lock:
            if not self._started:
                self._started = True
                super().after_process_boot(broker)


def _time_limit(embedded: bool) -> TimeLimit:
    global _embedded_time_limit
    if not embedded:
        return TimeLimit()
    with _embedded_lock:
        if _embedded_time_limit is None:
            _embedded_time_limit = _OnceTimeLimit()
        return _embedded_time_limit


def middleware_for(settings: Settings, *, embedded: bool, extra: Sequence[Middleware] = ()) -> list[Middleware]:
    """The middleware stack, in order. ``before_*`` hooks run top to bottom, ``after_*`` hooks bottom to top."""
    stack: list[Middleware] = [
        AgeLimit(),  # drops messages past a max_age option; we set none, but a per-message one is honoured
        _time_limit(embedded),  # the hard time limit of one batch (actor option time_limit); needs process_boot
        ShutdownNotifications(),  # lets an actor that opts in notice a worker shutdown
        Callbacks(),  # on_success / on_failure options
        Pipelines(),  # message pipelines (unused, kept so the stack is dramatiq's default one plus ours)
        # Retries: backoff from job_retry_base_s, capped at job_retry_max_delay_s; a dramatiq.Retry(delay=...) from
        # an actor (a provider's retry-after) overrides it. Our actors count their own failures (workers/actors.py).
        Retries(
            max_retries=10_000,
            min_backoff=int(settings.job_retry_base_s * 1000),
            max_backoff=int(settings.job_retry_max_delay_s * 1000),
        ),
        CurrentMessage(),  # actors read their message's retry count; after Retries, so it is cleared last
        # No AsyncIO middleware: the actors are plain functions that hand their coroutine to an event loop
        # themselves, so they can read CurrentMessage on the worker thread. A worker process's loop is a daemon
        # thread owned by workers/entry.py WorkerEnv (AsyncIO's is not a daemon: a worker killed by a second SIGTERM
        # would hang on it); the embedded worker borrows the server's own loop (workers/runtime.py LoopBridge).
    ]
    stack.extend(extra)  # ours: heartbeats, the worker process's loop and resources
    return stack


def build_broker(settings: Settings, *, embedded: bool | None = None, extra: Sequence[Middleware] = ()) -> Broker:
    """A RedisBroker (distributed) or a StubBroker (embedded, with ``process_boot`` emitted so time limits work)."""
    url = settings.redis_url.get_secret_value() if settings.redis_url else None
    embedded = url is None if embedded is None else embedded
    middleware = middleware_for(settings, embedded=embedded, extra=list(extra))
    if embedded:
        broker: Broker = StubBroker(middleware=middleware)
        # The dramatiq CLI emits process_boot; an in-process Worker does not, and without it TimeLimit never fires.
        broker.emit_after("process_boot")
    else:
        assert url is not None
        broker = RedisBroker(
            # Explicit timeouts and retry (core/redis.py, `broker`): RedisBroker(url=...) would build connections
            # with neither (a down Redis fails every enqueue at once, a hung one blocks for the default timeout).
            client=redis_client(url, "broker"),
            namespace=settings.broker_namespace,
            middleware=middleware,
            # A dead worker's unacknowledged messages return once it has been silent for heartbeat_timeout and a
            # maintenance roll succeeds; dramatiq's defaults (60 s, 0.1 %) take minutes, ours seconds.
            heartbeat_timeout=int(settings.worker_heartbeat_timeout_s * 1000),
            maintenance_chance=settings.broker_maintenance_chance,
        )
    for queue in QUEUES:
        broker.declare_queue(queue)
    return broker
