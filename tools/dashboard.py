"""The `dashboard` toolset: the tool that opens the universe dashboard (an MCP App) and the View's refresh tool.

Both are ordinary toolset tools, so they pass through UniverseMCPServer.call_tool like every other: owner checks in
the services, token scopes and rate limits in the guard. `_meta.ui` binds them to the View resource that
server/dashboard.py registers through the SDK's Apps extension. Hiding app-only tools from the model is the host's
job (the spec says so); the server lists them to everyone and checks them like any other call.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from mcp.server.apps import client_supports_apps
from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from services import composition
from services.schemas import UniverseDetail, UniverseSummary
from tools._deps import Deps
from tools._results import Envelope, NextAction, ok
from tools._toolset import READ, Toolset, ToolSpec

__all__ = ["TOOLSET", "VIEW_URI", "ui_meta"]

VIEW_URI = "ui://universe/dashboard.html"
TEXT_ROWS = 10  # rows of each table in the text answer for clients without Apps support
# The first state stays under 16 KB (issue 16): 15 members (~435 bytes each; the View loads more with get_universe)
# and as many universes (~150 bytes each, at most FIRST_UNIVERSES) as fit in what is left of ANSWER_BYTES; the View
# loads the others with list_universes from universes_next_cursor.
FIRST_MEMBERS = 15
FIRST_UNIVERSES = 50
ANSWER_BYTES = 14_500  # aimed at, leaving room for the envelope's next actions, metadata and keys


def ui_meta(*, visibility: list[str] | None = None) -> dict[str, Any]:
    """The `_meta.ui` block the Apps extension stamps on bound tools (resourceUri, optional visibility)."""
    ui: dict[str, Any] = {"resourceUri": VIEW_URI}
    if visibility is not None:
        ui["visibility"] = visibility
    return {"ui": ui}


class DashboardLimits(BaseModel):
    csv_max_bytes: int
    csv_max_rows: int
    max_symbols_per_call: int
    max_inline_validation: int


class DashboardUniverse(BaseModel):
    """A universe in the dashboard's list: what the list shows (list_universes has the rest)."""

    id: str
    name: str
    asset_count: int
    updated_at: datetime


class DashboardData(BaseModel):
    universes: list[DashboardUniverse] = Field(description="Your first universes by name (up to 50).")
    more_universes: bool = Field(description="True when you have more universes than are listed.")
    universes_next_cursor: str | None = Field(
        None, description="When there are more: pass as cursor to list_universes for the next ones."
    )
    selected: UniverseDetail | None = Field(
        None, description="The universe shown: its counts and first 15 members (next_cursor for more)."
    )
    # Typed by Composition, published as an object: the View reads it, and its schema would cost every client's
    # tools/list about 1.8 KB (twice: both dashboard tools carry it).
    composition: dict[str, Any] | None = Field(
        None, description="The selected universe's make-up for the charts (sectors, industries, caps, statuses)."
    )
    tools: list[str] = Field(description="Tools this server exposes to the dashboard (it hides what is missing).")
    read_only: bool = Field(description="True when the server exposes no tool that changes data.")
    limits: DashboardLimits


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")[:60]


def _as_text(data: DashboardData) -> str:
    """A compact markdown answer for clients that cannot show the View."""
    if not data.universes:
        return "You have no universes yet. Create one with create_universe(name, symbols)."
    lines = [
        f"Your universes ({len(data.universes)}{'+' if data.more_universes else ''}):",
        "",
        "| Universe | Assets | Updated | id |",
        "|---|---:|---|---|",
    ]
    for u in data.universes[:TEXT_ROWS]:
        lines.append(f"| {_cell(u.name)} | {u.asset_count} | {u.updated_at:%Y-%m-%d} | {u.id} |")
    if len(data.universes) > TEXT_ROWS or data.more_universes:
        more = f"{len(data.universes) - TEXT_ROWS}+" if data.more_universes else len(data.universes) - TEXT_ROWS
        lines.append(f"| ... {more} more (list_universes) | | | |")
    if data.selected is not None:
        detail = data.selected
        counts = ", ".join(f"{n} {status}" for status, n in sorted(detail.counts_by_status.items())) or "empty"
        lines += ["", f"{detail.universe.name}: {detail.universe.asset_count} assets ({counts}).", ""]
        members = detail.assets or []
        if members:
            lines += ["| Symbol | Name | Sector | Status |", "|---|---|---|---|"]
            lines += [
                f"| {m.symbol} | {_cell(m.name)} | {_cell(m.sector)} | {m.validation_status} |"
                for m in members[:TEXT_ROWS]
            ]
            if detail.universe.asset_count > TEXT_ROWS:
                lines.append(f"| ... {detail.universe.asset_count - TEXT_ROWS} more (get_universe) | | | |")
    return "\n".join(lines)


def _json_size(value: BaseModel | list[Any]) -> int:
    if isinstance(value, BaseModel):
        return len(value.model_dump_json().encode())
    return sum(_json_size(v) + 1 for v in value)


def _listed(universe: UniverseSummary) -> DashboardUniverse:
    return DashboardUniverse(
        id=universe.id, name=universe.name, asset_count=universe.asset_count, updated_at=universe.updated_at
    )


async def _load(deps: Deps, ctx: Context, universe_id: str | None) -> DashboardData:
    settings = deps.state.settings
    specs = getattr(ctx.mcp_server, "specs", {})
    async with deps.unit_of_work() as session:
        service = deps.universes(session)
        page = await service.list(limit=min(FIRST_UNIVERSES, service.limits.page_size_max))
        selected_id = universe_id or (page.universes[0].id if page.universes else None)
        # An explicit id goes through the owner check (not_found for anyone else's universe).
        selected = await service.get(selected_id, limit=FIRST_MEMBERS) if selected_id else None
        make_up = (
            await composition.member_composition(service, selected.universe.id, service.limits.page_size_max)
            if selected
            else None
        )
        data = DashboardData(
            universes=[],
            more_universes=False,
            selected=selected,
            composition=make_up.model_dump(mode="json") if make_up else None,
            tools=sorted(specs),
            read_only=not any(not s.read_only for s in specs.values()),
            limits=DashboardLimits(
                csv_max_bytes=settings.csv_max_bytes,
                csv_max_rows=settings.csv_max_rows,
                max_symbols_per_call=settings.max_symbols_per_call,
                max_inline_validation=settings.max_inline_validation,
            ),
        )
        listed = [_listed(u) for u in page.universes]
        # What the rest of the answer costs (the text answer lists TEXT_ROWS universes at most, whichever they are),
        # then as many universes as fit in what is left; at least one, so the list is never empty for nothing.
        rest = _json_size(data) + len(_as_text(data.model_copy(update={"universes": listed})).encode())
        room, fit = ANSWER_BYTES - rest, 0
        for universe in listed:
            room -= _json_size(universe) + 1
            if fit and room < 0:
                break
            fit += 1
        if fit < len(listed):  # cut short: the cursor must stand after the last one listed, so page again
            page = await service.list(limit=fit)
    data.universes = listed[:fit]
    data.more_universes = page.next_cursor is not None
    data.universes_next_cursor = page.next_cursor
    return data


def _count(data: DashboardData) -> str:
    n = len(data.universes)
    return f"the first {n} universes (more with list_universes)" if data.more_universes else f"{n} universe(s)"


def _actions(data: DashboardData) -> list[NextAction]:
    if data.selected is None:
        return [NextAction(tool="create_universe", arguments={"name": "My universe"}, reason="create a first universe")]
    uid = data.selected.universe.id
    actions = [
        NextAction(tool="get_universe", arguments={"universe_id": uid}, reason="read the members page by page"),
        NextAction(tool="export_universe_csv", arguments={"universe_id": uid}, reason="export the members as CSV"),
    ]
    if data.universes_next_cursor:
        actions.append(
            NextAction(
                tool="list_universes",
                arguments={"cursor": data.universes_next_cursor},
                reason="list the universes after the ones shown",
            )
        )
    return actions


UniverseIdOpt = Annotated[
    str | None, Field(description="Universe to show first (its id). Default: your first universe by name.")
]


async def open_universe_dashboard(
    deps: Deps, ctx: Context, universe_id: UniverseIdOpt = None
) -> Envelope[DashboardData]:
    """Open the interactive universe dashboard when the user wants to see or manage universes visually: composition
    charts, member table with status reasons, history, rules editor, asset search, CSV import and export. Clients
    that cannot show apps get a markdown table instead.
    """
    data = await _load(deps, ctx, universe_id)
    if client_supports_apps(ctx):
        # The View renders structuredContent; the model only needs a one-line account of what the user sees.
        shown = f", showing {data.selected.universe.name!r}" if data.selected else ""
        message = f"Opened the universe dashboard: {_count(data)}{shown}."
    else:
        message = _as_text(data)
    return ok(data, message, next_actions=_actions(data), universe_count=len(data.universes))


async def get_dashboard_state(deps: Deps, ctx: Context, universe_id: UniverseIdOpt = None) -> Envelope[DashboardData]:
    """Refresh the dashboard View: the same data as open_universe_dashboard. Called by the View after each change.

    App-only (hosts do not offer it to the model); owner checks, scopes and limits apply as to any tool.
    """
    data = await _load(deps, ctx, universe_id)
    shown = f"; showing {data.selected.universe.name!r}" if data.selected else ""
    return ok(data, f"{_count(data)}{shown}.", universe_count=len(data.universes))


TOOLSET = Toolset(
    id="dashboard",
    description="The universe dashboard: an MCP App (ui://universe/dashboard.html) for hosts that show apps.",
    tools=[
        ToolSpec(open_universe_dashboard, "Open the universe dashboard", READ, meta=ui_meta()),
        ToolSpec(get_dashboard_state, "Refresh the universe dashboard", READ, meta=ui_meta(visibility=["app"])),
    ],
)
