"""Grants for the server's PostgreSQL role (run by migrations as the table owner)."""

from __future__ import annotations

import re

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["OWNER_SCOPED_TABLES", "grant_app_role", "rls_exemption"]


def grant_app_role(connection: Connection, role: str) -> None:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", role):
        raise ValueError("database_app_role must be a plain lower-case PostgreSQL identifier")
    # Identifiers cannot be bound parameters; the name is checked above.
    connection.execute(text(f"GRANT USAGE ON SCHEMA public TO {role}"))
    connection.execute(text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"))
    connection.execute(text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}"))
    connection.execute(text(f"REVOKE ALL ON alembic_version FROM {role}"))


OWNER_SCOPED_TABLES = (
    "universes",
    "universe_assets",
    "universe_asset_events",
    "validation_jobs",
    "validation_job_items",
    "rebalance_runs",
    "universe_rules_versions",
)


async def rls_exemption(connection: AsyncConnection) -> str | None:
    """Why row-level security does not apply to this connection's role, or None when it does (PostgreSQL).

    A role is exempt when it is a superuser, has BYPASSRLS, or owns an owner-scoped table (policies bind owners
    only under FORCE ROW LEVEL SECURITY, which the migrations do not set: workers and the scheduler work across
    owners as the table owner).
    """
    role = (
        await connection.execute(
            text("SELECT current_user AS name, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        )
    ).one()
    if role.rolsuper:
        return f"role {role.name} is a superuser"
    if role.rolbypassrls:
        return f"role {role.name} has BYPASSRLS"
    owned = (
        (
            await connection.execute(
                text(
                    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = current_schema() AND c.relname = ANY(:tables) "
                    "AND pg_get_userbyid(c.relowner) = current_user ORDER BY c.relname"
                ),
                {"tables": list(OWNER_SCOPED_TABLES)},
            )
        )
        .scalars()
        .all()
    )
    if owned:
        return f"role {role.name} owns the tables ({', '.join(owned)})"
    return None
