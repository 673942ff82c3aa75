"""Shared pieces of the benchmarks: statistics, result rows, settings for bench servers, server subprocesses."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import statistics
import subprocess
import sys
import threading
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
                # A fifth of the store: building 100,000 assets alone takes 20-65 s on 2 cores (figures of a quick
                # run are indicative only, and its docs section is never written).
                store_assets=20_000,
                http_seconds=5.0,
                http_clients=32,
                job_symbols=1_000,
            )
        return cls(runs=runs or 3)


@dataclass
class Check:
    """One condition of a target: ``value`` (a ratio, a fraction, a count, ms, MB ...) ``op`` ``bound``.

    ``value`` None means the figure could not be measured (its floor failed, say): an error, never a pass."""

    name: str
    value: float | None
    op: str  # "<=" or ">="
    bound: float

    def __post_init__(self) -> None:
        if self.op not in ("<=", ">="):
            raise ValueError(f"op must be <= or >=, not {self.op!r}")

    @property
    def ok(self) -> bool | None:
        if self.value is None or math.isnan(self.value):
            return None
        return self.value <= self.bound if self.op == "<=" else self.value >= self.bound

    def describe(self) -> str:
        shown = "not measured" if self.value is None else f"{self.value:.3g}"
        return f"{self.name} {shown} (target {self.op} {self.bound:g})"


def verdict_of(checks: list[Check], error: str | None = None) -> str:
    """met / MISSED / error / n/a for a row's checks: an error (given, or a figure that could not be measured)
    wins over everything; no checks at all is n/a (a reference row)."""
    if error:
        return "error"
    if not checks:
        return "n/a"
    if any(c.ok is None for c in checks):
        return "error"
    return "met" if all(c.ok for c in checks) else "MISSED"


@dataclass
class Row:
    """One line of the results table (and one object of the JSON).

    ``checks`` decide the verdict (``status``): all met -> "met", any missed -> "MISSED", a figure missing or
    ``error`` set -> "error" (``met`` False). Rows without checks are references ("n/a", ``met`` None)."""

    scenario: str
    metric: str
    p50_ms: float | None = None
    p99_ms: float | None = None
    floor_p50_ms: float | None = None
    floor_p99_ms: float | None = None
    value: float | None = None
    unit: str = ""
    target: str = ""
    checks: list[Check] = field(default_factory=list)
    error: str | None = None
    floor: str = ""  # what the floor is: "SDK ping, stdio", "search SQL, bare connection" ...
    ratio_p50_runs: list[float] = field(default_factory=list)  # ours / floor, one per run
    ratio_p99_runs: list[float] = field(default_factory=list)
    load: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return verdict_of(self.checks, self.error)

    @property
    def met(self) -> bool | None:
        return {"met": True, "MISSED": False, "error": False, "n/a": None}[self.status]

    @property
    def ratio(self) -> float | None:
        """ours / floor at p50: the median of the runs' ratios, else the ratio of the medians."""
        if self.ratio_p50_runs:
            return statistics.median(self.ratio_p50_runs)
        return ratio(self.p50_ms, self.floor_p50_ms)

    @property
    def ratio_p99(self) -> float | None:
        if self.ratio_p99_runs:
            return statistics.median(self.ratio_p99_runs)
        return ratio(self.p99_ms, self.floor_p99_ms)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = self.status
        out["met"] = self.met
        out["ratio_to_floor_p50"] = None if self.ratio is None else round(self.ratio, 3)
        out["ratio_to_floor_p99"] = None if self.ratio_p99 is None else round(self.ratio_p99, 3)
        out["ratio_p50_spread"] = spread(self.ratio_p50_runs)
        out["ratio_p99_spread"] = spread(self.ratio_p99_runs)
        for check in out["checks"]:
            check["ok"] = Check(**check).ok
        return out


def ratio(ours: float | None, floor: float | None) -> float | None:
    """ours / floor; None when either is missing or the floor is not positive (no ratio, not infinity)."""
    if ours is None or floor is None or floor <= 0 or math.isnan(ours) or math.isnan(floor):
        return None
    return ours / floor


def spread(values: list[float]) -> list[float] | None:
    """[min, median, max] of repeated runs' figures (None without any)."""
    if not values:
        return None
    return [round(min(values), 4), round(statistics.median(values), 4), round(max(values), 4)]


def stat(values: list[float], p: float) -> float:
    """p50 is the median (as everywhere in these tables); other percentiles are nearest-rank."""
    return statistics.median(values) if p == 50 else percentile(values, p)


def run_ratios(ours: list[list[float]], floor: list[list[float]], p: float) -> list[float]:
    """Per run: ours' percentile ``p`` / the floor's, runs paired in order (an empty or zero floor is skipped)."""
    out = []
    for o, f in zip(ours, floor, strict=False):
        if not o or not f:
            continue
        r = ratio(stat(o, p), stat(f, p))
        if r is not None:
            out.append(r)
    return out


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


@dataclass
class Latency:
    """Median over runs of each run's p50 and p99 (ms), with the spread (min, max) of the per-run figures."""

    p50: float
    p99: float
    p50_min: float
    p50_max: float
    p99_min: float
    p99_max: float
    calls_per_run: int
    runs: int

    @classmethod
    def of(cls, runs: list[list[float]]) -> Latency:
        runs = [r for r in runs if r]
        if not runs:
            raise ValueError("no measurements")
        p50s = [statistics.median(r) for r in runs]
        p99s = [percentile(r, 99) for r in runs]
        return cls(
            p50=statistics.median(p50s),
            p99=statistics.median(p99s),
            p50_min=min(p50s),
            p50_max=max(p50s),
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


class LoadSampler:
    """The machine's load while a scenario runs: /proc/loadavg every ``every_s`` (a background thread), the load
    averages before and after (os.getloadavg), and this process's CPU time (plus reaped children's).

    Figures from a shared machine are only comparable with the load they were measured under."""

    def __init__(self, every_s: float = 1.0) -> None:
        self.every_s = every_s
        self.samples: list[float] = []
        self.result: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def read() -> float | None:
        try:
            return float(Path("/proc/loadavg").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            try:
                return os.getloadavg()[0]
            except OSError:
                return None

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            value = self.read()
            if value is not None:
                self.samples.append(value)

    def __enter__(self) -> LoadSampler:
        self.before = os.getloadavg()
        self.wall = time.monotonic()
        self.cpu = os.times()
        self._thread = threading.Thread(target=self._loop, name="bench-load", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        self.after = os.getloadavg()
        end = os.times()
        self.result = {
            "loadavg_before": [round(x, 2) for x in self.before],
            "loadavg_after": [round(x, 2) for x in self.after],
            "load1_samples": len(self.samples),
            "load1_min": round(min(self.samples), 2) if self.samples else None,
            "load1_median": round(statistics.median(self.samples), 2) if self.samples else None,
            "load1_max": round(max(self.samples), 2) if self.samples else None,
            "wall_s": round(time.monotonic() - self.wall, 1),
            "bench_cpu_s": round((end.user - self.cpu.user) + (end.system - self.cpu.system), 2),
            "children_cpu_s": round(
                (end.children_user - self.cpu.children_user) + (end.children_system - self.cpu.children_system), 2
            ),
        }

    @staticmethod
    def describe(load: dict[str, Any]) -> str:
        if not load:
            return ""
        if load.get("load1_median") is not None:
            return f"{load['load1_median']:.1f} ({load['load1_min']:.1f}-{load['load1_max']:.1f})"
        return f"{load['loadavg_before'][0]:.1f}->{load['loadavg_after'][0]:.1f}"


def latency_row(
    scenario: str,
    metric: str,
    ours_runs: list[list[float]],
    floor_runs: list[list[float]] | None,
    *,
    floor: str,
    p50_max: float | None = None,
    p99_max: float | None = None,
    floor_error: str | None = None,
    note: str = "",
    extra: dict[str, Any] | None = None,
) -> Row:
    """A row of ours against a floor measured in the same run, runs paired: its ratios are the median of each
    run's ratio (p50 / floor p50, p99 / floor p99), checked against ``p50_max`` / ``p99_max``. A floor that failed
    (``floor_error``, or no floor figures) makes the row an error, never a pass."""
    ours = Latency.of(ours_runs)
    floor_runs = [] if floor_error else [r for r in (floor_runs or []) if r]
    floor_lat = Latency.of(floor_runs) if floor_runs else None
    r50 = run_ratios(ours_runs, floor_runs, 50)
    r99 = run_ratios(ours_runs, floor_runs, 99)
    checks = []
    targets = []
    if p50_max is not None:
        checks.append(Check("p50 / floor p50", statistics.median(r50) if r50 else None, "<=", p50_max))
        targets.append(f"p50 <= {p50_max:g}x")
    if p99_max is not None:
        checks.append(Check("p99 / floor p99", statistics.median(r99) if r99 else None, "<=", p99_max))
        targets.append(f"p99 <= {p99_max:g}x")
    error = floor_error or (None if floor_lat is not None else "the floor gave no figures")
    return Row(
        scenario=scenario,
        metric=metric,
        p50_ms=ours.p50,
        p99_ms=ours.p99,
        floor_p50_ms=floor_lat.p50 if floor_lat else None,
        floor_p99_ms=floor_lat.p99 if floor_lat else None,
        target=(", ".join(targets) + f" {floor}") if targets else "",
        checks=checks,
        error=error if (checks or floor_error) else None,
        floor=floor,
        ratio_p50_runs=r50,
        ratio_p99_runs=r99,
        note=note,
        extra={"ours": ours.as_dict(), "floor": floor_lat.as_dict() if floor_lat else None, **(extra or {})},
    )
