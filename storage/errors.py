"""Which database errors are lost races (a concurrent transaction got there first), across SQLite and PostgreSQL.

The services serialise what must be serialised, so these should be rare; when one still happens the call changed
nothing (its transaction rolled back) and trying again is the right answer, so the tool boundary reports it as
``conflict`` rather than ``internal``.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

__all__ = ["lost_race"]

# PostgreSQL SQLSTATEs of a transaction that lost to another: serialization failure, deadlock, lock not available.
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01", "55P03"})


def lost_race(exc: BaseException) -> str | None:
    """A short reason when ``exc`` is a lost race, else None. The reason never quotes the driver's message."""
    if isinstance(exc, IntegrityError):
        return "another change to the same data committed first"
    if isinstance(exc, DBAPIError):
        state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        if state in _RETRYABLE_SQLSTATES:
            return "a concurrent transaction held the same rows"
        if isinstance(exc, OperationalError) and "database is locked" in str(exc.orig):
            return "the store was busy with other writers"
    return None
