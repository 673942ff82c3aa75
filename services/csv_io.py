"""CSV interchange for universes, MCP-free: read symbol files in the formats people have, write safe CSV.

Reading accepts four shapes and says which it saw:

* ``csv``: a delimited file (comma, semicolon, tab or pipe, sniffed from the first line) whose header names a
  symbol column (symbol, ticker, code ...); other columns are ignored and reported, except two optional ones: a
  date column (date, effective_date, as_of ...) dating each row's change, and an action column (added | removed,
  default added). A dated row is a past membership change (services/backdated.py); an undated one adds now.
* ``list``: tickers one per line or comma separated, no header.
* ``tradingview``: a TradingView watchlist export, ``EXCHANGE:SYMBOL`` items separated by commas or newlines, with
  ``###SECTION`` headers.
* ``ibkr``: an Interactive Brokers (TWS) watchlist/contract file: ``DES,AAPL,STK,SMART/AMEX,,,,`` lines
  (``DES,symbol,sectype,exchange,expiry,strike,right,multiplier``), ``SYM,symbol,exchange`` lines and
  ``CON,conid,exchange`` lines (contract ids cannot be mapped to tickers, so those rows are reported invalid).

Every data row gets a verdict with its line number; nothing here raises for a bad ticker. Whole-file problems (empty,
binary, too many rows, no symbol column) raise InvalidArgument/LimitExceeded before anything is changed, and so do
bad dates and actions (malformed, in the future, before 1900, a removal without a date), naming their lines: a file
of history is imported as written or not at all.

Parsing is plain CPU work (about 25 µs a row), so callers run it off the event loop (tools/universes_csv.py), and it
stops as soon as a file has more rows than the limit instead of judging every row of a huge file first. The format
is recognised from the first ``DETECT_LINES`` non-blank lines.

Writing neutralises formula injection the OWASP way: a cell that starts with = + - @ tab or carriage return is
prefixed with a single quote, so a spreadsheet shows it as text instead of running it.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Literal

from services.errors import InvalidArgument, LimitExceeded
from services.symbols import normalise_symbol, symbol_problem

__all__ = [
    "DATE_HEADERS",
    "EXPORT_COLUMNS",
    "FORMULA_PREFIXES",
    "ParsedFile",
    "ParsedRow",
    "csv_line",
    "csv_row",
    "format_csv",
    "neutralise_cell",
    "parse_change_date",
    "parse_symbol_file",
]

FileFormat = Literal["csv", "list", "tradingview", "ibkr"]
# OWASP "CSV injection": these leading characters make spreadsheets evaluate a cell.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
SYMBOL_HEADERS = frozenset(
    {
        "symbol",
        "symbols",
        "ticker",
        "tickers",
        "code",
        "ticker symbol",
        "stock symbol",
        "tickersymbol",
        "ticker_symbol",
        "symbol_code",
    }
)
# Optional columns of a csv file with a header (compared as _header_key makes them: "effective_date" is
# "effective date").
DATE_HEADERS = frozenset({"date", "effective date", "effective at", "as of", "as of date", "asof", "change date"})
ACTION_HEADERS = frozenset({"action", "change"})
ACTIONS = {"added": "added", "add": "added", "removed": "removed", "remove": "removed"}
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
DELIMITERS = (",", ";", "\t", "|")
EXPORT_COLUMNS = (
    "symbol",
    "name",
    "exchange",
    "asset_type",
    "currency",
    "sector",
    "industry",
    "validation_status",
    "validation_source",
    "added_at",
)
_TV_ITEM = re.compile(r"^[A-Za-z0-9_.\-]+:\S+$")
_IBKR_KINDS = frozenset({"DES", "SYM", "CON"})
_SHOWN = 60  # how much of a raw cell a report repeats
DETECT_LINES = 1_000  # non-blank lines the format is recognised from (a longer file keeps its first lines' format)


@dataclass(slots=True)
class ParsedRow:
    """One data row: its line, the cell as written, and either a symbol or why it cannot be one."""

    line: int
    raw: str
    symbol: str | None = None
    exchange: str | None = None
    verdict: Literal["ok", "invalid", "duplicate"] = "ok"
    reason: str | None = None
    candidates: list[str] = field(default_factory=list)
    effective_at: datetime | None = None  # a dated row: when the change took effect (aware UTC)
    action: Literal["added", "removed"] = "added"


@dataclass(slots=True)
class ParsedFile:
    format: FileFormat
    rows: list[ParsedRow]
    delimiter: str | None = None
    symbol_column: str | None = None
    ignored_columns: list[str] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    date_column: str | None = None
    action_column: str | None = None

    @property
    def symbols(self) -> list[str]:
        """The importable symbols (of dated and undated rows), each once, in file order."""
        return list(dict.fromkeys(r.symbol for r in self.rows if r.verdict == "ok" and r.symbol))

    @property
    def undated_symbols(self) -> list[str]:
        """The symbols of the importable rows without a date (added now), each once, in file order."""
        return list(dict.fromkeys(r.symbol for r in self.rows if r.verdict == "ok" and r.symbol and not r.effective_at))

    @property
    def dated_rows(self) -> list[ParsedRow]:
        """The importable rows with a date (past changes), in file order."""
        return [r for r in self.rows if r.verdict == "ok" and r.symbol and r.effective_at is not None]


class _TooManyRows(Exception):
    """Raised by a parser as soon as it has produced more rows than allowed."""


class _Rows(list[ParsedRow]):
    """The rows of a file; appending one beyond ``max_rows`` stops the parser (one over the limit rejects the file)."""

    def __init__(self, max_rows: int) -> None:
        super().__init__()
        self.max_rows = max_rows

    def append(self, row: ParsedRow) -> None:
        if len(self) >= self.max_rows:
            raise _TooManyRows
        super().append(row)


def neutralise_cell(value: str) -> str:
    """A cell a spreadsheet will show as text: formula-looking values get a leading single quote (OWASP)."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def format_csv(rows: Iterable[dict[str, object]], columns: Sequence[str] = EXPORT_COLUMNS) -> str:
    """RFC 4180 CSV (CRLF line ends) with a header row; every text cell neutralised against formula injection."""
    return csv_line(columns) + "".join(csv_row(row, columns) for row in rows)


def csv_row(row: dict[str, object], columns: Sequence[str] = EXPORT_COLUMNS) -> str:
    """One record of format_csv's output (CRLF included): a file is its header line followed by its rows' records,
    so an export can be cut into pages between records and the pages joined back to exactly the whole file."""
    cells = []
    for column in columns:
        value = row.get(column)
        text = "" if value is None else value.isoformat() if hasattr(value, "isoformat") else str(value)
        cells.append(neutralise_cell(text))
    return csv_line(cells)


def csv_line(cells: Sequence[str]) -> str:
    """``cells`` as one CSV record (the header line, given the column names)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(cells)
    return out.getvalue()


# --- reading --------------------------------------------------------------------------------------------------------
def parse_symbol_file(text: str, *, max_rows: int, now: datetime | None = None) -> ParsedFile:
    """Parse ``text`` into per-row verdicts. Raises InvalidArgument/LimitExceeded for whole-file problems; ``now``:
    the time a date may not pass (default: the current time)."""
    notes: list[str] = []
    for bom in ("\ufeff", "\u00ef\u00bb\u00bf"):  # the mark itself, or its bytes read as Windows-1252/latin-1
        if text.startswith(bom):
            text = text[len(bom) :]
            notes.append("removed a byte-order mark")
    if "\x00" in text:
        raise InvalidArgument(
            "The file contains NUL bytes: it is binary (a spreadsheet workbook?) or UTF-16 without a byte-order mark.",
            hint="Export the list as CSV (UTF-8) or plain text and import that.",
        )
    numbered = _nonblank(text.splitlines())
    if not numbered:
        raise InvalidArgument(
            "The file is empty: it has no symbols.",
            hint="Send a CSV with a symbol column, a list of tickers, a TradingView watchlist or an IBKR export.",
        )
    if "\ufffd" in text:
        notes.append("some characters could not be decoded (the file is probably not UTF-8); their rows are invalid")
    sample = numbered[:DETECT_LINES]
    rows = _Rows(max_rows)
    try:
        if _looks_ibkr(sample):
            parsed = _parse_ibkr(numbered, rows)
        elif _looks_tradingview(sample):
            parsed = _parse_tradingview(numbered, rows)
        else:
            parsed = _parse_delimited(numbered, rows, now or datetime.now(UTC))
    except _TooManyRows:
        raise LimitExceeded(
            f"The file has more than {max_rows:,} data rows ({len(numbered):,} non-blank lines); one import takes at "
            f"most {max_rows:,}.",
            hint="Split the file and import the parts one after another (mode append).",
            details={"limit": max_rows, "received_at_least": max_rows + 1, "lines": len(numbered)},
        ) from None
    parsed.notes = notes + parsed.notes
    _mark_duplicates(parsed.rows)
    return parsed


Numbered = list[tuple[int, str]]  # (1-based line number, line) of the non-blank lines


def _nonblank(lines: list[str]) -> Numbered:
    return [(i + 1, line) for i, line in enumerate(lines) if line.strip(" \t,;|")]


def _looks_ibkr(numbered: Numbered) -> bool:
    kinds = [line.split(",", 1)[0].strip().upper() for _, line in numbered]
    contract = sum(k in _IBKR_KINDS for k in kinds)
    return contract > 0 and contract * 2 >= len([k for k in kinds if k != "COLUMN"])


def _looks_tradingview(numbered: Numbered) -> bool:
    items = [item.strip() for _, line in numbered for item in line.split(",") if item.strip()]
    if any(item.startswith("###") for item in items):
        return True
    prefixed = sum(bool(_TV_ITEM.match(item)) for item in items)
    return prefixed > 0 and prefixed * 2 >= len(items)


def _parse_ibkr(numbered: Numbered, rows: _Rows) -> ParsedFile:
    skipped = 0
    for number, line in numbered:
        fields = [f.strip() for f in line.split(",")]
        kind = fields[0].upper()
        if kind not in _IBKR_KINDS:
            if kind in ("COLUMN", "SYMBOL") or not any(fields[1:]) and not _could_be_symbol(fields[0]):
                skipped += 1  # TWS layout lines ("COLUMN,0,,") and headers ("Symbol,Exchange")
                continue
            rows.append(_invalid(number, line, "not an IBKR contract line (expected DES, SYM or CON first)"))
            continue
        name = fields[1] if len(fields) > 1 else ""
        route = fields[3] if kind == "DES" and len(fields) > 3 else fields[2] if len(fields) > 2 else ""
        exchange = route.split("/")[-1] or None  # SMART/AMEX: SMART routing, AMEX primary listing
        if kind == "CON":
            rows.append(
                _invalid(
                    number,
                    line,
                    "IBKR contract ids (CON lines) cannot be mapped to tickers; export the list with DES lines instead",
                )
            )
            continue
        sectype = fields[2].upper() if kind == "DES" and len(fields) > 2 else "STK"
        if sectype not in ("STK", "ETF", ""):
            rows.append(_invalid(number, line, f"{sectype} contracts are not supported; only stocks and ETFs (STK)"))
            continue
        # IBKR writes share classes with a space ("BRK B"); providers and this server use a dot (BRK.B).
        rows.append(_symbol_row(number, name.replace(" ", "."), exchange, raw=line))
    notes = [f"skipped {skipped} TWS layout/header line(s)"] if skipped else []
    return ParsedFile(format="ibkr", rows=rows, delimiter=",", notes=notes)


def _parse_tradingview(numbered: Numbered, rows: _Rows) -> ParsedFile:
    sections: list[str] = []
    for number, line in numbered:
        for item in line.split(","):
            item = item.strip()
            if not item:
                continue
            if item.startswith("###"):
                sections.append(item.lstrip("#").strip())
                continue
            rows.append(_cell_row(number, item))
    return ParsedFile(format="tradingview", rows=rows, delimiter=",", sections=sections)


def _sniff_delimiter(sample: list[str]) -> str | None:
    """The delimiter found on most of the first lines (then the most frequent): a one-column header line such as
    "symbol" above "AAPL;Apple" rows must not hide the semicolons."""
    lines = {d: sum(d in line for line in sample) for d in DELIMITERS}
    counts = {d: sum(line.count(d) for line in sample) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: (lines[d], counts[d]))
    return best if counts[best] else None


def _header_key(cell: str) -> str:
    return " ".join(cell.strip().strip("\"'").replace("_", " ").split()).casefold()


def _parse_delimited(numbered: Numbered, rows: _Rows, now: datetime) -> ParsedFile:
    delimiter = _sniff_delimiter([line for _, line in numbered[:5]])
    split = (lambda s: next(csv.reader([s], delimiter=delimiter))) if delimiter else (lambda s: [s])
    header = split(numbered[0][1])
    keys = [_header_key(c) for c in header]
    column = next((i for i, k in enumerate(keys) if k in SYMBOL_HEADERS), None)
    if column is not None:
        date_at = next((i for i, k in enumerate(keys) if k in DATE_HEADERS), None)
        action_at = next((i for i, k in enumerate(keys) if k in ACTION_HEADERS), None)
        used = {column, date_at, action_at}
        ignored = [c.strip() for i, c in enumerate(header) if i not in used and c.strip()]
        problems: list[dict[str, object]] = []
        for number, line in numbered[1:]:
            cells = split(line)
            cell = cells[column] if column < len(cells) else ""
            rows.append(_cell_row(number, cell) if cell.strip() else _invalid(number, line, "the symbol cell is empty"))
            if date_at is not None or action_at is not None:
                problem = _date_and_action(rows[-1], _cell(cells, date_at), _cell(cells, action_at), now)
                if problem is not None:
                    problems.append({"line": number, "input": _shown(line), "reason": problem})
        if problems:
            _refuse_dates(problems, header[date_at].strip() if date_at is not None else None)
        notes = [] if rows else ["the file has a header but no data rows"]
        return ParsedFile(
            format="csv",
            rows=rows,
            delimiter=delimiter,
            symbol_column=header[column].strip(),
            ignored_columns=ignored,
            notes=notes,
            date_column=header[date_at].strip() if date_at is not None else None,
            action_column=header[action_at].strip() if action_at is not None else None,
        )
    cells = [c for c in header if c.strip()]
    # A table (several rows, all as wide as the first) with no symbol header has unknown columns; guessing which one
    # holds tickers would import names or prices as symbols. A ragged or one-line comma list is a list of tickers.
    if len(cells) > 1:
        table = len(numbered) > 1 and all(len(split(line)) == len(header) for _, line in numbered[1:])
        if table or not all(_could_be_symbol(c) for c in cells):
            raise InvalidArgument(
                f"No symbol column: the first row has the columns "
                f"{', '.join(repr(c.strip()[:30]) for c in cells[:10])} (delimiter {_delimiter_name(delimiter)}).",
                hint="Name the column that holds the tickers symbol, ticker or code, or send one ticker per line.",
                details={
                    "columns": [c.strip()[:60] for c in cells[:50]],
                    "delimiter": delimiter,
                    "accepted_headers": sorted(SYMBOL_HEADERS),
                },
            )
    # No header: a plain list, one ticker per cell (one per line, or comma separated).
    for number, line in numbered:
        for cell in split(line):
            if cell.strip():
                rows.append(_cell_row(number, cell))
    return ParsedFile(format="list", rows=rows, delimiter=delimiter)


def _cell(cells: list[str], index: int | None) -> str:
    return cells[index].strip() if index is not None and index < len(cells) else ""


def parse_change_date(text: str) -> datetime:
    """A date (YYYY-MM-DD: that day at 00:00 UTC) or an ISO 8601 date-time (UTC unless it names a zone), as an
    aware UTC datetime; ValueError when it is neither."""
    value = text.strip()
    if len(value) == 10:
        day = date.fromisoformat(value)
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    if len(value) < 16 or value[4] != "-" or value[10] not in "T ":
        raise ValueError(value)
    at = datetime.fromisoformat(value)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _date_and_action(row: ParsedRow, date_text: str, action_text: str, now: datetime) -> str | None:
    """Set a row's date and action from its cells; what is wrong with them, if anything."""
    action = ACTIONS.get(action_text.casefold()) if action_text else "added"
    if action is None:
        return f"the action {action_text[:30]!r} is not added or removed"
    row.action = action  # type: ignore[assignment]  # ACTIONS maps to the two actions only
    if not date_text:
        return (
            "a removal needs its date (remove members now with remove_assets_from_universe)"
            if action == "removed"
            else None
        )
    try:
        at = parse_change_date(date_text)
    except ValueError:
        return f"the date {date_text[:40]!r} is not a date (YYYY-MM-DD) or an ISO 8601 date-time"
    if at < EARLIEST:
        return f"the date {date_text[:40]!r} is before 1900"
    if at > now:
        return f"the date {date_text[:40]!r} is in the future (after {now.isoformat(timespec='seconds')})"
    row.effective_at = at
    return None


def _refuse_dates(problems: list[dict[str, object]], column: str | None) -> None:
    first = problems[0]
    more = f" (and {len(problems) - 1} more line(s))" if len(problems) > 1 else ""
    raise InvalidArgument(
        f"Line {first['line']}: {first['reason']}{more}; nothing was imported.",
        hint=(f"The {column!r} column dates each row's change: " if column else "")
        + "write dates as YYYY-MM-DD or ISO 8601 date-times (UTC unless they name a zone), from 1900 up to now; "
        "the action column takes added or removed (default added), and a removal needs a date.",
        details={"rows": problems[:50], "problem_rows": len(problems)},
    )


def _delimiter_name(delimiter: str | None) -> str:
    return {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}.get(delimiter or "", "none")


def _could_be_symbol(cell: str) -> bool:
    value = cell.strip()
    if ":" in value and _TV_ITEM.match(value):
        value = value.split(":", 1)[1]
    return not value.startswith(FORMULA_PREFIXES) and symbol_problem(normalise_symbol(value)) is None


def _shown(raw: str) -> str:
    return raw if len(raw) <= _SHOWN else raw[: _SHOWN - 3] + "..."


def _invalid(line: int, raw: str, reason: str, candidates: list[str] | None = None) -> ParsedRow:
    return ParsedRow(line=line, raw=_shown(raw), verdict="invalid", reason=reason, candidates=candidates or [])


def _cell_row(line: int, cell: str) -> ParsedRow:
    """A symbol cell from CSV, list or TradingView: formula and encoding checks, EXCHANGE: prefix, syntax."""
    exchange = None
    value = cell.strip()
    if ":" in value and _TV_ITEM.match(value) and not value.startswith(FORMULA_PREFIXES):
        exchange, value = value.split(":", 1)
    return _symbol_row(line, value, exchange, raw=cell)


def _symbol_row(line: int, value: str, exchange: str | None, *, raw: str) -> ParsedRow:
    if raw.startswith(FORMULA_PREFIXES) or raw.strip().startswith(FORMULA_PREFIXES):
        return _invalid(line, raw, f"looks like a spreadsheet formula (starts with {raw.strip()[:1]!r}); not imported")
    if "\ufffd" in raw:
        return _invalid(line, raw, "unreadable characters: the file is probably not UTF-8 (re-save it as UTF-8)")
    symbol = normalise_symbol(value)
    problem = symbol_problem(symbol)
    if problem is not None:
        return _invalid(line, raw, f"not a ticker: {problem}")
    return ParsedRow(line=line, raw=_shown(raw.strip()), symbol=symbol, exchange=exchange.upper() if exchange else None)


def _mark_duplicates(rows: list[ParsedRow]) -> None:
    """A row repeating an earlier one: the same symbol (undated rows), the same change at the same time (dated)."""
    first: dict[tuple[object, ...], int] = {}
    for row in rows:
        if row.verdict != "ok" or row.symbol is None:
            continue
        key = (row.symbol,) if row.effective_at is None else (row.symbol, row.effective_at, row.action)
        if key in first:
            row.verdict, row.reason = "duplicate", f"repeats line {first[key]}"
        else:
            first[key] = row.line
