"""The client configurations the repository ships work as shipped (README, "Connect a client").

The MCP Inspector CLI (npm ``@modelcontextprotocol/inspector``, the version in tests/packaging/inspector, installed
with ``npm ci`` into a cache directory once) runs against ``mcp.json`` from the repository root, as a user would:
it lists the tools and calls one, over stdio, offline, on a temporary store. The Inspector needs Node 22.19+; where
the system's Node is older, Node 22 comes from npm's ``node`` package into the cache too. Without npm or the
registry this is skipped loudly, except under CI=true, where it fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings
from server.cli import build_parser
from tests.packaging.support import ROOT, InstallFailed, cached_dir, digest, npm
from tests.support.services import require_service

INSPECTOR_PACKAGE = Path(__file__).parent / "inspector"
NODE_FROM_NPM = "22.23.3"  # npm's `node` package, used when the system Node is older than the Inspector needs
NODE_MINIMUM = (22, 19)  # the Inspector's `engines`
SERVER = "universe"
VENV_COMMAND = ".venv/bin/universe-mcp"
TOOLS = sorted(p.stem for p in (ROOT / "tests" / "__toolsnaps__").glob("*.json"))


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _entry(name: str = "mcp.json") -> dict[str, Any]:
    return _load(ROOT / name)["mcpServers"][SERVER]


# --- the configuration files ------------------------------------------------------------------------------------------


def test_the_project_configs_launch_the_checkouts_server_with_the_same_arguments():
    shipped = _entry()
    # A path relative to the repository (project-scoped clients start servers there), not a bare name looked up on a
    # PATH that does not hold the virtual environment.
    assert shipped["command"] == VENV_COMMAND
    executable = ROOT / shipped["command"]
    assert executable.is_file() and os.access(executable, os.X_OK), f"{executable}: run `make serve` or `make test`"
    args = build_parser().parse_args(shipped["args"])
    assert (args.command, args.transport) == ("serve", "stdio")
    # Every variable the configs set is a real setting (a misspelt one would be ignored silently).
    fields = {f"UNIVERSE_MCP_{name.upper()}" for name in Settings.model_fields}
    assert set(shipped.get("env", {})) <= fields

    assert _entry(".mcp.json") == shipped  # Claude Code's project file
    vscode = _load(ROOT / ".vscode" / "mcp.json")["servers"][SERVER]
    assert vscode == {
        "type": "stdio",
        "command": "${workspaceFolder}/" + VENV_COMMAND,
        "args": shipped["args"],
        "env": shipped["env"],
    }


def test_make_mcp_config_prints_the_absolute_command_for_desktop_clients():
    # -o: the runtime install is taken as done (`make test` made it), so this prints and installs nothing.
    done = subprocess.run(
        ["make", "--no-print-directory", "-s", "-o", ".venv/.installed-runtime", "mcp-config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)["mcpServers"][SERVER]
    assert printed["command"] == str(ROOT / VENV_COMMAND) and Path(printed["command"]).is_absolute()
    assert {k: v for k, v in printed.items() if k != "command"} == {k: v for k, v in _entry().items() if k != "command"}


# --- the MCP Inspector ------------------------------------------------------------------------------------------------


def _node_version(node: str) -> tuple[int, ...] | None:
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout
    except OSError:
        return None
    match = re.match(r"v(\d+)\.(\d+)", out.strip())
    return (int(match[1]), int(match[2])) if match else None


def _install_inspector(directory: Path) -> None:
    for name in ("package.json", "package-lock.json"):
        shutil.copy(INSPECTOR_PACKAGE / name, directory / name)
    npm(["ci", "--no-audit", "--no-fund", "--loglevel=error"], directory)


def _install_node(directory: Path) -> None:
    (directory / "package.json").write_text('{"private": true}\n')
    npm(["install", "--no-audit", "--no-fund", "--loglevel=error", f"node@{NODE_FROM_NPM}"], directory)


@pytest.fixture(scope="module")
def inspector() -> list[str]:
    """The command that runs the Inspector: a Node 22.19+ binary and the Inspector's launcher script."""
    try:
        lock = (INSPECTOR_PACKAGE / "package-lock.json").read_bytes()
        home = cached_dir(f"inspector-{digest(lock)}", _install_inspector)
        system_node = shutil.which("node")
        if system_node and (_node_version(system_node) or (0,)) >= NODE_MINIMUM:
            node = system_node
        else:
            node = str(cached_dir(f"node-{NODE_FROM_NPM}", _install_node) / "node_modules" / ".bin" / "node")
    except InstallFailed as exc:
        require_service("npm (the MCP Inspector and Node 22 from the npm registry)", str(exc))
    assert (_node_version(node) or (0,)) >= NODE_MINIMUM, f"{node} is older than Node {NODE_MINIMUM}"
    package = home / "node_modules" / "@modelcontextprotocol" / "inspector"
    launcher = package / _load(package / "package.json")["bin"]["mcp-inspector"]
    return [node, str(launcher)]


def _client_path() -> str:
    # A client's own PATH: no virtual environment on it (an activated one would hide a config that names a bare
    # `universe-mcp`, which is what failed before).
    venv_bins = {str(Path(sys.executable).parent), str(Path(sys.prefix) / "bin")}
    if os.environ.get("VIRTUAL_ENV"):
        venv_bins.add(str(Path(os.environ["VIRTUAL_ENV"]) / "bin"))
    return os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p not in venv_bins)


def run_inspector(inspector: list[str], tmp_path: Path, *method: str) -> dict[str, Any]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    command = [
        *inspector,
        "--cli",
        "--config",
        "mcp.json",  # the shipped file, from the repository root
        "--server",
        SERVER,
        # The Inspector passes the server only PATH, HOME and a few more of its own variables; settings go in -e.
        "-e",
        "UNIVERSE_MCP_OFFLINE=1",
        "-e",
        f"UNIVERSE_MCP_DATA_DIR={tmp_path / 'store'}",
        *method,
        "--format",
        "json",
    ]
    env = {"PATH": _client_path(), "HOME": str(home), "MCP_INSPECTOR_SECRET_STORE": "memory", "LANG": "C.UTF-8"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"inspector exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return json.loads(done.stdout)["result"]


@pytest.mark.slow
def test_the_mcp_inspector_lists_the_tools_and_calls_one_through_the_shipped_mcp_json(inspector, tmp_path):
    listed = run_inspector(inspector, tmp_path, "--method", "tools/list")
    assert sorted(tool["name"] for tool in listed["tools"]) == TOOLS

    arguments = {"name": "AI leaders", "symbols": ["NVDA", "MSFT"]}
    called = run_inspector(
        inspector,
        tmp_path,
        "--method",
        "tools/call",
        "--tool-name",
        "create_universe",
        "--tool-args-json",
        json.dumps(arguments),
    )
    assert called.get("isError") is not True, called
    envelope = called["structuredContent"]
    assert envelope["success"] is True
    assert envelope["data"]["universe"]["name"] == "AI leaders" and envelope["data"]["universe"]["asset_count"] == 2
    # Offline: the symbols were confirmed by the shipped listings snapshot (the security master, loaded on the
    # server's first start), and the store is the one the test passed on.
    assert {r["source"] for r in envelope["data"]["report"]["results"]} == {"listings"}
    assert (tmp_path / "store" / "universe.db").is_file()
