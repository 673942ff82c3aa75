"""Per-owner quotas: universes per owner, members per universe, new unconfirmed assets per hour.

The asset table is shared by every tenant, so one tenant's made-up tickers must neither flood it nor show up in
anyone else's searches. Each quota answers ``limit_exceeded`` (with the limit and the current count in details)
before anything is written; the unit of work then rolls back, so a refused call changes nothing.

How exact each one is under concurrency:

* **new assets per hour** — exact: one conditional UPDATE of the owner's counter row checks and adds at once
  (PostgreSQL queues concurrent callers on the row, each re-checking the committed count; SQLite has one writer),
  and the count rolls back with a failed call. Windows are fixed hours starting at the owner's first new asset, so
  any sliding hour holds at most twice the quota.
* **universes per owner** — exact: a create first takes the owner's counter row (a row lock until commit; on SQLite
  the write lock), then counts.
* **members per universe** — exact: checked under the universe's lock (adds to one universe are serialised),
  counting every symbol not yet a member as new (rejected ones included, so the check errs on the safe side).

Only assets created unconfirmed count as new (added with validate=false, or that no provider could settle yet):
an asset a provider or the catalog confirmed is a real security whatever tenant asked first.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.errors import LimitExceeded
from storage.db import utcnow
from storage.models import Asset
from storage.repositories import assets as asset_repo
from storage.repositories import quotas as repo

__all__ = ["Quotas", "check_members", "check_universes", "create_assets", "reserve_new_assets"]

WINDOW = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Quotas:
    """The per-owner quotas (settings max_universes_per_owner, ...); 0 means no limit."""

    universes_per_owner: int = 0
    members_per_universe: int = 0
    new_assets_per_hour: int = 0


async def check_universes(session: AsyncSession, owner_id: uuid.UUID, quotas: Quotas) -> None:
    """Refuse a new universe when the owner has as many as the quota allows (holds the owner's row until commit)."""
    limit = quotas.universes_per_owner
    if not limit:
        return
    await repo.lock_owner(session, owner_id, utcnow())
    current = await repo.count_universes(session, owner_id)
    if current >= limit:
        raise LimitExceeded(
            f"You have {current} universes; the limit is {limit} per owner.",
            hint="Delete universes you no longer need (delete_universe), or add to an existing one.",
            details={"quota": "universes_per_owner", "limit": limit, "current": current},
            next_actions=[("list_universes", {}, "see your universes")],
        )


def check_members(current: int, adding: int, quotas: Quotas, *, universe_id: str | None = None) -> None:
    """Refuse to grow a universe of ``current`` members by up to ``adding`` new ones beyond the quota."""
    limit = quotas.members_per_universe
    if not limit or current + adding <= limit:
        return
    room = max(0, limit - current)
    raise LimitExceeded(
        f"The universe has {current} members; adding up to {adding} new ones would pass the limit of {limit}.",
        hint=f"Add at most {room} new symbols, remove members first, or split the list over several universes."
        if room
        else "The universe is full: remove members first, or put the symbols in another universe.",
        details={"quota": "members_per_universe", "limit": limit, "current": current, "requested": adding},
        next_actions=[("get_universe", {"universe_id": universe_id, "include_assets": False}, "see the counts")]
        if universe_id
        else [],
    )


async def reserve_new_assets(session: AsyncSession, owner_id: uuid.UUID, count: int, quotas: Quotas) -> None:
    """Count ``count`` new unconfirmed assets against the owner's hourly quota, or refuse (nothing counted)."""
    limit = quotas.new_assets_per_hour
    if not limit or count <= 0:
        return
    now = utcnow()
    if count <= limit:
        taken = await repo.take_new_assets(
            session, owner_id, count, limit=limit, window_start_after=now - WINDOW, now=now
        )
        if taken is not None:
            return
    used, started = await repo.new_assets_used(session, owner_id)
    if started is None or started <= now - WINDOW:
        used, started = 0, None
    resets_in = int(((started + WINDOW) - now).total_seconds()) if started else 0
    raise LimitExceeded(
        f"This would create {count} new unconfirmed assets; you created {used} in the current hour and the limit is "
        f"{limit} per hour.",
        hint=" ".join(
            ["Add symbols with validation (validate=true): assets a provider confirms do not count."]
            + ([f"The count starts again in about {max(1, resets_in // 60)} minutes."] if started else [])
            + ([f"Send at most {limit} unknown symbols at once."] if count > limit else [])
        ),
        details={
            "quota": "new_assets_per_hour",
            "limit": limit,
            "current": used,
            "requested": count,
            "resets_in_s": resets_in,
        },
    )


async def create_assets(
    session: AsyncSession, rows: Sequence[Mapping[str, Any]], *, owner_id: uuid.UUID | None, quotas: Quotas
) -> list[Asset]:
    """Create asset rows on behalf of ``owner_id``: the unconfirmed ones count against its hourly quota and stay
    visible to it alone (created_by) until confirmed. ``owner_id`` None (background work): nothing is counted."""
    if owner_id is not None:
        unconfirmed = sum(1 for row in rows if row.get("validation_status") != "valid")
        await reserve_new_assets(session, owner_id, unconfirmed, quotas)
    return await asset_repo.create_assets(session, rows, created_by=owner_id)
