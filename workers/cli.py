"""The ``worker`` and ``scheduler`` subcommands of ``universe-mcp`` (added by server/cli.py)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from core.settings import Settings, load_settings

__all__ = ["add_worker_commands", "dramatiq_arguments"]


def dramatiq_arguments(settings: Settings, args: argparse.Namespace) -> list[str]:
    """The dramatiq CLI's arguments for these settings and flags."""
    argv = ["workers.entry:setup"]
    processes = args.processes or settings.worker_processes
    if processes:
        argv += ["--processes", str(processes)]
    argv += ["--threads", str(args.threads or settings.worker_threads)]
    argv += ["--worker-shutdown-timeout", str(int(settings.worker_shutdown_timeout_s * 1000))]
    if args.queues:
        argv += ["--queues", *args.queues]
    if settings.log_level == "DEBUG":
        argv.append("-v")
    return argv


def cmd_worker(args: argparse.Namespace) -> int:
    settings = load_settings()
    if settings.redis_url is None:
        print(
            "universe-mcp worker: set UNIVERSE_MCP_REDIS_URL; without Redis (embedded mode) `universe-mcp serve` "
            "runs jobs itself",
            file=sys.stderr,
        )
        return 2
    # dramatiq reads its idle poll interval from the environment when it is first imported (worker processes are
    # forked from this one, so they inherit the module as imported here).
    if "dramatiq.worker" in sys.modules:
        logging.getLogger(__name__).warning("dramatiq was imported early: worker_idle_poll_ms is not applied")
    os.environ["dramatiq_worker_timeout"] = str(settings.worker_idle_poll_ms)
    if settings.worker_metrics_port is not None:
        prometheus_environment(settings)
    from core.logs import configure_logging

    configure_logging(settings)  # the main process's lines; worker processes adopt the format in workers.entry
    import dramatiq.cli

    print(
        f"universe-mcp worker: store {settings.describe_store()}, namespace {settings.broker_namespace}, "
        f"dead worker detected after {settings.worker_heartbeat_timeout_s:g} s",
        file=sys.stderr,
        flush=True,
    )
    parsed = dramatiq.cli.make_argument_parser().parse_args(dramatiq_arguments(settings, args))
    return int(dramatiq.cli.main(parsed) or 0)


def prometheus_environment(settings: Settings) -> str:
    """Environment for dramatiq's Prometheus middleware, set before any worker process imports prometheus-client.

    Multiprocess mode (a fresh directory per run, so a restarted worker does not add its predecessor's counts):
    every worker process writes its values there, and the middleware's exposition server, a process of its own,
    serves them all on worker_metrics_host:worker_metrics_port (dramatiq's default, 0.0.0.0:9191, would listen on
    every interface)."""
    import tempfile

    if "prometheus_client" in sys.modules:
        logging.getLogger(__name__).warning("prometheus_client was imported early: worker metrics may be incomplete")
    directory = tempfile.mkdtemp(prefix="universe-mcp-worker-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    os.environ["dramatiq_prom_db"] = directory
    os.environ["dramatiq_prom_host"] = settings.worker_metrics_host
    os.environ["dramatiq_prom_port"] = str(settings.worker_metrics_port)
    return directory


def cmd_scheduler(args: argparse.Namespace) -> int:
    from workers.scheduler import run_scheduler

    settings = load_settings()
    if settings.redis_url is None:
        print(
            "universe-mcp scheduler: set UNIVERSE_MCP_REDIS_URL; in embedded mode the server schedules itself",
            file=sys.stderr,
        )
        return 2
    from core.logs import configure_logging

    configure_logging(settings)
    return run_scheduler(settings, once=args.once)


def add_worker_commands(sub: Any) -> None:
    worker = sub.add_parser(
        "worker",
        help="run Dramatiq worker processes for bulk validation jobs (needs Redis)",
        description="Run Dramatiq worker processes that validate bulk jobs' batches and run the periodic refresh "
        "and cleanup, for the distributed mode (UNIVERSE_MCP_REDIS_URL). With UNIVERSE_MCP_WORKER_METRICS_PORT, "
        "Prometheus metrics are served there.",
    )
    worker.add_argument(
        "--processes", "-p", type=int, help="worker processes (default: worker_processes, or one per CPU)"
    )
    worker.add_argument("--threads", "-t", type=int, help="threads per process (default: worker_threads)")
    worker.add_argument("--queues", "-Q", nargs="*", help="only these queues (validation, background)")
    worker.set_defaults(func=cmd_worker)

    scheduler = sub.add_parser(
        "scheduler",
        help="send the periodic refresh and cleanup jobs (needs Redis; any "
        "number may run, a Redis lock keeps each run single)",
        description="Send the periodic jobs (re-validate stale and pending symbols, delete expired job data, "
        "resume stuck jobs) to the workers, for the distributed mode (UNIVERSE_MCP_REDIS_URL). Any number may run: "
        "a Redis lock keeps each run single.",
    )
    scheduler.add_argument("--once", action="store_true", help="send each periodic job once (if due) and exit")
    scheduler.set_defaults(func=cmd_scheduler)
