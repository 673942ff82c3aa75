"""A store the server cannot use stops `universe-mcp serve` with one line and exit code 3 (issue 10 item 16).

The CLI runs as a subprocess, as an operator would start it. Read-only and full file systems are real ones: a
tmpfs mounted read-only, or small and filled, inside a private mount namespace (``unshare``) that disappears with
the process — file modes would not stop root, which CI runs as.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.servers import free_port, run_command, server_env
from tests.support.services import require_service

pytestmark = [pytest.mark.slow]

EXIT_STORE_UNAVAILABLE = 3  # documented in docs/DEPLOYMENT.md


def serve(env: dict[str, str], *, prefix: list[str] | None = None) -> subprocess.CompletedProcess:
    return run_command(["serve", "--port", str(free_port())], env=env, prefix=prefix or [])


def one_clear_line(done: subprocess.CompletedProcess) -> str:
    """The single stderr line of a refused start (and the checks every such start must pass)."""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == EXIT_STORE_UNAVAILABLE, (done.returncode, done.stderr[-3000:])
    assert "Traceback" not in done.stderr and len(lines) == 1, done.stderr[-3000:]
    assert lines[0].startswith("universe-mcp: ")
    return lines[0]


def in_private_mount(script: str, target: Path) -> list[str]:
    """A command prefix that runs the server after ``script`` set up mounts on ``target`` (a private namespace)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        require_service("mount namespace", "needs root and unshare(1) to mount a throwaway file system")
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True)
    if probe.returncode != 0:
        require_service("mount namespace", f"unshare failed: {probe.stderr.decode(errors='replace')[:200]}")
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", f'{script} && exec "$@"', "sh"]


def test_a_file_where_the_data_directory_should_be(tmp_path):
    blocker = tmp_path / "data"
    blocker.write_text("not a directory")
    line = one_clear_line(serve(server_env(blocker)))
    assert str(blocker) in line and "UNIVERSE_MCP_DATA_DIR" in line and "not a directory" in line

    nested = blocker / "store"  # a file in the way of a parent directory
    line = one_clear_line(serve(server_env(nested)))
    assert str(nested) in line and "UNIVERSE_MCP_DATA_DIR" in line and "a file is in the way" in line


def test_a_store_file_that_is_not_a_database(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "universe.db").write_bytes(b"this is not an SQLite database" * 100)
    line = one_clear_line(serve(server_env(data)))
    assert str(data / "universe.db") in line and "UNIVERSE_MCP_DATA_DIR" in line and "not an SQLite database" in line


def test_a_read_only_data_directory(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    prefix = in_private_mount(f"mount -t tmpfs -o ro,size=1m tmpfs '{data}'", data)
    line = one_clear_line(serve(server_env(data), prefix=prefix))
    assert str(data) in line and "UNIVERSE_MCP_DATA_DIR" in line and "read-only" in line


def test_a_full_data_directory(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    fill = f"mount -t tmpfs -o size=256k tmpfs '{data}' && (dd if=/dev/zero of='{data}/fill' bs=4k 2>/dev/null; true)"
    line = one_clear_line(serve(server_env(data), prefix=in_private_mount(fill, data)))
    assert str(data) in line and "UNIVERSE_MCP_DATA_DIR" in line and "the disk is full" in line


def test_a_bad_or_unreachable_database_url(tmp_path):
    line = one_clear_line(serve(server_env(tmp_path / "data", UNIVERSE_MCP_DATABASE_URL="not a url")))
    assert "UNIVERSE_MCP_DATABASE_URL is not a usable database URL" in line

    unreachable = f"postgresql+asyncpg://app:s3cret-pw@127.0.0.1:{free_port()}/universe"
    line = one_clear_line(serve(server_env(tmp_path / "data", UNIVERSE_MCP_DATABASE_URL=unreachable)))
    assert "UNIVERSE_MCP_DATABASE_URL" in line and "connection refused" in line and "127.0.0.1" in line
    assert "s3cret-pw" not in line  # the password never appears
