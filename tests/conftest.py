"""Shared fixtures: test settings on a fresh SQLite store, and the in-memory MCP client over build_server()."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import TextContent

from core.settings import Settings
from server.app import build_server

# The US listings snapshot (~30,000 securities) makes a 50 MB store that takes seconds to load: tests start without
# it — here, in subprocesses and in every Settings() — and those about the security master ask for it
# (tests/services/security_master/conftest.py: a small snapshot cut from the shipped one, or the whole).
os.environ.setdefault("UNIVERSE_MCP_LISTINGS_LOAD", "0")

# The service fixtures (Redis, PostgreSQL: the machine's, throwaway ones, or skip/fail) live in tests/support.
# pytester: tests/support/test_ci_skip_rule.py runs small pytest sessions to check the CI rule's hooks.
pytest_plugins = ["tests.support.services", "pytester"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _quiet_logs() -> None:
    # MCPServer() configures the root logger at the server's level; keep test output readable.
    logging.getLogger("mcp").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def seeded_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite store migrated and loaded with the offline catalog once per session (about 0.3 s saved per test);
    each test gets a copy, and the server's start-up still runs the migration and seeding checks against it."""
    import asyncio

    from server.lifespan import open_app_state

    data_dir = tmp_path_factory.mktemp("seeded")

    async def build() -> None:
        async with open_app_state(Settings(data_dir=data_dir, offline=True, log_level="WARNING")):
            pass

    asyncio.run(build())
    return data_dir / "universe.db"


@pytest.fixture(scope="session")
def master_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite store loaded with the whole shipped listings snapshot (~30,000 securities), once per session: for
    tests that must see the real security master (screening themes, index and sector counts). Copy it per test."""
    import asyncio

    from server.lifespan import open_app_state

    data_dir = tmp_path_factory.mktemp("master")

    async def build() -> None:
        async with open_app_state(Settings(data_dir=data_dir, offline=True, log_level="WARNING", listings_load=True)):
            pass

    asyncio.run(build())
    return data_dir / "universe.db"


@pytest.fixture
def whole_master(master_store: Path, tmp_path: Path) -> Settings:
    """Settings of a private copy of ``master_store`` (the whole shipped listings snapshot, already loaded)."""
    data_dir = tmp_path / "master-copy"
    data_dir.mkdir()
    shutil.copyfile(master_store, data_dir / "universe.db")
    return Settings(data_dir=data_dir, offline=True, log_level="WARNING", listings_load=True)


@pytest.fixture
def make_settings(tmp_path: Path, seeded_store: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        data_dir = tmp_path / "data"
        if not data_dir.exists():
            data_dir.mkdir()
            shutil.copyfile(seeded_store, data_dir / "universe.db")
        values: dict[str, Any] = {"data_dir": data_dir, "log_level": "WARNING", "offline": True}
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture(scope="session")
def small_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A listings snapshot of a few dozen securities cut from the shipped one (tests/support/listings.py)."""
    from tests.support.listings import write_small_snapshot

    return write_small_snapshot(tmp_path_factory.mktemp("listings") / "small.jsonl.gz")


@pytest.fixture
def master_settings(make_settings: Callable[..., Settings], small_snapshot: Path) -> Settings:
    """Settings whose store loads the small listings snapshot on start: the security master answers."""
    return make_settings(listings_load=True, listings_snapshot=small_snapshot)


@pytest.fixture
async def master_client(master_settings: Settings) -> AsyncIterator[Client]:
    async with Client(build_server(master_settings)) as c:
        yield c


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with Client(build_server(settings)) as c:
        yield c


class Call:
    """Calls a tool and returns (is_error, structured envelope), checking the envelope's invariants every time."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def __call__(self, tool: str, **arguments: Any) -> dict[str, Any]:
        result = await self.client.call_tool(tool, arguments)
        envelope = result.structured_content
        assert envelope is not None, f"{tool} returned no structured content"
        assert envelope["success"] is (not result.is_error)
        if result.is_error:
            assert envelope["data"] is None and envelope["error"]["code"]
        assert result.content, "every result carries a text summary"
        summary, payload = result.content[0], result.content[1]
        assert isinstance(summary, TextContent) and summary.text, "every result carries a text summary"
        assert isinstance(payload, TextContent) and json.loads(payload.text) == envelope
        return envelope

    async def ok(self, tool: str, **arguments: Any) -> dict[str, Any]:
        envelope = await self(tool, **arguments)
        assert envelope["success"], envelope.get("error")
        return envelope["data"]

    async def error(self, tool: str, code: str, **arguments: Any) -> dict[str, Any]:
        envelope = await self(tool, **arguments)
        assert not envelope["success"], f"{tool} unexpectedly succeeded"
        assert envelope["error"]["code"] == code, envelope["error"]
        return envelope


@pytest.fixture
def call(client: Client) -> Call:
    return Call(client)
