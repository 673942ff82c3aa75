"""End-to-end tests: the real `universe-mcp serve` over stdio and streamable HTTP, started by tests/support/servers.py."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path
