"""A universe's history, read: its membership events page by page with the rebalance runs between them, and the
turnover of a window with the names that came and went. MCP-free; tools/universes_history.py presents it.

Windows are ``(since, until]``: an event at exactly ``since`` is before the window, one at exactly ``until`` in it.
With no ``since`` a turnover window starts where the universe's history starts: its creation, or its earliest
change when a back-dated import (services/backdated.py) recorded changes before it. The changes at exactly that
time are the first members, so a universe nobody changed reports no additions, no removals and a turnover of 0.
docs/ARCHITECTURE.md, "Turnover and point-in-time membership", has the definitions.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer
from sqlalchemy.ext.asyncio import AsyncSession

from services.errors import InvalidArgument
from services.pagination import decode_cursor, encode_cursor, invalid_cursor
from services.schemas import Caller, RebalanceRunInfo
from services.universes import Limits, _not_found, parse_universe_id
from storage.db import utcnow
from storage.models import RebalanceRun, UniverseRulesVersion
from storage.repositories import history as repo
from storage.repositories import universes as universe_repo

__all__ = [
    "HISTORY_PAGE_MAX",
    "HistoryEvent",
    "HistoryPage",
    "HistoryService",
    "NameChange",
    "TurnoverReport",
]

HISTORY_PAGE_DEFAULT = 50
HISTORY_PAGE_MAX = 100  # events per page at most
# A page's events take at most this many bytes of JSON, so that with 10 runs (~2.8 KB) and the envelope an answer
# stays under the 16 KB every result keeps to (issue 16): ~70 events when each has a run id and a long reason.
PAGE_EVENT_BYTES = 12_000
RUNS_PER_PAGE = 10  # rebalance runs one history page lists at most
NAMES_MAX = 50  # names added (and removed) one turnover answer lists at most
RUNS_PER_WINDOW = 20  # rebalance runs one turnover answer lists at most
CURSOR_KIND = "history"


def _compact(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


class HistoryEvent(BaseModel):
    """One membership change. Null fields are left out."""

    effective_at: datetime = Field(description="When the change took effect.")
    recorded_at: datetime | None = Field(None, description="When recorded, if later (a back-dated import).")
    symbol: str = Field(description="The current ticker.")
    symbol_then: str | None = Field(None, description="The ticker at effective_at, if another (FB before META).")
    action: Literal["added", "removed"]
    reason: str | None = None
    run_id: str | None = Field(None, description="The rebalance run that made the change.")

    @model_serializer(mode="wrap")
    def _leave_out_nulls(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _compact(handler(self))


class DefinitionChange(BaseModel):
    """A new version of a dynamic universe's definition (rules, pins, schedule), or its freezing."""

    version: int
    changed_at: datetime
    change: str = Field(description='What changed: "created", "changed rules, include", "frozen as a static list".')
    rebalance: str | None = None


class HistoryPage(BaseModel):
    universe_id: str
    since: datetime | None = None
    until: datetime | None = None
    events: list[HistoryEvent] = Field(description="Membership changes, newest first.")
    rebalances: list[RebalanceRunInfo] = Field(
        description=f"Rebalance runs between the previous page's last change and this page's, newest first; at most "
        f"{RUNS_PER_PAGE}."
    )
    rebalances_truncated: bool = Field(False, description="More runs than listed: narrow since/until.")
    definitions: list[DefinitionChange] = Field(
        default_factory=list, description="Changes of the rules, pins or schedule in the same stretch, newest first."
    )
    next_cursor: str | None = Field(None, description="Pass as cursor for older changes; null on the last page.")


class NameChange(BaseModel):
    symbol: str
    effective_at: datetime


class TurnoverReport(BaseModel):
    """The figures are defined in get_universe_turnover's description (tools/universes_history.py)."""

    universe_id: str
    since: datetime = Field(description="Window start, exclusive (default: the start of the universe's history).")
    until: datetime = Field(description="Window end, inclusive (default: now).")
    additions: int
    removals: int
    size_start: int
    size_end: int
    average_size: float
    turnover: float | None
    one_way_turnover: float | None
    addition_rate: float | None
    removal_rate: float | None
    added: list[NameChange]
    removed: list[NameChange]
    names_truncated: bool
    rebalances: list[RebalanceRunInfo]
    rebalances_truncated: bool = False


def _aware(label: str, value: datetime | None) -> None:
    if value is not None and value.tzinfo is None:
        raise InvalidArgument(
            f"{label} needs a time zone, e.g. 2026-01-31T00:00:00Z.",
            hint="Write times in ISO 8601 with Z or an offset.",
            details={"field": label},
        )


def _ordered(since: datetime | None, until: datetime | None) -> None:
    _aware("since", since)
    _aware("until", until)
    if since is not None and until is not None and since >= until:
        raise InvalidArgument(
            f"since ({since.isoformat()}) must be earlier than until ({until.isoformat()}).",
            hint="The window is (since, until]: pass a since before until, or leave one out.",
            details={"field": "since"},
        )


def _event(row: repo.EventRow) -> HistoryEvent:
    return HistoryEvent(
        effective_at=row.effective_at,
        recorded_at=row.recorded_at if row.recorded_at != row.effective_at else None,
        symbol=row.symbol,
        symbol_then=row.symbol_then,
        action=row.action,
        reason=row.reason,
        run_id=str(row.run_id) if row.run_id else None,
    )


def _json_bytes(event: HistoryEvent) -> int:
    """About what ``event`` costs in the JSON answer (an upper bound but for escapes in its reason), without
    serialising it twice: keys, punctuation and the time take 72 bytes."""
    size = 72 + len(event.symbol) + len(event.action)
    if event.symbol_then is not None:
        size += 17 + len(event.symbol_then)
    if event.recorded_at is not None:
        size += 45
    if event.reason is not None:
        size += 12 + len(event.reason.encode())
    if event.run_id is not None:
        size += 50
    return size


def _rate(value: float, average: float) -> float | None:
    return round(value / average, 6) if average else None


class HistoryService:
    """Reads of one caller's universe history inside one unit of work."""

    def __init__(self, session: AsyncSession, caller: Caller, *, limits: Limits | None = None) -> None:
        self.session = session
        self.caller = caller
        self.limits = limits or Limits()

    async def _universe(self, universe_id: str) -> repo.UniverseHeader:
        uid = parse_universe_id(universe_id)
        universe = await repo.universe_header(self.session, self.caller.owner_id, uid)
        if universe is None:
            raise _not_found(uid)
        return universe

    def _page_size(self, limit: int | None) -> int:
        most = min(self.limits.page_size_max, HISTORY_PAGE_MAX)
        if limit is None:
            return min(HISTORY_PAGE_DEFAULT, most)
        if not 1 <= limit <= most:
            raise InvalidArgument(
                f"limit must be between 1 and {most}; got {limit}.",
                hint="Page through longer histories with next_cursor.",
                details={"field": "limit"},
            )
        return limit

    @staticmethod
    def _after(universe_id: uuid.UUID, cursor: str | None) -> tuple[datetime, int] | None:
        """The (effective_at, id) a cursor continues after; a cursor of another universe is refused."""
        if cursor is None:
            return None
        position = decode_cursor(CURSOR_KIND, cursor)
        if not isinstance(position, dict) or position.get("u") != str(universe_id):
            raise invalid_cursor()
        at, last_id = position.get("e"), position.get("i")
        if not isinstance(at, str) or not isinstance(last_id, int):
            raise invalid_cursor()
        try:
            return datetime.fromisoformat(at), last_id
        except ValueError:
            raise invalid_cursor() from None

    async def history(
        self,
        universe_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> HistoryPage:
        """One page of the universe's changes in (since, until], newest first, with the rebalance runs of the
        page's stretch of time: from the previous page's last change (exclusive; on the first page: ``until``,
        inclusive) back to this page's last change (inclusive; on the last page: ``since``, exclusive). Consecutive
        pages' stretches meet without overlapping, so paging through lists every run in the window once."""
        _ordered(since, until)
        size = self._page_size(limit)
        uid = parse_universe_id(universe_id)
        after = self._after(uid, cursor)
        rows, rules_version = await repo.event_page(
            self.session, uid, owner_id=self.caller.owner_id, since=since, until=until, after=after, limit=size + 1
        )
        if rules_version is None:  # no event in the window: is the universe there (and the caller's) at all?
            rules_version = (await self._universe(universe_id)).rules_version
        events = [_event(row) for row in rows[:size]]
        # Events while they fit the page's bytes (at least one, so every page moves on): long reasons and run ids
        # must not take an answer past 16 KB. The cursor continues after the last one listed.
        used, taken = 0, 0
        for event in events:
            used += _json_bytes(event)
            if taken and used > PAGE_EVENT_BYTES:
                break
            taken += 1
        more = len(rows) > taken
        rows, events = rows[:taken], events[:taken]
        span: dict[str, datetime | None] = {"before": after[0]} if after else {"through": until}
        if more:
            span["since"] = rows[-1].effective_at
        else:
            span["after"] = since
        runs: list[RebalanceRun] = []
        versions: list[UniverseRulesVersion] = []
        if rules_version:  # never given rules (version 0): it has neither runs nor definitions to read
            runs = await repo.runs_between(self.session, uid, limit=RUNS_PER_PAGE + 1, **span)
            versions = await repo.definitions_between(self.session, uid, limit=RUNS_PER_PAGE, **span)
        next_cursor = None
        if more:
            last = rows[-1]
            next_cursor = encode_cursor(CURSOR_KIND, {"u": str(uid), "e": last.effective_at.isoformat(), "i": last.id})
        return HistoryPage(
            universe_id=str(uid),
            since=since,
            until=until,
            events=events,
            rebalances=[RebalanceRunInfo.model_validate(run) for run in runs[:RUNS_PER_PAGE]],
            rebalances_truncated=len(runs) > RUNS_PER_PAGE,
            definitions=[
                DefinitionChange(version=v.version, changed_at=v.changed_at, change=v.change, rebalance=v.rebalance)
                for v in versions
            ],
            next_cursor=next_cursor,
        )

    async def history_start(self, universe: repo.UniverseHeader) -> datetime:
        """Where the universe's history starts: its creation, or its earliest change if that is earlier."""
        first = await repo.first_event_at(self.session, universe.id)
        return min(universe.created_at, first) if first is not None else universe.created_at

    async def turnover(
        self, universe_id: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> TurnoverReport:
        _ordered(since, until)
        universe = await self._universe(universe_id)
        if until is None:
            until = utcnow()
            _ordered(since, until)  # a since in the future
        if since is None:
            since = await self.history_start(universe)
            if since >= until:
                raise InvalidArgument(
                    f"until ({until.isoformat()}) is not after the start of the universe's history "
                    f"({since.isoformat()}).",
                    hint="Pass a later until, or an explicit since before it.",
                    details={"field": "until", "history_starts": since.isoformat()},
                )
        added, removed, start, end = await universe_repo.turnover_counts(self.session, universe.id, since, until)
        names = {
            action: await repo.events_in_window(
                self.session, universe.id, since=since, until=until, action=action, limit=NAMES_MAX
            )
            for action in ("added", "removed")
        }
        runs = await repo.runs_between(self.session, universe.id, after=since, through=until, limit=RUNS_PER_WINDOW + 1)
        average = (start + end) / 2
        return TurnoverReport(
            universe_id=str(universe.id),
            since=since,
            until=until,
            additions=added,
            removals=removed,
            size_start=start,
            size_end=end,
            average_size=average,
            turnover=_rate(added + removed, 2 * average),
            one_way_turnover=_rate(min(added, removed), average),
            addition_rate=_rate(added, average),
            removal_rate=_rate(removed, average),
            added=[NameChange(symbol=r.symbol, effective_at=r.effective_at) for r in names["added"]],
            removed=[NameChange(symbol=r.symbol, effective_at=r.effective_at) for r in names["removed"]],
            names_truncated=added > NAMES_MAX or removed > NAMES_MAX,
            rebalances=[RebalanceRunInfo.model_validate(run) for run in runs[:RUNS_PER_WINDOW]],
            rebalances_truncated=len(runs) > RUNS_PER_WINDOW,
        )
