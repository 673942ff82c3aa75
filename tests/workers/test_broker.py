"""The broker factory and actors on a real StubBroker with a real in-process dramatiq Worker (no Redis needed)."""

from __future__ import annotations

import threading
import time

import anyio
import dramatiq
import pytest
from dramatiq import Worker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AsyncIO, CurrentMessage, Retries, TimeLimit

from workers.actors import declare_actors
from workers.broker import QUEUES, build_broker
from workers.heartbeat import WorkerHeartbeat, read_workers
from workers.runtime import LoopBridge


def test_embedded_broker_is_a_stub_with_the_stack_and_queues_and_leaves_the_global_broker_alone(make_settings):
    before = dramatiq.get_broker() if dramatiq.broker.global_broker is not None else None
    broker = build_broker(make_settings())
    assert isinstance(broker, StubBroker)
    kinds = [type(m) for m in broker.middleware]
    assert kinds.index(Retries) < kinds.index(CurrentMessage)  # CurrentMessage clears after Retries has read it
    assert any(isinstance(m, TimeLimit) for m in broker.middleware) and AsyncIO not in kinds
    assert set(QUEUES) <= broker.get_declared_queues()
    actors = declare_actors(broker, run=lambda coro: coro.close(), env=None, settings=make_settings())
    assert broker.get_actor("validation.validate_batch") is actors.validate_batch
    assert {a.actor_name for a in (actors.revalidate, actors.refresh, actors.cleanup)} == {
        "validation.revalidate",
        "maintenance.refresh",
        "maintenance.cleanup",
    }
    assert actors.validate_batch.broker is broker and actors.validate_batch.queue_name == "validation"
    assert (dramatiq.get_broker() if dramatiq.broker.global_broker is not None else None) is before


def test_redis_broker_gets_an_explicit_client_and_fast_dead_worker_recovery(make_settings):
    settings = make_settings(
        redis_url="redis://127.0.0.1:1/0",
        worker_heartbeat_timeout_s=3,
        broker_maintenance_chance=1_000_000,
        broker_namespace="ns-x",
    )
    broker = build_broker(settings)  # builds without connecting: nothing listens on port 1
    assert isinstance(broker, RedisBroker)
    assert broker.heartbeat_timeout == 3000 and broker.maintenance_chance == 1_000_000 and broker.namespace == "ns-x"
    kwargs = broker.client.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == 5 and kwargs["socket_connect_timeout"] == 1
    assert broker.client.get_retry() is not None and broker.client.get_retry()._retries == 3


def test_stub_broker_worker_runs_an_actor_retries_it_and_fires_the_time_limit(make_settings):
    broker = build_broker(make_settings())
    calls: list[int] = []
    limited: list[str] = []

    def flaky(n: int) -> None:
        message = dramatiq.middleware.CurrentMessage.get_current_message()
        assert message is not None  # the broker's CurrentMessage middleware sets it for every actor call
        calls.append(message.options.get("retries", 0))
        if len(calls) < 3:
            raise dramatiq.Retry(delay=20)

    slept: list[int] = []

    def slow() -> None:
        try:
            for _ in range(100):  # short sleeps: an async exception cannot interrupt one long C-level sleep
                time.sleep(0.05)
                slept.append(1)
        except dramatiq.middleware.TimeLimitExceeded:
            limited.append("interrupted")
            raise

    flaky_actor = dramatiq.actor(flaky, broker=broker, actor_name="test.flaky", queue_name="validation")
    slow_actor = dramatiq.actor(
        slow, broker=broker, actor_name="test.slow", queue_name="background", time_limit=300, max_retries=0
    )
    worker = Worker(broker, worker_threads=2, worker_timeout=50)
    worker.start()
    try:
        flaky_actor.send(1)
        slow_actor.send()
        broker.join("validation", timeout=60_000)  # a hang detector (ms), not a speed bound
        with pytest.raises(dramatiq.middleware.TimeLimitExceeded):
            broker.join("background", timeout=60_000)  # the Stub re-raises an actor's final failure
        worker.join()
        assert calls == [0, 1, 2]
        # process_boot was emitted: the time limit interrupted the 5 s of sleeps part-way, not after they finished.
        assert limited == ["interrupted"] and len(slept) < 100, len(slept)
    finally:
        worker.stop()


@pytest.mark.anyio
async def test_loop_bridge_runs_worker_thread_coroutines_on_the_servers_loop():
    import asyncio

    bridge = LoopBridge(asyncio.get_running_loop())
    loop_thread = threading.get_ident()
    seen: list[int] = []

    async def work() -> int:
        seen.append(threading.get_ident())
        await anyio.sleep(0.01)
        return 42

    assert await anyio.to_thread.run_sync(lambda: bridge.run_coroutine(work())) == 42
    assert seen == [loop_thread]

    async def forever() -> None:
        await anyio.sleep(30)

    async with anyio.create_task_group() as tg:
        results: list[BaseException] = []

        def blocked() -> None:
            try:
                bridge.run_coroutine(forever())
            except BaseException as exc:  # cancelled from the loop side (the runtime's shutdown)
                results.append(exc)

        tg.start_soon(anyio.to_thread.run_sync, blocked)
        await anyio.sleep(0.1)
        assert len(bridge.tasks) == 1
        bridge.cancel_all()
    assert results and not bridge.tasks


def test_heartbeat_counts_busy_threads_and_ages_out_dead_workers():
    beat = WorkerHeartbeat()
    beat.before_process_message(None, None)
    assert beat.busy == 1
    beat.after_process_message(None, None)
    beat.after_skip_message(None, None)  # skipped before we saw it: never negative
    assert beat.busy == 0 and beat.processed == 1
    now = 1_000_000.0
    entries = {
        "a": '{"seen_at": %f, "threads": 4, "busy": 1}' % (now - 1),
        "b": '{"seen_at": %f, "threads": 4}' % (now - 30),
        "c": '{"seen_at": %f}' % (now - 7200),
        "d": "garbage",
    }
    alive, dead, prune = read_workers(entries, dead_after_s=10, now=now)
    assert [w["worker_id"] for w in alive] == ["a"] and alive[0]["busy"] == 1
    assert [w["worker_id"] for w in dead] == ["b"] and sorted(prune) == ["c", "d"]
