"""The ``worker`` and ``scheduler`` subcommands of ``universe-mcp`` (added by server/cli.py)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

__all__ = ["add_worker_commands", "dramatiq_arguments"]


def _settings() -> Any:
    from server.cli import _settings as load

    return load(argparse.Namespace())


def dramatiq_arguments(settings: Any, args: argparse.Namespace) -> list[str]:
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
    settings = _settings()
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
    import dramatiq.cli

    print(
        f"universe-mcp worker: store {settings.describe_store()}, namespace {settings.broker_namespace}, "
        f"dead worker detected after {settings.worker_heartbeat_timeout_s:g} s",
        file=sys.stderr,
        flush=True,
    )
    parsed = dramatiq.cli.make_argument_parser().parse_args(dramatiq_arguments(settings, args))
    return int(dramatiq.cli.main(parsed) or 0)


def cmd_scheduler(args: argparse.Namespace) -> int:
    from workers.scheduler import run_scheduler

    settings = _settings()
    if settings.redis_url is None:
        print(
            "universe-mcp scheduler: set UNIVERSE_MCP_REDIS_URL; in embedded mode the server schedules itself",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(
        level=settings.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return run_scheduler(settings, once=args.once)


def add_worker_commands(sub: Any) -> None:
    worker = sub.add_parser("worker", help="run Dramatiq worker processes for bulk validation jobs (needs Redis)")
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
    )
    scheduler.add_argument("--once", action="store_true", help="send each periodic job once (if due) and exit")
    scheduler.set_defaults(func=cmd_scheduler)
