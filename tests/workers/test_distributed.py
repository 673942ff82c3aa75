"""Distributed mode for real: the machine's Redis, `universe-mcp worker` processes, a shared SQLite store, the MCP
server in this process queueing jobs through its RedisBroker."""

from __future__ import annotations

import time
import uuid

import anyio
import pytest
from mcp import Client
from sqlalchemy import func, select

from server.app import build_server
from storage.models import Asset, ValidationJob, ValidationJobItem
from tests.conftest import Call
from tests.support.servers import run_command
from workers.live import job_key
from workers.scheduler import PeriodicLock, build_scheduler

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def syms(n: int) -> list[str]:
    return [f"SYM{i:05d}" for i in range(1, n + 1)]


async def poll(call: Call, job_id: str) -> dict:
    return await call.ok("get_job_status", job_id=job_id)


@pytest.mark.parametrize("store_settings", ["sqlite", "postgres"], indirect=True)
async def test_a_worker_killed_mid_job_is_replaced_and_every_symbol_is_accounted_for_once(
    make_settings, worker_settings, workers
):
    # 0.1 s per provider answer, 2 threads, 20 symbols per batch: the job takes a few seconds, long enough to kill
    # its worker in the middle. Every 50th provider call is rate limited (retry-after 0.2 s): retries ride the
    # broker's delay queue too.
    workers.env |= {
        "UNIVERSE_MCP_FAKE_PROVIDER_LATENCY_S": "0.1",
        "UNIVERSE_MCP_FAKE_PROVIDER_RATE_LIMIT_EVERY": "50",
        "UNIVERSE_MCP_FAKE_PROVIDER_RETRY_AFTER_S": "0.2",
    }
    first = workers.start(threads=2)
    server = build_server(make_settings(**worker_settings))
    async with Client(server) as client:
        call = Call(client)
        health = await call.ok("get_service_health")
        assert health["mode"] == "distributed" and health["workers"]["alive"] == 1

        # force_refresh: every symbol goes to the provider, so validating one again would show in the store.
        job = await call.ok("start_bulk_validation", symbols=syms(500), force_refresh=True)
        job_id = job["job_id"]
        with anyio.fail_after(60):
            while (await poll(call, job_id))["counts"]["processed"] < 100:  # noqa: ASYNC110
                await anyio.sleep(0.05)
        workers.kill(first)
        at_kill = await poll(call, job_id)
        assert at_kill["status"] == "running" and at_kill["counts"]["processed"] < 500, at_kill["counts"]

        # The dead worker's heartbeat ages out: health reports it dead, and no live worker.
        with anyio.fail_after(60):  # hang detectors, not speed bounds, here and below
            while True:
                health = await call("get_service_health")
                workers_now = health["data"]["workers"]
                if workers_now["dead"] >= 1 and workers_now["alive"] == 0:
                    break
                await anyio.sleep(0.2)
        assert health["data"]["status"] == "degraded"
        assert any("stopped sending heartbeats" in p for p in health["data"]["problems"])
        assert any("no live worker" in p for p in health["data"]["problems"])
        progress_without_workers = (await poll(call, job_id))["counts"]["processed"]
        assert progress_without_workers < 500

        workers.start(threads=2)  # the replacement; the dead worker's unacknowledged batches come back to the queue
        # Completing at all proves the recovery: the dead worker's batches came back once its heartbeat timed out
        # (a few seconds here; dramatiq's default of 60 s would trip this hang detector).
        with anyio.fail_after(60):
            while (done := await poll(call, job_id))["status"] != "completed":  # noqa: ASYNC110
                await anyio.sleep(0.1)

        assert done["counts"] == {
            "total": 500,
            "processed": 500,
            "valid": 500,
            "invalid": 0,
            "pending": 0,
            "error": 0,
            "cancelled": 0,
            "queued": 0,
            "retrying": 0,
        }, done["counts"]
        # Exactly once: one item per symbol, each settled once, and the job's durable counters agree with them.
        state = server.app_state
        async with state.unit_of_work(owner_id=state.local_caller.owner_id) as session:
            jid = uuid.UUID(job_id)
            rows = (
                await session.execute(
                    select(
                        ValidationJobItem.symbol,
                        ValidationJobItem.status,
                        ValidationJobItem.finished_at,
                        Asset.last_validated_at,
                    )
                    .join(Asset, Asset.symbol == ValidationJobItem.symbol)
                    .where(ValidationJobItem.job_id == jid)
                )
            ).all()
            job_row = await session.scalar(select(ValidationJob).where(ValidationJob.id == jid))
            retried = await session.scalar(
                select(func.count())
                .select_from(ValidationJobItem)
                .where(ValidationJobItem.job_id == jid, ValidationJobItem.attempts > 1)
            )
        assert sorted(r.symbol for r in rows) == syms(500) and {r.status for r in rows} == {"valid"}
        assert (job_row.processed, job_row.valid_count, job_row.total) == (500, 500, 500)
        assert retried >= 1, "the simulated rate limits were retried"
        # No symbol was validated twice: a verdict is recorded in the transaction that settles its item, so a
        # symbol validated again after it settled (a redelivered or retried batch re-reading settled items) would
        # have a verdict newer than its outcome.
        again = [r.symbol for r in rows if r.last_validated_at > r.finished_at]
        assert again == [], f"validated again after their outcome was recorded: {again[:10]}"
        # The live counters in Redis agree.
        live = workers.client().hgetall(job_key(worker_settings["broker_namespace"], job_id))
        assert live["status"] == "completed" and live["processed"] == "500" and live["valid"] == "500"
        # The replacement worker is alive; the killed one is still reported dead (until it ages out).
        health = await call.ok("get_service_health")
        assert health["workers"]["alive"] == 1 and health["workers"]["dead"] == 1
    log = first.tail(200)
    assert "Worker process is ready" in log, log


async def test_health_without_workers_and_the_scheduler_lock(make_settings, worker_settings, workers):
    settings = make_settings(**worker_settings, refresh_interval_s=3600, cleanup_interval_s=3600)
    async with Client(build_server(settings)) as client:
        health = await Call(client).ok("get_service_health")
        assert health["broker"]["ok"] and health["workers"]["alive"] == 0 and health["status"] == "degraded"
        assert set(health["queues"]) == {"validation", "background"}
        job = await Call(client).ok("start_bulk_validation", symbols=syms(40))
        health = await Call(client).ok("get_service_health")
        assert health["queues"]["validation"]["ready"] == 2  # two batches wait for a worker
        assert job["status"] == "queued"

    # Two schedulers: each periodic run goes out once.
    _, ticks_a = build_scheduler(settings, blocking=False)
    _, ticks_b = build_scheduler(settings, blocking=False)
    assert [ticks_a["refresh"](), ticks_b["refresh"](), ticks_b["cleanup"](), ticks_a["cleanup"]()] == [
        True,
        False,
        True,
        False,
    ]
    client = workers.client()
    ns = worker_settings["broker_namespace"]
    assert client.llen(f"{ns}:background") == 2
    lock = PeriodicLock(client, ns)
    now = time.time()
    assert lock.acquire("x", 60, now=now) and not lock.acquire("x", 60, now=now)
    assert lock.acquire("x", 60, now=now + 60)  # the next slot

    # The CLI: `universe-mcp scheduler --once` (same settings) finds both slots taken and sends only the job watch
    # and the rebalance check, whose slots nobody had taken yet.
    workers.env |= {"UNIVERSE_MCP_REFRESH_INTERVAL_S": "3600", "UNIVERSE_MCP_CLEANUP_INTERVAL_S": "3600"}
    out = run_command(["scheduler", "--once"], env=workers.env)
    assert out.returncode == 0, out.stderr
    assert client.llen(f"{ns}:background") == 4
    assert not ticks_a["watch"]() and not ticks_a["rebalance"]()  # those runs went out once

    # A worker then runs what is queued: the periodic messages and the two batches.
    workers.start(threads=2)
    async with Client(build_server(settings)) as client2:
        with anyio.fail_after(60):
            while (await Call(client2).ok("get_job_status", job_id=job["job_id"]))["status"] != "completed":  # noqa: ASYNC110
                await anyio.sleep(0.1)
    with anyio.fail_after(60):
        while client.llen(f"{ns}:background") or client.hlen(f"{ns}:background.msgs"):  # noqa: ASYNC110
            await anyio.sleep(0.1)


async def test_a_job_whose_batches_a_restarted_redis_lost_is_resumed_and_finishes(
    throwaway_redis, make_settings, worker_settings, workers
):  # throwaway_redis first: it must outlive the workers, whose clean-up talks to it
    """Redis without persistence stops in the middle of a job and comes back empty: the job's remaining batches are
    gone. The job watch (sent by the scheduler, run by a worker) sees the job's queued-batches marker missing,
    queues the remaining symbols again and says so in the job's message; the job finishes with every symbol
    settled once."""
    url = throwaway_redis.url
    workers.redis_url = url
    workers.env |= {
        "UNIVERSE_MCP_REDIS_URL": url,
        "UNIVERSE_MCP_FAKE_PROVIDER_LATENCY_S": "0.1",
        "UNIVERSE_MCP_JOB_WATCH_INTERVAL_S": "1",
    }
    settings = make_settings(**(worker_settings | {"redis_url": url, "job_watch_interval_s": 1}))
    workers.start(threads=2)
    server = build_server(settings)
    async with Client(server) as client:
        call = Call(client)
        job_id = (await call.ok("start_bulk_validation", symbols=syms(400), force_refresh=True))["job_id"]
        with anyio.fail_after(60):
            while (await poll(call, job_id))["counts"]["processed"] < 40:  # noqa: ASYNC110
                await anyio.sleep(0.05)
        throwaway_redis.stop()  # no persistence: the queue, the marker and the live counters are gone
        throwaway_redis.start()

        # The worker finishes what it had in hand, then nothing more happens: the job is stuck as running.
        redis_client = workers.client()
        ns = worker_settings["broker_namespace"]
        with anyio.fail_after(60):
            last, steady = -1, 0
            while steady < 10:  # the count has not moved for a second
                now = (await poll(call, job_id))["counts"]["processed"]
                steady, last = (steady + 1, last) if now == last else (0, now)
                await anyio.sleep(0.1)
        stuck = await poll(call, job_id)
        assert stuck["status"] == "running" and stuck["counts"]["queued"] > 0, stuck["counts"]
        assert redis_client.llen(f"{ns}:validation") == 0 and redis_client.hlen(f"{ns}:validation.msgs") == 0

        # One run of the watch, as `universe-mcp scheduler` sends it.
        _, ticks = build_scheduler(settings, blocking=False)
        assert ticks["watch"]()
        with anyio.fail_after(60):
            while (done := await poll(call, job_id))["status"] != "completed":  # noqa: ASYNC110
                await anyio.sleep(0.1)
        assert (done["counts"]["valid"], done["counts"]["processed"]) == (400, 400), done["counts"]
        assert done["message"].startswith("Validated 400 of 400")
        state = server.app_state
        async with state.unit_of_work(owner_id=state.local_caller.owner_id) as session:
            attempts = (
                await session.execute(
                    select(ValidationJobItem.attempts, func.count())
                    .where(ValidationJobItem.job_id == uuid.UUID(job_id))
                    .group_by(ValidationJobItem.attempts)
                )
            ).all()
        assert dict(attempts) == {1: 400}, attempts  # each symbol settled once
    log = "\n".join(w.tail(400) for w in workers.started)
    assert f"job {job_id} resumed" in log, log[-3000:]


@pytest.mark.parametrize("store_settings", ["sqlite", "postgres"], indirect=True)
async def test_a_worker_rebalances_every_owners_due_universe_sent_by_the_scheduler(
    make_settings, worker_settings, workers
):
    """The scheduler's maintenance.rebalance_due message, run by a real worker (on PostgreSQL as the tables' owner,
    while the server's role sees one owner at a time): each owner's due universe gets its scheduled run."""
    from datetime import timedelta

    from sqlalchemy import update

    from server.lifespan import open_app_state
    from services.rebalancing import DynamicUniverses
    from services.schemas import Caller
    from storage.db import utcnow
    from storage.models import RebalanceRun, Universe
    from storage.repositories.users import get_or_create_user

    settings = make_settings(**worker_settings)
    async with open_app_state(settings) as state:
        async with state.unit_of_work() as session:
            owners = [state.local_caller.owner_id, (await get_or_create_user(session, "bob")).id]
        universes = []
        for owner in owners:
            async with state.unit_of_work(owner) as session:
                summary, _ = await DynamicUniverses(session, Caller(owner_id=owner, name="test")).create(
                    "Utilities", {"field": "sector", "op": "eq", "value": "Utilities"}, rebalance="daily"
                )
                await session.execute(
                    update(Universe)
                    .where(Universe.id == uuid.UUID(summary.id))
                    .values(next_rebalance_at=utcnow() - timedelta(days=1))
                )
            universes.append((owner, uuid.UUID(summary.id)))

        _, ticks = build_scheduler(settings, blocking=False)
        assert ticks["rebalance"]()
        workers.start(threads=2)

        async def triggers() -> list[list[str]]:
            out = []
            for owner, uid in universes:
                async with state.unit_of_work(owner) as session:
                    rows = await session.scalars(
                        select(RebalanceRun.trigger)
                        .where(RebalanceRun.universe_id == uid)
                        .order_by(RebalanceRun.started_at)
                    )
                    out.append(list(rows.all()))
            return out

        with anyio.fail_after(60):
            while await triggers() != [["create", "scheduled"]] * 2:  # noqa: ASYNC110
                await anyio.sleep(0.1)
