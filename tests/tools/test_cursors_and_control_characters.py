"""Forged cursors and control characters (issue 10, item 13), on SQLite and on PostgreSQL.

Cursors are signed: nothing a caller makes up (non-UUID ids, null, 50,000-deep JSON, 10**30 offsets, another list's
cursor, an altered signature) reaches a parser or a query — each is invalid_argument, never internal. NUL and other
control characters in any string argument are invalid_argument naming the field (on PostgreSQL a NUL used to reach
the driver), while newlines and tabs stay fine in descriptions and CSV text.
"""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from mcp.types import ResourceTemplateReference

from tests.conftest import Call
from tests.support.servers import run_command, server_env
from tests.support.stores import pg_store, serve, store  # noqa: F401

pytestmark = pytest.mark.anyio


def unsigned(payload: object) -> str:
    """A cursor as the server used to issue them: base64url JSON, no signature."""
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def forged(real: str) -> list[str]:
    """Cursors no list returned, built from every angle an attacker (or a confused client) might try."""
    payload, tag = real.split(".")
    deep = base64.urlsafe_b64encode(b"[" * 50_000 + b"]" * 50_000).decode().rstrip("=")
    flipped = ("A" if tag[0] != "A" else "B") + tag[1:]
    return [
        unsigned({"k": "universes", "v": ["x", "not-a-uuid"]}),
        unsigned({"k": "universes", "v": [None, None]}),
        unsigned({"k": "members", "v": None}),
        unsigned({"k": "members_as_of", "v": None}),
        unsigned({"k": "members", "v": 10**30}),
        unsigned({"k": "members_as_of", "v": 10**30}),
        unsigned({"k": "search", "v": 10**30}),
        unsigned({"k": "job_items", "v": 10**30}),
        unsigned({"k": "job_items", "v": "1; DROP TABLE assets"}),
        deep,
        f"{deep}.{tag}",
        f"{unsigned({'k': 'members', 'v': 10**30})}.{tag}",  # another payload under a real signature
        f"{payload}.{flipped}",  # a real payload, signature altered
        payload,  # the signature dropped
        real + "x",
        # (The string "null" is not here: the SDK reads JSON-looking strings for optional arguments, so it means an
        # omitted cursor, the first page.)
        "[1]",  # read as a JSON list by the SDK: an argument of the wrong type
        "!!!",
        " ",
        "x" * 100_000,
    ]


async def make_fixtures(call: Call) -> dict:
    uid = (await call.ok("create_universe", name="Paged", symbols=["AAPL", "MSFT", "NVDA"], validate=False))[
        "universe"
    ]["id"]
    for name in ("Other one", "Other two"):
        await call.ok("create_universe", name=name)
    job = await call.ok("start_bulk_validation", symbols=["AAPL", "MSFT", "NVDA"])
    job_id = (job.get("job") or job)["job_id"]
    return {"uid": uid, "job_id": job_id}


async def test_forged_cursors_are_invalid_argument_on_every_paged_tool(store):
    async with serve(store(local_user=store.user("cursor"))) as client:
        call = Call(client)
        ids = await make_fixtures(call)
        lists = {
            "list_universes": {"limit": 1},
            "get_universe": {"universe_id": ids["uid"], "limit": 1},
            "get_universe as_of": {"universe_id": ids["uid"], "limit": 1, "as_of": "2100-01-01T00:00:00Z"},
            "search_assets": {"query": "a", "limit": 1},
        }
        for label, arguments in lists.items():
            tool = label.split()[0]
            real = (await call.ok(tool, **arguments))["next_cursor"]
            assert real, label
            await call.ok(tool, **arguments, cursor=real)  # a real cursor pages on
            for cursor in forged(real):
                envelope = await call.error(tool, "invalid_argument", **arguments, cursor=cursor)
                assert "cursor" in json.dumps(envelope["error"]), (label, envelope["error"])
        # Job items: the job exists (its outcomes page), the cursor does not.
        real = "eyJrIjoiam9iX2l0ZW1zIiwidiI6MH0.AAAAAAAAAAAAAAAAAAAAAA"
        for cursor in forged(real):
            await call.error(
                "get_job_status", "invalid_argument", job_id=ids["job_id"], include_items=True, limit=1, cursor=cursor
            )
        # A cursor of another list is refused too (signed, but for another kind).
        other = (await call.ok("list_universes", limit=1))["next_cursor"]
        await call.error("search_assets", "invalid_argument", query="a", cursor=other)
        await call.error("get_universe", "invalid_argument", universe_id=ids["uid"], cursor=other)


async def test_a_cursor_from_another_process_on_the_same_store_pages_on(make_settings):
    """Replicas share the store's signing key: a cursor issued by one process is good in another."""
    settings = make_settings()
    async with serve(settings) as client:
        call = Call(client)
        for name in ("First", "Second", "Third"):
            await call.ok("create_universe", name=name)
    out = run_command(
        ["call", "list_universes", "--args", '{"limit": 1}'], env=server_env(settings.data_dir), check=True
    ).stdout
    cursor = json.loads(out)["data"]["next_cursor"]
    async with serve(settings) as client:
        page = await Call(client).ok("list_universes", limit=5, cursor=cursor)
    assert [u["name"] for u in page["universes"]] == ["Second", "Third"]


async def snapshot(call: Call) -> list:
    state = []
    for u in (await call.ok("list_universes", limit=200))["universes"]:
        detail = await call.ok("get_universe", universe_id=u["id"], limit=200)
        state.append((u["name"], u["description"], [a["symbol"] for a in detail["assets"]]))
    return state


async def test_control_characters_are_invalid_argument_naming_the_field(store):
    async with serve(store(local_user=store.user("ctrl"))) as client:
        call = Call(client)
        uid = (await call.ok("create_universe", name="Clean", symbols=["AAPL"], validate=False))["universe"]["id"]
        before = await snapshot(call)
        cases = [
            ("create_universe", {"name": "Bad\x00name"}, "name"),
            ("create_universe", {"name": "Bad\ud800name"}, "name"),  # a lone surrogate cannot be stored either
            ("create_universe", {"name": "Two\nlines"}, "name"),
            ("create_universe", {"name": "Tab\tbed"}, "name"),
            ("create_universe", {"name": "Fine", "description": "nul\x00inside"}, "description"),
            ("create_universe", {"name": "Fine", "description": "escape \x1b[31m red"}, "description"),
            ("create_universe", {"name": "Fine", "symbols": ["AAPL", "MS\x00FT"]}, "symbols[1]"),
            ("update_universe", {"universe_id": uid, "name": "\x07bell"}, "name"),
            ("update_universe", {"universe_id": uid, "description": "c1 \x85 control"}, "description"),
            ("add_assets_to_universe", {"universe_id": uid, "symbols": ["\x00"]}, "symbols[0]"),
            ("remove_assets_from_universe", {"universe_id": uid, "symbols": ["AAPL\x7f"]}, "symbols[0]"),
            ("get_universe", {"universe_id": f"{uid}\x00"}, "universe_id"),
            ("list_universes", {"name_contains": "Cl\x00"}, "name_contains"),
            ("search_assets", {"query": "AA\x00"}, "query"),
            ("search_assets", {"query": "apple", "sector": "Energy\x00"}, "sector"),
            ("get_asset", {"symbol": "AAPL\x00"}, "symbol"),
            ("validate_symbols", {"symbols": ["AAPL", "\x1b"]}, "symbols[1]"),
            ("import_universe_csv", {"csv_text": "symbol\nAAPL\n", "name": "Imp\x00"}, "name"),
            ("import_universe_csv", {"csv_text": "symbol\nAAPL\ud800\n", "universe_id": uid}, "csv_text"),
        ]
        for tool, arguments, field in cases:
            envelope = await call.error(tool, "invalid_argument", **arguments)
            assert envelope["error"]["details"]["field"] == field, (tool, envelope["error"])
            assert field in envelope["error"]["message"]
        # A file with NUL bytes is judged by the CSV reader, which says why.
        binary = await call.error(
            "import_universe_csv", "invalid_argument", csv_text="symbol\nAA\x00PL\n", universe_id=uid
        )
        assert "binary" in binary["error"]["message"]
        assert await snapshot(call) == before  # nothing changed

        # Newlines and tabs are fine where text spans lines.
        described = await call.ok(
            "update_universe", universe_id=uid, description="Line one\nLine two\twith a tab\r\nand CRLF"
        )
        assert described["universe"]["description"] == "Line one\nLine two\twith a tab\r\nand CRLF"
        imported = await call.ok("import_universe_csv", csv_text="symbol\tname\r\nMSFT\tMicrosoft\r\n", universe_id=uid)
        assert imported["counts"]["added"] == 1

        # Completions never pass a control character to the store either.
        ref = ResourceTemplateReference(type="ref/resource", uri="universe://{universe_id}")
        assert (await client.complete(ref, {"name": "universe_id", "value": "Cl\x00"})).completion.values == []
        assert (await client.complete(ref, {"name": "universe_id", "value": "Cle"})).completion.values == [uid]


async def test_a_nul_free_name_with_unusual_characters_is_still_accepted(store):
    async with serve(store(local_user=store.user("uni"))) as client:
        call = Call(client)
        name = f"Ünïcödé 日本 📈 {uuid.uuid4().hex[:4]}"
        created = await call.ok("create_universe", name=name, description="emoji 👨‍💻 and\nlines")
        assert created["universe"]["name"] == name
