"""Start-up checks of the store: a data directory or database the process cannot use is one clear line, not a
traceback from deep inside the server's start.

``check_store(settings)`` runs before anything is served (``serve``, ``call``, ``db``, ``token``): it makes sure the
SQLite data directory exists and takes writes, then opens the store and brings it up to date exactly as the
server's start would (migrations are idempotent, so the server's own run is then a no-op). Whatever fails
becomes a :class:`StoreUnavailable` naming the path or URL (password hidden) and the setting to change; the CLI
prints it and exits with :data:`EXIT_STORE_UNAVAILABLE` (docs/DEPLOYMENT.md lists the exit codes).
"""

from __future__ import annotations

import errno
import logging
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, InvalidRequestError, NoSuchModuleError

from core.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["EXIT_STORE_UNAVAILABLE", "StoreUnavailable", "check_listings_snapshot", "check_store"]

logger = logging.getLogger(__name__)

EXIT_STORE_UNAVAILABLE = 3
CONNECT_TIMEOUT_S = 15.0

# What an OSError means to an operator, by errno (the exception's own text names no setting).
_REASONS = {
    errno.EROFS: "the file system is read-only",
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EFBIG: "the file size limit is reached",
    errno.EACCES: "permission denied",
    errno.EPERM: "the operation is not permitted (an immutable or protected directory?)",
    errno.ENOTDIR: "a file is in the way where a directory should be",
    errno.EEXIST: "a file is in the way where a directory should be",
    errno.ENAMETOOLONG: "the path is too long",
    errno.ELOOP: "the path loops through symbolic links",
}


class StoreUnavailable(Exception):
    """The store cannot be used; ``str(exc)`` is the one line to print."""


def _os_reason(exc: OSError) -> str:
    return _REASONS.get(exc.errno or 0, exc.strerror or type(exc).__name__)


def _check_data_dir(path: Path) -> None:
    """The directory exists (or is created) and a file can be written, flushed to disk and removed in it."""
    setting = "UNIVERSE_MCP_DATA_DIR"
    if path.exists() and not path.is_dir():
        raise StoreUnavailable(
            f"cannot use the data directory {path} ({setting}): it is a file, not a directory; "
            f"point {setting} at a directory"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnavailable(f"cannot create the data directory {path} ({setting}): {_os_reason(exc)}") from None
    probe = path / f".write-check-{uuid.uuid4().hex}"
    try:
        # A few pages, synced: enough for a full disk to refuse, which an empty file would not show.
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"\0" * 16_384)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise StoreUnavailable(f"cannot write to the data directory {path} ({setting}): {_os_reason(exc)}") from None
    finally:
        try:
            probe.unlink()
        except OSError:
            pass


def _sqlite_reason(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).lower()
    if "disk is full" in text or "disk full" in text:
        return "the disk is full"
    if "readonly" in text or "read-only" in text:
        return "the store is read-only"
    if "not a database" in text or "malformed" in text:
        return "the file is not an SQLite database (or it is damaged)"
    if "unable to open" in text:
        return "the database file cannot be opened"
    if "locked" in text:
        return "the database is locked by another process"
    return type(getattr(exc, "orig", None) or exc).__name__


def _database_reason(exc: BaseException) -> str:
    root = getattr(exc, "orig", None) or exc
    # SQLAlchemy's asyncpg adapter wraps the driver's exception in a generic one: name the driver's.
    while root.__cause__ is not None and type(root).__name__ == "Error":
        root = root.__cause__
    if isinstance(root, TimeoutError):
        return f"no answer within {CONNECT_TIMEOUT_S:g} s"
    if isinstance(root, ConnectionRefusedError):
        return "connection refused"
    if isinstance(root, OSError) and root.strerror:
        return root.strerror.lower()
    name = type(root).__name__
    # Driver messages may quote the user or database name; they hold no password. Keep one line, bounded.
    message = " ".join(str(root).split())[:160]
    return f"{name}: {message}" if message else name


def _describe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(not a URL)"


async def _check_rls_applies(conn: AsyncConnection, where: str) -> None:
    """With an owner role and a server role configured, the server's role must be subject to row-level security."""
    from storage.repositories.tenancy_admin import rls_exemption

    exemption = await rls_exemption(conn)
    if exemption is not None:
        raise StoreUnavailable(
            f"row-level security would not apply to the server on {where}: {exemption}. Set "
            "UNIVERSE_MCP_DATABASE_URL to a role that is no superuser, lacks BYPASSRLS and owns no table (e.g. CREATE "
            "ROLE universe_app LOGIN NOSUPERUSER NOBYPASSRLS) and UNIVERSE_MCP_DATABASE_APP_ROLE to its name; the "
            "tables belong to the UNIVERSE_MCP_DATABASE_ADMIN_URL role (ALTER TABLE ... OWNER TO it)"
        )


async def check_store(settings: Settings, *, migrate_store: bool = True) -> None:
    """Raise :class:`StoreUnavailable` when the configured store cannot be used; else return with it migrated."""
    from storage import migrate
    from storage.db import make_engine

    if settings.is_sqlite:
        _check_data_dir(settings.data_dir)
    targets = [("UNIVERSE_MCP_DATABASE_URL", settings.sqlalchemy_url)]
    if settings.admin_sqlalchemy_url != settings.sqlalchemy_url:
        targets.insert(0, ("UNIVERSE_MCP_DATABASE_ADMIN_URL", settings.admin_sqlalchemy_url))
    for index, (setting, url) in enumerate(targets):
        is_sqlite = url.startswith("sqlite")
        where = (
            f"the SQLite store {url.split('///', 1)[-1]} (UNIVERSE_MCP_DATA_DIR)"
            if is_sqlite and settings.database_url is None
            else f"the database {_describe_url(url)} ({setting})"
        )
        try:
            engine = make_engine(url)
        except (ArgumentError, InvalidRequestError, NoSuchModuleError, ValueError, ImportError) as exc:
            why = f"its driver is not installed ({exc.name})" if isinstance(exc, ImportError) else type(exc).__name__
            raise StoreUnavailable(
                f"{setting} is not a usable database URL ({why}); expected e.g. "
                "postgresql+asyncpg://user:password@host/db or sqlite+aiosqlite:////path/universe.db"
            ) from None
        except OSError as exc:
            raise StoreUnavailable(f"cannot use {where}: {_os_reason(exc)}") from None
        try:
            with anyio.fail_after(CONNECT_TIMEOUT_S):
                if migrate_store and index == 0:
                    # The owner's connection (or the only one) migrates, as the server's start does.
                    await migrate.upgrade(engine, app_role=settings.database_app_role)
                else:
                    async with engine.connect() as conn:
                        await conn.exec_driver_sql("SELECT 1")
                        if index > 0 and conn.dialect.name == "postgresql":
                            await _check_rls_applies(conn, where)
        except StoreUnavailable:
            raise
        except Exception as exc:  # anything the driver or the file system raises: one line, no traceback
            logger.debug("store check failed", exc_info=exc)
            reason = _sqlite_reason(exc) if is_sqlite else _database_reason(exc)
            cause = getattr(exc, "orig", None) or exc  # the driver's own exception under SQLAlchemy's wrapper
            if isinstance(cause, OSError) and is_sqlite:
                reason = _os_reason(cause)
            raise StoreUnavailable(f"cannot use {where}: {reason}") from None
        finally:
            await engine.dispose()


def check_listings_snapshot(settings: Settings) -> str | None:
    """The as_of of the listings snapshot the server will load on start (None when loading is off); a missing or
    damaged file is a :class:`StoreUnavailable` with one line ("listings snapshot PATH: reason")."""
    if not settings.listings_load:
        return None
    from services.security_master.snapshot import SnapshotError, shipped_snapshot_path
    from services.security_master.store import check_snapshot_file

    try:
        header = check_snapshot_file(settings.listings_snapshot or shipped_snapshot_path())
    except SnapshotError as exc:
        raise StoreUnavailable(f"{exc} (UNIVERSE_MCP_LISTINGS_SNAPSHOT, UNIVERSE_MCP_LISTINGS_LOAD)") from None
    return str(header.get("as_of"))
