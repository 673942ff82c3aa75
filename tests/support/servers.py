"""The program as its own process (`python -m server ...`, what the `universe-mcp` script runs), for every test that
starts one: the environment it gets, starting a long-running one (serve, worker) and waiting until it is ready,
stopping it, and running a command to completion.

A process's output goes to a log file; when it exits before it is ready, or the test fails while it runs, the log's
tail is in the failure report (a note on the exception), so the report says why the server misbehaved and not only
what the client saw.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.services import free_port

__all__ = [
    "ROOT",
    "ServerFailed",
    "ServerProcess",
    "free_port",
    "http_server",
    "run_command",
    "serve_http",
    "server_env",
    "spawn",
]

ROOT = Path(__file__).resolve().parents[2]
COMMAND = [sys.executable, "-m", "server"]


class ServerFailed(RuntimeError):
    """The process exited before it was ready, or was not ready in time; the message holds its log's tail."""


def server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """This process's environment without its UNIVERSE_MCP_* settings, plus an offline server on ``data_dir``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNIVERSE_MCP_")}
    env.update(
        {
            "UNIVERSE_MCP_DATA_DIR": str(data_dir),
            "UNIVERSE_MCP_OFFLINE": "1",
            "UNIVERSE_MCP_LOG_LEVEL": "WARNING",
            # Seconds of loading per fresh store: off, as in tests/conftest.py (pass it in ``extra`` to test it).
            "UNIVERSE_MCP_LISTINGS_LOAD": "0",
        }
    )
    env.update(extra)
    return env


@dataclass
class ServerProcess:
    proc: subprocess.Popen
    log: Path | None  # None when its output is not kept
    name: str
    url: str | None = None  # http://host:port of a server over HTTP
    own_group: bool = False  # started in a session of its own: stopped and killed with its children

    def tail(self, lines: int = 30) -> str:
        if self.log is None:
            return "(output not kept)"
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def terminate(self) -> None:
        """Ask it to stop (SIGTERM: a graceful stop); ``wait`` for it."""
        if self.proc.poll() is None:
            self.proc.terminate()

    def wait(self, timeout_s: float = 10.0) -> None:
        """Wait for it to exit; kill it when it does not in time."""
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def stop(self, timeout_s: float = 10.0) -> None:
        self.terminate()
        self.wait(timeout_s)

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would: the whole group when it has its own (dramatiq's master and its
        children)."""
        if self.own_group:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        else:
            self.proc.kill()
        self.proc.wait(10)


def spawn(
    args: Sequence[str],
    *,
    env: dict[str, str],
    log: Path | None,
    ready: Callable[[ServerProcess], bool] | None = None,
    timeout_s: float = 30.0,
    stdout_to_log: bool = True,
    own_group: bool = False,
    pipes: bool = False,
    name: str | None = None,
) -> ServerProcess:
    """Start `python -m server ARGS` in the repository with ``env``, its output in ``log`` (stderr only when not
    ``stdout_to_log``; nothing kept when ``log`` is None); with ``ready``, wait until ``ready(process)`` is true.

    ``pipes``: stdin and stdout are text pipes the test talks to (stdio transport); stderr still goes to ``log``.
    Raises :class:`ServerFailed` (after stopping it) when it exits first or is not ready within ``timeout_s``."""
    out = log.open("wb") if log is not None else None
    try:
        proc = subprocess.Popen(
            [*COMMAND, *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE if pipes else None,
            stdout=subprocess.PIPE if pipes else (out if out is not None and stdout_to_log else subprocess.DEVNULL),
            stderr=out if out is not None else subprocess.DEVNULL,
            text=pipes,
            start_new_session=own_group,
        )
    finally:
        if out is not None:
            out.close()  # the child holds its own copy
    server = ServerProcess(proc, log, name or " ".join(args[:1]) or "server", own_group=own_group)
    if ready is None:
        return server
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise ServerFailed(f"{server.name} exited with {proc.returncode}:\n{server.tail()}")
        if ready(server):
            return server
        if time.monotonic() > deadline:
            server.stop()
            raise ServerFailed(f"{server.name} was not ready in {timeout_s:g} s:\n{server.tail()}")
        time.sleep(0.1)


@contextmanager
def running(server: ServerProcess, stop_timeout_s: float = 10.0) -> Iterator[ServerProcess]:
    """``server`` for the block, stopped after it; a failure in the block carries the server's log tail (read once
    it has stopped, so what it logged on the way out is there too)."""
    try:
        yield server
    except Exception as exc:
        server.stop(stop_timeout_s)
        exc.add_note(f"--- {server.name} log ({server.log}), last lines ---\n{server.tail()}")
        raise
    finally:
        server.stop(stop_timeout_s)


def _healthy(server: ServerProcess) -> bool:
    try:
        return httpx.get(f"{server.url}/healthz", timeout=0.5).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def serve_http(
    data_dir: Path, *, host: str = "127.0.0.1", stdout_to_log: bool = True, **extra: str
) -> Iterator[ServerProcess]:
    """`universe-mcp serve` on a free port of ``host`` with ``server_env(data_dir, **extra)``, once /healthz
    answers; its ``url`` is http://host:port and its log ``server-PORT.log`` beside ``data_dir``."""
    port = free_port()
    url = f"http://{host}:{port}"
    log = data_dir.parent / f"server-{port}.log"

    def ready(server: ServerProcess) -> bool:
        server.url = url
        return _healthy(server)

    server = spawn(
        ["serve", "--host", host, "--port", str(port)],
        env=server_env(data_dir, **extra),
        log=log,
        ready=ready,
        stdout_to_log=stdout_to_log,
        name=f"serve on {url}",
    )
    with running(server) as started:
        yield started


@contextmanager
def http_server(data_dir: Path, *, host: str = "127.0.0.1", **extra: str) -> Iterator[str]:
    """``serve_http``, yielding the MCP endpoint's URL."""
    with serve_http(data_dir, host=host, stdout_to_log=True, **extra) as server:
        yield f"{server.url}/mcp"


def run_command(
    args: Sequence[str],
    *,
    env: dict[str, str],
    timeout_s: float = 60.0,
    prefix: Sequence[str] = (),
    cwd: Path = ROOT,
    input: str | None = None,
    check: bool = False,
) -> subprocess.CompletedProcess[str]:
    """`python -m server ARGS` run to completion (after ``prefix``, e.g. a mount namespace), output captured."""
    return subprocess.run(
        [*prefix, *COMMAND, *args],
        cwd=cwd,
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=check,
    )
