"""Importing a symbol file into a universe: the guards on the target, parsing off the event loop, the apply step
(create by name, add, remove what the file lacks) and every row's verdict. MCP-free; tools/universes_csv.py
presents the result.

Membership changes go through UniverseService (services/universes.py), so owner checks, limits and history are
the same as for add/remove; the apply step runs in the caller's unit of work, so an import lands whole or not at
all. Files over ``csv_job_threshold`` symbols are added without inline validation (it would take minutes): their
unvalidated symbols are handed to a bulk validation job once the import has committed (``CsvImportResult.unchecked``,
``with_job``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import Any, Literal

import anyio
from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer

from core.settings import Settings
from services.backdated import DatedChange, DatedOutcome
from services.csv_io import ParsedFile, parse_symbol_file
from services.errors import InvalidArgument, LimitExceeded
from services.schemas import MembershipReport, Outcome, UniverseSummary, ValidationStatus
from services.symbols import normalise_symbols
from services.universes import UniverseService

__all__ = ["CsvImport", "CsvImportResult", "ImportRow", "apply_import", "read_import"]

Verdict = Literal["added", "backdated", "duplicate", "invalid"]

# One outcome vocabulary inside (services/schemas.py: Outcome, as add_assets_to_universe reports it); an import's
# rows speak the file's words, which are part of the tool's output: a symbol already in the universe is a
# `duplicate` (like a line repeating an earlier one), a rejected one is `invalid` (like a line holding no ticker).
ROW_VERDICT: dict[Outcome, Verdict] = {"added": "added", "already_present": "duplicate", "rejected": "invalid"}


class ImportRow(BaseModel):
    line: int = Field(description="1-based line number in the file.")
    input: str = Field(description="The cell or line as written (shortened to 60 characters).")
    symbol: str | None = Field(None, description="The ticker read from it (normalised), when there is one.")
    verdict: Verdict = Field(
        description="added | backdated (a dated change, recorded at its date) | duplicate (already in the universe "
        "or its history, or repeated in the file) | invalid (see reason)."
    )
    action: Literal["added", "removed"] | None = Field(None, description="Dated rows only: the change.")
    effective_at: datetime | None = Field(None, description="Dated rows only: when the change took effect.")
    validation_status: ValidationStatus | None = Field(None, description="For added rows: valid, pending or unknown.")
    reason: str | None = None
    candidates: list[str] = Field(default_factory=list, description="Similar known symbols, for invalid rows.")

    @model_serializer(mode="wrap")
    def _dated_fields_only_when_dated(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if self.effective_at is None:  # an undated row (every row of most files): no two nulls per row
            data.pop("action", None)
            data.pop("effective_at", None)
        return data


class CsvImport(BaseModel):
    universe: UniverseSummary
    format: Literal["csv", "list", "tradingview", "ibkr"] = Field(description="The file format that was recognised.")
    mode: Literal["append", "replace"]
    counts: dict[str, int] = Field(
        description="Rows per verdict (added, duplicate, invalid; backdated when the file has dates), plus removed "
        "members."
    )
    backdated: int = Field(0, description="Changes recorded at their dates from the file's date column.")
    rows: list[ImportRow] = Field(description="Per-row verdicts: problems first, then added rows (the first ones).")
    rows_truncated: bool = Field(description="True when more rows were judged than are listed.")
    report_uri: str | None = Field(None, description="When truncated: the resource with every row's verdict.")
    removed: list[str] = Field(
        default_factory=list, description="Members removed because the file lacks them (replace; the first ones)."
    )
    ignored_columns: list[str] = Field(default_factory=list, description="CSV columns other than the symbol column.")
    notes: list[str] = Field(default_factory=list, description="What was noticed about the file (BOM, encoding ...).")
    job_id: str | None = Field(
        None, description="Bulk validation job for the imported symbols (follow with get_job_status)."
    )


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What became of one symbol of the file."""

    verdict: Verdict
    status: ValidationStatus | None = None
    reason: str | None = None
    candidates: tuple[str, ...] = ()


def _check_target(settings: Settings, csv_text: str, universe_id: str | None, name: str | None) -> None:
    size = len(csv_text.encode("utf-8", errors="replace"))
    if size > settings.csv_max_bytes:
        raise LimitExceeded(
            f"The file is {size:,} bytes; imports take at most {settings.csv_max_bytes:,}.",
            hint="Split the file and import the parts with mode append.",
            details={"limit_bytes": settings.csv_max_bytes, "received_bytes": size},
        )
    if (universe_id is None) == (name is None):
        raise InvalidArgument(
            "Pass exactly one of universe_id (import into it) or name (create a new universe).",
            next_actions=[("list_universes", {}, "find the id of the universe to import into")],
        )


async def read_import(settings: Settings, csv_text: str, universe_id: str | None, name: str | None) -> ParsedFile:
    """The file parsed into per-row verdicts, after the whole-file guards (size, target); a file without a single
    importable ticker is ``invalid_argument`` and changes nothing."""
    _check_target(settings, csv_text, universe_id, name)
    # Parsing a large file is plain CPU work: a worker thread does it, so other callers are served meanwhile.
    parsed = await anyio.to_thread.run_sync(partial(parse_symbol_file, csv_text, max_rows=settings.csv_max_rows))
    if not parsed.symbols:
        problems = [{"line": r.line, "input": r.raw, "reason": r.reason} for r in parsed.rows if r.verdict == "invalid"]
        raise InvalidArgument(
            f"None of the file's {len(parsed.rows)} row(s) holds an importable ticker; nothing was changed.",
            hint="Check the rows in details; tickers look like AAPL, BRK.B or NASDAQ:MSFT.",
            details={"format": parsed.format, "rows": problems[:50]},
        )
    return parsed


@dataclass
class CsvImportResult:
    """An applied import: the universe after it, each symbol's outcome, the members it removed, and the report of
    the adds (for the automatic job over pending members)."""

    parsed: ParsedFile
    universe: UniverseSummary
    mode: Literal["append", "replace"]
    validate: bool
    large: bool  # over csv_job_threshold: added without inline validation, for a bulk job to validate
    report: MembershipReport
    removed: list[str]
    outcomes: dict[str, _Outcome] = field(default_factory=dict)
    job_id: str | None = None
    dated: dict[int, DatedOutcome] = field(default_factory=dict)  # by line

    @property
    def backdated(self) -> int:
        """How many of the file's dated changes were recorded at their dates."""
        return sum(o.verdict == "backdated" for o in self.dated.values())

    @property
    def unchecked(self) -> list[str]:
        """Symbols added but not validated yet (pending or unknown), in file order."""
        return [s for s, o in self.outcomes.items() if o.verdict == "added" and o.status in ("pending", "unknown")]

    @property
    def needs_job(self) -> bool:
        """Whether the unvalidated symbols are for a bulk validation job (a large file asked to be validated)."""
        return self.large and self.validate

    def with_job(self, job_id: str | None) -> None:
        """Record the job validating the unchecked symbols (None: none could be started), and say per row what
        happens to the symbols that were not validated inline."""
        self.job_id = job_id
        note = (
            f"added; validation job {job_id} checks it"
            if job_id
            else "added without validation (too many to check inline)"
        )
        for symbol in self.unchecked:
            if self.outcomes[symbol].status == "unknown":
                self.outcomes[symbol] = replace(self.outcomes[symbol], reason=note)

    def _rows(self) -> list[ImportRow]:
        rows = []
        for row in self.parsed.rows:
            if row.verdict != "ok":  # judged by the parser: invalid or repeated in the file
                outcome = _Outcome(row.verdict, None, row.reason, tuple(row.candidates))
            elif row.effective_at is not None:
                dated = self.dated[row.line]
                outcome = _Outcome(dated.verdict, None, dated.reason, dated.candidates)
            else:
                assert row.symbol is not None, "the parser gives every ok row its symbol"
                outcome = self.outcomes[row.symbol]
            rows.append(
                ImportRow(
                    line=row.line,
                    input=row.raw,
                    symbol=row.symbol,
                    verdict=outcome.verdict,
                    validation_status=outcome.status,
                    reason=outcome.reason,
                    candidates=list(outcome.candidates),
                    action=row.action if row.effective_at is not None else None,
                    effective_at=row.effective_at,
                )
            )
        return rows

    async def rows(self) -> list[ImportRow]:
        """Every row's verdict in file order (up to csv_max_rows models: built off the event loop)."""
        return await anyio.to_thread.run_sync(self._rows)

    def counts(self, rows: list[ImportRow]) -> dict[str, int]:
        """Rows per verdict, plus the removed members in replace mode."""
        counts = {"added": 0, "duplicate": 0, "invalid": 0}
        if self.parsed.date_column:
            counts["backdated"] = 0
        for row in rows:
            counts[row.verdict] += 1
        if self.mode == "replace":
            counts["removed"] = len(self.removed)
        return counts


async def apply_import(
    service: UniverseService,
    parsed: ParsedFile,
    universe_id: str | None,
    name: str | None,
    *,
    mode: Literal["append", "replace"],
    validate: bool,
    job_threshold: int,
) -> CsvImportResult:
    """Create (by name), then import (replace: removing what the file lacks), all in the service's unit of work."""
    symbols = normalise_symbols(parsed.symbols)
    large = len(parsed.symbols) > job_threshold
    inline = validate and not large
    checks = await service.check_symbols(symbols, validate=inline)  # before any lock: providers may be slow
    if name is not None:
        universe_id = (await service.create(name))[0].id
    assert universe_id is not None
    dated = [
        DatedChange(line=r.line, symbol=r.symbol, action=r.action, effective_at=r.effective_at)
        for r in parsed.dated_rows
        if r.symbol is not None and r.effective_at is not None
    ]
    universe, report, removed, outcomes = await service.import_members(
        universe_id,
        normalise_symbols(parsed.undated_symbols),
        replace=mode == "replace",
        validate=inline,
        checks=checks,
        dated=dated,
    )
    result = CsvImportResult(parsed, universe, mode, validate, large, report, removed, dated=outcomes)
    for r in report.results:
        reason = "already in the universe" if r.outcome == "already_present" else r.reason
        candidates = tuple(r.candidates) if r.outcome == "rejected" else ()
        result.outcomes[r.symbol] = _Outcome(ROW_VERDICT[r.outcome], r.validation_status, reason, candidates)
    return result
