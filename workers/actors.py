"""The actors, declared against a given broker (never dramatiq's global one), named ``module.event``.

Actors are thin: they take ids and batches of symbols, run the matching coroutine of workers/batches.py on the
process's event loop (``run``), and turn its answer into dramatiq's vocabulary (``Retry(delay=...)`` for symbols
waiting on a provider). They are plain functions, not ``async def``, so they run on the worker thread where
CurrentMessage (their retry bookkeeping) is visible.

    validation.validate_batch(job_id, owner_id, symbols, force_refresh)   a batch of a user's job
    validation.revalidate(symbols)                                        a batch of the periodic refresh
    maintenance.refresh()                                                 plan the refresh, fan out revalidate
    maintenance.cleanup()                                                 delete expired jobs
    maintenance.watch()                                                   resume (or fail) jobs that are stuck
    maintenance.listings_sync()                                           fetch the listing sources, merge them
                                                                          (then rebalance the scheduled dynamic
                                                                          universes once, when it changed anything)
    maintenance.rebalance_due()                                           rebalance the dynamic universes now due
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import dramatiq
from dramatiq import Broker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import CurrentMessage, Interrupt

from core.settings import Settings
from services.security_master.sync import describe as describe_sync
from workers import batches
from workers.batches import JobEnv
from workers.live import queued_key

__all__ = ["Actors", "declare_actors", "send_job"]

logger = logging.getLogger(__name__)

LISTINGS_SYNC_TIME_LIMIT_MS = 30 * 60 * 1000

Run = Callable[[Coroutine[Any, Any, Any]], Any]
EnvGetter = Callable[[], Awaitable[JobEnv]]


@dataclass(frozen=True)
class Actors:
    broker: Broker
    validate_batch: dramatiq.Actor
    revalidate: dramatiq.Actor
    refresh: dramatiq.Actor
    cleanup: dramatiq.Actor
    watch: dramatiq.Actor
    listings_sync: dramatiq.Actor
    rebalance_due: dramatiq.Actor
    batch_size: int
    marker_ttl_s: int = 7 * 86_400


def send_job(
    actors: Actors,
    job_id: uuid.UUID | str,
    owner_id: uuid.UUID | str,
    symbols: Sequence[str],
    force_refresh: bool = False,
    *,
    delay_ms: int | None = None,
) -> int:
    """Queue a job's symbols in batches; returns the number of messages (blocking I/O with Redis).

    With Redis, a marker key is set first, next to the messages: a Redis that loses its data loses both, and the
    watch (workers/batches.py) then knows the job's batches are gone."""
    size = actors.batch_size
    count = 0
    broker = actors.broker
    if isinstance(broker, RedisBroker):
        broker.client.set(queued_key(broker.namespace, str(job_id)), "1", ex=actors.marker_ttl_s)
    for start in range(0, len(symbols), size):
        actors.validate_batch.send_with_options(
            args=(str(job_id), str(owner_id), list(symbols[start : start + size]), force_refresh), delay=delay_ms
        )
        count += 1
    return count


def declare_actors(broker: Broker, *, run: Run, env: EnvGetter, settings: Settings) -> Actors:
    """Declare the actors on ``broker``. ``run`` executes a coroutine on the loop the actors' resources live on;
    ``env`` gives the JobEnv (the store, the validation service, live counters) in that loop."""
    cfg = batches.JobConfig.from_settings(settings)
    time_limit_ms = int(settings.job_batch_time_limit_s * 1000)

    def in_env(make: Callable[[JobEnv], Awaitable[Any]]) -> Any:
        async def go() -> Any:
            return await make(await env())

        return run(go())

    def validate_batch(job_id: str, owner_id: str, symbols: list[str], force_refresh: bool = False) -> None:
        jid, oid = uuid.UUID(job_id), uuid.UUID(owner_id)
        message = CurrentMessage.get_current_message()
        try:
            result = in_env(lambda e: batches.process_batch(e, jid, oid, symbols, force_refresh=force_refresh))
        except (Exception, Interrupt) as exc:  # Interrupt: TimeLimitExceeded raised into this thread
            failures = (message.options.get("failures", 0) if message else 0) + 1
            if message is not None:
                message.options["failures"] = failures  # travels with the retried message
            if failures <= cfg.max_retries:
                raise  # Retries re-queues it with backoff
            what = "timed out" if isinstance(exc, Interrupt) else f"failed ({type(exc).__name__})"
            logger.error(
                "job %s: a batch of %d symbols %s %d times; recording them as error",
                job_id,
                len(symbols),
                what,
                failures,
            )
            in_env(
                lambda e: batches.fail_batch(
                    e, jid, oid, symbols, f"validation {what} {failures} times; not retried again"
                )
            )
            return
        if result.retry_in_s is not None:
            # Symbols a provider could not answer yet: the whole message comes back after the provider's retry-after
            # (or our backoff); its settled symbols are skipped then, as they are no longer queued.
            delay_ms = max(1, int(result.retry_in_s * 1000))
            raise dramatiq.Retry(f"{result.waiting} symbols wait for a provider", delay=delay_ms)

    def revalidate(symbols: list[str]) -> None:
        counts = in_env(lambda e: batches.revalidate(e, symbols))
        logger.info("refresh: re-validated %d symbols: %s", len(symbols), counts)

    def refresh() -> None:
        symbols = in_env(batches.plan_refresh)
        for start in range(0, len(symbols), cfg.batch_size):
            revalidate_actor.send(symbols[start : start + cfg.batch_size])
        logger.info("refresh: %d stale or pending symbols queued", len(symbols))

    def cleanup() -> None:
        in_env(batches.cleanup)

    def watch() -> None:
        report = in_env(batches.watch)
        for job in report.resumed:
            send_job(actors, job.job_id, job.owner_id, job.symbols, job.force_refresh)

    def listings_sync() -> None:
        report = in_env(lambda e: batches.sync_listings(e, settings))
        logger.info("listings sync: %s", "; ".join(describe_sync(report)))
        sync_id = batches.sync_changed(report)
        if sync_id is not None:
            in_env(lambda e: batches.rebalance_after_sync(e, sync_id))

    def rebalance_due() -> None:
        in_env(batches.rebalance_due)

    common: dict[str, Any] = {"broker": broker, "time_limit": time_limit_ms}
    validate_actor = dramatiq.actor(actor_name="validation.validate_batch", queue_name="validation", **common)(
        validate_batch
    )
    revalidate_actor = dramatiq.actor(
        actor_name="validation.revalidate", queue_name="background", max_retries=1, **common
    )(revalidate)
    refresh_actor = dramatiq.actor(actor_name="maintenance.refresh", queue_name="background", max_retries=1, **common)(
        refresh
    )
    cleanup_actor = dramatiq.actor(actor_name="maintenance.cleanup", queue_name="background", max_retries=1, **common)(
        cleanup
    )
    watch_actor = dramatiq.actor(actor_name="maintenance.watch", queue_name="background", max_retries=1, **common)(
        watch
    )
    # One sync downloads ~6 MB and merges ~30,000 securities: minutes at worst, never the batch time limit. Not
    # retried: a failed source is recorded with its reason and tried again at the next run.
    listings_actor = dramatiq.actor(
        actor_name="maintenance.listings_sync",
        queue_name="background",
        max_retries=0,
        broker=broker,
        time_limit=LISTINGS_SYNC_TIME_LIMIT_MS,
    )(listings_sync)
    # Retried once: a universe's run is keyed by its period, so a second delivery only does what the first did not.
    rebalance_actor = dramatiq.actor(
        actor_name="maintenance.rebalance_due", queue_name="background", max_retries=1, **common
    )(rebalance_due)
    actors = Actors(
        broker,
        validate_actor,
        revalidate_actor,
        refresh_actor,
        cleanup_actor,
        watch_actor,
        listings_actor,
        rebalance_actor,
        cfg.batch_size,
        marker_ttl_s=cfg.retention_s,
    )
    return actors
