"""Server processes for end-to-end tests: the real `universe-mcp serve` over stdio and streamable HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(data_dir: Path, **extra: str) -> dict[str, str]:
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


@contextmanager
def http_server(data_dir: Path, *, host: str = "127.0.0.1", **extra: str) -> Iterator[str]:
    """`universe-mcp serve` on a free port of ``host``; yields the MCP URL once /healthz answers."""
    port = free_port()
    log = (data_dir.parent / f"server-{port}.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--host", host, "--port", str(port)],
        cwd=ROOT,
        env=server_env(data_dir, **extra),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}: {Path(log.name).read_text()[-2000:]}")
            try:
                if httpx.get(f"http://{host}:{port}/healthz", timeout=0.5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start in 30 s")
            time.sleep(0.1)
        yield f"http://{host}:{port}/mcp"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path
