"""The container health check (the Dockerfile's HEALTHCHECK): probes whichever `universe-mcp` command runs here.

- ``serve``: ``GET /readyz`` on the server's port answers 200 (the store answers and, in the distributed layout, the
  Redis broker too; docs/DEPLOYMENT.md, "Probes");
- ``worker``: a worker process on this host has sent its heartbeat to Redis within the heartbeat timeout (the same
  reading get_service_health makes);
- ``scheduler``: Redis, which holds its lock and the job queue, answers;
- anything else (``db upgrade``, ``token``, ``call``): healthy while it runs.

Usage: ``healthcheck.py [COMMAND [ARGS...]]``; without a command, the first process whose command line runs
``universe-mcp`` says which. Exit code 0 healthy, 1 not, with one line on stdout saying why (``docker inspect``
shows it).
"""

from __future__ import annotations

import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.settings import Settings

TIMEOUT_S = 3.0
WILDCARDS = {"0.0.0.0", "::", ""}


def command_from_argv(argv: list[str]) -> tuple[str, list[str]] | None:
    """The ``universe-mcp`` subcommand and its arguments in a process's argv, if it runs ``universe-mcp``."""
    for index, arg in enumerate(argv[:-1]):
        if Path(arg).name == "universe-mcp":
            return argv[index + 1], argv[index + 2 :]
    return None


def running_command(proc: Path = Path("/proc")) -> tuple[str, list[str]] | None:
    """The command of this container's `universe-mcp` process (the lowest pid: the one the container started)."""
    pids = sorted(int(p.name) for p in proc.iterdir() if p.name.isdigit())
    for pid in pids:
        try:
            raw = (proc / str(pid) / "cmdline").read_bytes()
        except OSError:  # gone since the listing, or not ours to read
            continue
        found = command_from_argv([a for a in raw.decode(errors="replace").split("\0") if a])
        if found is not None:
            return found
    return None


def _option(args: list[str], name: str) -> str | None:
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def _settings() -> Settings:
    from core.settings import Settings

    return Settings()


def check_serve(args: list[str]) -> tuple[bool, str]:
    settings = _settings()
    host = _option(args, "--host") or settings.host
    port = int(_option(args, "--port") or settings.port)
    if host in WILDCARDS:
        host = "127.0.0.1"
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:  # noqa: S310 - a fixed http URL
            return response.status == 200, f"{url}: {response.status}"
    except urllib.error.HTTPError as exc:  # 503: not ready; the body lists the check that failed
        return False, f"{url}: {exc.code} {exc.read(300).decode(errors='replace')}"
    except (urllib.error.URLError, OSError) as exc:
        return False, f"{url}: {getattr(exc, 'reason', exc)}"


def _redis(settings: Settings) -> Any:
    from core.redis import redis_client

    if settings.redis_url is None:
        raise SystemExit("unhealthy: UNIVERSE_MCP_REDIS_URL is not set")
    return redis_client(settings, "probe")


def check_worker(args: list[str]) -> tuple[bool, str]:
    import redis

    from workers.heartbeat import read_workers, workers_key

    settings = _settings()
    host = socket.gethostname()
    try:
        entries = _redis(settings).hgetall(workers_key(settings.broker_namespace))
    except redis.RedisError as exc:
        return False, f"Redis did not answer ({type(exc).__name__})"
    decoded = {k.decode(): v.decode() for k, v in entries.items()}
    alive, _dead, _prune = read_workers(decoded, dead_after_s=settings.worker_heartbeat_timeout_s)
    mine = [w for w in alive if w["host"] == host]
    if mine:
        return True, f"{len(mine)} worker process(es) on {host} sent a heartbeat"
    return False, f"no heartbeat from a worker on {host} within {settings.worker_heartbeat_timeout_s:g} s"


def check_scheduler(args: list[str]) -> tuple[bool, str]:
    import redis

    try:
        _redis(_settings()).ping()
    except redis.RedisError as exc:
        return False, f"Redis did not answer ({type(exc).__name__})"
    return True, "Redis answers"


CHECKS = {"serve": check_serve, "worker": check_worker, "scheduler": check_scheduler}


def main(argv: list[str]) -> int:
    found = (argv[0], argv[1:]) if argv else running_command()
    if found is None:
        print("unhealthy: no universe-mcp process")
        return 1
    command, args = found
    check = CHECKS.get(command)
    if check is None:
        print(f"healthy: universe-mcp {command} is running")
        return 0
    healthy, why = check(args)
    print(f"{'healthy' if healthy else 'unhealthy'}: {why}")
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
