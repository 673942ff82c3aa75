"""Dockerfile and compose.yaml (docs/DEPLOYMENT.md, "Containers"), checked without a container runtime.

Static checks: the image is a slim Python 3.11, runs as a non-root user, has a health check and copies what the
wheel is built from; every compose service runs a command the CLI's own parser accepts, with settings the settings
class accepts (the owner's and the app role's database URLs, Redis, token auth, allowed hosts), health checks, and
the start order migrations need. Then, for real: the PostgreSQL init script, the `migrate` service's command, a token,
a server and a worker with the compose environment (addresses pointed at this machine's PostgreSQL and Redis), and
the image's health check probing them.

The same topology runs from local binaries in tests/tenancy/test_replicas_and_jwt.py (two replicas, token auth, the
app role with the owner URL, one Redis), tests/workers/test_distributed.py (worker processes) and
tests/tenancy/test_db_upgrade.py (`db upgrade` as the owner).
"""

from __future__ import annotations

import ast
import fnmatch
import importlib.util
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import tomllib
from typing import Any

import anyio
import pytest
import yaml
from sqlalchemy.engine import make_url

from core.settings import Settings
from server.cli import build_parser
from tests.packaging.support import ROOT
from tests.support.servers import http_server, run_command, server_env, spawn
from tests.support.services import require_service
from tests.tenancy.conftest import connect, envelope

APP_SERVICES = {"migrate": ("db",), "server-1": ("serve",), "server-2": ("serve",), "worker": ("worker",)}
APP_SERVICES |= {"scheduler": ("scheduler",)}
SERVERS = ("server-1", "server-2")
# What compose interpolates ${VAR} with in these checks: the variables it requires, and nothing else set.
COMPOSE_ENV = {
    "POSTGRES_PASSWORD": "pg-secret",
    "UNIVERSE_OWNER_PASSWORD": "owner-secret",
    "UNIVERSE_APP_PASSWORD": "app-secret",
}
SETTING_NAMES = {f"UNIVERSE_MCP_{name.upper()}" for name in Settings.model_fields}


# --- reading the files --------------------------------------------------------------------------------------------


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's build stages, each a list of (INSTRUCTION, arguments), continuation lines joined."""
    logical: list[str] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[list[tuple[str, str]]] = []
    for line in logical:
        instruction, _, arguments = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), arguments.strip()))
    return stages


def _exec_form(arguments: str) -> list[str]:
    value = json.loads(arguments)
    assert isinstance(value, list) and all(isinstance(a, str) for a in value), arguments
    return value


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error} and $$."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        name, operator, word = match["name"], match["op"], match["word"] or ""
        present = name in env and (env[name] != "" or not (operator or "").startswith(":"))
        if operator in (":?", "?") and not present:
            raise AssertionError(f"compose would refuse to start: {name}: {word}")
        return env[name] if present else (word if operator in (":-", "-") else "")

    return re.sub(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<word>[^}]*))?\}", substitute, value)


def compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    return interpolate(yaml.safe_load((ROOT / "compose.yaml").read_text()), COMPOSE_ENV if env is None else env)


def service_env(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as the container gets it: a key without a value is passed on only when set (in
    these checks, it is not)."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, None) for item in raw)
    return {k: str(v) for k, v in raw.items() if v is not None}


def argv(service: dict[str, Any]) -> list[str]:
    final = dockerfile_stages()[-1]
    entrypoint = _exec_form(next(a for i, a in final if i == "ENTRYPOINT"))
    default = _exec_form(next(a for i, a in final if i == "CMD"))
    assert "entrypoint" not in service, "the image's entry point (universe-mcp) is kept"
    return [*entrypoint, *service.get("command", default)]


def settings_for(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    unknown = {k for k in env if k.startswith("UNIVERSE_MCP_")} - SETTING_NAMES
    assert not unknown, f"not settings (they would be ignored): {unknown}"
    for name in [k for k in os.environ if k.startswith("UNIVERSE_MCP_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


# --- Dockerfile -----------------------------------------------------------------------------------------------------


def test_the_image_is_slim_python_311_non_root_with_a_health_check_and_the_cli_as_entry_point():
    stages = dockerfile_stages()
    assert all(stage[0][1].split()[0].startswith("python:3.11-slim") for stage in stages), [s[0] for s in stages]
    final = stages[-1]
    instructions = [i for i, _ in final]

    users = [a for i, a in final if i == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}, users
    uid = users[-1].split(":")[0]
    assert any(i == "RUN" and "useradd" in a and uid in a for i, a in final), "the non-root user is created"
    assert instructions.index("USER") < instructions.index("ENTRYPOINT")

    (healthcheck,) = [a for i, a in final if i == "HEALTHCHECK"]
    probe = _exec_form(healthcheck[healthcheck.index("CMD") + 3 :].strip())
    script = probe[-1]
    assert any(i == "COPY" and a.split() == ["deploy/healthcheck.py", script] for i, a in final), healthcheck

    entry = _exec_form(next(a for i, a in final if i == "ENTRYPOINT"))
    assert entry == ["universe-mcp"]
    args = build_parser().parse_args(_exec_form(next(a for i, a in final if i == "CMD")))
    assert args.command == "serve"

    # The runtime dependencies at constraints.txt's versions, from the wheel built in the first stage.
    install = next(a for i, a in final if i == "RUN" and "pip install" in a)
    assert re.search(r"(--constraint|-c) \S*constraints\.txt", install) and ".whl" in install, install


def copy_sources(stage: list[tuple[str, str]]) -> set[str]:
    return {src for i, a in stage if i == "COPY" and not a.startswith("--from") for src in a.split()[:-1]}


def test_the_build_stage_copies_everything_the_wheel_is_built_from_and_dockerignore_keeps_it():
    stages = dockerfile_stages()
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    packages = {pattern.rstrip("*").rstrip(".") for pattern in find["include"]}
    assert packages | {"pyproject.toml", "README.md", "LICENSE"} <= copy_sources(stages[0])

    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for source in copy_sources(stages[0]) | copy_sources(stages[-1]):
        assert (ROOT / source).exists(), source
        dropped = [
            p for p in patterns if fnmatch.fnmatch(source, p.lstrip("/")) or source.startswith(p.lstrip("/") + "/")
        ]
        assert not dropped, f".dockerignore drops {source} ({dropped}), which the Dockerfile copies"


# --- compose.yaml ---------------------------------------------------------------------------------------------------


def test_compose_runs_the_distributed_layout_with_real_commands(monkeypatch):
    services = compose()["services"]
    assert set(services) == {"postgres", "redis", *APP_SERVICES}
    for name, expected in APP_SERVICES.items():
        service = services[name]
        assert service.get("build") == "." and service["image"] == services["migrate"]["image"], name
        command = argv(service)
        assert command[0] == "universe-mcp"
        try:
            args = build_parser().parse_args(command[1:])
        except SystemExit:  # argparse printed why
            pytest.fail(f"{name}: `{' '.join(command)}` is not a valid universe-mcp command")
        assert (args.command, *([args.action] if args.command == "db" else [])) == (*expected,) + (
            ("upgrade",) if expected == ("db",) else ()
        ), name
        if args.command == "serve":
            assert args.transport in (None, "http")
        assert str(service.get("user", "")).split(":")[0] not in {"root", "0"}, f"{name} runs as root"
        assert not (service.get("healthcheck") or {}).get("disable"), f"{name}: the image's health check is off"

    # Two identical replicas on different published ports.
    one, two = (services[s] for s in SERVERS)
    assert {k: v for k, v in one.items() if k != "ports"} == {k: v for k, v in two.items() if k != "ports"}
    assert one["ports"] != two["ports"]


def test_compose_gives_each_service_the_settings_it_needs(monkeypatch):
    services = compose()["services"]
    postgres_env = service_env(services["postgres"])
    for name in APP_SERVICES:
        env = service_env(services[name])
        settings = settings_for(env, monkeypatch)
        app = make_url(settings.sqlalchemy_url)
        owner = make_url(settings.admin_sqlalchemy_url)
        assert app.drivername == owner.drivername == "postgresql+asyncpg", name
        assert app.host == owner.host == "postgres" and app.database == owner.database == postgres_env["UNIVERSE_DB"]
        # The servers' role is the app role the init script creates, the migrations' the owner role; never the same.
        assert app.username == settings.database_app_role == postgres_env["UNIVERSE_APP_ROLE"], name
        assert app.password == postgres_env["UNIVERSE_APP_PASSWORD"]
        assert owner.username == postgres_env["UNIVERSE_OWNER_ROLE"] != app.username
        assert owner.password == postgres_env["UNIVERSE_OWNER_PASSWORD"]
        redis = make_url(settings.redis_url.get_secret_value())
        assert redis.host in services, f"{name}: Redis at {redis.host}, not a service"

    for name in SERVERS:
        service = services[name]
        settings = settings_for(service_env(service), monkeypatch)
        assert settings.auth in ("token", "jwt")
        assert settings.host == "0.0.0.0" and (settings.allowed_hosts or settings.public_url), name
        assert {str(p).rsplit(":", 1)[-1] for p in service["ports"]} == {str(settings.port)}
        # The settings the replica test gives its `universe-mcp serve` processes, from its own source.
        assert replica_test_settings() <= set(service_env(service)), replica_test_settings() - set(service_env(service))


def replica_test_settings() -> set[str]:
    """UNIVERSE_MCP_* names set by tests/tenancy's replica test and the deployment it runs against, except the
    test's own knobs (its data directory and a lowered rate limit)."""
    names: set[str] = set()
    for path, functions in (
        (ROOT / "tests" / "tenancy" / "conftest.py", {"deployment", "server"}),
        (
            ROOT / "tests" / "tenancy" / "test_replicas_and_jwt.py",
            {"test_two_replicas_sharing_postgres_and_redis_serve_one_client_consistently"},
        ),
    ):
        tree = ast.parse(path.read_text())
        found = [
            n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name in functions
        ]
        assert {f.name for f in found} == functions, f"{path.name}: {functions - {f.name for f in found}} moved"
        for function in found:
            for node in ast.walk(function):
                if (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and node.value.startswith("UNIVERSE_MCP_")
                ):
                    names.add(node.value)
                if isinstance(node, ast.keyword) and node.arg is not None and node.arg.startswith("UNIVERSE_MCP_"):
                    names.add(node.arg)
    names -= {"UNIVERSE_MCP_DATA_DIR", "UNIVERSE_MCP_RATE_LIMIT_WRITE"}
    assert {"UNIVERSE_MCP_DATABASE_URL", "UNIVERSE_MCP_AUTH", "UNIVERSE_MCP_REDIS_URL"} <= names, names
    return names


def test_compose_starts_things_in_order_with_health_checks():
    services = compose()["services"]
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["migrate"].get("restart") == "no"  # a one-shot: done once, not restarted
    for name in set(APP_SERVICES) - {"migrate"}:
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"},
            "redis": {"condition": "service_healthy"},
        }, name
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    # The job queue: kept on disk and never evicted (docs/DEPLOYMENT.md).
    redis_command = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis_command and "--maxmemory-policy noeviction" in redis_command
    mounts = {m.split(":")[1]: m.split(":")[0] for m in services["postgres"]["volumes"]}
    init = ROOT / mounts["/docker-entrypoint-initdb.d"]
    scripts = list(init.glob("*.sh"))
    assert scripts and all(os.access(s, os.X_OK) for s in scripts)


def test_compose_refuses_to_start_without_the_passwords():
    for missing in COMPOSE_ENV:
        with pytest.raises(AssertionError, match=missing):
            compose({k: v for k, v in COMPOSE_ENV.items() if k != missing})


# --- for real, from local binaries ------------------------------------------------------------------------------------


def _healthcheck_module() -> Any:
    spec = importlib.util.spec_from_file_location("deploy_healthcheck", ROOT / "deploy" / "healthcheck.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_health_check_finds_the_command_the_container_runs():
    healthcheck = _healthcheck_module()
    assert healthcheck.command_from_argv(["/usr/local/bin/python3.11", "/usr/local/bin/universe-mcp", "serve"]) == (
        "serve",
        [],
    )
    assert healthcheck.command_from_argv(["universe-mcp", "worker", "-p", "2"]) == ("worker", ["-p", "2"])
    assert healthcheck.command_from_argv(["/bin/sh", "-c", "sleep 1"]) is None


def _healthcheck(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, ROOT / "deploy" / "healthcheck.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _local(url: str, host: str, port: int, database: str, username: str) -> str:
    return make_url(url).set(host=host, port=port, database=database, username=username).render_as_string(False)


@pytest.mark.slow
@pytest.mark.anyio
async def test_the_compose_layout_runs_from_local_binaries(postgres_server, redis_url, tmp_path):
    if shutil.which("psql") is None:
        require_service("psql", "the PostgreSQL client runs the init script")
    services = compose()["services"]
    postgres_env = service_env(services["postgres"])
    suffix = secrets.token_hex(4)
    db, owner, app = f"umcp_compose_{suffix}", f"umcp_owner_{suffix}", f"umcp_app_{suffix}"
    pg = {"PGHOST": postgres_server.host, "PGPORT": str(postgres_server.port)}
    admin = {**os.environ, **pg, "PGUSER": postgres_server.user, "PGDATABASE": "postgres"}

    def local(env: dict[str, str]) -> dict[str, str]:
        """A service's environment with this machine's PostgreSQL and Redis, and names private to this test."""
        out = dict(env)
        host, port = postgres_server.host, postgres_server.port
        out["UNIVERSE_MCP_DATABASE_URL"] = _local(env["UNIVERSE_MCP_DATABASE_URL"], host, port, db, app)
        out["UNIVERSE_MCP_DATABASE_ADMIN_URL"] = _local(env["UNIVERSE_MCP_DATABASE_ADMIN_URL"], host, port, db, owner)
        out["UNIVERSE_MCP_DATABASE_APP_ROLE"] = app
        out["UNIVERSE_MCP_REDIS_URL"] = redis_url
        out["UNIVERSE_MCP_BROKER_NAMESPACE"] = f"umcp-compose-{suffix}"  # this test's workers only
        return server_env(tmp_path / "data", **out)  # offline, on a temporary data directory

    init = subprocess.run(
        ["sh", ROOT / "deploy" / "postgres" / "10-universe-roles.sh"],
        env={
            **admin,
            **postgres_env,
            "POSTGRES_USER": postgres_server.user,
            "POSTGRES_DB": "postgres",
            "UNIVERSE_DB": db,
            "UNIVERSE_OWNER_ROLE": owner,
            "UNIVERSE_APP_ROLE": app,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    try:
        assert init.returncode == 0, init.stderr

        def run(service: str, *command: str) -> subprocess.CompletedProcess:
            """The service's command (or another one, as `docker compose run SERVICE ...` gives) in its environment."""
            return run_command(
                command or argv(services[service])[1:], env=local(service_env(services[service])), timeout_s=120
            )

        migrated = run("migrate")  # also checks that row-level security applies to the app role
        assert migrated.returncode == 0, migrated.stderr
        token = run("migrate", "token", "create", "--user", "alice")  # as DEPLOYMENT.md: `compose run migrate token …`
        token_value = token.stdout.split()[0] if token.returncode == 0 else ""
        assert token_value.startswith("umcp_"), token.stderr

        server = service_env(services["server-1"])
        with http_server(
            tmp_path / "server", **{k: v for k, v in local(server).items() if k != "UNIVERSE_MCP_HOST"}
        ) as url:
            async with connect(url, token_value) as client:
                created = envelope(await client.call_tool("create_universe", {"name": "Compose", "symbols": ["AAPL"]}))
                assert created["success"], created
            port = make_url(url).port
            probe = _healthcheck(local(server), "serve", "--port", str(port))
            assert probe.returncode == 0 and probe.stdout.startswith("healthy"), probe.stdout + probe.stderr

        worker_env = local(service_env(services["worker"])) | {"UNIVERSE_MCP_WORKER_PROCESSES": "1"}
        before = _healthcheck(worker_env, "worker")
        assert before.returncode == 1 and "no heartbeat" in before.stdout, before.stdout + before.stderr
        worker = spawn(argv(services["worker"])[1:], env=worker_env, log=tmp_path / "worker.log")
        try:
            deadline = time.monotonic() + 60
            while (probe := _healthcheck(worker_env, "worker")).returncode != 0:
                assert worker.proc.poll() is None, f"the worker exited:\n{worker.tail()}"
                assert time.monotonic() < deadline, probe.stdout + probe.stderr + worker.tail()
                await anyio.sleep(0.5)
            assert probe.stdout.startswith("healthy")
        finally:
            worker.stop(15)
        scheduler = _healthcheck(local(service_env(services["scheduler"])), "scheduler")
        assert scheduler.returncode == 0, scheduler.stdout + scheduler.stderr
    finally:
        subprocess.run(
            ["psql", "-v", "ON_ERROR_STOP=1", "-q", "-c", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'],
            env=admin,
            capture_output=True,
            timeout=60,
        )
        for role in (app, owner):
            subprocess.run(
                ["psql", "-q", "-c", f'DROP ROLE IF EXISTS "{role}"'], env=admin, capture_output=True, timeout=60
            )
