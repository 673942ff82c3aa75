"""Installs: `make serve` sets up the runtime alone, quietly, and the wheel carries everything a user needs.

The fresh-environment and wheel tests run pip against the package index (with pip's cache, so mostly offline after
the first run); without the index they are skipped loudly, except under CI=true, where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from tests.packaging.support import ROOT
from tests.packaging.test_constraints import pins, runtime
from tests.packaging.test_container import copy_sources, dockerfile_stages
from tests.support.services import require_service

# What `make test` adds and `make serve` must not install (Playwright alone is 165 MB).
TEST_TOOLS = {"pytest", "playwright", "hypothesis", "ruff", "pyyaml", "mypy"}
# setuptools' warnings on an editable install of a misconfigured project: data directories taken for packages, and
# the "meta path finder" editable mode's notice.
SETUPTOOLS_NOISE = ("BuildBackendWarning", "would be ignored", "Editable installation", "SetuptoolsDeprecationWarning")
INDEX_UNREACHABLE = (
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "No matching distribution found",
    "Could not fetch URL",
)


def _make(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def _pip_or_skip(done: subprocess.CompletedProcess, what: str) -> None:
    if done.returncode != 0:
        output = done.stdout + done.stderr
        if any(sign in output for sign in INDEX_UNREACHABLE):
            require_service("the Python package index", f"{what}: {output[-800:]}")
        pytest.fail(f"{what} failed ({done.returncode}):\n{output[-4000:]}")


# --- the Makefile's install steps (no pip: PIP=true stands in for it) ---------------------------------------------


@pytest.fixture
def fake_venv(tmp_path: Path) -> Path:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")  # exists: the venv step is done
    return venv


def test_serve_installs_the_runtime_only_and_test_installs_the_test_tools(fake_venv):
    serve = _make("-n", "serve", f"VENV={fake_venv}").stdout
    pip_lines = [line for line in serve.splitlines() if "pip" in line]
    assert len(pip_lines) == 1 and "-c constraints.txt -e ." in pip_lines[0] and "[dev]" not in pip_lines[0], serve
    test = _make("-n", "test", f"VENV={fake_venv}").stdout
    assert "-c constraints.txt -e '.[dev]'" in test, test


def test_serve_after_test_installs_nothing_and_test_after_serve_adds_only_the_test_tools(fake_venv):
    venv = f"VENV={fake_venv}"
    assert _make("install-dev", venv, "PIP=true").returncode == 0  # `make test`'s install step, pip stubbed
    assert _make("-q", "install", venv).returncode == 0, "make serve after make test would reinstall"
    assert _make("-q", "install-dev", venv).returncode == 0

    for stamp in (fake_venv / ".installed-runtime", fake_venv / ".installed-dev"):
        stamp.unlink()
    assert _make("install", venv, "PIP=true").returncode == 0  # `make serve`'s
    assert _make("-q", "install", venv).returncode == 0
    assert _make("-q", "install-dev", venv).returncode == 1  # the test tools are still to come
    # A stamp older than constraints.txt or pyproject.toml (a new pin or bound) means install again.
    os.utime(fake_venv / ".installed-runtime", (0, 0))
    assert _make("-q", "install", venv).returncode == 1


# --- for real: a fresh environment and the wheel -----------------------------------------------------------------


@pytest.mark.slow
def test_a_fresh_make_serve_install_has_the_runtime_alone_and_prints_no_setuptools_warnings(tmp_path):
    venv = tmp_path / "venv"
    done = _make("install", f"VENV={venv}", timeout=900)
    _pip_or_skip(done, "make install (the install step of `make serve`) in a fresh environment")
    output = done.stdout + done.stderr
    noise = [sign for sign in SETUPTOOLS_NOISE if sign in output]
    assert not noise, f"setuptools warnings on first install: {noise}\n{output[-3000:]}"

    listed = subprocess.run(
        [venv / "bin" / "python", "-m", "pip", "list", "--format", "json", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    installed = {item["name"].lower().replace("_", "-"): item["version"] for item in json.loads(listed.stdout)}
    assert not TEST_TOOLS & set(installed), f"test tools in a runtime install: {TEST_TOOLS & set(installed)}"
    pinned = pins()
    for name in runtime():
        assert installed.get(name) == str(pinned[name]), (
            f"{name}: installed {installed.get(name)}, pinned {pinned[name]}"
        )
    assert _make("-q", "install", f"VENV={venv}").returncode == 0  # `make serve` again installs nothing

    # The runtime alone serves: one tool call through the installed command, offline, on a temporary store.
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNIVERSE_MCP_")}
    env |= {"UNIVERSE_MCP_OFFLINE": "1", "UNIVERSE_MCP_DATA_DIR": str(tmp_path / "store")}
    call = subprocess.run(
        [venv / "bin" / "universe-mcp", "call", "validate_symbols", "--args", '{"symbols": ["AAPL"]}'],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert call.returncode == 0, call.stderr[-3000:]
    assert json.loads(call.stdout)["success"] is True


@pytest.mark.slow
def test_the_wheel_carries_the_data_the_license_and_complete_metadata(tmp_path):
    # Built from what the Dockerfile's build stage copies (so the image's wheel is this one), outside the checkout
    # (setuptools writes build/ next to the sources).
    context = tmp_path / "context"
    context.mkdir()
    for source in sorted(copy_sources(dockerfile_stages()[0])):
        if (ROOT / source).is_dir():
            shutil.copytree(ROOT / source, context / source, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / source, context / source)
    wheels = tmp_path / "wheels"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-w", wheels, context],
        capture_output=True,
        text=True,
        timeout=600,
    )
    _pip_or_skip(done, "pip wheel")
    (wheel,) = wheels.glob("universe_mcp-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(archive.read(metadata_name).decode())
    for shipped in (
        "providers/listings/data/us_listings.jsonl.gz",
        "providers/listings/data/corporate_actions.csv",
        "providers/listings/data/sector_overrides.csv",
        "server/static/dashboard.html",
        "server/static/host.html",
        "storage/migrations/script.py.mako",
        "storage/migrations/env.py",
    ):
        assert shipped in names, f"{shipped} is not in the wheel"
    migrations = {Path(n).name for n in names if n.startswith("storage/migrations/versions/") and n.endswith(".py")}
    assert {p.name for p in (ROOT / "storage" / "migrations" / "versions").glob("*.py")} <= migrations
    assert not [n for n in names if n.split("/")[0] in {"tests", "bench", "ui", "docs", "deploy"}]
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)

    assert metadata["License-Expression"] == "MIT"
    assert metadata["Description-Content-Type"] == "text/markdown" and "Connect a client" in metadata.get_payload()
    classifiers = metadata.get_all("Classifier")
    assert "Programming Language :: Python :: 3.11" in classifiers and len(classifiers) >= 5
    assert metadata["Keywords"] and "mcp" in metadata["Keywords"]
    requires = metadata.get_all("Requires-Dist")
    assert any(r.startswith("mcp") and "<2.4" in r for r in requires), requires
