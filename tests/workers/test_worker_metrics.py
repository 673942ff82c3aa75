"""`universe-mcp worker` with worker_metrics_port: dramatiq's Prometheus middleware serves the message metrics and
the worker processes' own counters (multiprocess mode), and the worker logs in the server's format."""

from __future__ import annotations

import json
import time

import anyio
import httpx
import pytest
from mcp import Client
from prometheus_client.parser import text_string_to_metric_families

from server.app import build_server
from tests.conftest import Call
from tests.support.services import free_port

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.redis]


def samples(text: str) -> list:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


async def test_worker_metrics_and_log_lines(make_settings, worker_settings, workers):
    port = free_port()
    workers.env |= {
        "UNIVERSE_MCP_WORKER_METRICS_PORT": str(port),
        "UNIVERSE_MCP_LOG_FORMAT": "json",
        "UNIVERSE_MCP_FAKE_PROVIDER_LATENCY_S": "0.001",
    }
    worker = workers.start(threads=2)
    server = build_server(make_settings(**worker_settings))
    async with Client(server) as client:
        call = Call(client)
        # force_refresh: other tests leave these verdicts in the shared Redis cache; every symbol must reach the
        # provider here.
        symbols = [f"SYM{i:05d}" for i in range(1, 41)]
        job = await call.ok("start_bulk_validation", symbols=symbols, force_refresh=True)
        with anyio.fail_after(30):
            while (await call.ok("get_job_status", job_id=job["job_id"]))["status"] != "completed":  # noqa: ASYNC110
                await anyio.sleep(0.05)

    # The exposition server is a process of its own, started once the workers are up.
    deadline = time.monotonic() + 15
    while True:
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            if "universe_mcp_jobs_finished_total" in text:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"no worker metrics on port {port}:\n{worker.tail()}"
        await anyio.sleep(0.2)
    found = samples(text)
    messages = [s for s in found if s.name == "dramatiq_messages_total" and s.labels.get("queue_name") == "validation"]
    assert sum(s.value for s in messages) >= 2  # 40 symbols in batches of 20
    provider = [s for s in found if s.name == "universe_mcp_provider_calls_total" and s.labels["provider"] == "fake"]
    assert sum(s.value for s in provider) == 40
    finished = [s for s in found if s.name == "universe_mcp_jobs_finished_total" and s.labels["status"] == "completed"]
    assert sum(s.value for s in finished) == 1

    log = worker.log.read_text(errors="replace").splitlines()
    lines = [json.loads(line) for line in log if line.startswith("{")]
    jobs = [line for line in lines if line.get("event") == "job"]
    assert len(jobs) == 1 and jobs[0]["job_id"] == job["job_id"] and jobs[0]["outcome"] == "completed"
    assert not [line for line in log if line.startswith("[") and "] [PID " in line], "no dramatiq-format lines"
