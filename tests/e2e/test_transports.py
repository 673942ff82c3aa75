"""End to end with the official client: stdio and streamable HTTP, guards at the edge, restart durability."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import httpx
import pytest
from mcp import Client, StdioServerParameters

from tests.support.servers import ROOT, http_server, run_command, server_env, spawn

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def deep_call(levels: int, request_id: int = 99) -> dict:
    arguments: dict = {}
    cur = arguments
    for _ in range(levels):
        cur["x"] = {}
        cur = cur["x"]
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": "list_universes", "arguments": {"name_contains": arguments}},
    }


async def test_stdio_round_trip_and_deep_nesting_is_answered_not_dropped(data_dir):
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "server", "serve", "--transport", "stdio"],
        cwd=str(ROOT),
        env=server_env(data_dir),
    )
    async with Client(params) as c:
        created = await c.call_tool("create_universe", {"name": "Over stdio", "symbols": ["AAPL"], "validate": False})
        assert not created.is_error
        listed = await c.call_tool("list_universes", {})
        assert [u["name"] for u in listed.structured_content["data"]["universes"]] == ["Over stdio"]

    # A raw stdio exchange: the guard answers an over-deep message with a JSON-RPC error carrying its id.
    server = spawn(["serve", "--transport", "stdio"], env=server_env(data_dir), log=None, pipes=True)
    # A hang detector, not a speed bound (it includes the server's start-up): a dropped message leaves readline()
    # waiting, so the watchdog kills the server and readline() returns an empty line.
    watchdog = threading.Timer(60, server.proc.kill)
    watchdog.start()
    try:
        server.proc.stdin.write(json.dumps(deep_call(200, request_id=41)) + "\n")
        server.proc.stdin.flush()
        line = server.proc.stdout.readline()
    finally:
        watchdog.cancel()
        server.kill()
    assert line, "the over-deep message was dropped: no answer within 60 s"
    reply = json.loads(line)
    assert reply["id"] == 41 and reply["error"]["code"] == -32600
    assert reply["error"]["data"]["code"] == "invalid_argument"
    assert len(line) < 2_000


async def test_http_round_trip_guard_and_restart_durability(data_dir):
    with http_server(data_dir) as url:
        async with Client(url) as c:
            created = await c.call_tool(
                "create_universe", {"name": "Durable", "symbols": ["MSFT", "NVDA"], "validate": False}
            )
            uid = created.structured_content["data"]["universe"]["id"]
            bad = await c.call_tool("get_universe", {"universe_id": "nope"})
            assert bad.is_error and bad.structured_content["error"]["code"] == "invalid_argument"
        headers = {
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
            "mcp-protocol-version": "2025-11-25",
        }
        # timeout=60: a hang detector, not a speed bound; the answer itself (400 with the id) is the check.
        response = httpx.post(url, content=json.dumps(deep_call(200, request_id=7)), headers=headers, timeout=60)
        assert response.status_code == 400 and len(response.content) < 2_000
        assert response.json()["id"] == 7 and response.json()["error"]["data"]["code"] == "invalid_argument"
        huge = httpx.post(
            url,
            content=b'{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"x","arguments":{"a":"'
            + b"x" * 3_000_000
            + b'"}}}',
            headers=headers,
            timeout=60,
        )
        assert huge.status_code in (400, 413) and len(huge.content) < 2_000

    # Same data dir, a new process: the universe is still there.
    with http_server(data_dir) as url:
        async with Client(url) as c:
            detail = await c.call_tool("get_universe", {"universe_id": uid})
            assert [a["symbol"] for a in detail.structured_content["data"]["assets"]] == ["MSFT", "NVDA"]


async def test_http_legacy_protocol_era_works(data_dir):
    with http_server(data_dir) as url:
        async with Client(url, mode="legacy") as c:
            result = await c.call_tool("create_universe", {"name": "Legacy"})
            assert not result.is_error


def test_non_loopback_bind_without_auth_refuses_to_start(data_dir):
    proc = run_command(["serve", "--host", "0.0.0.0", "--port", "0"], env=server_env(data_dir))
    assert proc.returncode != 0
    assert "Refusing to serve" in proc.stderr


def test_cli_call_in_process_and_against_a_running_server(data_dir):
    def cli(*args: str) -> subprocess.CompletedProcess:
        return run_command(["call", *args], env=server_env(data_dir))

    created = cli("create_universe", "--args", '{"name": "From a script", "symbols": ["AAPL"], "validate": false}')
    assert created.returncode == 0, created.stderr
    uid = json.loads(created.stdout)["data"]["universe"]["id"]
    failed = cli("get_universe", "--args", '{"universe_id": "nope"}')
    assert failed.returncode == 1 and json.loads(failed.stdout)["error"]["code"] == "invalid_argument"
    assert cli("get_universe", "--args", "not json").returncode == 2
    with http_server(data_dir) as url:
        remote = cli("get_universe", "--args", json.dumps({"universe_id": uid}), "--url", url)
        assert remote.returncode == 0, remote.stderr
        assert json.loads(remote.stdout)["data"]["universe"]["name"] == "From a script"
