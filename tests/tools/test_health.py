"""get_service_health in embedded mode, with providers in every state; distributed mode (a dead worker, a dead
broker) is covered against real Redis and real worker processes in tests/workers/test_distributed.py."""

from __future__ import annotations

import json
import time

import anyio
import pytest
import redis
from mcp import Client

from providers.catalog import CatalogProvider
from providers.fake import FakeProvider
from providers.guard import CircuitBreaker, GuardedProvider
from server.app import build_server
from tests.conftest import Call
from workers.heartbeat import workers_key

pytestmark = pytest.mark.anyio


async def test_embedded_health_reports_store_cache_worker_queues_and_unconfigured_providers(call):
    envelope = await call("get_service_health")
    data = envelope["data"]
    assert data["status"] == "ok" and data["mode"] == "embedded" and data["problems"] == []
    # latency_ms is measured (a real query takes more than the 1 us it is rounded to), not a placeholder 0.
    assert data["store"]["ok"] and data["store"]["backend"] == "sqlite" and data["store"]["latency_ms"] > 0
    assert data["cache"]["backend"] and data["cache"]["state"] == "up"
    broker = dict(data["broker"])
    assert broker.pop("note").startswith("in-process queue")
    assert broker == {"kind": "stub", "mode": "embedded", "ok": True}
    # The in-process worker starts with the first job.
    assert data["workers"]["alive"] == 0 and "first job" in data["workers"]["note"]
    assert data["queues"] == {
        "validation": {"ready": 0, "delayed": 0, "in_progress": 0},
        "background": {"ready": 0, "delayed": 0, "in_progress": 0},
    }
    by = {p["provider"]: p for p in data["providers"]}
    assert by["catalog"]["state"] == "up"
    assert by["yahoo"] == {"provider": "yahoo", "state": "disabled", "detail": {"reason": "offline mode"}}
    assert by["alpha_vantage"]["state"] == "not_configured"
    assert envelope["metadata"]["status"] == "ok" and envelope["message"] == "Service ok."

    await call.ok("start_bulk_validation", symbols=["AAPL", "MSFT"], wait=True)
    workers = (await call.ok("get_service_health"))["workers"]
    assert workers["alive"] == 1 and workers["threads"] == 4 and workers["busy"] == 0


async def test_a_provider_whose_circuit_opened_makes_the_service_degraded(make_settings):
    broken = GuardedProvider(FakeProvider(name="yahoo", fail_rate=1.0), CircuitBreaker("yahoo", fail_max=1))
    async with Client(build_server(make_settings(), providers=[broken, CatalogProvider()])) as client:
        call = Call(client)
        await call.ok("validate_symbols", symbols=["NOTINCATALOG1"])
        data = await call.ok("get_service_health")
        by = {p["provider"]: p for p in data["providers"]}
        assert by["yahoo"]["state"] == "circuit_open" and by["yahoo"]["detail"]["consecutive_failures"] == 1
        assert data["status"] == "degraded" and "provider yahoo is circuit open" in data["problems"]


async def test_distributed_health_names_a_dead_worker_and_an_unreachable_broker(make_settings, redis_url):
    namespace = f"umcp-test-health-{time.time_ns()}"
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    now = time.time()
    client.hset(
        workers_key(namespace),
        mapping={
            "vm:1:aaa": json.dumps({"host": "vm", "pid": 1, "threads": 8, "busy": 3, "seen_at": now}),
            "vm:2:bbb": json.dumps({"host": "vm", "pid": 2, "threads": 8, "busy": 8, "seen_at": now - 60}),
        },
    )
    try:
        settings = make_settings(redis_url=redis_url, broker_namespace=namespace, worker_heartbeat_timeout_s=10)
        async with Client(build_server(settings)) as mcp:
            data = await Call(mcp).ok("get_service_health")
        assert data["mode"] == "distributed" and data["broker"]["ok"]
        assert (data["workers"]["alive"], data["workers"]["dead"], data["workers"]["busy"]) == (1, 1, 3)
        dead = next(w for w in data["workers"]["processes"] if w["pid"] == 2)
        assert dead["last_seen_s"] >= 59
        assert data["status"] == "degraded" and any("stopped sending heartbeats" in p for p in data["problems"])
    finally:
        client.delete(workers_key(namespace))

    # Nothing listens on port 1: the broker is reported unreachable, without leaking the URL, and the call answers.
    settings = make_settings(redis_url="redis://127.0.0.1:1/0", broker_namespace=namespace)
    async with Client(build_server(settings)) as mcp:
        with anyio.fail_after(60):  # a hang detector, not a speed bound
            envelope = await Call(mcp)("get_service_health")
    data = envelope["data"]
    assert data["broker"]["ok"] is False and data["workers"] is None and data["status"] == "degraded"
    # The refused connection itself is the answer: a client that kept retrying it would have been cut by the health
    # check's own 3 s deadline instead, and reported as a TimeoutError.
    assert data["broker"]["error"] == "Redis unreachable (ConnectionError)", data["broker"]
    assert "127.0.0.1:1" not in json.dumps(envelope)
    assert any("job broker is unreachable" in p for p in data["problems"])
