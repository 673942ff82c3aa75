"""``universe-mcp scheduler``: APScheduler sends the periodic messages; a Redis lock makes extra schedulers harmless.

Each run belongs to a time slot (``floor(now / interval)``). Before sending, a scheduler takes the slot's key with
``SET NX PX``; only the first one of any number of schedulers gets it, so each slot sends exactly one message however
many schedulers run and however their clocks drift within the slot. Workers do the work (maintenance.refresh fans
out validation.revalidate batches; maintenance.cleanup deletes expired jobs; maintenance.watch resumes or fails jobs
that are stuck; maintenance.listings_sync fetches the listing sources and merges them into the security master, once
every ``listings_sync_interval_s`` and only when online; maintenance.rebalance_due rebalances the dynamic universes
whose scheduled rebalance is due, every ``rebalance_check_interval_s``). In embedded mode the same work runs as a task
inside the server (workers/runtime.py). The slot lock only saves work: what makes a scheduled rebalance happen once
per universe and period is its period key in the store (services/schedules.py).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

import redis

from core.settings import Settings

__all__ = ["PeriodicLock", "build_scheduler", "listings_sync_enabled", "run_scheduler"]

logger = logging.getLogger(__name__)


class PeriodicLock:
    def __init__(self, client: redis.Redis, namespace: str) -> None:
        self.client = client
        self.namespace = namespace
        self.owner = f"{socket.gethostname()}:{os.getpid()}"

    def acquire(self, name: str, interval_s: float, now: float | None = None) -> bool:
        """True for the one caller that owns this run's slot; False for every other scheduler."""
        now = time.time() if now is None else now
        slot = int(now // interval_s)
        key = f"{self.namespace}:scheduler:{name}:{slot}"
        # Kept two intervals, so a late scheduler still finds it set until its slot has passed.
        return bool(self.client.set(key, self.owner, nx=True, px=max(1, int(interval_s * 2000))))


def listings_sync_enabled(settings: Settings) -> bool:
    """Whether the periodic listings sync runs: it fetches from the internet, so never offline; 0 turns it off."""
    return settings.listings_sync_interval_s > 0 and not settings.offline


def build_scheduler(settings: Settings, *, blocking: bool = True) -> tuple[Any, dict[str, Any]]:
    """The APScheduler with one interval job per periodic task, and the ticks (callables) it runs."""
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.blocking import BlockingScheduler
    from apscheduler.triggers.interval import IntervalTrigger

    from core.redis import redis_client
    from workers.actors import declare_actors
    from workers.broker import build_broker

    broker = build_broker(settings, embedded=False)

    def never_run(coro: Any) -> Any:  # the scheduler only sends messages
        coro.close()
        raise RuntimeError("the scheduler does not run actors")

    async def no_env() -> Any:
        raise RuntimeError("the scheduler has no job environment")

    actors = declare_actors(broker, run=never_run, env=no_env, settings=settings)
    lock = PeriodicLock(redis_client(settings, "broker"), settings.broker_namespace)
    plan = {
        "refresh": (settings.refresh_interval_s, actors.refresh),
        "cleanup": (settings.cleanup_interval_s, actors.cleanup),
        "watch": (settings.job_watch_interval_s, actors.watch),
        "rebalance": (settings.rebalance_check_interval_s, actors.rebalance_due),
    }
    if listings_sync_enabled(settings):
        plan["listings_sync"] = (settings.listings_sync_interval_s, actors.listings_sync)

    def tick(name: str) -> bool:
        interval, actor = plan[name]
        try:
            if not lock.acquire(name, interval):
                logger.debug("%s: another scheduler has this run", name)
                return False
            actor.send()
        except redis.RedisError as exc:  # Redis away: skip this run, the next one will try again
            logger.warning("%s not sent: Redis unavailable (%s)", name, type(exc).__name__)
            return False
        logger.info("%s queued", name)
        return True

    scheduler = (BlockingScheduler if blocking else BackgroundScheduler)(timezone="UTC")
    ticks = {name: (lambda n=name: tick(n)) for name in plan}
    for name, (interval, _) in plan.items():
        # First run at once (the slot lock keeps restarts from repeating it), then every interval.
        scheduler.add_job(
            ticks[name],
            IntervalTrigger(seconds=interval),
            id=name,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=max(1, int(interval / 2)),
            next_run_time=_now(),
        )
    return scheduler, ticks


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def run_scheduler(settings: Settings, *, once: bool = False) -> int:
    scheduler, ticks = build_scheduler(settings)
    if once:
        for tick in ticks.values():
            tick()
        return 0
    logger.info(
        "scheduler: refresh every %d s, cleanup every %d s, watch every %d s, rebalance check every %d s, "
        "listings sync %s (namespace %s)",
        settings.refresh_interval_s,
        settings.cleanup_interval_s,
        settings.job_watch_interval_s,
        settings.rebalance_check_interval_s,
        f"every {settings.listings_sync_interval_s} s" if listings_sync_enabled(settings) else "off",
        settings.broker_namespace,
    )
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    return 0
