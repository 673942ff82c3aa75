"""Scenario 5: 32 concurrent streamable-HTTP clients, mixed reads and writes, for 30 s (127.0.0.1 only).

The server is ``python -m bench.serve --transport http`` (the product's HTTP app and transport, fake provider) on a
copy of the 100,000-asset store. Each client is an official ``mcp.Client`` with its own universe; it loops over a
weighted mix: cached validate_symbols, search_assets, get_universe, list_universes (reads, 80 %), and adding or
removing five members (writes, 20 %). An error is any exception or any ``isError`` result. The SDK floor (a trivial
tool on a bare MCPServer over the same transport) runs the same load shape first, for a shorter time.

Clients and server share the machine's cores: on a small machine the figures measure the pair, not the server alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.common import (
    Check,
    Config,
    Row,
    child_env,
    free_port,
    fresh_dir,
    http_process,
    latency_row,
    percentile,
    ratio,
    rss_mb,
    timed_calls,
)
from bench.store import copy_store

CACHED = [f"SYM{i:05d}" for i in range(1, 201)]  # validated before the load: cache hits afterwards
SEARCHES = ["apple", "robotics", "SYM0501", "bank of", "holdings", "kalo energy", "AAP", "micro"]
MIX: list[tuple[str, int]] = [
    ("validate", 30),
    ("search", 25),
    ("get_universe", 15),
    ("list_universes", 10),
    ("add", 10),
    ("remove", 10),
]


async def client_loop(url: str, index: int, deadline: float, results: dict[str, Any], rng: random.Random) -> None:
    from mcp import Client

    async with Client(url) as client:
        created = await client.call_tool(
            "create_universe", {"name": f"HTTP client {index} {rng.random():.6f}", "validate": False}
        )
        universe_id = created.structured_content["data"]["universe"]["id"]
        members: list[str] = []
        kinds, weights = zip(*MIX, strict=True)
        while time.monotonic() < deadline:
            kind = rng.choices(kinds, weights)[0]
            if kind == "add":
                symbols = rng.sample(CACHED, 5)
                args: tuple[str, dict[str, Any]] = (
                    "add_assets_to_universe",
                    {"universe_id": universe_id, "symbols": symbols},
                )
                members.extend(s for s in symbols if s not in members)
            elif kind == "remove":
                symbols = members[:5] or rng.sample(CACHED, 5)
                del members[:5]
                args = ("remove_assets_from_universe", {"universe_id": universe_id, "symbols": symbols})
            elif kind == "validate":
                args = ("validate_symbols", {"symbols": [rng.choice(CACHED)]})
            elif kind == "search":
                args = ("search_assets", {"query": rng.choice(SEARCHES)})
            elif kind == "get_universe":
                args = ("get_universe", {"universe_id": universe_id})
            else:
                args = ("list_universes", {})
            started = time.perf_counter()
            try:
                result = await client.call_tool(*args)
                failed = result.is_error
                if failed:
                    message = (result.structured_content or {}).get("message")
                    results["error_samples"].append(f"{args[0]}: {message}"[:200])
            except Exception as exc:  # the load keeps going; the error is counted
                failed = True
                results["error_samples"].append(f"{type(exc).__name__}: {str(exc)[:200]}")
            elapsed = (time.perf_counter() - started) * 1000
            results["latencies"].append(elapsed)
            results["by_kind"][kind] += 1
            results["kind_latencies"].setdefault(kind, []).append(elapsed)
            if failed:
                results["errors"] += 1


async def floor_loop(url: str, deadline: float, results: dict[str, Any]) -> None:
    from mcp import Client

    async with Client(url) as client:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                result = await client.call_tool("ping", {})
                failed = result.is_error
            except Exception:  # counted, as for the product
                failed = True
            results["latencies"].append((time.perf_counter() - started) * 1000)
            results["errors"] += int(failed)


async def load(
    clients: int, seconds: float, start: Callable[[int, float, dict[str, Any]], Awaitable[None]]
) -> dict[str, Any]:
    results: dict[str, Any] = {
        "latencies": [],
        "errors": 0,
        "error_samples": [],
        "by_kind": Counter(),
        "kind_latencies": {},
    }
    began = time.monotonic()
    deadline = began + seconds
    await asyncio.gather(*[start(i, deadline, results) for i in range(clients)])
    results["seconds"] = time.monotonic() - began
    return results


def summary(results: dict[str, Any]) -> dict[str, Any]:
    lat = results["latencies"]
    return {
        "calls": len(lat),
        "throughput_per_s": round(len(lat) / results["seconds"], 1),
        "p50_ms": round(percentile(lat, 50), 3),
        "p99_ms": round(percentile(lat, 99), 3),
        "max_ms": round(max(lat, default=0.0), 3),
        "errors": results["errors"],
        "seconds": round(results["seconds"], 2),
        "by_kind": dict(results.get("by_kind", {})),
        # Where the time goes: each kind of call's p50/p99 (ms).
        "kind_p50_p99_ms": {
            kind: [round(percentile(lat, 50), 1), round(percentile(lat, 99), 1)]
            for kind, lat in sorted(results.get("kind_latencies", {}).items())
        },
        "error_samples": results["error_samples"][:5],
    }


# Targets (issue 17): the share of the floor's throughput under the same load (>= 0.5x on PostgreSQL, >= 0.4x on
# SQLite), the tail against the floor's tail (p99 <= 10x), no call over 1 s, and no errors.
THROUGHPUT_TARGET = {"SQLite": 0.4, "PostgreSQL": 0.5}
P99_RATIO_MAX = 10.0
MAX_CALL_MS = 1000.0


async def _measure(cfg: Config, env: dict[str, str], work: Path, label: str) -> tuple[dict[str, Any], list, float]:
    """The product under the load: (load summary, sequential latencies, peak RSS in MB)."""
    from mcp import Client

    port = free_port()
    with http_process(
        ["-m", "bench.serve", "--transport", "http", "--port", str(port)], env, work / f"server-{label}.log", port
    ) as proc:
        url = f"http://127.0.0.1:{port}/mcp"
        async with Client(url) as client:
            for start in range(0, len(CACHED), 50):
                await client.call_tool("validate_symbols", {"symbols": CACHED[start : start + 50]})
            sequential = [
                await timed_calls(
                    lambda: client.call_tool("validate_symbols", {"symbols": [CACHED[0]]}), cfg.calls // 2, cfg.warmup
                )
            ]
        rng = random.Random(5)
        loaded = summary(
            await load(
                cfg.http_clients,
                cfg.http_seconds,
                lambda i, d, r: client_loop(url, i, d, r, random.Random(rng.random())),
            )
        )
        _, peak = rss_mb(proc.pid)
    return loaded, sequential, peak


def _load_row(cfg: Config, store: str, ours: dict[str, Any], floor: dict[str, Any], peak: float) -> Row:
    kind = "PostgreSQL" if store.startswith("PostgreSQL") else "SQLite"
    throughput = ratio(ours["throughput_per_s"], floor["throughput_per_s"])
    tail = ratio(ours["p99_ms"], floor["p99_ms"])
    checks = [
        Check("calls/s / floor calls/s", throughput, ">=", THROUGHPUT_TARGET[kind]),
        Check("p99 / floor p99", tail, "<=", P99_RATIO_MAX),
        Check("slowest call ms", ours["max_ms"], "<=", MAX_CALL_MS),
        Check("errors", float(ours["errors"]), "<=", 0),
    ]
    return Row(
        scenario="5",
        metric=f"{cfg.http_clients} HTTP clients, mixed reads/writes, {cfg.http_seconds:g} s, {store}",
        p50_ms=ours["p50_ms"],
        p99_ms=ours["p99_ms"],
        floor_p50_ms=floor["p50_ms"],
        floor_p99_ms=floor["p99_ms"],
        value=None if throughput is None else round(throughput, 3),
        unit="x floor calls/s",
        target=f">= {THROUGHPUT_TARGET[kind]}x floor calls/s, p99 <= {P99_RATIO_MAX:g}x floor p99, "
        f"no call over {MAX_CALL_MS / 1000:g} s, zero errors",
        checks=checks,
        floor="SDK ping, HTTP, same clients",
        ratio_p99_runs=[tail] if tail is not None else [],
        note=f"{ours['throughput_per_s']:.0f} calls/s (floor: {floor['throughput_per_s']:.0f} calls/s of a trivial "
        f"tool); {ours['calls']} calls, {ours['errors']} errors, slowest {ours['max_ms'] / 1000:.2f} s"
        + (f"; first error: {ours['error_samples'][0]} (details in the server log)" if ours["error_samples"] else ""),
        extra={"ours": ours, "floor": floor, "server_peak_rss_mb": round(peak, 1)},
    )


@contextlib.asynccontextmanager
async def postgres_store(cfg: Config, data_dir: Path) -> AsyncIterator[dict[str, str] | None]:
    """A scratch database holding the same store, served as a non-owner role under row-level security (the
    distributed layout); None when no PostgreSQL answers at BENCH_POSTGRES_URL (default: this machine's)."""
    import asyncpg
    from sqlalchemy.engine import make_url

    from bench.store import build_postgres_store

    url = make_url(os.environ.get("BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"))
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    suffix = secrets.token_hex(4)
    database, role = f"umcp_bench_{suffix}", f"umcp_bench_app_{suffix}"
    try:
        conn = await asyncpg.connect(admin, timeout=5)
    except (OSError, asyncpg.PostgresError):
        yield None
        return
    try:
        await conn.execute(f"CREATE DATABASE {database}")
        await conn.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS")
    finally:
        await conn.close()
    settings = {
        "database_url": url.set(database=database, username=role, password=None).render_as_string(hide_password=False),
        "database_admin_url": url.set(database=database).render_as_string(hide_password=False),
        "database_app_role": role,
    }
    try:
        print(f"  building the PostgreSQL store of {cfg.store_assets:,} assets ...", flush=True)
        await build_postgres_store(data_dir, cfg.store_assets, **settings)
        yield {f"UNIVERSE_MCP_{k.upper()}": v for k, v in settings.items()}
    finally:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            await conn.execute(f"DROP ROLE IF EXISTS {role}")
        finally:
            await conn.close()


async def run(cfg: Config, ctx: dict) -> list[Row]:
    from mcp import Client

    work = fresh_dir(cfg.work_dir / "s5")
    data_dir = copy_store(ctx["store"], work / "data")
    env = child_env(data_dir)
    floor_seconds = max(3.0, cfg.http_seconds / 3)

    port = free_port()
    with http_process(
        ["-m", "bench.serve", "--transport", "http", "--floor", "--port", str(port)], env, work / "floor.log", port
    ):
        url = f"http://127.0.0.1:{port}/mcp"
        async with Client(url) as client:
            sequential = [await timed_calls(lambda: client.call_tool("ping", {}), cfg.calls // 2, cfg.warmup)]
        floor_load = summary(await load(cfg.http_clients, floor_seconds, lambda i, d, r: floor_loop(url, d, r)))

    ours_load, ours_sequential, peak = await _measure(cfg, env, work, "sqlite")
    rows = [_load_row(cfg, "SQLite", ours_load, floor_load, peak)]
    async with postgres_store(cfg, work / "pg-data") as pg_env:
        if pg_env is None:
            rows.append(
                Row(scenario="5", metric="... on PostgreSQL", note="not run: no PostgreSQL at BENCH_POSTGRES_URL")
            )
        else:
            pg_load, _, pg_peak = await _measure(cfg, child_env(work / "pg-data", **pg_env), work, "postgres")
            rows.append(_load_row(cfg, "PostgreSQL (app role, RLS)", pg_load, floor_load, pg_peak))

    return [
        *rows,
        latency_row(
            "5",
            "cached validate_symbols, HTTP, sequential (reference)",
            ours_sequential,
            sequential,
            floor="SDK ping, HTTP",
            note="no target; one client, for the transport's share",
        ),
    ]
