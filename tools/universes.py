"""The `universes` toolset: thin adapters over services/universes.py, the ``universe://{universe_id}`` resource,
the universe prompts, (tools/universes_history.py) history and turnover, and (tools/universes_csv.py) CSV import
and export."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from mcp.server.mcpserver.prompts.base import UserMessage
from pydantic import BaseModel, Field

from services.errors import InvalidArgument
from services.schemas import (
    MembershipReport,
    SymbolOutcome,
    UniverseDetail,
    UniversePage,
    UniverseSummary,
)
from tools import universes_csv, universes_dynamic, universes_history
from tools._deps import AppContext, Deps, tool_deps
from tools._reports import REPORT_RESOURCE, keep_report
from tools._results import Envelope, NextAction, attention_first, ok
from tools._toolset import DESTRUCTIVE, READ, WRITE, PromptSpec, ResourceSpec, Toolset, ToolSpec
from tools.jobs import queue_pending_symbols

__all__ = ["TOOLSET"]

UniverseId = Annotated[str, Field(description="Universe id (a UUID), from list_universes or create_universe.")]
Symbols = Annotated[
    list[str],
    Field(
        description="Tickers such as AAPL, BRK.B, ^GSPC or EURUSD=X (normalised, duplicates dropped); at most {settings.max_symbols_per_call}."
    ),
]
Limit = Annotated[
    int | None, Field(description="Page size (default {settings.page_size_default}, at most {settings.page_size_max}).")
]
MEMBERS_PAGE = 25  # get_universe's default page: 25 members (~450 bytes each) keep the answer under 16 KB
MemberLimit = Annotated[
    int | None, Field(description="Members per page (default 25, at most {settings.page_size_max}).")
]
Cursor = Annotated[str | None, Field(description="next_cursor from the previous page; omit for the first page.")]


class UniverseWithReport(BaseModel):
    universe: UniverseSummary
    report: MembershipReport


class UpdatedUniverse(BaseModel):
    universe: UniverseSummary
    changed: list[str] = Field(description="Fields that actually changed (empty when the values were already so).")
    rules_version: int | None = Field(
        None, description="A dynamic universe's definition version after the change (get_universe shows it)."
    )


Rules = Annotated[
    dict[str, Any] | None,
    Field(description="Rules as screen_assets takes them: the universe is dynamic, its members what they select."),
]
Schedule = Annotated[
    str | None,
    Field(description="daily, weekly, monthly or quarterly (UTC): when a dynamic universe is rebalanced."),
]


class DeletedUniverse(BaseModel):
    deleted: UniverseSummary


def _report_message(report: MembershipReport) -> str:
    parts = [f"{n} {outcome.replace('_', ' ')}" for outcome, n in report.counts.items()]
    pending = sum(1 for r in report.results if r.outcome == "added" and r.validation_status == "pending")
    unknown = sum(1 for r in report.results if r.outcome == "added" and r.validation_status == "unknown")
    text = ", ".join(parts) if parts else "no symbols"
    if pending:
        text += f"; {pending} pending validation"
    if unknown:
        text += f"; {unknown} not validated"
    return text


def _validation_status(report: MembershipReport) -> str:
    statuses = {r.validation_status for r in report.results if r.outcome in ("added", "already_present")}
    if not statuses:
        return "none"
    if statuses == {"valid"}:
        return "valid"
    if "valid" in statuses:
        return "partial"
    if len(statuses) == 1:
        (only,) = statuses
        return only or "none"  # added and present members always carry a status; None would mean none known
    return "mixed"


def _rank(outcome: SymbolOutcome) -> int:
    """Rejected symbols first, then what else needs a look (not members, not yet validated), then the rest."""
    if outcome.outcome == "rejected":
        return 0
    if outcome.outcome == "not_present" or (outcome.outcome == "added" and outcome.validation_status == "pending"):
        return 1
    if outcome.outcome == "added" and outcome.validation_status in ("unknown", None):
        return 2
    return 3


async def _listed(deps: Deps, universe: UniverseSummary, report: MembershipReport, kind: str) -> MembershipReport:
    """The report as the answer carries it: counts of every symbol, the first rows that need attention, and (when
    that is not all of them) the full report as a resource. Keeps a 1,000-symbol answer under 16 KB."""
    listed = attention_first(report.results, _rank)
    if len(listed) == len(report.results):
        return report.model_copy(update={"results": listed})
    uri = await keep_report(
        deps,
        kind,
        {
            "universe_id": universe.id,
            "counts": report.counts,
            "asset_count": report.asset_count,
            "results": report.results,
        },
    )
    return report.model_copy(update={"results": listed, "truncated": True, "report_uri": uri})


def _unlisted(report: MembershipReport) -> str:
    if not report.truncated:
        return ""
    where = f" (all in {report.report_uri})" if report.report_uri else ""
    return (
        f" Listed {len(report.results)} of {sum(report.counts.values())} symbols, those needing attention first{where}."
    )


def _after_add(universe: UniverseSummary, report: MembershipReport) -> list[NextAction]:
    actions = [NextAction(tool="get_universe", arguments={"universe_id": universe.id}, reason="review the members")]
    rejected = [r for r in report.results if r.outcome == "rejected"]
    if rejected and (candidates := [c for r in rejected for c in r.candidates][:10]):
        actions.insert(
            0,
            NextAction(
                tool="add_assets_to_universe",
                arguments={"universe_id": universe.id, "symbols": candidates},
                reason="add suggested symbols in place of the rejected ones, if they are meant",
            ),
        )
    if any(r.validation_status in ("pending", "unknown") for r in report.results if r.outcome == "added"):
        actions.append(
            NextAction(
                tool="start_bulk_validation",
                arguments={"universe_id": universe.id},
                reason="validate the members that are not yet validated",
            )
        )
    return actions


async def create_universe(
    deps: Deps,
    name: Annotated[str, Field(description="Name, unique among your universes (case-insensitive), 1-200 characters.")],
    description: Annotated[
        str | None, Field(description="What the universe is for (optional, up to 2,000 characters).")
    ] = None,
    symbols: Annotated[
        list[str] | None,
        Field(
            description="Initial tickers (optional, at most {settings.max_symbols_per_call}); see add_assets_to_universe."
        ),
    ] = None,
    validate: Annotated[
        bool, Field(description="Check each symbol with market-data providers first (default true).")
    ] = True,
    rules: Rules = None,
    rebalance: Schedule = None,
) -> Envelope[UniverseWithReport]:
    """Create a named universe: a static list of symbols, or a dynamic universe defined by rules.

    With symbols (up to {settings.max_symbols_per_call}): validated by default; unknown tickers are rejected with
    suggestions, ones no provider could check now are added as pending. With rules (as screen_assets takes them; try
    them there first): the members are what the rules select from the security master now, each with its reason, and
    rebalance (daily, weekly, monthly, quarterly) re-runs them on a schedule. Give symbols or rules, not both.
    Returns the universe (its id is what the other universe tools take) and a report: counts per outcome, problems
    first. Fails with already_exists if the name is taken.
    """
    if rules is not None:
        if symbols:
            raise InvalidArgument(
                "Give symbols or rules, not both: a dynamic universe's members are what its rules select.",
                hint="Create it with rules, then pin extra symbols with update_universe(include=[...]).",
            )
        return await _create_dynamic(deps, name, description, rules, rebalance)
    if rebalance is not None:
        raise InvalidArgument(
            "rebalance needs rules: a static list has nothing to re-evaluate.",
            hint="Give rules too (see screen_assets), or leave rebalance out.",
        )
    async with deps.unit_of_work() as session:
        universe, report = await deps.universes(session).create(
            name, description=description, symbols=symbols or [], validate=validate
        )
    listed = await _listed(deps, universe, report, "create_universe")
    return await queue_pending_symbols(
        deps,
        ok(  # pending members are re-checked by a background job
            UniverseWithReport(universe=universe, report=listed),
            f"Created universe {universe.name!r} (id {universe.id}) with {report.asset_count} assets"
            + (f": {_report_message(report)}." if report.results else ".")
            + _unlisted(listed),
            next_actions=_after_add(universe, report)
            if report.results
            else [
                # Not a placeholder add (a model could run it as is): a harmless search for the universe's theme.
                NextAction(
                    tool="search_assets",
                    arguments={"query": universe.name[:100]},
                    reason="find real tickers for this universe, then add them with add_assets_to_universe",
                )
            ],
            validation_status=_validation_status(report),
            asset_count=report.asset_count,
        ),
        report,
        universe.id,
    )


async def _create_dynamic(
    deps: Deps, name: str, description: str | None, rules: dict[str, Any], rebalance: str | None
) -> Envelope[UniverseWithReport]:
    async with deps.unit_of_work() as session:
        universe, result = await deps.dynamic(session).create(name, rules, description=description, rebalance=rebalance)
    shown = await universes_dynamic.listed(deps, result)
    # The members in the report's words too, so a client reading report.counts sees what an add would show.
    report = MembershipReport(
        results=[SymbolOutcome(symbol=c.symbol, outcome="added", reason=c.reason) for c in shown.additions],
        counts={"added": result.addition_count} if result.addition_count else {},
        asset_count=universe.asset_count,
        truncated=shown.truncated,
        report_uri=shown.report_uri,
    )
    actions = [
        NextAction(tool="get_universe", arguments={"universe_id": universe.id}, reason="review the members"),
    ]
    if not universe.asset_count:
        actions.insert(
            0,
            NextAction(
                tool="update_universe",
                arguments={"universe_id": universe.id},
                reason="the rules select nothing yet: loosen them (screen_assets previews a rule)",
            ),
        )
    schedule = f", rebalanced {rebalance}" if rebalance else ", rebalanced when you call rebalance_universe"
    message = (
        f"Created dynamic universe {universe.name!r} (id {universe.id}) with {universe.asset_count} assets{schedule}."
    )
    if result.warnings:
        message += " " + " ".join(result.warnings)
    return ok(
        UniverseWithReport(universe=universe, report=report),
        message,
        next_actions=actions,
        asset_count=universe.asset_count,
    )


async def list_universes(
    deps: Deps,
    limit: Limit = None,
    cursor: Cursor = None,
    name_contains: Annotated[
        str | None,
        Field(description="Only universes whose name contains this text (case-insensitive).", max_length=200),
    ] = None,
) -> Envelope[UniversePage]:
    """List your universes (id, name, description, asset count) by name, a page at a time.

    Use it to find a universe id by name. Pass next_cursor back as cursor for the next page.
    """
    async with deps.unit_of_work() as session:
        page = await deps.universes(session).list(limit=limit, cursor=cursor, name_contains=name_contains)
    more = " More on the next page." if page.next_cursor else ""
    actions = (
        [
            NextAction(
                tool="list_universes",
                arguments={"cursor": page.next_cursor, **({"name_contains": name_contains} if name_contains else {})},
                reason="get the next page",
            )
        ]
        if page.next_cursor
        else []
    )
    if not page.universes and not cursor:
        actions.append(
            NextAction(tool="create_universe", arguments={"name": "My universe"}, reason="create a first universe")
        )
    return ok(page, f"{len(page.universes)} universe(s).{more}", next_actions=actions, count=len(page.universes))


async def get_universe(
    deps: Deps,
    universe_id: UniverseId,
    include_assets: Annotated[bool, Field(description="Include the member assets (default true).")] = True,
    limit: MemberLimit = None,
    cursor: Cursor = None,
    as_of: Annotated[
        datetime | None,
        Field(description="Show membership as it was at this time (ISO 8601 with zone, e.g. 2026-01-31T00:00:00Z)."),
    ] = None,
) -> Envelope[UniverseDetail]:
    """Get one universe: details, member counts by validation status and a page of members in position order.

    Renamed securities show today's ticker with former_symbol; delisted members are also listed in delisted_members
    for review. With as_of, shows the membership at that past time, rebuilt from the add/remove history.
    """
    unvalidated = False
    job_id = None
    if limit is None:
        limit = min(MEMBERS_PAGE, deps.state.limits.page_size_default)
    async with deps.unit_of_work() as session:
        detail = await deps.universes(session).get(
            universe_id, include_assets=include_assets, limit=limit, cursor=cursor, as_of=as_of
        )
        unvalidated = bool(detail.counts_by_status.get("pending") or detail.counts_by_status.get("unknown"))
        if unvalidated:  # a job may already be validating them (e.g. the automatic one after an add)
            job_id = await deps.jobs().service(session).active_for_universe(detail.universe.id)
    actions = []
    if detail.next_cursor:
        actions.append(
            NextAction(
                tool="get_universe",
                arguments={
                    "universe_id": universe_id,
                    "cursor": detail.next_cursor,
                    **({"as_of": as_of.isoformat()} if as_of else {}),
                },
                reason="get the next page of assets",
            )
        )
    if detail.delisted_members:
        flagged = detail.delisted_members
        first = flagged[0]
        when = f" on {first.delisted_on.isoformat()}" if first.delisted_on else ""
        if detail.definition is not None:  # dynamic: its next rebalance drops them; members are not edited by hand
            actions.append(
                NextAction(
                    tool="rebalance_universe",
                    arguments={"universe_id": universe_id, "dry_run": True},
                    reason=f"{len(flagged)} member(s) are delisted ({first.symbol}{when}): the next rebalance "
                    "removes them; preview it",
                )
            )
        else:
            actions.append(
                NextAction(
                    tool="remove_assets_from_universe",
                    arguments={"universe_id": universe_id, "symbols": [m.symbol for m in flagged]},
                    reason=f"{len(flagged)} member(s) are delisted ({first.symbol}{when}): review them, and remove "
                    "those you no longer want",
                )
            )
    failure = detail.definition.last_failure if detail.definition is not None else None
    if failure is not None and not any(a.tool == "rebalance_universe" for a in actions):
        actions.append(
            NextAction(
                tool="rebalance_universe",
                arguments={"universe_id": universe_id, "dry_run": True},
                reason=f"its {failure.trigger.replace('_', ' ')} rebalance of {failure.at.date().isoformat()} failed "
                f"({failure.code}): preview one to see why, then change the rules with update_universe",
            )
        )
    if job_id:
        actions.append(
            NextAction(
                tool="get_job_status",
                arguments={"job_id": job_id},
                reason="a validation job is already checking this universe's pending or unknown members",
            )
        )
    elif unvalidated:
        actions.append(
            NextAction(
                tool="start_bulk_validation",
                arguments={"universe_id": universe_id},
                reason="validate members that are pending or unknown",
            )
        )
    when = f" as of {as_of.isoformat()}" if as_of else ""
    return ok(
        detail,
        f"Universe {detail.universe.name!r} has {detail.universe.asset_count} assets{when}.",
        next_actions=actions,
        asset_count=detail.universe.asset_count,
    )


async def update_universe(
    deps: Deps,
    universe_id: UniverseId,
    name: Annotated[str | None, Field(description="New name (unique among your universes).")] = None,
    description: Annotated[str | None, Field(description="New description; an empty string clears it.")] = None,
    rules: Rules = None,
    rebalance: Annotated[
        str | None,
        Field(description="daily, weekly, monthly, quarterly, or none."),
    ] = None,
    include: Annotated[
        list[str] | None,
        Field(description="Symbols pinned in whatever the rules say (replaces the list)."),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        Field(description="Symbols pinned out (replaces the list)."),
    ] = None,
    kind: Annotated[str | None, Field(description='"static" freezes a dynamic universe as the list it now is.')] = None,
) -> Envelope[UpdatedUniverse]:
    """Rename or describe a universe, or change what makes it dynamic: its rules, pins and schedule.

    Name and description never touch membership. rules (as screen_assets takes them) make a universe dynamic or
    change its rules; include/exclude pin symbols in or out; rebalance sets the schedule. Each such change bumps
    rules_version and is recorded; the members follow at the next rebalance (rebalance_universe previews it).
    kind="static" freezes a dynamic universe as its current list. Setting the same values again changes nothing
    and says so. Fails with already_exists if the name is taken.
    """
    freeze = kind == "static"
    if kind not in (None, "static", "dynamic"):
        raise InvalidArgument(
            f"kind {str(kind)[:20]!r} is not static or dynamic.",
            hint='Use kind="static" to freeze a dynamic universe; give rules to make one dynamic.',
            candidates=["static"],
        )
    if kind == "dynamic" and rules is None:
        raise InvalidArgument(
            "A universe becomes dynamic by its rules: give rules (kind can be left out).",
            hint='e.g. rules={"field": "index", "op": "eq", "value": "S&P 500"}.',
        )
    defining = freeze or any(v is not None for v in (rules, rebalance, include, exclude))
    if name is None and description is None and not defining:
        raise InvalidArgument(
            "Nothing to change: pass name, description, rules, rebalance, include, exclude or kind.",
        )
    clear = rebalance is not None and rebalance.strip().lower() in ("none", "")
    changed: list[str] = []
    definition = None
    async with deps.unit_of_work() as session:
        if name is not None or description is not None:
            universe, changed = await deps.universes(session).update(universe_id, name=name, description=description)
        if defining:
            universe, redefined = await deps.dynamic(session).redefine(
                universe_id,
                rules=rules,
                rebalance=None if clear else rebalance,
                clear_rebalance=clear,
                include=include,
                exclude=exclude,
                freeze=freeze,
            )
            changed += redefined
            detail = await deps.universes(session).get(universe_id, include_assets=False)
            definition = detail.definition
    message = (
        f"Updated {', '.join(changed)} of universe {universe.name!r}."
        if changed
        else f"Universe {universe.name!r} already had those values; nothing changed."
    )
    actions = []
    if definition is not None and {"rules", "include", "exclude", "kind"} & set(changed):
        message += " Its members follow at the next rebalance."
        actions.append(
            NextAction(
                tool="rebalance_universe",
                arguments={"universe_id": universe.id, "dry_run": True},
                reason="preview who joins and leaves under the new definition, then apply it",
            )
        )
    version = definition.rules_version if definition else None
    return ok(UpdatedUniverse(universe=universe, changed=changed, rules_version=version), message, next_actions=actions)


async def delete_universe(deps: Deps, universe_id: UniverseId) -> Envelope[DeletedUniverse]:
    """Delete a universe and its membership history permanently; the assets stay in the catalogue.

    Only when the user clearly asked for it. An unknown id fails with not_found.
    """
    async with deps.unit_of_work() as session:
        deleted = await deps.universes(session).delete(universe_id)
    return ok(
        DeletedUniverse(deleted=deleted),
        f"Deleted universe {deleted.name!r} ({deleted.asset_count} assets).",
        next_actions=[NextAction(tool="list_universes", arguments={}, reason="see the remaining universes")],
    )


async def add_assets_to_universe(
    deps: Deps,
    universe_id: UniverseId,
    symbols: Symbols,
    validate: Annotated[
        bool, Field(description="Check each new symbol with market-data providers first (default true).")
    ] = True,
) -> Envelope[UniverseWithReport]:
    """Add securities to a universe by ticker. Idempotent: members already present are reported, not duplicated.

    Returns counts of added, already_present and rejected, listing rejected (reason, similar symbols) and pending
    symbols first. Pending ones (no provider could check them now) are re-checked in the background. Junk tickers
    fail the call with invalid_argument, changing nothing.
    """
    async with deps.unit_of_work() as session:
        universe, report = await deps.universes(session).add_assets(universe_id, symbols, validate=validate)
    listed = await _listed(deps, universe, report, "add_assets_to_universe")
    return await queue_pending_symbols(
        deps,
        ok(  # pending members are re-checked by a background job
            UniverseWithReport(universe=universe, report=listed),
            f"Universe {universe.name!r}: {_report_message(report)}; {report.asset_count} assets now."
            + _unlisted(listed),
            next_actions=_after_add(universe, report),
            validation_status=_validation_status(report),
            asset_count=report.asset_count,
        ),
        report,
        universe.id,
    )


async def remove_assets_from_universe(
    deps: Deps, universe_id: UniverseId, symbols: Symbols
) -> Envelope[UniverseWithReport]:
    """Remove securities from a universe by ticker. Idempotent: non-members are reported as not_present.

    The removal is recorded in the universe's history (get_universe_turnover, get_universe with as_of).
    """
    async with deps.unit_of_work() as session:
        universe, report = await deps.universes(session).remove_assets(universe_id, symbols)
    listed = await _listed(deps, universe, report, "remove_assets_from_universe")
    return ok(
        UniverseWithReport(universe=universe, report=listed),
        f"Universe {universe.name!r}: {_report_message(report)}; {report.asset_count} assets now." + _unlisted(listed),
        asset_count=report.asset_count,
    )


async def universe_resource(universe_id: str, ctx: AppContext) -> str:
    deps = await tool_deps(ctx)
    async with deps.unit_of_work() as session:
        detail = await deps.universes(session).get(universe_id, limit=deps.state.limits.page_size_max)
    return json.dumps(detail.model_dump(mode="json"), separators=(",", ":"))


def build_universe(theme: str, size: str = "20") -> list:
    """Plan and create a universe of securities around a theme."""
    return [
        UserMessage(
            f"Build an investment universe around the theme {theme!r} with about {size} securities. "
            "Find real securities in the server, never from memory: list_sectors shows the sectors and industries; "
            "search_assets takes words and filters (industry, country, asset_type, index, market cap) and "
            "screen_assets takes rules for anything more precise. Pick the ones that fit the theme, then "
            "create_universe with their symbols (a search or screen offers it as a next action), and summarise the "
            "report: what was added, rejected or pending. If the theme is a rule that should stay true over time "
            "(e.g. US semiconductor companies above $10B), create_universe with those rules and a rebalance "
            "schedule instead: the members then follow the rules, each change with its reason."
        )
    ]


def review_universe(universe_id: str) -> list:
    """Review a universe's composition, validation state and recent turnover."""
    return [
        UserMessage(
            f"Review universe {universe_id}: call get_universe for members and counts by validation status (and, "
            "for a dynamic universe, its rules and last rebalance), get_universe_turnover for the last 90 days and "
            "get_universe_history for who came and went and why, then point out pending, invalid or delisted "
            "members, sector concentration and anything that should be re-validated or rebalanced."
        )
    ]


TOOLSET = Toolset(
    id="universes",
    description="Create, read, change and delete investment universes and their membership history.",
    instructions="Bulk answers give counts of every symbol and list the ones needing attention first; the rest is "
    "where they say. Find a universe's id with list_universes.",
    tools=[
        # create/add validate symbols with outside providers by default: open world.
        ToolSpec(create_universe, "Create universe", WRITE.model_copy(update={"open_world_hint": True}), scope="write"),
        ToolSpec(list_universes, "List universes", READ),
        ToolSpec(get_universe, "Get universe", READ),
        ToolSpec(
            update_universe,
            "Rename, describe or redefine a universe",
            WRITE.model_copy(update={"idempotent_hint": True}),
            scope="write",
        ),
        ToolSpec(delete_universe, "Delete universe", DESTRUCTIVE, scope="write"),
        ToolSpec(
            add_assets_to_universe,
            "Add assets to a universe",
            WRITE.model_copy(update={"idempotent_hint": True, "open_world_hint": True}),
            scope="write",
        ),
        ToolSpec(remove_assets_from_universe, "Remove assets from a universe", DESTRUCTIVE, scope="write"),
        *universes_history.TOOLS,
        *universes_dynamic.TOOLS,
        *universes_csv.TOOLS,
    ],
    resources=[
        ResourceSpec(
            "universe://{universe_id}",
            universe_resource,
            title="Universe",
            description="A universe with its first {settings.page_size_max} member assets and counts by validation "
            "status.",
        ),
        REPORT_RESOURCE,  # reports://{report_id}: bulk outcomes in full (tools/_reports.py)
        universes_csv.CSV_RESOURCE,
    ],
    prompts=[PromptSpec(build_universe, "Build a universe"), PromptSpec(review_universe, "Review a universe")],
)
