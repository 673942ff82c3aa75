"""Shared pieces of the benchmarks: statistics, result rows, settings for bench servers, server subprocesses."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"

# Per-owner limits high enough never to trip under bench load, so the limiter's cost is still measured.
NO_LIMIT = "1000000/minute"
BENCH_ENV = {
    "UNIVERSE_MCP_OFFLINE": "1",
    "UNIVERSE_MCP_LOG_LEVEL": "WARNING",
    "UNIVERSE_MCP_RATE_LIMIT_READ": NO_LIMIT,
    "UNIVERSE_MCP_RATE_LIMIT_WRITE": NO_LIMIT,
    "UNIVERSE_MCP_RATE_LIMIT_VALIDATE": NO_LIMIT,
    # Scenarios 1-6 measure a synthetic catalogue of 100,000 assets; scenario 7 measures the security master.
    "UNIVERSE_MCP_LISTINGS_LOAD": "0",
}


@dataclass
class Config:
    """How hard each scenario works; ``quick`` shrinks everything to a smoke run."""

    quick: bool = False
    runs: int = 3
    calls: int = 2000
    warmup: int = 200
    store_assets: int = 100_000
    http_seconds: float = 30.0
    http_clients: int = 32
    job_symbols: int = 10_000
    job_latency_s: float = 0.020
    work_dir: Path = field(default_factory=lambda: RESULTS / "work")

    @classmethod
    def make(cls, quick: bool, runs: int | None = None) -> Config:
        if quick:
            return cls(
                quick=True,
                runs=runs or 2,
                calls=300,
                warmup=50,
                store_assets=100_000,
                http_seconds=5.0,
                http_clients=32,
                job_symbols=1_000,
            )
        return cls(runs=runs or 3)


@dataclass
class Row:
    """One line of the results table (and one object of the JSON)."""

    scenario: str
    metric: str
    p50_ms: float | None = None
    p99_ms: float | None = None
    floor_p50_ms: float | None = None
    floor_p99_ms: float | None = None
    value: float | None = None
    unit: str = ""
    target: str = ""
    met: bool | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.p50_ms is None or not self.floor_p50_ms:
            return None
        return self.p50_ms / self.floor_p50_ms

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ratio_to_floor_p50"] = None if self.ratio is None else round(self.ratio, 3)
        return out


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


@dataclass
class Latency:
    """Median over runs of each run's p50 and p99 (ms), with the spread of the per-run p99s."""

    p50: float
    p99: float
    p99_min: float
    p99_max: float
    calls_per_run: int
    runs: int

    @classmethod
    def of(cls, runs: list[list[float]]) -> Latency:
        p50s = [statistics.median(r) for r in runs]
        p99s = [percentile(r, 99) for r in runs]
        return cls(
            p50=statistics.median(p50s),
            p99=statistics.median(p99s),
            p99_min=min(p99s),
            p99_max=max(p99s),
            calls_per_run=len(runs[0]) if runs else 0,
            runs=len(runs),
        )

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


async def timed_calls(call: Callable[[], Awaitable[Any]], n: int, warmup: int = 0) -> list[float]:
    """Latencies (ms) of ``n`` sequential calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        await call()
    out: list[float] = []
    for _ in range(n):
        t = time.perf_counter()
        await call()
        out.append((time.perf_counter() - t) * 1000)
    return out


async def interleaved(
    calls: dict[str, Callable[[], Awaitable[Any]]], n: int, blocks: int = 10
) -> dict[str, list[float]]:
    """``n`` timed calls of each, alternating in ``blocks`` slices so every side sees the same machine load."""
    out: dict[str, list[float]] = {name: [] for name in calls}
    size = max(1, n // blocks)
    done = 0
    while done < n:
        step = min(size, n - done)
        for name, call in calls.items():
            out[name].extend(await timed_calls(call, step))
        done += step
    return out


def quiet_logging() -> None:
    # MCPServer() calls logging.basicConfig at its level; bench processes only want warnings.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    for name in ("mcp", "httpx", "httpx2", "httpcore", "uvicorn", "alembic", "sqlalchemy", "universe_mcp"):
        logging.getLogger(name).setLevel(logging.WARNING)


def bench_settings(data_dir: Path, **overrides: Any) -> Settings:
    from core.settings import Settings

    values: dict[str, Any] = {
        "data_dir": data_dir,
        "offline": True,
        "log_level": "WARNING",
        "rate_limit_read": NO_LIMIT,
        "rate_limit_write": NO_LIMIT,
        "rate_limit_validate": NO_LIMIT,
        "listings_load": False,  # see BENCH_ENV
    }
    values.update(overrides)
    return Settings(**values)


def child_env(data_dir: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment of a bench subprocess: no UNIVERSE_MCP_* from the caller, the repo on sys.path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNIVERSE_MCP_")}
    env.update(BENCH_ENV)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    if data_dir is not None:
        env["UNIVERSE_MCP_DATA_DIR"] = str(data_dir)
    env.update(extra)
    return env


def fresh_dir(path: Path) -> Path:
    """An empty directory at ``path`` (a scenario's working files from an earlier run are removed)."""
    import shutil

    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def stdio_client(args: list[str], env: dict[str, str], log: Path) -> AsyncIterator[Any]:
    """An MCP client over stdio to ``python args...`` (the server's stderr goes to ``log``)."""
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client as open_stdio

    log.parent.mkdir(parents=True, exist_ok=True)
    params = StdioServerParameters(command=sys.executable, args=args, cwd=str(ROOT), env=env)
    with log.open("a") as errlog:
        async with Client(open_stdio(params, errlog=errlog)) as client:
            yield client


@contextlib.contextmanager
def http_process(args: list[str], env: dict[str, str], log: Path, port: int) -> Iterator[subprocess.Popen]:
    """A server process on 127.0.0.1:``port``; yields once /healthz (or any HTTP answer) comes back."""
    import httpx

    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as out:
        proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited with {proc.returncode}; see {log}")
                try:
                    httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5)
                    break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start in 60 s; see {log}")
                time.sleep(0.1)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def children_matching(text: str) -> list[int]:
    """Pids of this process's children whose command line contains ``text`` (Linux /proc)."""
    me = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == me and text in cmdline:
            found.append(int(entry.name))
    return found


def rss_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of ``pid`` in MiB, from /proc/<pid>/status."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields.get("VmRSS", float("nan")), fields.get("VmHWM", float("nan"))
