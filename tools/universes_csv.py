"""CSV interchange tools (part of the `universes` toolset): import a symbol file with a per-row report, export CSV.

Parsing and formatting live in services/csv_io.py, the import itself (guards, apply, per-row verdicts) in
services/csv_import.py; this module presents them. An import is one transaction: it lands whole or not at all.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from services.csv_import import CsvImport, CsvImportResult, ImportRow, apply_import, read_import
from services.csv_io import EXPORT_COLUMNS, csv_line, csv_row, format_csv
from services.errors import UniverseMCPError
from services.pagination import decode_cursor, encode_cursor, invalid_cursor
from services.schemas import UniverseSummary
from services.universes import UniverseService
from tools._deps import AppContext, Deps, ToolDeps, admit, tool_deps
from tools._reports import keep_report
from tools._results import Envelope, NextAction, attention_first, ok
from tools._toolset import READ, WRITE, ResourceSpec, ToolSpec
from tools.jobs import queue_pending_symbols

__all__ = ["CSV_RESOURCE", "TOOLS", "all_members"]

logger = logging.getLogger(__name__)

REMOVED_LISTED = 50  # removed members named in the answer (replace mode); all of them are in the report resource
JOB_TOOL = "start_bulk_validation"
EXPORT_CURSOR = "csv_export"
# An export page's answer aims at EXPORT_ANSWER_BYTES, under the 16 KB every result keeps to (issue 16): the CSV
# gets what the universe's summary (its name and description, up to 2,000 characters), the name in the message and
# the rest of the envelope (EXPORT_ENVELOPE_BYTES: keys, the cursor twice, message, next action) leave.
EXPORT_ANSWER_BYTES = 14_000
EXPORT_ENVELOPE_BYTES = 1_500


class CsvExport(BaseModel):
    universe: UniverseSummary
    filename: str
    csv_text: str = Field(
        description="This page of the RFC 4180 CSV: the header row on the first page only, so the pages' csv_text "
        "joined in order is exactly the whole file. Formula-like cells are prefixed with '."
    )
    row_count: int = Field(description="Members on this page.")
    offset: int = Field(description="Members on the pages before this one.")
    total_rows: int = Field(description="Members in the universe.")
    next_cursor: str | None = Field(None, description="Pass as cursor for the next page; null on the last page.")
    resource_uri: str = Field(description="The whole CSV as an MCP resource.")


async def all_members(service: UniverseService, universe_id: str) -> tuple[UniverseSummary, list[Any]]:
    """Every member in position order, read page by page (pages are bounded by page_size_max)."""
    members: list[Any] = []
    cursor: str | None = None
    while True:
        detail = await service.get(universe_id, limit=service.limits.page_size_max, cursor=cursor)
        members.extend(detail.assets or [])
        cursor = detail.next_cursor
        if cursor is None:
            return detail.universe, members


async def _start_job(deps: ToolDeps, ctx: Context, symbols: list[str]) -> str | None:
    """Hand the symbols to a bulk validation job as start_bulk_validation would (services/jobs.py: JobDesk.start):
    only when the jobs toolset is exposed, and admitted like that tool (the validate scope and its rate limit)."""
    state = deps.state
    if not symbols or "jobs" not in state.settings.toolsets or state.jobs is None:
        return None
    try:
        await admit(state, JOB_TOOL, ("validate",), deps.caller)
        jobs = deps.jobs()
        status, _ = await jobs.start(symbols=symbols)
    except UniverseMCPError as exc:  # e.g. no validate scope, too many active jobs, the queue unreachable
        logger.info("import: bulk validation not started: %s", exc.code)
        return None
    jobs.follow(status, ctx.notify_resource_updated)
    return status.job_id


def _rank(row: ImportRow) -> int:
    """Invalid rows first, then added rows not validated yet, duplicates, and rows added as valid last."""
    if row.verdict == "invalid":
        return 0
    if row.verdict == "added" and row.validation_status == "pending":
        return 1
    if row.verdict == "duplicate":
        return 2
    if row.verdict == "backdated":
        return 4
    return 3 if row.validation_status != "valid" else 4


def _actions(
    universe: UniverseSummary, rows: list[ImportRow], job_id: str | None, unchecked: int, backdated: int = 0
) -> list[NextAction]:
    uid = universe.id
    actions = []
    if backdated:
        actions.append(
            NextAction(
                tool="get_universe_history",
                arguments={"universe_id": uid},
                reason=f"see the {backdated} back-dated changes in the universe's history",
            )
        )
    if job_id:
        actions.append(
            NextAction(tool="get_job_status", arguments={"job_id": job_id}, reason="follow the validation job")
        )
    elif unchecked:
        actions.append(
            NextAction(
                tool=JOB_TOOL,
                arguments={"universe_id": uid},
                reason=f"validate the {unchecked} imported symbols that are not yet checked",
            )
        )
    if candidates := [c for r in rows if r.verdict == "invalid" for c in r.candidates][:10]:
        actions.append(
            NextAction(
                tool="add_assets_to_universe",
                arguments={"universe_id": uid, "symbols": candidates},
                reason="add suggested symbols in place of invalid rows, if they are meant",
            )
        )
    actions.append(NextAction(tool="get_universe", arguments={"universe_id": uid}, reason="review the members"))
    return actions


async def import_universe_csv(
    deps: Deps,
    ctx: Context,
    csv_text: Annotated[
        str,
        Field(
            description="The file's text: a CSV with a symbol/ticker/code column, tickers one "
            "per line or comma separated, a TradingView watchlist (EXCHANGE:SYMBOL, ###SECTION "
            "headers) or an IBKR/TWS export (DES,AAPL,STK,SMART/AMEX,,,,)."
        ),
    ],
    universe_id: Annotated[str | None, Field(description="Import into this existing universe (its id).")] = None,
    name: Annotated[str | None, Field(description="Or create a universe with this name and import into it.")] = None,
    mode: Annotated[
        Literal["append", "replace"],
        Field(
            description="append (default) adds the file's symbols; replace also removes members the file does not list."
        ),
    ] = "append",
    validate: Annotated[bool, Field(description="Validate symbols with market-data providers (default true).")] = True,
) -> Envelope[CsvImport]:
    """Import a CSV or watchlist file of tickers into a universe (universe_id) or a new one (name).

    Each row is added, duplicate or invalid (with the reason and candidates). Returns counts per verdict and the rows
    needing attention first (every row at report_uri). Files over {settings.csv_job_threshold} symbols are added at once and validated by a
    background job (job_id: follow it with get_job_status). Whole-file problems change nothing.

    A date column (date, effective_date or as_of: YYYY-MM-DD or ISO, UTC, 1900 to now) and an action column
    (added|removed) import past changes at their dates (verdict backdated); per security they must alternate
    added/removed with the recorded history. A bad date changes nothing.
    """
    settings = deps.state.settings
    parsed = await read_import(settings, csv_text, universe_id, name)
    async with deps.unit_of_work() as session:
        result = await apply_import(
            deps.universes(session),
            parsed,
            universe_id,
            name,
            mode=mode,
            validate=validate,
            job_threshold=settings.csv_job_threshold,
        )
    if result.needs_job:
        result.with_job(await _start_job(deps, ctx, result.unchecked[: settings.max_bulk_symbols]))
    envelope = await _answer(deps, result)
    if validate and not result.large:  # as for add_assets_to_universe: members added as pending are re-checked
        envelope = await queue_pending_symbols(deps, envelope, result.report, result.universe.id)
    return envelope


async def _answer(deps: ToolDeps, result: CsvImportResult) -> Envelope[CsvImport]:
    """The answer stays under 16 KB however long the file: counts of every row, the rows that need attention
    first, and the whole per-row report as a resource when that is not all of them."""
    universe, parsed, removed, job_id = result.universe, result.parsed, result.removed, result.job_id
    rows = await result.rows()
    counts = result.counts(rows)
    unchecked = result.unchecked
    applied = ("added", "backdated")
    problems_first = [r for r in rows if r.verdict not in applied] + [r for r in rows if r.verdict in applied]
    listed = attention_first(problems_first, _rank)
    report_uri = None
    if len(listed) < len(rows) or len(removed) > REMOVED_LISTED:
        report_uri = await keep_report(
            deps,
            "import_universe_csv",
            {
                "universe_id": universe.id,
                "format": parsed.format,
                "counts": counts,
                "job_id": job_id,
                "rows": [r.model_dump(mode="json") for r in rows],
                "removed": removed,
            },
        )
    data = CsvImport(
        universe=universe,
        format=parsed.format,
        mode=result.mode,
        counts=counts,
        backdated=result.backdated,
        rows=listed,
        rows_truncated=len(rows) > len(listed),
        report_uri=report_uri,
        removed=removed[:REMOVED_LISTED],
        ignored_columns=parsed.ignored_columns,
        notes=parsed.notes,
        job_id=job_id,
    )
    summary = ", ".join(f"{n} {verdict}" for verdict, n in counts.items() if n) or "no rows"
    job_note = f" {result.backdated} change(s) recorded at their dates." if result.backdated else ""
    job_note += f" Validation job {job_id} is checking {len(unchecked)} symbols." if job_id else ""
    if data.rows_truncated:
        where = f"; every row is in {report_uri}" if report_uri else ""
        job_note += f" Listed {len(listed)} of {len(rows)} rows, problems first{where}."
    return ok(
        data,
        f"Imported a {parsed.format} file into {universe.name!r}: {summary}; "
        f"{universe.asset_count} members now.{job_note}",
        next_actions=_actions(universe, rows, job_id, len(unchecked) if result.needs_job else 0, result.backdated),
        asset_count=universe.asset_count,
        rows=len(rows),
    )


def _same_id(issued: object, given: str) -> bool:
    try:
        return uuid.UUID(str(issued)) == uuid.UUID(given)
    except ValueError:
        return False


def _export_cursor(universe_id: str, cursor: str | None) -> tuple[str | None, int]:
    """The members cursor and the offset an export cursor stands for (none and 0 for the first page)."""
    if cursor is None:
        return None, 0
    position = decode_cursor(EXPORT_CURSOR, cursor)
    # Issued for this universe only: the cursor of another universe's export is as invalid as a made-up one.
    if not (isinstance(position, dict) and _same_id(position.get("u"), universe_id)):
        raise invalid_cursor()
    after, offset = position.get("p"), position.get("n")
    if not (isinstance(after, int) and isinstance(offset, int)):
        raise invalid_cursor()
    # The members' own cursor: the position of the last member exported, as get_universe's pages use it.
    return encode_cursor("members", after), offset


def _json_bytes(text: str) -> int:
    """What ``text`` costs inside the JSON answer (quotes and CRLF escaped, UTF-8)."""
    return len(json.dumps(text, ensure_ascii=False).encode()) - 2


async def export_universe_csv(
    deps: Deps,
    universe_id: Annotated[str, Field(description="Universe id (a UUID) as returned by list_universes.")],
    cursor: Annotated[
        str | None, Field(description="next_cursor from the previous page; omit for the first page.")
    ] = None,
    limit: Annotated[
        int | None,
        Field(
            description="At most this many rows per page (default: as many as fit, at most {settings.page_size_max})."
        ),
    ] = None,
) -> Envelope[CsvExport]:
    """Export a universe's members as CSV in the universe's order: symbol, name, exchange, type, currency, sector,
    industry, validation status and source, added at. Formula-like cells are prefixed with a quote.

    One page at a time (about 12 KB of CSV, ~110 rows): the header row is on the first page only, so joining every
    page's csv_text in order gives exactly the whole file; pass next_cursor as cursor until it is null. The whole
    file in one read is the resource universe://{universe_id}/assets.csv.
    """
    async with deps.unit_of_work() as session:
        service = deps.universes(session)
        members_cursor, offset = _export_cursor(universe_id, cursor)
        size = service.limits.page_size_max if limit is None else limit
        detail = await service.get(universe_id, limit=size, cursor=members_cursor)
    universe, members = detail.universe, detail.assets or []
    # Records while they fit (at least one, so every page moves on), counted as they sit in the JSON answer.
    room = EXPORT_ANSWER_BYTES - EXPORT_ENVELOPE_BYTES - len(universe.model_dump_json().encode())
    room -= len(universe.name.encode())
    lines = [] if cursor else [csv_line(EXPORT_COLUMNS)]
    used = sum(_json_bytes(line) for line in lines)
    taken = 0
    for member in members:
        line = csv_row(member.model_dump())
        used += _json_bytes(line)
        if taken and used > room:
            break
        lines.append(line)
        taken += 1
    more = taken < len(members) or detail.next_cursor is not None
    next_cursor = None
    if more:
        last = members[taken - 1].position
        next_cursor = encode_cursor(EXPORT_CURSOR, {"u": universe.id, "p": last, "n": offset + taken})
    safe_name = "".join(c if c.isalnum() or c in "-_" else "-" for c in universe.name).strip("-")[:60] or "universe"
    resource_uri = f"universe://{universe.id}/assets.csv"
    data = CsvExport(
        universe=universe,
        filename=f"{safe_name}.csv",
        csv_text="".join(lines),
        row_count=taken,
        offset=offset,
        total_rows=universe.asset_count,
        next_cursor=next_cursor,
        resource_uri=resource_uri,
    )
    if next_cursor is None and offset == 0:
        message = f"Exported {taken} members of {universe.name!r} as CSV."
        actions: list[NextAction] = []
    else:
        message = (
            f"Exported rows {offset + 1}-{offset + taken} of {universe.asset_count} members of {universe.name!r} as "
            "CSV (header on the first page only; join the pages' csv_text in order)."
        )
        if next_cursor:
            message += f" More remain: call again with cursor, or read the whole file at {resource_uri}."
        arguments: dict[str, Any] = {"universe_id": universe.id, "cursor": next_cursor}
        if limit is not None:
            arguments["limit"] = limit
        actions = (
            [NextAction(tool="export_universe_csv", arguments=arguments, reason="fetch the next page of the CSV")]
            if next_cursor
            else []
        )
    return ok(data, message, next_actions=actions, row_count=taken, total_rows=universe.asset_count)


async def universe_assets_csv(universe_id: str, ctx: AppContext) -> str:
    deps = await tool_deps(ctx)
    async with deps.unit_of_work() as session:
        _, members = await all_members(deps.universes(session), universe_id)
    return format_csv(m.model_dump() for m in members)


# Part of the `universes` toolset (tools/universes.py declares it): --toolsets universes selects them too.
TOOLS = [
    ToolSpec(
        import_universe_csv,
        "Import universe from CSV",
        WRITE.model_copy(update={"open_world_hint": True}),
        scope="write",
    ),
    ToolSpec(export_universe_csv, "Export universe as CSV", READ),
]

CSV_RESOURCE = ResourceSpec(
    "universe://{universe_id}/assets.csv",
    universe_assets_csv,
    name="universe-assets-csv",
    title="Universe members (CSV)",
    mime_type="text/csv",
    description="A universe's members as CSV (the same as export_universe_csv).",
)
