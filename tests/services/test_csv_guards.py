"""The CSV guards against formula injection, for every prefix a spreadsheet evaluates: = + - @ tab carriage-return.

Export: each cell that starts with one of them is written with a leading single quote (OWASP "CSV injection"),
checked on the function, on the whole file and through export_universe_csv. Import: such a cell is refused on
its row and never becomes a symbol.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from mcp import Client

from providers.base import AssetProfile
from providers.fake import FakeProvider
from server.app import build_server
from services.csv_io import (
    EXPORT_COLUMNS,
    FORMULA_PREFIXES,
    _cell_row,
    _could_be_symbol,
    format_csv,
    neutralise_cell,
    parse_symbol_file,
)
from tests.conftest import Call

PREFIXES = ["=", "+", "-", "@", "\t", "\r"]
VISIBLE = ["=", "+", "-", "@"]  # the prefixes that stay a formula behind leading spaces (strip() eats tab and CR)
PAYLOADS = {p: f'{p}HYPERLINK("http://x","y")' for p in PREFIXES}


def test_the_guarded_prefixes_are_exactly_the_owasp_list():
    assert sorted(FORMULA_PREFIXES) == sorted(PREFIXES)


@pytest.mark.parametrize("prefix", PREFIXES, ids=repr)
def test_each_formula_prefix_is_neutralised(prefix):
    value = PAYLOADS[prefix]
    assert neutralise_cell(value) == "'" + value
    assert neutralise_cell(prefix) == "'" + prefix  # the character alone too


@pytest.mark.parametrize("value", ["", "AAPL", "Apple Inc.", " =1", "a=b", "1-2", "'=already quoted", "x\r=1"])
def test_other_cells_are_left_alone(value):
    assert neutralise_cell(value) == value


@pytest.mark.parametrize("prefix", PREFIXES, ids=repr)
def test_format_csv_neutralises_every_column(prefix):
    value = PAYLOADS[prefix]
    text = format_csv([{column: value for column in EXPORT_COLUMNS}])
    header, row = list(csv.reader(io.StringIO(text, newline="")))
    assert header == list(EXPORT_COLUMNS)
    assert row == ["'" + value] * len(EXPORT_COLUMNS)
    assert text.startswith(",".join(EXPORT_COLUMNS) + "\r\n")


def test_format_csv_writes_values_as_text_and_missing_ones_empty():
    when = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
    text = format_csv(
        [{"symbol": "AAPL", "name": None, "added_at": when}, {"symbol": "-5", "name": -5}],
        columns=("symbol", "name", "added_at"),
    )
    assert text == "symbol,name,added_at\r\nAAPL,,2026-01-31T12:00:00+00:00\r\n'-5,'-5,\r\n"


@pytest.mark.anyio
async def test_export_universe_csv_neutralises_every_prefix(make_settings):
    symbols = {f"ZZF{i}": prefix for i, prefix in enumerate(PREFIXES)}
    known = {s: AssetProfile(symbol=s, name=PAYLOADS[p], sector=p + "1") for s, p in symbols.items()}
    known["AAPL"] = AssetProfile(symbol="AAPL", name="Apple Inc.")
    async with Client(build_server(make_settings(), providers=[FakeProvider(known=known)])) as client:
        call = Call(client)
        uid = (await call.ok("create_universe", name="Formulas", symbols=[*symbols, "AAPL"]))["universe"]["id"]
        out = await call.ok("export_universe_csv", universe_id=uid)
    rows = {r["symbol"]: r for r in csv.DictReader(io.StringIO(out["csv_text"], newline=""))}
    assert set(rows) == {*symbols, "AAPL"}
    for symbol, prefix in symbols.items():
        assert rows[symbol]["name"] == "'" + PAYLOADS[prefix], repr(prefix)
        assert rows[symbol]["sector"] == "'" + prefix + "1", repr(prefix)
    assert rows["AAPL"]["name"] == "Apple Inc."
    unsafe = [cell for row in rows.values() for cell in row.values() if cell.startswith(tuple(PREFIXES))]
    assert unsafe == []


# --- import: a formula is never a symbol --------------------------------------------------------------------------
@pytest.mark.parametrize("prefix", PREFIXES, ids=repr)
def test_a_formula_cell_is_refused_on_its_row(prefix):
    row = _cell_row(3, prefix + "AAPL")
    assert (row.line, row.verdict, row.symbol) == (3, "invalid", None)
    assert (
        row.reason == f"looks like a spreadsheet formula (starts with {(prefix + 'AAPL').strip()[:1]!r}); not imported"
    )


@pytest.mark.parametrize("prefix", VISIBLE)
def test_a_formula_after_spaces_is_refused_too(prefix):
    assert not _could_be_symbol(prefix + "AAPL") and not _could_be_symbol(" " + prefix + "AAPL")
    row = _cell_row(1, "  " + prefix + "1")
    assert row.verdict == "invalid" and "spreadsheet formula" in row.reason


def test_a_tradingview_item_that_is_a_formula_is_not_split_on_its_colon():
    row = _cell_row(1, "=NASDAQ:AAPL")
    assert row.verdict == "invalid" and row.exchange is None and "spreadsheet formula" in row.reason
    ok = _cell_row(2, "NASDAQ:AAPL")
    assert (ok.verdict, ok.symbol, ok.exchange) == ("ok", "AAPL", "NASDAQ")


@pytest.mark.parametrize("prefix", PREFIXES, ids=repr)
def test_a_quoted_csv_cell_starting_with_a_formula_prefix_imports_nothing(prefix):
    cell = prefix + "cmd"
    text = 'symbol,name\r\n"' + cell.replace('"', '""') + '",x\r\nMSFT,Microsoft\r\n'
    parsed = parse_symbol_file(text, max_rows=10)
    assert parsed.symbols == ["MSFT"]
    # (A quoted carriage return splits the row in two: both halves are refused, neither becomes a symbol.)
    assert [r.verdict for r in parsed.rows][-1] == "ok" and {r.verdict for r in parsed.rows[:-1]} == {"invalid"}


def test_a_plain_list_with_formula_looking_cells_is_not_mistaken_for_a_table_of_tickers():
    assert _could_be_symbol("AAPL") and _could_be_symbol("NASDAQ:AAPL") and not _could_be_symbol("=1")
    assert not _could_be_symbol("NASDAQ:=1") and not _could_be_symbol("not a ticker")
    # Only a whole EXCHANGE:SYMBOL item loses its prefix, and only the first colon splits it.
    assert not _could_be_symbol("NYSE X:AAPL") and not _could_be_symbol("NASDAQ:AAPL:X")
