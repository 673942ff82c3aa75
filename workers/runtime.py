"""The job runtime of a server process (``AppState.jobs``): queue jobs, read live progress, push ``jobs://`` updates,
report broker and worker health.

Distributed mode (Redis configured): a RedisBroker only enqueues; ``universe-mcp worker`` processes run the batches
and ``universe-mcp scheduler`` the periodic jobs. Embedded mode (no Redis): a StubBroker and a dramatiq Worker inside
this process, started on first use, whose actors run their coroutines on the server's own event loop (LoopBridge), so
they share its store engine, cache and providers; the periodic jobs run as a task here; and unfinished jobs are
queued again shortly after start, since the in-memory queue did not survive the restart.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio
from dramatiq import Worker
from dramatiq.asyncio import EventLoopThread
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import dq_name
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from core.redis import redis_client
from core.resilience import CircuitBreaker
from core.settings import Settings
from core.wiring import AppState
from services.security_master.store import SYNC_SOURCE
from services.security_master.sync import SyncReport
from services.security_master.sync import describe as describe_sync
from storage.db import make_engine, make_sessionmaker, utcnow
from storage.repositories import jobs as job_repo
from storage.repositories import listings as listings_repo
from workers import batches
from workers.actors import Actors, declare_actors, send_job
from workers.batches import JobConfig, JobEnv
from workers.broker import QUEUES, build_broker
from workers.heartbeat import WorkerHeartbeat, read_workers, workers_key
from workers.live import RedisLiveCounters
from workers.scheduler import listings_sync_enabled

__all__ = ["JobRuntime", "LoopBridge", "open_job_runtime"]

R = TypeVar("R")
logger = logging.getLogger(__name__)

FOLLOW_INTERVAL_S = 0.5
FOLLOW_MAX_S = 3600.0
RESUME_DELAY_S = 1.0
LISTINGS_FIRST_DELAY_S = 600.0  # a store that never synced: ten minutes after start, not during it
# The first rebalance check of a process: soon after start (a server started for one stdio session may not live for
# a whole interval), yet not during it. Checking costs one indexed query when nothing is due.
REBALANCE_FIRST_DELAY_S = 30.0
CLOSE_GRACE_S = 5.0  # on close, running batches and background steps get this long to finish before cancellation


class LoopBridge(EventLoopThread):
    """dramatiq's EventLoopThread, borrowing a loop that already runs (the server's) instead of starting its own.

    Worker threads call ``run_coroutine`` and wait with dramatiq's interrupt handling: a time limit raised into the
    waiting thread cancels the coroutine. The thread itself is never started.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        threading.Thread.__init__(self, name="umcp-loop-bridge", daemon=True)
        self.loop = loop
        self.logger = logger
        self.interrupt_check_ival = 0.1
        self.tasks: set[asyncio.Task[Any]] = set()

    def run_coroutine(self, coro: Awaitable[R]) -> R:
        return super().run_coroutine(self._tracked(coro))

    async def _tracked(self, coro: Awaitable[R]) -> R:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            return await coro
        finally:
            self.tasks.discard(task)

    def cancel_all(self) -> None:
        for task in list(self.tasks):
            task.cancel()

    def stop(self) -> None:  # the loop belongs to the server
        return None


class JobRuntime:
    def __init__(self, settings: Settings, *, embedded: bool, env: JobEnv, tg: anyio.abc.TaskGroup) -> None:
        self.settings = settings
        self.embedded = embedded
        self.env = env
        self.config: JobConfig = env.config
        self.namespace = settings.broker_namespace
        self._tg = tg
        # Set on close: background loops stop at their next pause instead of being cancelled in the middle of a
        # query (a cancelled aiosqlite query leaves a connection close pending that can outlive the event loop).
        self.closing = anyio.Event()
        self._followed: set[str] = set()
        self._worker: Worker | None = None
        self.started_at = utcnow()  # jobs older than this lost their in-memory queue (embedded mode)
        self.redis = None if embedded else redis_client(settings, "live")
        self.live = None
        if self.redis is not None:
            self.live = RedisLiveCounters(self.redis, self.namespace, settings.job_retention_s)
        self.heartbeat = WorkerHeartbeat()  # embedded: counts the in-process worker's busy threads
        self.broker_breaker = CircuitBreaker("job broker")  # distributed: enqueueing (submit)
        self.bridge: LoopBridge | None = None
        if embedded:
            self.bridge = LoopBridge(asyncio.get_running_loop())
            run = self.bridge.run_coroutine
            self.broker = build_broker(settings, embedded=True, extra=[self.heartbeat])
        else:
            # The server never runs actors in distributed mode; ``run`` is unused.
            def run(coro: Any) -> Any:
                coro.close()
                raise RuntimeError("actors run in `universe-mcp worker` processes in distributed mode")

            self.broker = build_broker(settings, embedded=False)

        async def get_env() -> JobEnv:
            return env

        self.actors: Actors = declare_actors(self.broker, run=run, env=get_env, settings=settings)

    async def _pause(self, seconds: float) -> bool:
        """Sleep unless the runtime closes meanwhile; True when the full time passed."""
        with anyio.move_on_after(seconds):
            await self.closing.wait()
            return False
        return True

    # --- queueing -----------------------------------------------------------------------------------------------
    def _ensure_worker(self) -> None:
        if self._worker is None:
            self._worker = Worker(self.broker, worker_threads=self.settings.embedded_worker_threads, worker_timeout=100)
            self._worker.start()
            logger.info("embedded job worker started (%d threads)", self.settings.embedded_worker_threads)

    async def submit(
        self,
        job_id: uuid.UUID | str,
        owner_id: uuid.UUID | str,
        symbols: Sequence[str],
        force_refresh: bool = False,
        *,
        delay_s: float = 0.0,
        timeout_s: float | None = None,
    ) -> int:
        """Queue the job's symbols in batches (after the unit of work that created the job has committed).

        ``timeout_s`` bounds the whole step (TimeoutError past it): a hung Redis must not hold the caller for its
        retries' full length. services/jobs.py: ``JobDesk.start`` fails the job when this raises."""
        if not symbols:
            return 0
        with anyio.fail_after(timeout_s):
            return await self._submit(job_id, owner_id, symbols, force_refresh, delay_s)

    async def _submit(
        self,
        job_id: uuid.UUID | str,
        owner_id: uuid.UUID | str,
        symbols: Sequence[str],
        force_refresh: bool,
        delay_s: float,
    ) -> int:
        if self.live is not None:
            counts = job_repo.ItemCounts(total=len(symbols), queued=len(symbols))
            await self.live.publish(str(job_id), "queued", counts)
        if self.embedded:
            if delay_s > 0:  # a timer here, not the broker's delay queue: no worker thread until there is work
                self._tg.start_soon(self._submit_later, job_id, owner_id, list(symbols), force_refresh, delay_s)
                return -(-len(symbols) // self.actors.batch_size)
            self._ensure_worker()
            return send_job(self.actors, job_id, owner_id, symbols, force_refresh)
        delay_ms = int(delay_s * 1000) or None
        # The broker's breaker: while Redis keeps failing, a submit fails at once (the caller fails the job and says
        # the queue is unreachable) instead of waiting for the broker client's timeouts and retries each time.
        ticket = self.broker_breaker.acquire()
        if ticket is None:
            raise RedisConnectionError("the job broker's Redis keeps failing; not calling it")
        try:
            # abandon_on_cancel: a caller's time bound can give up on a hung Redis (the thread finishes on its own).
            sent = await anyio.to_thread.run_sync(
                lambda: send_job(self.actors, job_id, owner_id, symbols, force_refresh, delay_ms=delay_ms),
                abandon_on_cancel=True,
            )
        except BaseException:  # a Redis error, or the caller's time bound on a hung Redis
            self.broker_breaker.failure(ticket)
            raise
        self.broker_breaker.success(ticket)
        return sent

    async def _submit_later(self, job_id: Any, owner_id: Any, symbols: list[str], force: bool, delay_s: float) -> None:
        if not await self._pause(delay_s):
            return  # closing: the job stays queued in the store and resumes on the next start
        self._ensure_worker()
        send_job(self.actors, job_id, owner_id, symbols, force)

    # --- progress and resource updates --------------------------------------------------------------------------
    async def progress(self, job_id: uuid.UUID | str, owner_id: uuid.UUID | None = None) -> dict[str, Any] | None:
        """Status and counters: the live hash (distributed) or the job row."""
        if self.live is not None and (live := await self.live.read(str(job_id))) is not None:
            return live
        async with self.env.uow(owner_id) as session:
            job = await job_repo.get_job(session, uuid.UUID(str(job_id)))
            if job is None:
                return None
            return {
                "status": job.status,
                "total": job.total,
                "processed": job.processed,
                "valid": job.valid_count,
                "invalid": job.invalid_count,
                "pending": job.pending_count,
                "error": job.error_count,
            }

    async def publish(self, job_id: str, status: str, counts: job_repo.ItemCounts) -> None:
        if self.live is not None:
            await self.live.publish(job_id, status, counts)

    def follow(self, job_id: str, owner_id: uuid.UUID, notify: Callable[[str], Awaitable[None]]) -> None:
        """Push ``jobs://<id>`` resource-updated events while the job changes (once per job per process)."""
        if job_id in self._followed:
            return
        self._followed.add(job_id)
        self._tg.start_soon(self._follow, job_id, owner_id, notify)

    async def _follow(self, job_id: str, owner_id: uuid.UUID, notify: Callable[[str], Awaitable[None]]) -> None:
        last: dict[str, Any] | None = None
        deadline = time.monotonic() + FOLLOW_MAX_S
        try:
            while time.monotonic() < deadline:
                now = await self.progress(job_id, owner_id)
                if now is None:
                    return
                if now != last:
                    await notify(f"jobs://{job_id}")
                    last = now
                if now["status"] in job_repo.FINISHED or not await self._pause(FOLLOW_INTERVAL_S):
                    return
        except Exception:  # a follower must never take the server down
            logger.warning("stopped following job %s", job_id, exc_info=True)
        finally:
            self._followed.discard(job_id)

    # --- periodic work (inline: embedded scheduler, tests) --------------------------------------------------------
    async def run_refresh(self) -> dict[str, int]:
        """One run of the periodic refresh, here and now: re-validate pending and stale verdicts in batches."""
        symbols = await batches.plan_refresh(self.env)
        totals: dict[str, int] = {}
        for start in range(0, len(symbols), self.config.batch_size):
            counts = await batches.revalidate(self.env, symbols[start : start + self.config.batch_size])
            for status, n in counts.items():
                totals[status] = totals.get(status, 0) + n
        logger.info("refresh: re-validated %d symbols: %s", len(symbols), totals)
        return totals

    async def run_cleanup(self) -> batches.CleanupReport:
        """One run of the periodic cleanup: delete expired jobs."""
        return await batches.cleanup(self.env)

    async def run_watch(self) -> batches.WatchReport:
        """One run of the job watch, here and now: resume (queue again) or fail jobs that are stuck."""
        report = await batches.watch(self.env)
        for job in report.resumed:
            await self.submit(job.job_id, job.owner_id, job.symbols, job.force_refresh)
        return report

    async def run_listings_sync(self) -> SyncReport:
        """One run of the periodic listings sync, here and now (workers/batches.py sync_listings); when it changed
        the security master, every scheduled dynamic universe is rebalanced once for it."""
        report = await batches.sync_listings(self.env, self.settings)
        logger.info("listings sync: %s", "; ".join(describe_sync(report)))
        sync_id = batches.sync_changed(report)
        if sync_id is not None:
            await batches.rebalance_after_sync(self.env, sync_id)
        return report

    async def run_rebalance_due(self) -> batches.RebalanceReport:
        """One pass of the scheduled rebalances, here and now: every dynamic universe that is due."""
        return await batches.rebalance_due(self.env)

    async def _first_listings_sync_in(self) -> float:
        """Seconds until the first listings sync of this process: a day (the interval) after the last live sync
        the store records — so that a server restarted daily still syncs daily — and never right at start."""
        interval = self.settings.listings_sync_interval_s
        try:
            async with self.env.uow() as session:
                last = await listings_repo.last_ok_sync(session, SYNC_SOURCE)
        except Exception:
            logger.warning("could not read the last listings sync; the first one runs in %d s", interval)
            return float(interval)
        if last is None:
            return LISTINGS_FIRST_DELAY_S
        elapsed = (utcnow() - last.fetched_at).total_seconds()
        return max(LISTINGS_FIRST_DELAY_S, interval - elapsed)

    async def _periodic(self) -> None:
        runs: dict[str, Callable[[], Awaitable[Any]]] = {
            "refresh": self.run_refresh,
            "cleanup": self.run_cleanup,
            "watch": self.run_watch,
            "rebalance": self.run_rebalance_due,
        }
        interval = {
            "refresh": self.settings.refresh_interval_s,
            "cleanup": self.settings.cleanup_interval_s,
            "watch": self.settings.job_watch_interval_s,
            "rebalance": self.settings.rebalance_check_interval_s,
        }
        due = {name: time.monotonic() + every for name, every in interval.items()}
        due["rebalance"] = time.monotonic() + min(REBALANCE_FIRST_DELAY_S, interval["rebalance"])
        if listings_sync_enabled(self.settings):
            runs["listings_sync"] = self.run_listings_sync
            interval["listings_sync"] = self.settings.listings_sync_interval_s
            due["listings_sync"] = time.monotonic() + await self._first_listings_sync_in()
        while True:
            name = min(due, key=due.__getitem__)
            if not await self._pause(max(0.0, due[name] - time.monotonic())):
                return
            due[name] = time.monotonic() + interval[name]
            try:
                await runs[name]()
            except Exception:
                logger.exception("periodic %s failed; next run in %d s", name, interval[name])

    async def _resume(self) -> None:
        if not await self._pause(RESUME_DELAY_S):
            return
        try:
            for job in await batches.unfinished(self.env, created_before=self.started_at):
                await self.submit(job.job_id, job.owner_id, job.symbols, job.force_refresh)
                logger.info("resumed job %s (%d symbols left)", job.job_id, len(job.symbols))
        except Exception:
            logger.exception("could not resume unfinished jobs")

    # --- health -------------------------------------------------------------------------------------------------
    async def health(self) -> dict[str, Any]:
        if self.embedded:
            return self._embedded_health()
        assert self.redis is not None
        broker: dict[str, Any] = {"kind": "redis", "mode": "distributed", "namespace": self.namespace}
        try:
            with anyio.fail_after(3):
                await self.redis.ping()
                entries = await self.redis.hgetall(workers_key(self.namespace))
                pipe = self.redis.pipeline(transaction=False)
                for queue in QUEUES:
                    pipe.llen(f"{self.namespace}:{queue}")
                    pipe.hlen(f"{self.namespace}:{queue}.msgs")
                    pipe.hlen(f"{self.namespace}:{dq_name(queue)}.msgs")
                sizes = await pipe.execute()
        except (RedisError, TimeoutError) as exc:
            return {
                "broker": {**broker, "ok": False, "error": f"Redis unreachable ({type(exc).__name__})"},
                "workers": None,
                "queues": None,
            }
        alive, dead, prune = read_workers(entries, dead_after_s=self.settings.worker_heartbeat_timeout_s)
        if prune:
            try:
                await self.redis.hdel(workers_key(self.namespace), *prune)
            except RedisError:
                pass
        queues = {}
        for i, queue in enumerate(QUEUES):
            ready, stored, delayed = sizes[3 * i : 3 * i + 3]
            queues[queue] = {"ready": ready, "delayed": delayed, "in_progress": max(0, stored - ready)}
        return {
            "broker": {**broker, "ok": True},
            "workers": {
                "alive": len(alive),
                "dead": len(dead),
                "threads": sum(w["threads"] for w in alive),
                "busy": sum(w["busy"] for w in alive),
                "processes": alive + dead,
            },
            "queues": queues,
        }

    def _embedded_health(self) -> dict[str, Any]:
        queues = {}
        for queue in QUEUES:
            stub_queues = self.broker.queues
            queues[queue] = {
                "ready": stub_queues[queue].qsize(),
                "delayed": stub_queues[dq_name(queue)].qsize(),
                "in_progress": self.heartbeat.busy,
            }
        running = self._worker is not None
        return {
            "broker": {
                "kind": "stub",
                "mode": "embedded",
                "ok": True,
                "note": "in-process queue: jobs run inside this server; unfinished ones resume on restart",
            },
            "workers": {
                "alive": 1 if running else 0,
                "dead": 0,
                "threads": self.settings.embedded_worker_threads if running else 0,
                "busy": self.heartbeat.busy,
                "processes": [],
                "note": None if running else "the in-process worker starts with the first job",
            },
            "queues": queues,
        }

    # --- shutdown -----------------------------------------------------------------------------------------------
    async def aclose(self) -> None:
        if self._worker is not None:
            worker, self._worker = self._worker, None
            assert self.bridge is not None
            # Worker.stop lets each thread finish its message; those run on this loop, so stop from a thread while
            # the loop keeps serving them. Past the grace period the batches still running are cancelled: their
            # symbols stay queued in the store and resume on the next start.
            stopped = threading.Event()

            def stop() -> None:
                try:
                    worker.stop(60_000)
                finally:
                    stopped.set()

            with anyio.move_on_after(CLOSE_GRACE_S):
                await anyio.to_thread.run_sync(stop, abandon_on_cancel=True)
            if not stopped.is_set():
                self.bridge.cancel_all()
                await anyio.to_thread.run_sync(stopped.wait, CLOSE_GRACE_S)
        self.broker.close()
        if isinstance(self.broker, RedisBroker):  # distributed: its Redis client (core/redis.py) is ours to close
            self.broker.client.close()
        if self.redis is not None:
            await self.redis.aclose()


@asynccontextmanager
async def open_job_runtime(state: AppState) -> AsyncIterator[JobRuntime]:
    """The runtime for an AppState (core/wiring.py, opened by server/lifespan.py); closed with it."""
    settings = state.settings
    embedded = settings.redis_url is None
    sessions, admin_engine = state.sessions, None
    if settings.admin_sqlalchemy_url != settings.sqlalchemy_url:
        # Periodic work crosses owners: it runs as the role that owns the tables (like the workers do).
        admin_engine = make_engine(settings.admin_sqlalchemy_url)
        sessions = make_sessionmaker(admin_engine)
    env = JobEnv(
        JobConfig.from_settings(settings),
        sessions,
        state.validation,
        scoped=state.engine.dialect.name == "postgresql",
        limits=state.limits,
    )
    try:
        async with anyio.create_task_group() as tg:
            runtime = JobRuntime(settings, embedded=embedded, env=env, tg=tg)
            if runtime.live is not None:
                env.live = runtime.live
            if embedded:
                tg.start_soon(runtime._periodic)
                tg.start_soon(runtime._resume)
            try:
                yield runtime
            finally:
                runtime.closing.set()
                with anyio.CancelScope(shield=True):
                    await runtime.aclose()
                # Background steps stop at their next pause; one in the middle of a long step (a refresh run) is
                # cancelled after the grace period.
                tg.cancel_scope.deadline = anyio.current_time() + CLOSE_GRACE_S
    finally:
        if admin_engine is not None:
            await admin_engine.dispose()
