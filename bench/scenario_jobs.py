"""Scenario 4: a 10,000-symbol bulk validation job on real `universe-mcp worker` processes, Redis broker.

The provider is the product's fake (settings ``provider=fake``, 20 ms per answer), so every worker process uses it
without code changes. For one and then two worker processes (``universe-mcp worker --processes N``, 8 threads
each): ``start_bulk_validation`` (force_refresh, fresh symbols, so no cached verdict helps) through the product's
stdio server, timed until the job's live counters in Redis say completed, and checked to have every symbol valid.

The floor (issue 17) is the in-flight bound: symbols x latency / (processes x threads x in-flight calls per
thread). Each worker thread validates a batch with up to 8 provider calls in flight (ValidationConfig.concurrency),
so threads alone understate what the workers could reach by 8x. Target: >= 80 % of the in-flight bound. The
fraction of the older, threads-only ideal is reported in the notes. Redis: the machine's on 127.0.0.1:6379
(database 12, a private key namespace, removed afterwards), else a throwaway redis-server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, cast

from bench.common import ROOT, Check, Config, Row, child_env, free_port, fresh_dir, spread, stdio_client

if TYPE_CHECKING:
    from mcp import Client
    from redis.asyncio import Redis as AsyncRedis

THREADS = 8
IN_FLIGHT_PER_THREAD = 8  # services/validation.py ValidationConfig.concurrency
TARGET_FRACTION = 0.8


@contextlib.contextmanager
def redis_url(work: Path) -> Iterator[str]:
    import redis

    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=0.3).ping()
        yield "redis://127.0.0.1:6379/12"
        return
    except redis.RedisError:
        pass
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("no Redis on 127.0.0.1:6379 and no redis-server binary to start one")
    port = free_port()
    work.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(work)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(host="127.0.0.1", port=port).ping()
                break
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def jobs_available() -> str | None:
    """Why the scenario cannot run in this checkout, or None."""
    for module in ("tools/jobs.py", "workers/entry.py", "workers/live.py", "workers/heartbeat.py"):
        if not (ROOT / module).exists():
            return f"{module} is missing (the jobs toolset has not landed)"
    return None


async def wait_workers(client: AsyncRedis, namespace: str, count: int, timeout_s: float = 60) -> None:
    from workers.heartbeat import read_workers, workers_key

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        entries = cast(dict[str, str], await client.hgetall(workers_key(namespace)))  # the client decodes replies
        alive, _, _ = read_workers(entries, dead_after_s=5)
        if len(alive) >= count:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{count} worker process(es) did not report in {timeout_s:g} s")


async def timed_job(mcp: Client, client: AsyncRedis, namespace: str, symbols: list[str]) -> float:
    from workers.live import job_key

    started = time.perf_counter()
    result = await mcp.call_tool("start_bulk_validation", {"symbols": symbols, "force_refresh": True})
    if result.is_error:
        raise RuntimeError(f"start_bulk_validation failed: {result.structured_content}")
    key = job_key(namespace, result.structured_content["data"]["job_id"])
    deadline = time.monotonic() + 600
    while await client.hget(key, "status") != "completed":
        if time.monotonic() > deadline:
            raise RuntimeError(f"job did not complete: {await client.hgetall(key)}")
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - started
    counters = await client.hgetall(key)
    if counters.get("valid") != str(len(symbols)):
        raise RuntimeError(f"not every symbol came back valid: {counters}")
    return elapsed


async def run(cfg: Config, _ctx: dict) -> list[Row]:
    import redis.asyncio as aioredis

    missing = jobs_available()
    if missing:
        return [
            Row(
                scenario="4",
                metric="bulk validation job",
                target=f">= {TARGET_FRACTION:.0%} of the in-flight bound",
                note=f"PENDING: {missing}",
            )
        ]
    work = fresh_dir(cfg.work_dir / "s4")
    runs = 1 if cfg.quick else 2
    per_job = cfg.job_symbols
    rows: list[Row] = []
    with redis_url(work / "redis") as url:
        namespace = f"umcp-bench-{uuid.uuid4().hex[:8]}"
        total = (per_job * runs + 200) * 2 + 10
        width = max(5, len(str(total)))
        settings = {
            "UNIVERSE_MCP_REDIS_URL": url,
            "UNIVERSE_MCP_BROKER_NAMESPACE": namespace,
            "UNIVERSE_MCP_PROVIDER": "fake",
            "UNIVERSE_MCP_FAKE_PROVIDER_LATENCY_S": str(cfg.job_latency_s),
            "UNIVERSE_MCP_FAKE_PROVIDER_SYMBOLS": str(total),
            "UNIVERSE_MCP_SEED_CATALOG": "0",
            "UNIVERSE_MCP_MAX_ACTIVE_JOBS": "100",
            "UNIVERSE_MCP_WORKER_THREADS": str(THREADS),
            "UNIVERSE_MCP_WORKER_HEARTBEAT_TIMEOUT_S": "5",
            "UNIVERSE_MCP_MAX_BULK_SYMBOLS": str(max(per_job, 10_000)),
        }
        env = child_env(work / "data", **settings)
        client = aioredis.from_url(url, decode_responses=True)
        next_symbol = 1

        def fresh(n: int) -> list[str]:
            nonlocal next_symbol
            out = [f"SYM{i:0{width}d}" for i in range(next_symbol, next_symbol + n)]
            next_symbol += n
            return out

        try:
            async with stdio_client(["-m", "server", "serve", "--transport", "stdio"], env, work / "server.log") as mcp:
                for processes in (1, 2):
                    log = (work / f"worker-{processes}.log").open("w")
                    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, waited for below
                        [
                            sys.executable,
                            "-m",
                            "server",
                            "worker",
                            "--processes",
                            str(processes),
                            "--threads",
                            str(THREADS),
                        ],
                        cwd=ROOT,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                    try:
                        await wait_workers(client, namespace, processes)
                        await timed_job(mcp, client, namespace, fresh(200))  # warm-up: imports, engines
                        times = [await timed_job(mcp, client, namespace, fresh(per_job)) for _ in range(runs)]
                    finally:
                        proc.send_signal(signal.SIGTERM)
                        try:
                            await asyncio.to_thread(proc.wait, 60)
                        except subprocess.TimeoutExpired:
                            os.killpg(proc.pid, signal.SIGKILL)
                        log.close()
                    rows.append(job_row(processes, per_job, cfg.job_latency_s, times))
        finally:
            keys = [k async for k in client.scan_iter(f"{namespace}:*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()
    return rows


def job_row(processes: int, symbols: int, latency_s: float, times: list[float]) -> Row:
    """The fraction of the in-flight bound (symbols x latency / (processes x threads x in-flight per thread))
    reached, median of the runs, with their spread; the threads-only ideal is in the notes."""
    median = statistics.median(times)
    threads_ideal = symbols * latency_s / (processes * THREADS)
    in_flight = processes * THREADS * IN_FLIGHT_PER_THREAD
    bound = symbols * latency_s / in_flight
    fractions = [bound / t for t in times]
    fraction = statistics.median(fractions)
    return Row(
        scenario="4",
        metric=f"bulk validation, {symbols:,} symbols, 20 ms provider, {processes} worker process(es)",
        value=round(fraction * 100, 1),
        unit="% of the in-flight bound",
        target=f">= {TARGET_FRACTION:.0%} of the in-flight bound",
        checks=[Check("fraction of the in-flight bound", fraction, ">=", TARGET_FRACTION)],
        floor=f"in-flight bound ({processes} x {THREADS} threads x {IN_FLIGHT_PER_THREAD} calls)",
        note=f"median {median:.2f} s = {symbols / median:,.0f} symbols/s; in-flight bound {bound:.2f} s "
        f"({in_flight} calls in flight); {threads_ideal / median:.0%} of the threads-only ideal "
        f"({threads_ideal:.2f} s)",
        extra={
            "seconds": [round(t, 3) for t in times],
            "median_s": round(median, 3),
            "fraction_spread": spread(fractions),
            "in_flight_bound_s": round(bound, 3),
            "threads_only_ideal_s": round(threads_ideal, 3),
            "processes": processes,
            "threads": THREADS,
            "in_flight_per_thread": IN_FLIGHT_PER_THREAD,
            "symbols_per_s": round(symbols / median, 1),
        },
    )
