"""One structured log line per tool call, resource read and job; the metrics they move; the request id.

In-process (the MCP client over build_server): the JSON lines are parsed, every field checked, and no line may hold
the owner's id, a universe's name or a token.
"""

from __future__ import annotations

import io
import json
import logging
import time
import uuid
from collections.abc import Iterator

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from prometheus_client import REGISTRY

from core.logs import JsonFormatter, TextFormatter, _RequestIdFilter
from server.app import build_server
from services import telemetry
from tests.conftest import Call

pytestmark = pytest.mark.anyio

FIELDS = {"ts", "level", "logger", "msg", "event", "request_id", "owner", "outcome", "elapsed_ms"}


class Lines:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    def all(self) -> list[dict]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines() if line.strip()]

    def events(self, name: str) -> list[dict]:
        return [line for line in self.all() if line.get("event") == name]

    def clear(self) -> None:
        self.stream.seek(0)
        self.stream.truncate()


def _capture(formatter: logging.Formatter) -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(_RequestIdFilter())
    log = telemetry.logger
    saved = (log.level, log.propagate)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False  # the test reads its own handler; pytest's would print every line
    try:
        yield stream
    finally:
        log.removeHandler(handler)
        log.setLevel(saved[0])
        log.propagate = saved[1]


@pytest.fixture
def json_lines() -> Iterator[Lines]:
    for stream in _capture(JsonFormatter()):
        yield Lines(stream)


@pytest.fixture
def text_lines() -> Iterator[io.StringIO]:
    yield from _capture(TextFormatter())


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_one_json_line_per_tool_call_with_every_field(settings, json_lines):
    server = build_server(settings)
    async with Client(server) as client:
        call = Call(client)
        began = time.perf_counter()
        created = await call.ok("create_universe", name="Secret Fund Alpha", symbols=["AAPL"])
        await call.ok("list_universes")
        await call.error("get_universe", "not_found", universe_id=str(uuid.uuid4()))
        await call.error("list_universes", "invalid_argument", bogus=1)
        await call.error("no_such_tool", "not_found")
        spent_ms = (time.perf_counter() - began) * 1000
        owner_id = str(server.app_state.local_caller.owner_id)

    lines = json_lines.events("tool_call")
    assert [(line["tool"], line["outcome"]) for line in lines] == [
        ("create_universe", "ok"),
        ("list_universes", "ok"),
        ("get_universe", "not_found"),
        ("list_universes", "invalid_argument"),
        ("unknown", "not_found"),  # a caller's made-up name never becomes a label or a log field
    ]
    for line in lines:
        assert FIELDS <= set(line), line
        assert line["level"] == "INFO" and line["logger"] == "universe_mcp.access"
        # A duration in milliseconds: more than nothing, and within the time the five calls took together.
        assert isinstance(line["elapsed_ms"], float) and 0 < line["elapsed_ms"] <= spent_ms, (line, spent_ms)
        assert line["owner"] == telemetry.owner_digest(owner_id) and len(line["owner"]) == 12
    assert len({line["request_id"] for line in lines}) == len(lines), "each call has its own request id"
    raw = json_lines.stream.getvalue()
    assert owner_id not in raw and "Secret Fund Alpha" not in raw and created["universe"]["id"] not in raw


async def test_resource_reads_are_logged_by_template_not_by_uri(settings, json_lines):
    async with Client(build_server(settings)) as client:
        created = await Call(client).ok("create_universe", name="Templates", symbols=["AAPL"])
        await client.read_resource(f"universe://{created['universe']['id']}")
        with pytest.raises(MCPError):
            await client.read_resource(f"universe://{uuid.uuid4()}")
    lines = json_lines.events("resource_read")
    assert [(line["resource"], line["outcome"]) for line in lines] == [
        ("universe://{universe_id}", "ok"),
        ("universe://{universe_id}", "not_found"),
    ]
    assert all(FIELDS <= set(line) for line in lines)
    assert created["universe"]["id"] not in json_lines.stream.getvalue()


async def test_a_finished_job_has_its_line_and_the_starting_call_names_it(make_settings, json_lines):
    settings = make_settings(toolsets=["universes", "jobs"])
    async with Client(build_server(settings)) as client:
        call = Call(client)
        job = await call.ok("start_bulk_validation", symbols=["AAPL", "MSFT", "NOPE1"])
        with anyio.fail_after(20):
            while (await call.ok("get_job_status", job_id=job["job_id"]))["status"] != "completed":  # noqa: ASYNC110
                await anyio.sleep(0.05)
    started = [line for line in json_lines.events("tool_call") if line["tool"] == "start_bulk_validation"]
    assert len(started) == 1 and started[0]["job_id"] == job["job_id"]
    finished = json_lines.events("job")
    assert len(finished) == 1, finished
    line = finished[0]
    assert line["job_id"] == job["job_id"] and line["outcome"] == "completed"
    assert line["owner"] == started[0]["owner"] and line["total"] == 3
    # Offline, the catalog knows AAPL and MSFT; NOPE1 no source can settle: pending.
    assert (line["valid"], line["invalid"], line["pending"], line["error"]) == (2, 0, 1, 0)
    assert isinstance(line["elapsed_ms"], float)


async def test_calls_move_the_counters_and_histograms(settings):
    before_ok = sample("universe_mcp_tool_calls_total", tool="list_universes", outcome="ok")
    before_bad = sample("universe_mcp_tool_calls_total", tool="list_universes", outcome="invalid_argument")
    before_hist = sample("universe_mcp_tool_call_duration_seconds_count", tool="list_universes", outcome="ok")
    before_miss = sample("universe_mcp_validation_cache_lookups_total", result="miss")
    before_hit = sample("universe_mcp_validation_cache_lookups_total", result="hit")
    async with Client(build_server(settings)) as client:
        call = Call(client)
        await call.ok("list_universes")
        await call.ok("list_universes")
        await call.error("list_universes", "invalid_argument", limit="many")
        await call.ok("validate_symbols", symbols=["AAPL", "MSFT"])  # two misses, answered by the catalog
        await call.ok("validate_symbols", symbols=["AAPL", "MSFT"])  # two hits
    assert sample("universe_mcp_tool_calls_total", tool="list_universes", outcome="ok") == before_ok + 2
    assert sample("universe_mcp_tool_calls_total", tool="list_universes", outcome="invalid_argument") == before_bad + 1
    assert (
        sample("universe_mcp_tool_call_duration_seconds_count", tool="list_universes", outcome="ok") == before_hist + 2
    )
    assert sample("universe_mcp_validation_cache_lookups_total", result="miss") == before_miss + 2
    assert sample("universe_mcp_validation_cache_lookups_total", result="hit") == before_hit + 2


def test_text_format_appends_fields_as_pairs(text_lines):
    token = telemetry.REQUEST_ID.set("req-1")
    try:
        telemetry.event("tool_call", "tool x ok in 1.0 ms", tool="x", outcome="ok", elapsed_ms=1.0, owner=None)
    finally:
        telemetry.REQUEST_ID.reset(token)
    line = text_lines.getvalue().strip()
    assert line.endswith("universe_mcp.access: tool x ok in 1.0 ms tool=x outcome=ok elapsed_ms=1.0 request_id=req-1")
    assert "owner" not in line  # absent fields are left out, not printed as None


def test_owner_digest_is_stable_short_and_not_the_id():
    owner = uuid.uuid4()
    assert telemetry.owner_digest(owner) == telemetry.owner_digest(str(owner))
    assert len(telemetry.owner_digest(owner)) == 12 and telemetry.owner_digest(owner) not in str(owner)
    assert telemetry.owner_digest(uuid.uuid4()) != telemetry.owner_digest(owner)


def test_request_ids_from_a_proxy_are_kept_only_when_sane():
    assert telemetry.new_request_id("abc-123_x.y") == "abc-123_x.y"
    for hostile in ("a b", "x" * 65, "id\nforged line", "", None):
        generated = telemetry.new_request_id(hostile)
        assert generated != hostile and len(generated) == 16
