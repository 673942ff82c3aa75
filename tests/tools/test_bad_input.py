"""Bad input of every kind gets a small, fast, structured error and changes nothing (issue: foundation)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import anyio
import pytest
from mcp import Client
from sqlalchemy import event

from providers.base import Verdict
from providers.catalog import CatalogProvider
from server.app import UniverseMCPServer, build_server

pytestmark = pytest.mark.anyio


class CountingCatalog(CatalogProvider):
    """The real offline catalog, counting the symbols it is asked to validate."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = 0

    async def validate(self, symbol: str) -> Verdict:
        self.asked += 1
        return await super().validate(symbol)


@pytest.fixture
def provider() -> CountingCatalog:
    return CountingCatalog()


@pytest.fixture
def server(settings, provider) -> UniverseMCPServer:
    return build_server(settings, providers=[provider])


@pytest.fixture
async def client(server) -> AsyncIterator[Client]:
    """The shared ``client`` fixture, on a server whose provider and store count the work a call does."""
    async with Client(server) as c:
        yield c


async def snapshot(call) -> list:
    """Everything a caller can see: every universe with its members."""
    state = []
    for u in (await call.ok("list_universes", limit=200))["universes"]:
        detail = await call.ok("get_universe", universe_id=u["id"], limit=200)
        state.append((u["name"], u["description"], [a["symbol"] for a in detail["assets"]]))
    return state


@pytest.fixture
async def seeded(call):
    created = await call.ok(
        "create_universe", name="Existing", description="keep me", symbols=["AAPL", "MSFT"], validate=False
    )
    return created["universe"]["id"]


def deep(levels: int) -> dict:
    root: dict = {}
    cur = root
    for _ in range(levels):
        cur["x"] = {}
        cur = cur["x"]
    return root


def bad_cases(uid: str) -> list[tuple[str, str, dict]]:
    missing = str(uuid.uuid4())
    return [
        ("create_universe", "invalid_argument", {"name": ""}),
        ("create_universe", "invalid_argument", {"name": "   "}),
        ("create_universe", "invalid_argument", {"name": "x" * 201}),
        ("create_universe", "already_exists", {"name": "existing"}),
        ("create_universe", "already_exists", {"name": " EXISTING  "}),
        ("create_universe", "invalid_argument", {"name": "New", "symbols": ["AAPL", "not a ticker!"]}),
        ("create_universe", "limit_exceeded", {"name": "New", "symbols": [f"S{i}" for i in range(1001)]}),
        ("create_universe", "invalid_argument", {"name": 42}),
        ("create_universe", "invalid_argument", {"name": "New", "symbols": "AAPL"}),
        ("create_universe", "invalid_argument", {"name": "New", "colour": "blue"}),
        ("create_universe", "invalid_argument", {}),
        ("create_universe", "invalid_argument", {"name": "x" * 100_000}),
        ("create_universe", "invalid_argument", {"name": "New", "description": "d" * 100_000}),
        ("get_universe", "not_found", {"universe_id": missing}),
        ("get_universe", "invalid_argument", {"universe_id": "u-42"}),
        ("get_universe", "invalid_argument", {"universe_id": uid, "limit": 0}),
        ("get_universe", "invalid_argument", {"universe_id": uid, "limit": 10_000}),
        ("get_universe", "invalid_argument", {"universe_id": uid, "cursor": "garbage"}),
        ("get_universe", "invalid_argument", {"universe_id": uid, "as_of": "yesterday"}),
        ("list_universes", "invalid_argument", {"cursor": "eyJrIjoibWVtYmVycyIsInYiOjF9"}),  # a cursor of another list
        ("list_universes", "invalid_argument", {"name_contains": deep(200)}),
        ("update_universe", "invalid_argument", {"universe_id": uid}),
        ("update_universe", "not_found", {"universe_id": missing, "name": "Z"}),
        ("update_universe", "invalid_argument", {"universe_id": uid, "name": ""}),
        ("delete_universe", "not_found", {"universe_id": missing}),
        ("delete_universe", "invalid_argument", {"universe_id": "'; DROP TABLE universes; --"}),
        ("add_assets_to_universe", "invalid_argument", {"universe_id": uid, "symbols": []}),
        (
            "add_assets_to_universe",
            "invalid_argument",
            {"universe_id": uid, "symbols": ["$$$", "hello world", "A" * 30]},
        ),
        ("add_assets_to_universe", "invalid_argument", {"universe_id": uid, "symbols": ["NASDAQ:NVDA"]}),
        ("add_assets_to_universe", "limit_exceeded", {"universe_id": uid, "symbols": ["AAPL"] * 100_000}),
        ("add_assets_to_universe", "invalid_argument", {"universe_id": uid, "symbols": [["nested"]]}),
        ("add_assets_to_universe", "not_found", {"universe_id": missing, "symbols": ["AAPL"]}),
        ("remove_assets_from_universe", "invalid_argument", {"universe_id": uid, "symbols": ["bad symbol"]}),
        ("remove_assets_from_universe", "limit_exceeded", {"universe_id": uid, "symbols": ["X"] * 1001}),
        ("get_universe_turnover", "not_found", {"universe_id": missing}),
        ("no_such_tool", "not_found", {}),
    ]


async def test_every_bad_input_is_a_small_fast_structured_error_that_changes_nothing(
    call, client, server, provider, seeded
):
    before = await snapshot(call)
    statements: list[str] = []
    event.listen(
        server.app_state.engine.sync_engine,
        "before_cursor_execute",
        lambda _conn, _cursor, statement, *_: statements.append(statement),
    )
    for tool, code, arguments in bad_cases(seeded):
        statements.clear()
        with anyio.fail_after(60):  # a hang detector, not a speed bound
            result = await client.call_tool(tool, arguments)
        envelope = result.structured_content
        assert result.is_error, (tool, arguments if len(str(arguments)) < 200 else "<large>")
        assert envelope["error"]["code"] == code, (tool, envelope["error"])
        assert envelope["error"]["message"] and envelope["data"] is None
        size = sum(len(c.text) for c in result.content)
        assert size < 5_000, f"{tool} error is {size} bytes"
        # Fast because it is refused before any real work: no symbol reaches a provider, and the store sees at most
        # the few reads that find the universe (validating 100,000 symbols first would show here, at any speed).
        assert provider.asked == 0, (tool, provider.asked)
        assert len(statements) <= 3, (tool, len(statements), [s[:60] for s in statements])
        text = json.dumps(envelope)
        for leak in ("Traceback", "sqlalchemy", "SELECT ", "/work/", '.py"', "x" * 300, "d" * 300):
            assert leak not in text, (tool, leak)
    assert await snapshot(call) == before


async def test_junk_symbols_are_each_named_with_a_reason(call, seeded):
    envelope = await call.error(
        "add_assets_to_universe",
        "invalid_argument",
        universe_id=seeded,
        symbols=["AAPL", "$$$", "hello world", "NASDAQ:NVDA"],
    )
    bad = envelope["error"]["details"]["invalid_symbols"]
    assert set(bad) == {"$$$", "hello world", "NASDAQ:NVDA"}
    assert envelope["error"]["details"]["candidates"] == ["NVDA"]
    assert "search_assets" in envelope["error"]["hint"]


async def test_duplicate_name_error_carries_the_existing_id(call, seeded):
    envelope = await call.error("create_universe", "already_exists", name="EXISTING")
    assert envelope["error"]["details"]["existing_id"] == seeded
    assert envelope["next_actions"] == [
        {"tool": "get_universe", "arguments": {"universe_id": seeded}, "reason": "look at the existing universe"}
    ]


async def test_unknown_arguments_get_did_you_mean(call, seeded):
    envelope = await call.error("get_universe", "invalid_argument", universe_id=seeded, include_asset=True)
    assert envelope["error"]["details"]["did_you_mean"] == {"include_asset": "include_assets"}


async def test_unknown_tool_offers_close_names(call):
    envelope = await call.error("list_universe", "not_found")
    assert envelope["error"]["details"]["candidates"][0] == "list_universes"


async def test_over_limit_symbols_point_to_bulk_validation(call, seeded):
    envelope = await call.error(
        "add_assets_to_universe", "limit_exceeded", universe_id=seeded, symbols=[f"S{i}" for i in range(1001)]
    )
    assert envelope["error"]["details"] == {"limit": 1000, "received": 1001, "bulk_tool": "start_bulk_validation"}
    assert "background job" in envelope["error"]["hint"]


async def test_a_crash_is_an_internal_error_with_an_id_and_no_details(call, seeded, monkeypatch, caplog):
    from services.universes import UniverseService

    async def boom(self, *args, **kwargs):
        raise RuntimeError("password=hunter2 SELECT * FROM universes")

    monkeypatch.setattr(UniverseService, "list", boom)
    envelope = await call.error("list_universes", "internal")
    error_id = envelope["error"]["details"]["error_id"]
    assert error_id in envelope["error"]["message"]
    assert "hunter2" not in json.dumps(envelope) and "SELECT" not in json.dumps(envelope)
    assert error_id in caplog.text  # the operator can find it
