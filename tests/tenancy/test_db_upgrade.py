"""`universe-mcp db upgrade` as DEPLOYMENT.md documents it, on PostgreSQL (issue 10 item 6).

The schema is set up as PostgreSQL 14 and older set it up by default — the server's role may create tables in
``public`` — which is where migrating as the server's role leaves it owning every table, and row-level security
then does not apply to the server. The upgrade must run as UNIVERSE_MCP_DATABASE_ADMIN_URL's role and grant the
server's role access, as `serve` does.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.support.servers import run_command, server_env

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

OWNER_SCOPED = {"universes", "universe_assets", "universe_asset_events", "validation_jobs", "validation_job_items"}


@dataclass
class Roles:
    database: str
    owner: str
    app: str
    owner_url: str  # SQLAlchemy URLs
    app_url: str
    owner_dsn: str  # asyncpg DSN of the owner, for checks

    def env(self, *, admin: bool = True) -> dict[str, str]:
        env = {"UNIVERSE_MCP_DATABASE_URL": self.app_url, "UNIVERSE_MCP_DATABASE_APP_ROLE": self.app}
        if admin:
            env["UNIVERSE_MCP_DATABASE_ADMIN_URL"] = self.owner_url
        return env


@contextlib.asynccontextmanager
async def pg14_style_database(postgres_url: str) -> AsyncIterator[Roles]:
    """A database owned by a table-owner role, and an app role that may CREATE in schema public (PG <= 14)."""
    url = make_url(postgres_url)
    suffix = secrets.token_hex(4)
    database, owner, app = f"umcp_upgrade_{suffix}", f"umcp_own_{suffix}", f"umcp_app_{suffix}"
    superuser = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    conn = await asyncpg.connect(superuser)
    try:
        await conn.execute(f"CREATE ROLE {owner} LOGIN NOSUPERUSER NOBYPASSRLS")
        await conn.execute(f"CREATE ROLE {app} LOGIN NOSUPERUSER NOBYPASSRLS")
        await conn.execute(f"CREATE DATABASE {database} OWNER {owner}")
    finally:
        await conn.close()
    in_db = url.set(drivername="postgresql", database=database).render_as_string(hide_password=False)
    conn = await asyncpg.connect(in_db)
    try:
        # What PostgreSQL <= 14 grants PUBLIC by default; 15+ does not.
        await conn.execute(f"GRANT CREATE ON SCHEMA public TO {app}")
    finally:
        await conn.close()
    try:
        yield Roles(
            database=database,
            owner=owner,
            app=app,
            owner_url=url.set(database=database, username=owner, password=None).render_as_string(hide_password=False),
            app_url=url.set(database=database, username=app, password=None).render_as_string(hide_password=False),
            owner_dsn=url.set(
                drivername="postgresql", database=database, username=owner, password=None
            ).render_as_string(hide_password=False),
        )
    finally:
        conn = await asyncpg.connect(superuser)
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            await conn.execute(f"DROP ROLE IF EXISTS {app}")
            await conn.execute(f"DROP ROLE IF EXISTS {owner}")
        finally:
            await conn.close()


def cli(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return run_command(args, env=server_env(tmp_path / "data", **env), timeout_s=120)


async def table_owners(roles: Roles) -> dict[str, str]:
    conn = await asyncpg.connect(roles.owner_dsn)
    try:
        rows = await conn.fetch("SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    return {r["tablename"]: r["tableowner"] for r in rows}


async def test_db_upgrade_migrates_as_the_owner_and_grants_the_app_role(postgres_url, tmp_path):
    async with pg14_style_database(postgres_url) as roles:
        done = cli(tmp_path, "db", "upgrade", **roles.env())
        assert done.returncode == 0, done.stderr
        owners = await table_owners(roles)
        assert OWNER_SCOPED | {"users", "assets", "api_tokens", "alembic_version"} <= set(owners)
        assert set(owners.values()) == {roles.owner}, owners  # not one table owned by the server's role

        app = await asyncpg.connect(make_url(roles.app_url).set(drivername="postgresql").render_as_string(False))
        try:
            # Granted access, and subject to row-level security: no owner set, no rows; no way to switch it off.
            assert await app.fetchval("SELECT count(*) FROM universes") == 0
            assert await app.fetchval("SELECT has_table_privilege(current_user, 'universes', 'INSERT')")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await app.execute("ALTER TABLE universes DISABLE ROW LEVEL SECURITY")
        finally:
            await app.close()


async def test_a_server_role_that_owns_the_tables_is_refused_in_one_line(postgres_url, tmp_path):
    async with pg14_style_database(postgres_url) as roles:
        # One URL only: the server's role migrates and owns everything (a single-role store, allowed on its own).
        single = cli(tmp_path, "db", "upgrade", **roles.env(admin=False))
        assert single.returncode == 0, single.stderr
        assert set((await table_owners(roles)).values()) == {roles.app}
        # Declaring an owner role says row-level security is meant to apply to the server: it cannot, so say so.
        refused = cli(tmp_path, "db", "upgrade", **roles.env())
        lines = [line for line in refused.stderr.splitlines() if line.strip()]
        assert refused.returncode == 3, refused.stderr
        assert len(lines) == 1 and "Traceback" not in refused.stderr, refused.stderr
        assert "row-level security would not apply" in lines[0] and f"role {roles.app} owns the tables" in lines[0]
        assert "UNIVERSE_MCP_DATABASE_URL" in lines[0]
