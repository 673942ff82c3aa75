"""The refusals of services/universes.py, word for word: a model reads the message, the hint, the details and the
next actions of an error to decide what to do next, so each is part of the answer, not decoration.

Each expected envelope is written out from what the error is meant to say (the limits are the configured ones:
names 200 characters, descriptions 2,000, 1,000 symbols a call, pages of 1-200), not copied from an answer.
tests/tools/test_bad_input.py checks the error codes of many more malformed inputs and that they change nothing.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.anyio

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
        "message": "Nothing to change: pass name and/or description.",
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
    for label in ("since", "until"):
        error, _ = await refused(
            call, "get_universe_turnover", "invalid_argument", universe_id=uid, **{label: "2026-01-31T00:00:00"}
        )
        assert error["message"] == f"{label} needs a time zone, e.g. 2026-01-31T00:00:00Z."
    at = "2026-01-31T00:00:00+00:00"
    same, _ = await refused(call, "get_universe_turnover", "invalid_argument", universe_id=uid, since=at, until=at)
    assert same["message"] == "since must be earlier than until."


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
