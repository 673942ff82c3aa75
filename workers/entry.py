"""Entry point of a worker process: ``dramatiq workers.entry:setup`` (what ``universe-mcp worker`` runs).

``setup`` reads the settings from the environment, builds the RedisBroker with the actors declared on it and sets it
as dramatiq's broker. The store engine, cache, providers and validation service are built lazily on the worker's
event loop by the first message, and closed when the worker shuts down.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import dramatiq
from dramatiq.asyncio import EventLoopThread
from dramatiq.middleware import Middleware

from core.settings import Settings

__all__ = ["WorkerEnv", "setup"]

logger = logging.getLogger(__name__)


class WorkerEnv(Middleware):
    """The worker process's event loop (a daemon thread, started at worker boot) and its JobEnv, built there on
    first use and closed at shutdown, before the loop stops."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._env: Any = None
        self._lock: asyncio.Lock | None = None
        self._closers: list[Any] = []
        self.loop_thread: EventLoopThread | None = None

    def before_worker_boot(self, broker: Any, worker: Any) -> None:
        self.loop_thread = EventLoopThread(logger)
        self.loop_thread.daemon = True  # a hard-killed worker must not hang on it
        self.loop_thread.start(timeout=5.0)

    def run(self, coro: Any) -> Any:
        """Run ``coro`` on the loop and wait (a time limit raised into the waiting thread cancels it)."""
        if self.loop_thread is None:
            coro.close()
            raise RuntimeError("the worker's event loop is not running")
        return self.loop_thread.run_coroutine(coro)

    async def get(self) -> Any:
        if self._env is not None:
            return self._env
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._env is None:
                self._env = await self._build()
        return self._env

    async def _build(self) -> Any:
        from core.redis import redis_client
        from core.wiring import build_cache_for, build_providers, build_validation, limits_from
        from storage.db import make_engine, make_sessionmaker
        from workers.batches import JobConfig, JobEnv
        from workers.live import RedisLiveCounters

        s = self.settings
        # Workers act for every owner: they connect as the role that owns the tables (database_admin_url).
        engine = make_engine(s.admin_sqlalchemy_url)
        cache = build_cache_for(s)
        providers = build_providers(s)
        redis = redis_client(s, "live")
        self._closers = [engine.dispose, cache.aclose, *[p.aclose for p in providers], redis.aclose]
        env = JobEnv(
            JobConfig.from_settings(s),
            make_sessionmaker(engine),
            build_validation(s, cache, providers),
            live=RedisLiveCounters(redis, s.broker_namespace, s.job_retention_s),
            scoped=engine.dialect.name == "postgresql",
            limits=limits_from(s),
        )
        logger.info("worker ready: store %s, providers %s", s.describe_store(), [p.name for p in providers])
        return env

    async def _close(self) -> None:
        for close in self._closers:
            try:
                await close()
            except Exception:  # closing is best effort
                logger.debug("close failed", exc_info=True)

    def after_worker_shutdown(self, broker: Any, worker: Any) -> None:
        if self.loop_thread is None:
            return
        if self._env is not None:
            self.loop_thread.run_coroutine(self._close())
        self.loop_thread.stop()
        self.loop_thread = None


def setup() -> None:
    """Called by the dramatiq CLI in each worker process."""
    from core.redis import redis_client
    from workers.actors import declare_actors
    from workers.broker import build_broker
    from workers.heartbeat import WorkerHeartbeat

    settings = Settings()
    if settings.redis_url is None:
        raise SystemExit("universe-mcp worker needs UNIVERSE_MCP_REDIS_URL (embedded mode runs jobs in the server)")
    from core.logs import reformat_handlers

    # dramatiq set up this process's logging (a handler writing to its pipe to the main process): same format and
    # level as every other universe-mcp process, third-party noise tamed.
    logging.getLogger().setLevel(settings.log_level)
    reformat_handlers(settings)
    extra: list[Middleware] = []
    if settings.worker_metrics_port is not None:
        from dramatiq.middleware.prometheus import Prometheus

        extra.append(Prometheus())  # serves every worker process's metrics (workers/cli.prometheus_environment)
    env = WorkerEnv(settings)
    heartbeat = WorkerHeartbeat(
        redis_client(settings, "broker"),
        settings.broker_namespace,
        interval_s=min(1.0, settings.worker_heartbeat_timeout_s / 3),
    )
    broker = build_broker(settings, embedded=False, extra=[*extra, heartbeat, env])

    declare_actors(broker, run=env.run, env=env.get, settings=settings)
    dramatiq.set_broker(broker)
