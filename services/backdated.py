"""Back-dated membership changes: the dated rows of a CSV import, written at their own dates (recorded now).

The rule, per security (asset) of the universe: its recorded changes and the file's dated ones, together in time
order, must alternate added, removed, added ... starting with added, and no two may share a time. So a file can
bring in a security's past (before, between or after what is recorded), and the history always replays to the
members. A dated row identical to a recorded change (same security, action and time) is a ``duplicate``: importing
the same file twice changes nothing. When a security's changes would break the rule, every new dated row of that
security is ``invalid`` with the reason and none of them is written; the other securities' rows are applied.

Afterwards a security is a member exactly when its latest change is ``added``: it joins (``added_at`` = that time,
after the current members) or leaves accordingly. Runs inside the import's write unit (services/universes.py,
``_import_unit``), under the universe's lock.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy.orm import Session

from services import quotas
from services.quotas import Quotas
from services.validation_api import SymbolCheck
from storage.db import utcnow
from storage.models import Universe
from storage.repositories import history as history_repo
from storage.repositories import universes as repo
from storage.repositories.assets import AssetRef

__all__ = ["REASON_DATED", "DatedChange", "DatedOutcome", "apply_dated"]

REASON_DATED = "imported from CSV with its date"


@dataclass(frozen=True, slots=True)
class DatedChange:
    """A dated row of a file: the security ``symbol`` was added or removed at ``effective_at`` (aware, past)."""

    line: int
    symbol: str
    action: Literal["added", "removed"]
    effective_at: datetime


@dataclass(frozen=True, slots=True)
class DatedOutcome:
    verdict: Literal["backdated", "duplicate", "invalid"]
    reason: str | None = None
    candidates: tuple[str, ...] = ()


def _when(at: datetime) -> str:
    return at.date().isoformat() if at.time() == datetime.min.time() else at.isoformat()


def sequence_problem(symbol: str, recorded: Sequence[tuple[datetime, str]], new: Sequence[DatedChange]) -> str | None:
    """Why ``new`` cannot join a security's ``recorded`` changes (None when it can): see the module's rule."""
    combined = sorted(
        [(at, action, "recorded") for at, action in recorded]
        + [(c.effective_at, c.action, "in the file") for c in new],
        key=lambda change: change[0],
    )
    for (at, _, _), (later, _, _) in zip(combined, combined[1:], strict=False):
        if at == later:
            return f"{symbol} has two changes at {_when(at)}; one security changes once at a time"
    expected, previous = "added", None
    for at, action, where in combined:
        if action != expected:
            if previous is None:
                return f"{symbol}'s first change would be a removal ({_when(at)}, {where}): it was never added before"
            return (
                f"{symbol} would be {action} on {_when(at)} ({where}) after being {previous[1]} on "
                f"{_when(previous[0])} ({previous[2]}): changes must alternate added, removed, added ..."
            )
        expected, previous = ("removed" if action == "added" else "added"), (at, action, where)
    return None


def apply_dated(
    session: Session,
    universe: Universe,
    owner_id: uuid.UUID,
    changes: Sequence[DatedChange],
    checks: dict[str, SymbolCheck],
    assets: Mapping[str, AssetRef],
    limits: Quotas,
) -> dict[int, DatedOutcome]:
    """Write the dated changes that keep the rule, and the membership that follows; each line's outcome."""
    outcomes: dict[int, DatedOutcome] = {}
    by_asset: dict[uuid.UUID, list[DatedChange]] = {}
    for change in changes:
        check = checks.get(change.symbol)
        if check is not None and check.status == "invalid":
            reason = check.reason or "no such listed security"
            outcomes[change.line] = DatedOutcome("invalid", reason, tuple(check.candidates))
            continue
        by_asset.setdefault(assets[change.symbol].id, []).append(change)
    histories = history_repo.asset_histories(session, universe.id, list(by_asset))
    members = repo.member_asset_ids(session, universe.id, by_asset)
    events: list[tuple[uuid.UUID, str, datetime]] = []
    joins: list[tuple[uuid.UUID, datetime]] = []
    leaves: list[uuid.UUID] = []
    for asset_id, rows in by_asset.items():
        recorded = histories.get(asset_id, [])
        known = set(recorded)
        new = [c for c in rows if (c.effective_at, c.action) not in known]
        for c in rows:
            if (c.effective_at, c.action) in known:
                outcomes[c.line] = DatedOutcome("duplicate", "already in the universe's history")
        if not new:
            continue
        problem = sequence_problem(new[0].symbol, recorded, new)
        if problem is not None:
            for c in new:
                outcomes[c.line] = DatedOutcome("invalid", problem)
            continue
        last_at, last_action = max([*recorded, *((c.effective_at, c.action) for c in new)], key=lambda e: e[0])
        if last_action == "added" and asset_id not in members:
            joins.append((asset_id, last_at))
        elif last_action == "removed" and asset_id in members:
            leaves.append(asset_id)
        events += [(asset_id, c.action, c.effective_at) for c in new]
        for c in new:
            outcomes[c.line] = DatedOutcome("backdated")
    if not events:
        return outcomes
    first, _, count = repo.membership_state(session, universe.id)
    quotas.check_members(count - len(leaves), len(joins), limits, universe_id=str(universe.id))
    repo.remove_members(session, universe.id, leaves)
    joins.sort(key=lambda join: join[1])  # in order of joining, as the other members are
    history_repo.add_dated_members(
        session, universe_id=universe.id, owner_id=owner_id, members=joins, first_position=first
    )
    history_repo.record_dated_events(
        session, universe_id=universe.id, owner_id=owner_id, events=events, recorded_at=utcnow(), reason=REASON_DATED
    )
    return outcomes
