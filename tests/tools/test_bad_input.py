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
        ("create_universe", "already_exists", {"name": "Existing", "symbols": ["ZZQA", "ZZQB"]}),  # before providers
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
        ("get_universe_history", "not_found", {"universe_id": missing}),
        ("get_universe_history", "invalid_argument", {"universe_id": uid, "cursor": "not-a-cursor"}),
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


# --- the refusals of services/universes.py, word for word -----------------------------------------------------------
# A model reads the message, the hint, the details and the next actions of an error to decide what to do next, so
# each is part of the answer. Each expected envelope is written out from what the error is meant to say (the limits
# are the configured ones: names 200 characters, descriptions 2,000, 1,000 symbols a call, pages of 1-200).
MISSING = "6f1c2a4e-0000-4000-8000-000000000000"
NOT_FOUND = {
    "code": "not_found",
    "message": f"No universe with id {MISSING} exists for you.",
    "hint": "The id may be mistyped or the universe deleted; list_universes shows the ones you have.",
    "details": {},
}
NOT_FOUND_ACTIONS = [{"tool": "list_universes", "arguments": {}, "reason": "see your universes and their ids"}]


async def refused(call, tool: str, code: str, **arguments) -> tuple[dict, list]:
    envelope = await call.error(tool, code, **arguments)
    assert envelope["message"] == envelope["error"]["message"]
    return envelope["error"], envelope["next_actions"]


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("get_universe", {}),
        ("get_universe", {"as_of": "2026-01-31T00:00:00Z"}),
        ("update_universe", {"name": "Renamed"}),
        ("delete_universe", {}),
        ("add_assets_to_universe", {"symbols": ["AAPL"], "validate": False}),
        ("remove_assets_from_universe", {"symbols": ["AAPL"]}),
        ("get_universe_turnover", {}),
        ("get_universe_history", {}),
    ],
)
async def test_a_missing_universe_is_not_found_with_the_way_to_find_its_id(call, tool, arguments):
    error, actions = await refused(call, tool, "not_found", universe_id=MISSING, **arguments)
    assert error == NOT_FOUND
    assert actions == NOT_FOUND_ACTIONS


async def test_a_malformed_id_says_what_an_id_looks_like(call):
    error, actions = await refused(call, "get_universe", "invalid_argument", universe_id="  u-42 ")
    assert error == {
        "code": "invalid_argument",
        "message": "'  u-42 ' is not a universe id (ids are UUIDs such as 6f1c2a4e-...).",
        "hint": "Call list_universes to find the id of a universe by its name.",
        "details": {},
    }
    assert actions == [{"tool": "list_universes", "arguments": {}, "reason": "find the universe id by name"}]
    long, _ = await refused(call, "delete_universe", "invalid_argument", universe_id="x" * 500)
    assert long["message"] == f"{'x' * 60!r} is not a universe id (ids are UUIDs such as 6f1c2a4e-...)."
    # The id is stripped of surrounding spaces before it is read.
    await call.error("get_universe", "not_found", universe_id=f"  {MISSING} ")


async def test_names_descriptions_and_their_limits(call):
    empty, _ = await refused(call, "create_universe", "invalid_argument", name="\u200b \u200d ")
    assert empty == {
        "code": "invalid_argument",
        "message": "The universe name is empty (or only invisible characters).",
        "hint": "Give the universe a short descriptive name.",
        "details": {},
    }
    too_long, _ = await refused(call, "create_universe", "invalid_argument", name="n" * 201)
    assert too_long == {
        "code": "invalid_argument",
        "message": "The universe name is 201 characters long; the limit is 200.",
        "hint": "Use a shorter name and put the detail in description.",
        "details": {},
    }
    # 150 characters that case folding doubles ("ß" -> "ss"): short as typed, too long once normalised.
    folded, _ = await refused(call, "create_universe", "invalid_argument", name="ß" * 150)
    assert folded == {
        "code": "invalid_argument",
        "message": "The universe name is 300 characters long once normalised; the limit is 200.",
        "hint": "Use a shorter name and put the detail in description.",
        "details": {},
    }
    wordy, _ = await refused(call, "create_universe", "invalid_argument", name="Wordy", description="d" * 2001)
    assert wordy == {
        "code": "invalid_argument",
        "message": "The description is 2001 characters long; the limit is 2000.",
        "hint": "Shorten the description.",
        "details": {},
    }
    # Exactly at each limit is allowed; spaces are collapsed before the length is counted.
    at_limit = await call.ok("create_universe", name=" ".join(["n" * 99, "m" * 100]) + "   ", description="d" * 2000)
    assert len(at_limit["universe"]["name"]) == 200 and len(at_limit["universe"]["description"]) == 2000
    spaced = await call.ok("create_universe", name="a" + " " * 300 + "b")
    assert spaced["universe"]["name"] == "a b"
    assert (await call.ok("create_universe", name="ß" * 100))["universe"]["name"] == "ß" * 100  # 200 folded


async def test_a_taken_name_names_the_universe_that_has_it(call):
    existing = (await call.ok("create_universe", name="Value picks"))["universe"]["id"]
    other = (await call.ok("create_universe", name="Other"))["universe"]["id"]
    expected_error = {
        "code": "already_exists",
        "message": "You already have a universe named 'Value picks'.",
        "hint": "Pick another name, or change the existing universe (its id is in details).",
        "details": {"existing_id": existing, "existing_name": "Value picks"},
    }
    expected_actions = [
        {"tool": "get_universe", "arguments": {"universe_id": existing}, "reason": "look at the existing universe"}
    ]
    for tool, arguments in (
        ("create_universe", {"name": "VALUE  picks"}),
        ("update_universe", {"universe_id": other, "name": "value Picks"}),
    ):
        error, actions = await refused(call, tool, "already_exists", **arguments)
        assert (error, actions) == (expected_error, expected_actions), tool


async def test_an_update_that_changes_nothing_asks_for_a_field(call):
    uid = (await call.ok("create_universe", name="Quiet"))["universe"]["id"]
    error, _ = await refused(call, "update_universe", "invalid_argument", universe_id=uid)
    assert error == {
        "code": "invalid_argument",
        "message": "Nothing to change: pass name, description, rules, rebalance, include, exclude or kind.",
        "hint": None,
        "details": {},
    }


async def test_page_sizes_cursors_and_times_are_checked(call):
    uid = (await call.ok("create_universe", name="Paged", symbols=["AAPL"], validate=False))["universe"]["id"]
    for tool, arguments in (("list_universes", {}), ("get_universe", {"universe_id": uid})):
        for limit in (0, 201):
            error, _ = await refused(call, tool, "invalid_argument", limit=limit, **arguments)
            assert error["message"] == f"limit must be between 1 and 200; got {limit}.", (tool, limit)
        for limit in (1, 200):
            await call.ok(tool, limit=limit, **arguments)
    members_cursor = (await call.ok("get_universe", universe_id=uid, limit=1, include_assets=True))["next_cursor"]
    assert members_cursor is None  # one member, one page
    naive, _ = await refused(call, "get_universe", "invalid_argument", universe_id=uid, as_of="2026-01-31T00:00:00")
    assert naive["message"] == "as_of needs a time zone, e.g. 2026-01-31T00:00:00Z."
    for tool in ("get_universe_turnover", "get_universe_history"):
        for label in ("since", "until"):
            error, _ = await refused(call, tool, "invalid_argument", universe_id=uid, **{label: "2026-01-31T00:00:00"})
            assert error["message"] == f"{label} needs a time zone, e.g. 2026-01-31T00:00:00Z.", tool
            assert error["details"] == {"field": label}
        at, earlier = "2026-01-31T00:00:00+00:00", "2026-01-30T00:00:00+00:00"
        for since, until in ((at, at), (at, earlier)):
            error, _ = await refused(call, tool, "invalid_argument", universe_id=uid, since=since, until=until)
            assert error["message"] == f"since ({since}) must be earlier than until ({until}).", tool
    for limit in (0, 101):
        error, _ = await refused(call, "get_universe_history", "invalid_argument", universe_id=uid, limit=limit)
        assert error["message"] == f"limit must be between 1 and 100; got {limit}."
    for limit in (1, 100):
        await call.ok("get_universe_history", universe_id=uid, limit=limit)


async def test_symbol_lists_empty_or_too_long(call):
    uid = (await call.ok("create_universe", name="Sized"))["universe"]["id"]
    add_empty, _ = await refused(call, "add_assets_to_universe", "invalid_argument", universe_id=uid, symbols=[])
    assert add_empty == {
        "code": "invalid_argument",
        "message": "symbols is empty.",
        "hint": 'Pass one or more tickers, e.g. ["AAPL", "MSFT"].',
        "details": {},
    }
    remove_empty, _ = await refused(
        call, "remove_assets_from_universe", "invalid_argument", universe_id=uid, symbols=[]
    )
    assert remove_empty == {
        "code": "invalid_argument",
        "message": "symbols is empty.",
        "hint": 'Pass the tickers to remove, e.g. ["AAPL"].',
        "details": {},
    }
    expected = {
        "code": "limit_exceeded",
        "message": "1001 symbols in one call; the limit is 1000.",
        "hint": "Send at most 1000 symbols per call, or validate a large list first as a background job with "
        "start_bulk_validation (up to 10,000 symbols), then add it in chunks.",
        "details": {"limit": 1000, "received": 1001, "bulk_tool": "start_bulk_validation"},
    }
    many = [f"S{i}" for i in range(1001)]
    for tool, arguments in (
        ("create_universe", {"name": "Too many", "symbols": many}),
        ("add_assets_to_universe", {"universe_id": uid, "symbols": many}),
        ("remove_assets_from_universe", {"universe_id": uid, "symbols": many}),
    ):
        error, actions = await refused(call, tool, "limit_exceeded", **arguments)
        assert error == expected, tool
        assert not any("S1000" in str(action) for action in actions)  # the list is never echoed back
    # Exactly the limit is one call.
    full = await call.ok("add_assets_to_universe", universe_id=uid, symbols=many[:1000], validate=False)
    assert full["universe"]["asset_count"] == 1000


async def test_a_signed_cursor_of_another_shape_is_refused(call):
    """Cursors are signed, so only this server's reach the lists; one of another shape (another version's, another
    list's) is still refused as not this list's rather than read as a position."""
    from services.pagination import encode_cursor

    uid = (await call.ok("create_universe", name="Shaped", symbols=["AAPL"], validate=False))["universe"]["id"]
    expected = {
        "code": "invalid_argument",
        "message": "The cursor is not one this list returned.",
        "hint": None,
        "details": {},
    }
    for value in (["universe"], ["a", "b", "c"], ["name", 7], [7, "id"]):
        error, _ = await refused(call, "list_universes", "invalid_argument", cursor=encode_cursor("universes", value))
        assert error == expected, value
    for value in ("3", 1.5, [2]):
        error, _ = await refused(
            call, "get_universe", "invalid_argument", universe_id=uid, cursor=encode_cursor("members", value)
        )
        assert error == expected, value
