"""tests/support/servers.py: a server that cannot start says why, and a failure while one runs carries its log."""

from __future__ import annotations

import pytest

from tests.support.servers import ServerFailed, serve_http, server_env, spawn

pytestmark = [pytest.mark.slow]


def test_a_server_that_exits_before_it_is_ready_reports_its_log(tmp_path):
    env = server_env(tmp_path / "data", UNIVERSE_MCP_DATABASE_URL="not a url")
    with pytest.raises(ServerFailed) as failed:
        spawn(["serve"], env=env, log=tmp_path / "serve.log", ready=lambda _: False, name="serve")
    assert str(failed.value).startswith("serve exited with 3:\nuniverse-mcp: ")
    assert "UNIVERSE_MCP_DATABASE_URL" in str(failed.value)


def test_a_failure_while_the_server_runs_carries_its_log_and_the_server_is_stopped(tmp_path):
    data = tmp_path / "data"
    with pytest.raises(AssertionError) as failed:
        with serve_http(data, UNIVERSE_MCP_LOG_LEVEL="INFO") as server:
            raise AssertionError("the client saw something wrong")
    assert server.proc.poll() is not None  # stopped
    (note,) = failed.value.__notes__
    assert note.startswith(f"--- serve on {server.url} log ({server.log}), last lines ---\n")
    assert note.removeprefix(note.splitlines()[0] + "\n") == server.tail()
    assert "Application shutdown complete." in note  # read after the stop: the way out is in it too
