"""Shared by the packaging tests: the repository root, and a cached npm installation managed by the tests."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import platformdirs

ROOT = Path(__file__).resolve().parents[2]


def cache_root() -> Path:
    """Where the tests keep what they download once (npm packages): ``UNIVERSE_MCP_TEST_CACHE`` or the user cache."""
    return Path(os.environ.get("UNIVERSE_MCP_TEST_CACHE") or platformdirs.user_cache_dir("universe-mcp-tests"))


def digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()[:16]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Test sessions on the same machine share the cache: one installs, the others wait and then reuse it.
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class InstallFailed(Exception):
    """An install step failed; the message holds the command's output tail."""


def cached_dir(name: str, install: Callable[[Path], None]) -> Path:
    """``cache_root()/name``, filled by ``install(directory)`` the first time (atomically: a half-done install is
    never reused, and concurrent sessions install once)."""
    target = cache_root() / name
    done = target / ".complete"
    if done.is_file():
        return target
    with _locked(cache_root() / f"{name}.lock"):
        if done.is_file():
            return target
        scratch = target.with_name(f"{name}.partial-{os.getpid()}")
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        try:
            install(scratch)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        shutil.rmtree(target, ignore_errors=True)
        scratch.rename(target)
        done.write_text("installed\n")
    return target


def npm(args: list[str], cwd: Path, timeout: float = 600) -> None:
    """Run npm quietly in ``cwd``; raise :class:`InstallFailed` with its output when it fails or is missing."""
    executable = shutil.which("npm")
    if executable is None:
        raise InstallFailed("npm is not installed")
    env = {**os.environ, "npm_config_update_notifier": "false", "npm_config_fund": "false", "npm_config_audit": "false"}
    try:
        done = subprocess.run(
            [executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise InstallFailed(f"npm {' '.join(args)} did not finish in {timeout:g} s") from None
    if done.returncode != 0:
        raise InstallFailed(f"npm {' '.join(args)} failed ({done.returncode}): {(done.stdout + done.stderr)[-1500:]}")
