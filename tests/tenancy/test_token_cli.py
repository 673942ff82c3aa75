"""`universe-mcp token create|list|revoke` as a user runs them."""

from __future__ import annotations

import subprocess

import pytest

from tests.support.servers import run_command, server_env


def cli(data_dir, *args: str) -> subprocess.CompletedProcess:
    return run_command(["token", *args], env=server_env(data_dir))


@pytest.mark.slow
def test_token_lifecycle_from_the_command_line(tmp_path):
    created = cli(tmp_path, "create", "--user", "alice", "--scopes", "read,validate", "--expires", "7d")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("umcp_") and len(token) > 40
    assert "shown only now" in created.stderr and token not in created.stderr

    listed = cli(tmp_path, "list")
    assert token[:12] in listed.stdout and "alice" in listed.stdout and "read validate" in listed.stdout
    assert token not in listed.stdout  # never the token itself

    assert cli(tmp_path, "revoke", token[:12]).returncode == 0
    assert "20" in cli(tmp_path, "list").stdout.splitlines()[1].split()[5]  # a revocation time is shown
    again = cli(tmp_path, "revoke", token[:12])
    assert again.returncode == 2 and "No active token" in again.stderr

    bad = cli(tmp_path, "create", "--user", "bob", "--scopes", "root")
    assert bad.returncode == 2 and "unknown scope" in bad.stderr and "admin" in bad.stderr

    # The admin scope (infrastructure detail in get_service_health) is given only when asked for.
    default = cli(tmp_path, "create", "--user", "carol")
    operator = cli(tmp_path, "create", "--user", "ops", "--scopes", "read,admin")
    assert default.returncode == 0 and operator.returncode == 0, operator.stderr
    assert "scopes read validate write;" in default.stderr
    assert "scopes admin read;" in operator.stderr
