"""Real `universe-mcp worker` processes against the machine's Redis and a shared SQLite store."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
import redis

from tests.support.servers import ServerProcess, spawn
from tests.workers.stores import postgres_store
from workers.heartbeat import read_workers, workers_key


@dataclass
class Workers:
    """Starts worker processes with the given settings (as UNIVERSE_MCP_* variables) and always stops them."""

    env: dict[str, str]
    logs: Path
    redis_url: str
    namespace: str
    started: list[ServerProcess] = field(default_factory=list)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, decode_responses=True, socket_timeout=2)

    def alive(self) -> list[dict[str, Any]]:
        entries = cast(dict[str, str], self.client().hgetall(workers_key(self.namespace)))  # decode_responses
        return read_workers(entries, dead_after_s=float(self.env["UNIVERSE_MCP_WORKER_HEARTBEAT_TIMEOUT_S"]))[0]

    def start(self, threads: int = 2, timeout_s: float = 20.0) -> ServerProcess:
        before = {w["pid"] for w in self.alive()}
        worker = spawn(
            ["worker", "--processes", "1", "--threads", str(threads)],
            env=self.env,
            log=self.logs / f"worker-{len(self.started)}.log",
            # Ready once its heartbeat is in Redis.
            ready=lambda _: bool({w["pid"] for w in self.alive()} - before),
            timeout_s=timeout_s,
            own_group=True,  # dramatiq's master and its child: stopped and killed together
            name="worker",
        )
        self.started.append(worker)
        return worker

    def kill(self, worker: ServerProcess) -> None:
        """SIGKILL the whole worker (dramatiq's master and its child), as a crash or an OOM kill would."""
        worker.kill()

    def stop_all(self) -> None:
        for worker in self.started:
            worker.terminate()  # the master forwards it once: a graceful stop
        for worker in self.started:
            worker.wait(15)


@pytest.fixture
async def store_settings(request: pytest.FixtureRequest) -> AsyncIterator[dict[str, str]]:
    """The store the server and the workers share: SQLite by default; parametrize indirectly with "postgres" for
    the distributed layout of production (the server as a non-owner role under row-level security, the workers
    and migrations as the owner)."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield {}
        return
    async with postgres_store(request.getfixturevalue("postgres_url")) as overrides:
        yield overrides


@pytest.fixture
def worker_settings(redis_url: str, store_settings: dict[str, str]) -> dict[str, Any]:
    """Settings shared by the in-test server and the worker processes (a fresh broker namespace per test)."""
    return {
        **store_settings,
        "redis_url": redis_url,
        "broker_namespace": f"umcp-test-{uuid.uuid4().hex[:10]}",
        "worker_heartbeat_timeout_s": 3,
        "broker_maintenance_chance": 1_000_000,
        "job_batch_size": 20,
        "job_retry_base_s": 0.1,
        "job_auto_delay_s": 600,
    }


@pytest.fixture
def workers(worker_settings: dict[str, Any], make_settings: Callable[..., Any], tmp_path: Path) -> Iterator[Workers]:
    settings = make_settings(**worker_settings)  # creates the shared store directory
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNIVERSE_MCP_")}
    env.update({f"UNIVERSE_MCP_{k.upper()}": str(v) for k, v in worker_settings.items()})
    env.update(
        {
            "UNIVERSE_MCP_DATA_DIR": str(settings.data_dir),
            "UNIVERSE_MCP_OFFLINE": "1",
            "UNIVERSE_MCP_SEED_CATALOG": "0",
            "UNIVERSE_MCP_LOG_LEVEL": "INFO",
            "UNIVERSE_MCP_PROVIDER": "fake",
            "PYTHONUNBUFFERED": "1",
        }
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    pool = Workers(env, logs, worker_settings["redis_url"], worker_settings["broker_namespace"])
    try:
        yield pool
    finally:
        pool.stop_all()
        client = pool.client()
        keys = list(client.scan_iter(f"{pool.namespace}:*"))
        if keys:
            client.delete(*keys)
