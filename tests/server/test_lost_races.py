"""A database error that means "another transaction got there first" reaches the caller as a retryable conflict,
never as internal, and without the driver's text (issue 10, item 3). Other crashes stay internal."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError, OperationalError

from server.errors import from_exception


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__('deadlock detected DETAIL: Process 1 waits for ShareLock on "universes"')
        self.sqlstate = sqlstate


def test_lost_races_are_conflicts_without_driver_text():
    cases = [
        IntegrityError("INSERT INTO universes ...", {}, Exception('duplicate key "uq_universes_owner_id_name_key"')),
        OperationalError("INSERT INTO universe_assets ...", {}, Exception("database is locked")),
        OperationalError("UPDATE universes ...", {}, _PgError("40P01")),
        OperationalError("UPDATE universes ...", {}, _PgError("40001")),
    ]
    for exc in cases:
        error = from_exception(exc, tool="add_assets_to_universe")
        assert error.code == "conflict", exc
        assert error.details["retryable"] is True
        shown = f"{error.message} {error.hint} {error.details}"
        assert "INSERT" not in shown and "duplicate key" not in shown and "ShareLock" not in shown


def test_other_database_errors_stay_internal():
    for exc in (
        OperationalError("SELECT 1", {}, Exception("disk I/O error")),
        OperationalError("SELECT 1", {}, _PgError("53100")),  # disk full: not a race
        ValueError("bug"),
    ):
        assert from_exception(exc, tool="get_universe").code == "internal"
