"""History tools (part of the `universes` toolset): a universe's membership changes page by page, and its turnover.

The reads live in services/history.py; this module presents them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from services.history import HistoryPage, HistoryService, TurnoverReport
from tools._deps import Deps, ToolDeps
from tools._results import Envelope, NextAction, ok
from tools._toolset import READ, ToolSpec

__all__ = ["TOOLS"]

UniverseId = Annotated[str, Field(description="Universe id (a UUID), from list_universes or create_universe.")]


def _service(deps: ToolDeps, session: Any) -> HistoryService:
    return HistoryService(session, deps.caller, limits=deps.state.limits)


def _window_arguments(universe_id: str, since: datetime | None, until: datetime | None) -> dict[str, Any]:
    arguments: dict[str, Any] = {"universe_id": universe_id}
    if since is not None:
        arguments["since"] = since.isoformat()
    if until is not None:
        arguments["until"] = until.isoformat()
    return arguments


async def get_universe_history(
    deps: Deps,
    universe_id: UniverseId,
    since: Annotated[
        datetime | None, Field(description="Only changes after this time (exclusive; ISO 8601 with zone).")
    ] = None,
    until: Annotated[
        datetime | None, Field(description="Only changes at or before this time (inclusive; ISO 8601 with zone).")
    ] = None,
    limit: Annotated[
        int | None, Field(description="Changes per page (default 50, at most 100; fewer when they are long).")
    ] = None,
    cursor: Annotated[
        str | None, Field(description="next_cursor from the previous page; omit for the newest changes.")
    ] = None,
) -> Envelope[HistoryPage]:
    """List a universe's membership changes, newest first: when each took effect (and when it was recorded, if
    back-dated), the ticker, added or removed, the reason and the rebalance run that made it.

    Each page also lists the rebalance runs of its stretch of time (trigger, period, rules version, data date,
    counts, one-way turnover), including runs that changed nothing. Pass next_cursor as cursor with the same
    since/until for older changes.
    """
    async with deps.unit_of_work() as session:
        page = await _service(deps, session).history(universe_id, since=since, until=until, limit=limit, cursor=cursor)
    actions: list[NextAction] = []
    if page.next_cursor:
        arguments = _window_arguments(page.universe_id, since, until) | {"cursor": page.next_cursor}
        if limit is not None:
            arguments["limit"] = limit
        actions.append(NextAction(tool="get_universe_history", arguments=arguments, reason="older changes"))
    runs = f" and {len(page.rebalances)} rebalance run(s)" if page.rebalances else ""
    more = "; older changes remain (next_cursor)" if page.next_cursor else ""
    if page.events:
        message = (
            f"{len(page.events)} change(s){runs}, from {page.events[0].effective_at.isoformat()} back to "
            f"{page.events[-1].effective_at.isoformat()}{more}."
        )
    else:
        message = f"No membership changes{' on this page' if cursor else ' in this window'}{runs}."
    return ok(page, message, next_actions=actions, events=len(page.events))


async def get_universe_turnover(
    deps: Deps,
    universe_id: UniverseId,
    since: Annotated[
        datetime | None,
        Field(
            description="Window start, exclusive (ISO 8601 with zone). Default: the start of the universe's history."
        ),
    ] = None,
    until: Annotated[
        datetime | None, Field(description="Window end, inclusive (ISO 8601 with zone). Default: now.")
    ] = None,
) -> Envelope[TurnoverReport]:
    """Measure how much a universe's membership changed in the window (since, until], and name what came and went.

    size_start, size_end: members at since and until; average_size = their mean. one_way_turnover =
    min(additions, removals) / average_size (the usual portfolio figure); turnover = (additions + removals) /
    (2 x average_size); addition_rate, removal_rate = additions or removals / average_size. 0: no change; null
    when average_size is 0. No since: from the universe's first members (its creation, or its earliest back-dated
    change), so an unchanged universe gives 0. Lists the names added and removed (newest 50 each) and the runs.
    """
    async with deps.unit_of_work() as session:
        report = await _service(deps, session).turnover(universe_id, since=since, until=until)
    one_way = "n/a (empty universe)" if report.one_way_turnover is None else f"{report.one_way_turnover:.2%}"
    two_way = "n/a" if report.turnover is None else f"{report.turnover:.2%}"
    actions: list[NextAction] = []
    if report.names_truncated or report.rebalances_truncated:
        actions.append(
            NextAction(
                tool="get_universe_history",
                arguments=_window_arguments(report.universe_id, report.since, report.until),
                reason="every change in the window, page by page (the answer lists the newest 50 of each kind)",
            )
        )
    return ok(
        report,
        f"One-way turnover {one_way} (two-way {two_way}): {report.additions} additions and {report.removals} "
        f"removals; size {report.size_start} -> {report.size_end}.",
        next_actions=actions,
    )


# Part of the `universes` toolset (tools/universes.py declares it): --toolsets universes selects them too.
TOOLS = [
    ToolSpec(get_universe_history, "Universe history", READ),
    ToolSpec(get_universe_turnover, "Universe turnover", READ),
]
