"""Throughput of a bulk validation job on real `universe-mcp worker` processes (fake provider, real Redis).

    .venv/bin/python bench/jobs_throughput.py [--symbols 1000] [--latency 0.02] [--processes 1 2] [--threads 8]
        [--runs 3] [--redis redis://127.0.0.1:6379/13] [--database-url postgresql+asyncpg://...]
    .venv/bin/python bench/jobs_throughput.py --offline [--runs 3]

For each worker-process count: start `universe-mcp worker --processes N`, run a warm-up job, then time --runs jobs of
--symbols distinct symbols (force_refresh, so no cached verdict helps) from start_bulk_validation to the job's
completion, read from its live counters in Redis. Prints the median and the concurrency-bound ideal: every
provider call in flight at once that the configuration allows (processes x threads x 8 per batch), in batches.
The store is a fresh SQLite file unless --database-url names an (empty or migrated) PostgreSQL database.

--offline measures the embedded, offline layout instead (no Redis, no network: the offline catalog is the only
source), with the product's default job settings, in a fresh store per run: a 500-symbol job whose symbols the
catalog all knows, and a job over a 490-member universe of which 2 symbols the catalog does not know. Each is timed
from start_bulk_validation to the job's completion (read from get_job_status).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import cast

import redis
from mcp import Client

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.settings import Settings  # noqa: E402
from server.app import build_server  # noqa: E402
from workers.heartbeat import read_workers, workers_key  # noqa: E402
from workers.live import job_key  # noqa: E402

PER_BATCH_CONCURRENCY = 8  # ValidationConfig.concurrency: provider calls in flight per batch


def env_for(settings: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNIVERSE_MCP_")}
    env.update({f"UNIVERSE_MCP_{k.upper()}": v for k, v in settings.items()})
    return env


def wait_workers(client: redis.Redis, namespace: str, count: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        entries = cast(dict[str, str], client.hgetall(workers_key(namespace)))  # the client decodes (main)
        alive, _, _ = read_workers(entries, dead_after_s=5)
        if len(alive) >= count:
            return
        time.sleep(0.1)
    raise SystemExit(f"{count} worker process(es) did not come up")


async def timed_job(mcp: Client, client: redis.Redis, namespace: str, symbols: list[str]) -> float:
    started = time.perf_counter()
    result = await mcp.call_tool("start_bulk_validation", {"symbols": symbols, "force_refresh": True})
    job_id = result.structured_content["data"]["job_id"]
    key = job_key(namespace, job_id)
    while client.hget(key, "status") != "completed":  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - started
    assert client.hget(key, "valid") == str(len(symbols)), client.hgetall(key)
    return elapsed


async def run(args: argparse.Namespace) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="umcp-bench-"))
    namespace = f"umcp-bench-{uuid.uuid4().hex[:8]}"
    settings = {
        "data_dir": str(data_dir),
        "redis_url": args.redis,
        "broker_namespace": namespace,
        "provider": "fake",
        "fake_provider_latency_s": str(args.latency),
        "fake_provider_symbols": str(args.symbols * (args.runs + 2) * 2),
        "offline": "1",
        "seed_catalog": "0",
        "log_level": "WARNING",
        "max_active_jobs": "100",
        "worker_threads": str(args.threads),
        "rate_limit_validate": "",
        "worker_heartbeat_timeout_s": "5",
    }
    if args.database_url:
        settings["database_url"] = args.database_url
    os.environ.update(env_for(settings))
    client = redis.Redis.from_url(args.redis, decode_responses=True)
    next_symbol = 1
    width = max(5, len(settings["fake_provider_symbols"]))  # FakeProvider.with_generated's SYM00001 ... names

    def fresh(n: int) -> list[str]:
        nonlocal next_symbol
        out = [f"SYM{i:0{width}d}" for i in range(next_symbol, next_symbol + n)]
        next_symbol += n
        return out

    print(
        f"{args.symbols} symbols, fake provider {args.latency * 1000:.0f} ms, {args.threads} threads per process, "
        f"batch {Settings().job_batch_size}, store {'postgresql' if args.database_url else 'sqlite'}"
    )
    async with Client(build_server(Settings())) as mcp:
        for processes in args.processes:
            proc = subprocess.Popen(
                [sys.executable, "-m", "server", "worker", "--processes", str(processes)],  # noqa: ASYNC220
                cwd=ROOT,
                env=os.environ.copy(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                wait_workers(client, namespace, processes)
                await timed_job(mcp, client, namespace, fresh(200))  # warm-up: engines, connections, imports
                times = [await timed_job(mcp, client, namespace, fresh(args.symbols)) for _ in range(args.runs)]
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
            median = statistics.median(times)
            batch = Settings().job_batch_size
            slots = processes * args.threads
            waves = math.ceil(math.ceil(args.symbols / batch) / slots)
            ideal = waves * math.ceil(batch / PER_BATCH_CONCURRENCY) * args.latency
            print(
                f"  {processes} worker process(es): median {median:.3f} s = {args.symbols / median:,.0f} symbols/s "
                f"(runs: {', '.join(f'{t:.3f}' for t in times)}); concurrency-bound ideal {ideal:.3f} s "
                f"= {args.symbols / ideal:,.0f} symbols/s; {ideal / median:.0%} of ideal"
            )
    keys = list(client.scan_iter(f"{namespace}:*"))
    if keys:
        client.delete(*keys)


async def offline_job(settings: Settings, symbols: list[str], *, universe: bool) -> tuple[float, dict]:
    """Seconds from start_bulk_validation to completion on a fresh embedded server, and the job's counts."""
    async with Client(build_server(settings)) as mcp:
        args: dict = {"force_refresh": True}
        if universe:
            created = await mcp.call_tool("create_universe", {"name": "Offline", "validate": False})
            uid = created.structured_content["data"]["universe"]["id"]
            for start in range(0, len(symbols), 1000):
                await mcp.call_tool(
                    "add_assets_to_universe",
                    {"universe_id": uid, "symbols": symbols[start : start + 1000], "validate": False},
                )
            args["universe_id"] = uid
        else:
            args["symbols"] = symbols
        started = time.perf_counter()
        result = await mcp.call_tool("start_bulk_validation", args)
        job_id = result.structured_content["data"]["job_id"]
        while True:
            envelope = (await mcp.call_tool("get_job_status", {"job_id": job_id})).structured_content
            if not envelope["success"]:
                raise RuntimeError(f"get_job_status failed: {envelope['error']}")
            status = envelope["data"]
            if status["status"] in ("completed", "failed", "cancelled"):
                return time.perf_counter() - started, status["counts"]
            await asyncio.sleep(0.02)


async def run_offline(args: argparse.Namespace) -> None:
    from providers.catalog import CatalogProvider

    known = sorted(e.symbol for e in CatalogProvider().entries())
    known = [s for s in known if s.isalpha()][:500]  # plain US-style tickers, as a user's list would hold
    cases = [
        ("500 known symbols", known[:500], False),
        ("490-member universe, 2 unknown", known[:488] + ["ZZUNKN1", "ZZUNKN2"], True),
    ]
    print("offline, embedded (no Redis), catalog only, default job settings, force_refresh")
    for label, symbols, universe in cases:
        times: list[float] = []
        counts: dict = {}
        for _ in range(args.runs):
            data_dir = Path(tempfile.mkdtemp(prefix="umcp-bench-offline-"))
            # Per-owner limits off: the poll below reads the status every 20 ms.
            settings = Settings(
                data_dir=data_dir,
                offline=True,
                log_level="WARNING",
                rate_limit_read="",
                rate_limit_write="",
                rate_limit_validate="",
            )
            elapsed, counts = await offline_job(settings, symbols, universe=universe)
            times.append(elapsed)
        print(
            f"  {label}: median {statistics.median(times):.2f} s (runs: {', '.join(f'{t:.2f}' for t in times)}); "
            f"counts {', '.join(f'{k} {v}' for k, v in counts.items() if v)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--database-url", help="a PostgreSQL database (postgresql+asyncpg://...); default SQLite")
    parser.add_argument("--offline", action="store_true", help="time offline embedded jobs (see above)")
    args = parser.parse_args()
    asyncio.run(run_offline(args) if args.offline else run(args))


if __name__ == "__main__":
    main()
