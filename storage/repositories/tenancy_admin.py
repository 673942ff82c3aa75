"""Grants for the server's PostgreSQL role (run by migrations as the table owner)."""

from __future__ import annotations

import re

from sqlalchemy import text
from sqlalchemy.engine import Connection

__all__ = ["grant_app_role"]


def grant_app_role(connection: Connection, role: str) -> None:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", role):
        raise ValueError("database_app_role must be a plain lower-case PostgreSQL identifier")
    # Identifiers cannot be bound parameters; the name is checked above.
    connection.execute(text(f"GRANT USAGE ON SCHEMA public TO {role}"))
    connection.execute(text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"))
    connection.execute(text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}"))
    connection.execute(text(f"REVOKE ALL ON alembic_version FROM {role}"))
