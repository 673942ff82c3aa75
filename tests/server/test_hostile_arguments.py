"""Property-based: forged cursors and control characters against every tool that takes them (issue 10, item 13).

The tools, and which of their arguments are text or a cursor, are read from the registered server's tool list, so
a new tool is covered as soon as it exists (a new required argument needs a sample in SAMPLES: the test says so).
Every example must be a structured invalid_argument — never internal, never a success — and change nothing.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from mcp import Client

from core.settings import Settings
from server.app import build_server
from tests.conftest import Call

EXAMPLES = hypothesis_settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,  # the same examples every run: a failure here is a bug, not bad luck
    database=None,
)
# Arguments that need a real value for a call to get as far as its text or cursor.
EXTRA = {"get_job_status": {"include_items": True}}
CURSOR_KINDS = ["universes", "members", "members_as_of", "search", "job_items"]
# Never legitimate in a one-line value; description may hold tab and line breaks, csv_text is a file (its reader
# judges the content: NUL means binary), and nothing may hold a lone surrogate.
LINE_CONTROLS = [chr(c) for c in range(0x20)] + ["\x7f", "\x80", "\x85", "\x9f", "\ud800", "\udfff"]
MULTILINE_CONTROLS = [c for c in LINE_CONTROLS if c not in "\t\n\r"]
FILE_CONTROLS = ["\x00", "\ud800", "\udc00"]


def controls_for(argument: str) -> list[str]:
    return {"description": MULTILINE_CONTROLS, "csv_text": FILE_CONTROLS}.get(argument, LINE_CONTROLS)


def text_types(schema: dict[str, Any]) -> set[str]:
    """'str' if the argument takes a string, 'list' if a list of strings (from its JSON schema)."""
    kinds: set[str] = set()
    for option in [schema, *schema.get("anyOf", [])]:
        types = option.get("type", [])
        types = [types] if isinstance(types, str) else types
        if "string" in types or "enum" in option:
            kinds.add("str")
        if "array" in types and option.get("items", {}).get("type") == "string":
            kinds.add("list")
    return kinds


@dataclass
class Target:
    tool: str
    argument: str
    kind: str  # str | list
    base: dict[str, Any]  # the other arguments: real values


T = TypeVar("T")


@dataclass
class Hostile:
    client: Client
    call: Call
    text_targets: list[Target]
    cursor_targets: list[Target]
    uid: str
    portal: BlockingPortal | None = None

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        assert self.portal is not None
        return self.portal.call(fn, *args)

    async def state(self) -> tuple:
        universes = (await self.call.ok("list_universes", limit=200))["universes"]
        members = (await self.call.ok("get_universe", universe_id=self.uid, limit=200))["assets"]
        return (
            [(u["name"], u["description"], u["asset_count"]) for u in universes],
            [m["symbol"] for m in members],
        )

    async def expect_invalid(self, tool: str, arguments: dict[str, Any], field: str) -> None:
        result = await self.client.call_tool(tool, arguments)
        envelope = result.structured_content
        assert result.is_error and envelope is not None, (tool, field, "accepted")
        error = envelope["error"]
        assert error["code"] == "invalid_argument", (tool, field, error)
        assert error["message"] and error["hint"], (tool, field, error)
        assert field.split("[")[0] in json.dumps(error), (tool, field, error)  # the field is named


@asynccontextmanager
async def open_hostile(settings: Settings) -> AsyncIterator[Hostile]:
    async with Client(build_server(settings)) as client:
        call = Call(client)
        uid = (await call.ok("create_universe", name="Target", description="keep", symbols=["AAPL", "MSFT"]))[
            "universe"
        ]["id"]
        await call.ok("create_universe", name="Second")
        await call.ok("create_universe", name="Third")
        job = await call.ok("start_bulk_validation", symbols=["AAPL", "MSFT", "NVDA"])
        samples = {
            "universe_id": uid,
            "job_id": (job.get("job") or job)["job_id"],
            "name": "Hostile sample",
            "symbols": ["AAPL"],
            "query": "apple",
            "symbol": "AAPL",
            "csv_text": "symbol\nAAPL\n",
            "rules": {"field": "sector", "op": "eq", "value": "Energy"},
        }
        text_targets, cursor_targets = [], []
        for tool in (await client.list_tools()).tools:
            schema = tool.input_schema
            missing = [r for r in schema.get("required", []) if r not in samples]
            assert not missing, f"{tool.name} needs a sample value for {missing} in this test's samples"
            base = {r: samples[r] for r in schema.get("required", [])} | EXTRA.get(tool.name, {})
            for argument, prop in schema.get("properties", {}).items():
                for kind in sorted(text_types(prop)):
                    text_targets.append(Target(tool.name, argument, kind, base))
            if "cursor" in schema.get("properties", {}):
                cursor_targets.append(Target(tool.name, "cursor", "str", base))
                if "as_of" in schema["properties"]:  # the point-in-time pages have cursors of their own
                    cursor_targets.append(Target(tool.name, "cursor", "str", base | {"as_of": "2100-01-01T00:00:00Z"}))
        assert len(text_targets) > 30 and len(cursor_targets) >= 4, (len(text_targets), len(cursor_targets))
        yield Hostile(client, call, text_targets, cursor_targets, uid)


@pytest.fixture
def hostile(settings: Settings) -> Iterator[Hostile]:
    """The server runs in a portal's event loop (a thread): hypothesis drives plain functions, which call into it."""
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(open_hostile(settings)) as opened:
        opened.portal = portal
        yield opened


def inject(target: Target, text: str) -> dict[str, Any]:
    value: Any = ["AAPL", text] if target.kind == "list" else text
    return target.base | {target.argument: value}


def field_of(target: Target) -> str:
    return f"{target.argument}[1]" if target.kind == "list" else target.argument


def test_every_text_argument_of_every_tool_refuses_every_control_character(hostile):
    before = hostile.run(hostile.state)
    for target in hostile.text_targets:
        for control in controls_for(target.argument):
            arguments = inject(target, f"ok{control}ok")
            if target.argument == "csv_text" and control == "\x00":
                # The CSV reader refuses a NUL file as binary; it names no field but the whole file.
                result = hostile.run(hostile.client.call_tool, target.tool, arguments)
                assert result.is_error and result.structured_content["error"]["code"] == "invalid_argument"
                continue
            hostile.run(hostile.expect_invalid, target.tool, arguments, field_of(target))
    assert hostile.run(hostile.state) == before


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=12,
)
payloads = st.fixed_dictionaries({"k": st.sampled_from(CURSOR_KINDS) | st.text(max_size=8), "v": json_values}).map(
    lambda p: b64(json.dumps(p).encode())
)
tags = st.binary(max_size=20).map(b64)


def _means_no_cursor(text: str) -> bool:
    # "" is no cursor, and the SDK reads JSON-looking strings for optional arguments: "null" is None (first page).
    if not text:
        return True
    try:
        return json.loads(text) is None
    except ValueError:
        return False


forged_cursors = st.one_of(
    st.text(max_size=300),
    payloads,
    st.tuples(payloads, tags).map(".".join),
    st.tuples(payloads, st.text(alphabet="ABCDEFabcdef0123456789-_", min_size=22, max_size=22)).map(".".join),
    st.sampled_from(
        [
            b64(b"[" * 50_000 + b"]" * 50_000),
            b64(json.dumps({"k": "members", "v": 10**30}).encode()) + "." + "A" * 22,
            b64(json.dumps({"k": "universes", "v": ["x", "not-a-uuid"]}).encode()),
            "x" * 20_000,
        ]
    ),
).filter(lambda c: not _means_no_cursor(c))


@EXAMPLES
@given(data=st.data(), cursor=forged_cursors)
def test_property_forged_cursors_are_invalid_argument(hostile, data, cursor):
    target = data.draw(st.sampled_from(hostile.cursor_targets))
    before = hostile.run(hostile.state)
    hostile.run(hostile.expect_invalid, target.tool, target.base | {"cursor": cursor}, "cursor")
    assert hostile.run(hostile.state) == before


@EXAMPLES
@given(data=st.data(), prefix=st.text(max_size=12), suffix=st.text(max_size=12))
def test_property_control_characters_are_invalid_argument(hostile, data, prefix, suffix):
    target = data.draw(st.sampled_from(hostile.text_targets))
    controls = [c for c in controls_for(target.argument) if target.argument != "csv_text" or c != "\x00"]
    control = data.draw(st.sampled_from(controls))
    before = hostile.run(hostile.state)
    hostile.run(hostile.expect_invalid, target.tool, inject(target, prefix + control + suffix), field_of(target))
    assert hostile.run(hostile.state) == before
