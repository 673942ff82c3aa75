"""Universe members of assets the security master retires into another: moved to the surviving asset.

A load or sync retires an asset when the data shows it to be part of another security (store.py: a stand-in the
listings first showed as a new listing, later linked to an issuer's earlier ticker; a user's pending row under a
ticker the master gives to an asset it already holds). A universe holding the retired asset then holds the
survivor instead, at the retired one's position — or, when it holds the survivor already, only loses the retired
one. Each change is written as a user's add or remove would write it (the member rows and a ``removed`` and an
``added`` event whose reason names the merge), under the universe's lock, in the transaction of the apply: the
universes are locked before the apply writes anything (``lock_holders``), and the members moved after its last
asset write (``move_members``). Universes of every owner are affected: the apply runs as a role row-level
security does not restrict (docs/DEPLOYMENT.md), as the workers, the scheduler, the CLI and the start-up load do.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from storage.db import run_write, utcnow
from storage.repositories import universes as repo

__all__ = ["Merge", "lock_holders", "move_members"]


@dataclass(frozen=True, slots=True)
class Merge:
    """Asset ``retired`` is part of asset ``survivor``; ``reason`` goes on the membership events."""

    retired: uuid.UUID
    survivor: uuid.UUID
    reason: str


async def lock_holders(session: AsyncSession, merges: Sequence[Merge]) -> None:
    """Lock the universes holding a retired asset until the apply's transaction ends (before it writes)."""
    if merges:
        await repo.lock_universes_holding(session, [m.retired for m in merges])


async def move_members(session: AsyncSession, merges: Sequence[Merge]) -> int:
    """Move the members of each merge's retired asset to its survivor, in the session's transaction; returns the
    number of universes changed. Moving nothing writes nothing, so a re-run (or a re-sync) moves nothing twice."""
    if not merges:
        return 0
    return await run_write(session, _move_unit, list(merges))


def _event(
    session: Session,
    universe_id: uuid.UUID,
    owner_id: uuid.UUID,
    asset_id: uuid.UUID,
    action: str,
    at: datetime,
    reason: str,
) -> None:
    repo.record_events(
        session, universe_id=universe_id, owner_id=owner_id, asset_ids=[asset_id], action=action, at=at, reason=reason
    )


def _move_unit(session: Session, merges: list[Merge]) -> int:
    """The locked part (a storage.db.run_write unit): per universe, as one writer, like services/universes.py."""
    by_retired = {m.retired: m for m in merges}
    changed = 0
    for universe_id, owner_id in repo.holders_of(session, list(by_retired)):
        universe = repo.locked_universe(session, owner_id, universe_id)
        if universe is None:  # deleted meanwhile
            continue
        held = repo.member_positions(session, universe_id, list(by_retired))
        if not held:
            continue
        _, last, _ = repo.membership_state(session, universe_id)
        # Never before the universe's latest event, so that its history replays in order (services/universes.py).
        now = max(utcnow(), last) if last is not None else utcnow()
        present = repo.member_asset_ids(session, universe_id, {m.survivor for m in merges})
        for retired, position in held.items():
            merge = by_retired[retired]
            if not repo.remove_members(session, universe_id, [retired]):
                continue
            _event(session, universe_id, owner_id, retired, "removed", now, merge.reason)
            if merge.survivor in present:
                continue  # the universe holds the survivor already: the retired member only goes
            # The retired member's position is free now: the survivor takes it.
            repo.add_members(
                session,
                universe_id=universe_id,
                owner_id=owner_id,
                asset_ids=[merge.survivor],
                first_position=position,
                at=now,
            )
            _event(session, universe_id, owner_id, merge.survivor, "added", now, merge.reason)
            present.add(merge.survivor)
        universe.updated_at = now
        session.flush()
        changed += 1
    return changed
