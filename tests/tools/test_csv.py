"""CSV interchange through the in-memory MCP client: every accepted format, every kind of bad input, export safety."""

from __future__ import annotations

import csv
import io
import json
import threading
from typing import Any

import anyio
import pytest
from mcp import Client
from sqlalchemy import event

from providers.base import AssetProfile
from providers.catalog import CatalogProvider
from providers.fake import FakeProvider
from server.app import build_server
from services.csv_io import parse_symbol_file
from services.errors import LimitExceeded
from tests.conftest import Call

pytestmark = pytest.mark.anyio

EVIL = {"ZZEVIL": "=cmd|' /C calc'!A0", "ZZPLUS": "+SUM(1+1)", "ZZMINUS": "-2+3", "ZZAT": "@SUM(A1)", "ZZTAB": "\tx"}


@pytest.fixture
def fake() -> FakeProvider:
    known = {s: AssetProfile(symbol=s, name=s.title()) for s in ("AAPL", "MSFT", "NVDA", "KO", "JPM", "BRK.B", "SAP")}
    known.update({s: AssetProfile(symbol=s, name=name, exchange='=HYPERLINK("x")') for s, name in EVIL.items()})
    return FakeProvider(known=known)


@pytest.fixture
async def fcall(settings, fake):
    # The fake answers first (valid or invalid); the catalog behind it supplies did-you-mean candidates.
    async with Client(build_server(settings, providers=[fake, CatalogProvider()])) as client:
        yield Call(client)


async def _new(call, name="Target", symbols=None) -> str:
    return (await call.ok("create_universe", name=name, symbols=symbols or [], validate=False))["universe"]["id"]


async def _members(call, uid) -> list[str]:
    return [a["symbol"] for a in (await call.ok("get_universe", universe_id=uid, limit=200))["assets"]]


def _rows(data) -> dict[int, tuple]:
    return {r["line"]: (r["symbol"], r["verdict"], r["reason"]) for r in data["rows"]}


# --- formats ----------------------------------------------------------------------------------------------------------
async def test_plain_csv_with_symbol_column_reports_every_row_by_line(fcall):
    uid = await _new(fcall, symbols=["KO"])
    text = (
        "Name,Ticker,Weight\nApple,aapl,0.5\nNobody,ZZZZ,0.1\n,,\nMicrosoft,MSFT,0.2\nApple again,AAPL,0.1\n"
        "Coke,KO,0.1\n"
    )
    data = await fcall.ok("import_universe_csv", csv_text=text, universe_id=uid)
    assert data["format"] == "csv" and data["ignored_columns"] == ["Name", "Weight"]
    rows = _rows(data)
    assert rows[2] == ("AAPL", "added", None) and rows[5][:2] == ("MSFT", "added")
    assert rows[3][:2] == ("ZZZZ", "invalid")
    assert rows[6] == ("AAPL", "duplicate", "repeats line 2")
    assert rows[7] == ("KO", "duplicate", "already in the universe")
    assert data["counts"] == {"added": 2, "duplicate": 2, "invalid": 1}
    assert await _members(fcall, uid) == ["KO", "AAPL", "MSFT"]


async def test_invalid_rows_carry_candidates(fcall):
    uid = await _new(fcall)
    envelope = await fcall("import_universe_csv", csv_text="symbol\nAAPLL\nNVDA\n", universe_id=uid)
    row = next(r for r in envelope["data"]["rows"] if r["line"] == 2)
    assert row["verdict"] == "invalid" and "AAPL" in row["candidates"]
    actions = envelope["next_actions"]
    assert any(a["tool"] == "add_assets_to_universe" and "AAPL" in a["arguments"]["symbols"] for a in actions)


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
async def test_other_delimiters_are_sniffed(fcall, delimiter):
    uid = await _new(fcall)
    text = delimiter.join(["symbol", "name"]) + "\n" + delimiter.join(["NVDA", "Nvidia, Inc."]) + "\n"
    data = await fcall.ok("import_universe_csv", csv_text=text, universe_id=uid)
    assert data["counts"] == {"added": 1, "duplicate": 0, "invalid": 0}
    assert await _members(fcall, uid) == ["NVDA"]


async def test_delimiter_is_sniffed_from_the_rows_too(fcall):
    uid = await _new(fcall)
    data = await fcall.ok("import_universe_csv", csv_text="symbol\nAAPL;Apple Inc\nMSFT;Microsoft\n", universe_id=uid)
    assert data["format"] == "csv" and data["counts"]["added"] == 2


@pytest.mark.parametrize("header", ["symbol", "Ticker", '"CODE"', "Ticker Symbol", "tickers"])
async def test_symbol_header_names(fcall, header):
    parsed = parse_symbol_file(f"{header},x\nKO,1\n", max_rows=10)
    assert parsed.symbols == ["KO"] and parsed.ignored_columns == ["x"]


async def test_plain_lists_one_per_line_or_comma_separated(fcall):
    uid = await _new(fcall)
    data = await fcall.ok("import_universe_csv", csv_text="aapl\n\nmsft\nNVDA\n", universe_id=uid)
    assert data["format"] == "list" and sorted(_rows(data)) == [1, 3, 4]
    data = await fcall.ok("import_universe_csv", csv_text="KO, JPM , brk.b", universe_id=uid)
    assert data["format"] == "list" and data["counts"]["added"] == 3
    assert await _members(fcall, uid) == ["AAPL", "MSFT", "NVDA", "KO", "JPM", "BRK.B"]


async def test_tradingview_watchlist_with_sections(fcall):
    text = "###Tech,NASDAQ:AAPL,NASDAQ:MSFT,###Banks,NYSE:JPM,NYSE:BRK.B\nXETR:SAP\nCME_MINI:ES1!,NASDAQ:AAPL"
    data = await fcall.ok("import_universe_csv", csv_text=text, name="From TradingView")
    assert data["format"] == "tradingview" and data["universe"]["name"] == "From TradingView"
    rows = data["rows"]
    assert [(r["line"], r["symbol"], r["verdict"]) for r in rows if r["verdict"] != "added"] == [
        (3, None, "invalid"),
        (3, "AAPL", "duplicate"),
    ]
    assert "ES1!" in next(r["input"] for r in rows if r["verdict"] == "invalid")
    assert await _members(fcall, data["universe"]["id"]) == ["AAPL", "MSFT", "JPM", "BRK.B", "SAP"]
    assert parse_symbol_file(text, max_rows=100).sections == ["Tech", "Banks"]


async def test_ibkr_tws_export(fcall):
    text = (
        "COLUMN,0,,\nDES,AAPL,STK,SMART/NASDAQ,,,,\nDES,BRK B,STK,SMART/NYSE,,,,\n,,,\n"
        "DES,ES,FUT,GLOBEX,202612,,,\nCON,265598,SMART\nSYM,KO,SMART\nDES,SPY,OPT,SMART,20261218,600,C,100\n"
    )
    uid = await _new(fcall)
    data = await fcall.ok("import_universe_csv", csv_text=text, universe_id=uid)
    assert data["format"] == "ibkr"
    rows = _rows(data)
    assert rows[2][:2] == ("AAPL", "added") and rows[3][:2] == ("BRK.B", "added") and rows[7][:2] == ("KO", "added")
    assert "FUT contracts are not supported" in rows[5][2]
    assert "contract ids" in rows[6][2]
    assert rows[8][1] == "invalid"
    assert await _members(fcall, uid) == ["AAPL", "BRK.B", "KO"]


async def test_encodings_bom_latin1_and_undecodable_bytes(fcall):
    uid = await _new(fcall)
    text = "symbol;name\r\nSAP;Société Générale\r\nKO;Coca\r\n"  # semicolons and CRLF, as Excel writes them
    data = await fcall.ok("import_universe_csv", csv_text=text, universe_id=uid)
    assert data["counts"]["added"] == 2
    # Text that was mis-decoded upstream (replacement characters) and a BOM left in the string.
    data = await fcall.ok("import_universe_csv", csv_text="\ufeffsymbol\nJPM\nAB\ufffdC\n", universe_id=uid)
    assert "byte-order mark" in data["notes"][0] and "not UTF-8" in data["notes"][1]
    assert _rows(data)[3][1:] == (
        "invalid",
        "unreadable characters: the file is probably not UTF-8 (re-save it as UTF-8)",
    )
    assert await _members(fcall, uid) == ["SAP", "KO", "JPM"]


# --- bad input --------------------------------------------------------------------------------------------------------
async def test_formula_injection_cells_are_rejected_per_row(fcall):
    uid = await _new(fcall)
    text = "symbol\n=cmd|' /C calc'!A0\n+SUM(1)\n-2+3\n@SUM(A1)\n\t=1\n NVDA\n"
    data = await fcall.ok("import_universe_csv", csv_text=text, universe_id=uid)
    rows = _rows(data)
    assert [rows[n][1] for n in range(2, 7)] == ["invalid"] * 5
    assert all("spreadsheet formula" in rows[n][2] for n in range(2, 7))
    assert rows[7][:2] == ("NVDA", "added")
    assert await _members(fcall, uid) == ["NVDA"]


async def test_export_neutralises_formula_cells(fcall):
    uid = await _new(fcall)
    await fcall.ok("add_assets_to_universe", universe_id=uid, symbols=[*EVIL, "AAPL"])
    out = await fcall.ok("export_universe_csv", universe_id=uid)
    assert out["row_count"] == 6 and out["filename"] == "Target.csv"
    rows = list(csv.DictReader(io.StringIO(out["csv_text"])))
    names = {r["symbol"]: r["name"] for r in rows}
    assert names == {**{s: "'" + n for s, n in EVIL.items()}, "AAPL": "Aapl"}
    assert all(r["exchange"] == '\'=HYPERLINK("x")' for r in rows if r["symbol"] in EVIL)
    assert not any(cell.startswith(("=", "+", "-", "@", "\t")) for r in rows for cell in r.values())


async def test_csv_resource_matches_export(fcall):
    uid = await _new(fcall, symbols=["KO", "JPM"])
    out = await fcall.ok("export_universe_csv", universe_id=uid)
    resource = await fcall.client.read_resource(f"universe://{uid}/assets.csv")
    assert resource.contents[0].mime_type == "text/csv"
    assert resource.contents[0].text == out["csv_text"] and out["resource_uri"] == f"universe://{uid}/assets.csv"


@pytest.mark.parametrize("text", ["", "   \n\n", ",,,\n;;\n", "symbol\n"])
async def test_empty_files_are_an_error_and_create_nothing(call, text):
    envelope = await call.error("import_universe_csv", "invalid_argument", csv_text=text, name="Never made")
    assert "empty" in envelope["error"]["message"] or "None of the file's" in envelope["error"]["message"]
    assert (await call.ok("list_universes"))["universes"] == []


async def test_unknown_columns_are_an_error_naming_them(call):
    uid = await _new(call, symbols=["KO"])
    envelope = await call.error(
        "import_universe_csv",
        "invalid_argument",
        csv_text="name;price\nApple;1\nCoke;2\n",
        universe_id=uid,
        mode="replace",
    )
    assert envelope["error"]["details"]["columns"] == ["name", "price"]
    assert envelope["error"]["details"]["delimiter"] == ";"
    assert "symbol, ticker or code" in envelope["error"]["hint"]
    assert await _members(call, uid) == ["KO"]  # replace did not empty the universe


async def test_binary_input_is_refused(call):
    uid = await _new(call)
    envelope = await call.error(
        "import_universe_csv", "invalid_argument", csv_text="PK\x03\x04\x00\x00", universe_id=uid
    )
    assert "binary" in envelope["error"]["message"]


async def test_files_over_the_size_limit_change_nothing(make_settings):
    async with Client(build_server(make_settings(csv_max_bytes=1_000))) as client:
        call = Call(client)
        uid = await _new(call)
        text = "symbol\n" + "\n".join(f"T{i:04d}" for i in range(300))
        envelope = await call.error("import_universe_csv", "limit_exceeded", csv_text=text, universe_id=uid)
        assert envelope["error"]["details"]["limit_bytes"] == 1_000
        assert await _members(call, uid) == []


async def test_too_many_rows_is_an_error(make_settings):
    async with Client(build_server(make_settings(csv_max_rows=100))) as client:
        call = Call(client)
        text = "symbol\n" + "\n".join(f"T{i:04d}" for i in range(101))
        envelope = await call.error("import_universe_csv", "limit_exceeded", csv_text=text, name="Too big")
        assert envelope["error"]["details"] == {"limit": 100, "received_at_least": 101, "lines": 102}
        assert "more than 100 data rows" in envelope["error"]["message"]
        assert (await call.ok("list_universes"))["universes"] == []


@pytest.mark.parametrize(
    "text",
    [
        "".join(f"Z{i:06d}\n" for i in range(120_000)),  # a list, one per line
        "symbol,name\n" + "".join(f"Z{i:06d},Company {i}\n" for i in range(50_000)),  # a CSV
        ",".join(f"NASDAQ:Z{i:05d}" for i in range(60_000)),  # a TradingView list on one line
        "".join(f"DES,Z{i:05d},STK,SMART,,,,\n" for i in range(40_000)),  # an IBKR export
    ],
    ids=["list", "csv", "tradingview", "ibkr"],
)
def test_parsing_stops_at_the_row_limit_instead_of_judging_every_row(monkeypatch, text):
    import services.csv_io as csv_io

    judged = 0
    cell_row, symbol_row = csv_io._cell_row, csv_io._symbol_row

    def counted(real):
        def wrapper(*args, **kwargs):
            nonlocal judged
            judged += 1
            return real(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(csv_io, "_cell_row", counted(cell_row))
    monkeypatch.setattr(csv_io, "_symbol_row", counted(symbol_row))
    with pytest.raises(LimitExceeded) as raised:
        csv_io.parse_symbol_file(text, max_rows=100)
    assert raised.value.details["limit"] == 100
    # Rows are judged up to the first one over the limit (a cell row calls the symbol row: at most 2 per row).
    assert 101 <= judged <= 2 * 101, judged


async def test_parsing_a_large_file_leaves_the_event_loop_free_for_other_calls(make_settings, monkeypatch):
    """While a 1 MB file is being parsed, another call is answered: the parse runs off the event loop. Checked by
    order, not speed: the parse is held open (in its thread) until the other call has been answered."""
    import services.csv_import as module

    real_parse = module.parse_symbol_file
    parsing, release = threading.Event(), threading.Event()
    order: list[str] = []

    def held_parse(text: str, *, max_rows: int):
        parsing.set()
        release.wait(timeout=5)  # on the event loop this would block the other call until the timeout
        try:
            return real_parse(text, max_rows=max_rows)
        finally:
            order.append("parse finished")

    monkeypatch.setattr(module, "parse_symbol_file", held_parse)
    text = "".join(f"Z{i:06d}\n" for i in range(120_000))[:999_000]  # 1 MB, too many rows: rejected
    async with Client(build_server(make_settings())) as client:
        call = Call(client)
        uid = await _new(call)

        async def import_file() -> None:
            envelope = await call.error("import_universe_csv", "limit_exceeded", csv_text=text, universe_id=uid)
            order.append(f"import answered: {envelope['error']['code']}")

        async with anyio.create_task_group() as tg:
            tg.start_soon(import_file)
            assert await anyio.to_thread.run_sync(parsing.wait, 10), "the parse never started"
            await call.ok("list_universes")
            order.append("other call answered")
            release.set()
    assert order == ["other call answered", "parse finished", "import answered: limit_exceeded"], order


async def test_target_must_be_exactly_one_of_id_and_name(call):
    await call.error("import_universe_csv", "invalid_argument", csv_text="KO")
    uid = await _new(call)
    await call.error("import_universe_csv", "invalid_argument", csv_text="KO", universe_id=uid, name="Both")
    await call.error(
        "import_universe_csv", "not_found", csv_text="KO", universe_id="00000000-0000-0000-0000-000000000000"
    )
    await call.error("import_universe_csv", "already_exists", csv_text="KO", name="Target")


async def test_replace_mode_removes_members_the_file_lacks(fcall):
    uid = await _new(fcall, symbols=["AAPL", "MSFT", "KO"])
    data = await fcall.ok("import_universe_csv", csv_text="symbol\nKO\nNVDA\n", universe_id=uid, mode="replace")
    assert data["removed"] == ["AAPL", "MSFT"] and data["counts"]["removed"] == 2
    assert await _members(fcall, uid) == ["KO", "NVDA"]
    turnover = await fcall.ok("get_universe_turnover", universe_id=uid)
    assert turnover["removals"] == 2  # recorded in the history like any removal


async def test_a_10000_row_file_runs_the_bulk_path(make_settings):
    # The job runtime records what the import hands it instead of queueing it, so this test checks the hand-over
    # alone (a real job is run below): the job itself is created for real, through the one job-start path.
    server = build_server(make_settings())
    started: list[list[str]] = []

    class RecordingQueue:
        def __init__(self, real: Any) -> None:
            self.real = real

        async def submit(self, job_id: Any, owner_id: Any, symbols: Any, force_refresh: bool = False, **_: Any) -> int:
            started.append(list(symbols))
            return 1

        def __getattr__(self, name: str) -> Any:
            return getattr(self.real, name)

    symbols = [f"T{i:05d}" for i in range(10_000)]
    text = "symbol,weight\n" + "\n".join(f"{s},0.0001" for s in symbols)
    async with Client(server) as client:
        call = Call(client)
        server.app_state.jobs = RecordingQueue(server.app_state.jobs)
        statements: list[str] = []
        event.listen(
            server.app_state.engine.sync_engine,
            "before_cursor_execute",
            lambda _conn, _cursor, statement, *_: statements.append(statement),
        )
        with anyio.fail_after(60):  # a hang detector, not a speed bound
            envelope = await call("import_universe_csv", csv_text=text, name="Ten thousand")
        # Written in chunks, not row by row: ~160 statements for the 10,000 rows today; a statement (or more) per row
        # is what made a large import slow, and shows here at any machine speed.
        assert len(statements) < 1_000, len(statements)
        data = envelope["data"]
        assert data["counts"] == {"added": 10_000, "duplicate": 0, "invalid": 0}
        assert data["universe"]["asset_count"] == 10_000 and data["rows_truncated"] and len(data["rows"]) == 50
        # The answer lists the first rows; every row's verdict is in the report resource.
        report = json.loads((await client.read_resource(data["report_uri"])).contents[0].text)
        assert [r["line"] for r in report["rows"]] == list(range(2, 10_002)) and report["counts"] == data["counts"]
        assert data["job_id"] and started == [symbols]  # not validated inline: handed to the job
        assert envelope["next_actions"][0] == {
            "tool": "get_job_status",
            "arguments": {"job_id": data["job_id"]},
            "reason": "follow the validation job",
        }
        job = await call.ok("get_job_status", job_id=data["job_id"])
        assert job["counts"]["total"] == job["counts"]["queued"] == 10_000 and job["status"] == "queued"
        pages, cursor = [], None
        while not pages or cursor:  # an export comes a page at a time (each under 16 KB); joined, the whole file
            out = await call.ok("export_universe_csv", universe_id=data["universe"]["id"], cursor=cursor)
            pages.append(out)
            cursor = out["next_cursor"]
        assert sum(p["row_count"] for p in pages) == 10_000 and pages[0]["total_rows"] == 10_000
        text = "".join(p["csv_text"] for p in pages)
        assert [r["symbol"] for r in csv.DictReader(io.StringIO(text))] == symbols


async def test_with_the_jobs_toolset_a_large_import_is_validated_by_a_real_job(make_settings):
    settings = make_settings(csv_job_threshold=3, job_max_retries=0)
    async with Client(build_server(settings)) as client:
        call = Call(client)
        # The jobs toolset is in the default build: its absence is a failure here, never a skip.
        assert "start_bulk_validation" in {t.name for t in (await client.list_tools()).tools}
        data = await call.ok("import_universe_csv", csv_text="ZQA01\nZQA02\nZQA03\nZQA04\nAAPL\n", name="Jobbed")
        assert data["job_id"] and data["counts"]["added"] == 5
        assert {r["reason"] for r in data["rows"] if r["symbol"] != "AAPL"} == {
            f"added; validation job {data['job_id']} checks it"
        }
        with anyio.fail_after(60):  # a hang detector, not a speed bound
            while True:  # polling the tool a client would poll
                job = await call.ok("get_job_status", job_id=data["job_id"])
                if job["status"] in ("completed", "failed"):
                    break
                await anyio.sleep(0.1)
        # Offline nobody can settle unknown tickers: they end pending (never "invalid"), every one accounted for.
        assert job["counts"]["total"] == job["counts"]["processed"] == 4 and job["counts"]["pending"] == 4


async def test_a_small_import_queues_its_pending_symbols_like_add_does(call):
    envelope = await call("import_universe_csv", csv_text="KO\nZZZZQ\n", name="Small")
    assert [r["validation_status"] for r in envelope["data"]["rows"]] == ["valid", "pending"]
    assert envelope["data"]["job_id"] is None  # small files are validated inline ...
    # ... and, with the jobs toolset (in the default build, so this always runs), pending ones are re-checked later
    # by an automatic job.
    assert "start_bulk_validation" in {t.name for t in (await call.client.list_tools()).tools}
    assert envelope["metadata"]["validation_job_id"]
    assert envelope["next_actions"][0]["tool"] == "get_job_status"


async def test_without_the_jobs_toolset_a_large_import_still_lands(make_settings):
    settings = make_settings(csv_job_threshold=3, toolsets=["universes", "assets", "dashboard"])
    async with Client(build_server(settings)) as client:
        call = Call(client)
        envelope = await call("import_universe_csv", csv_text="T0001\nT0002\nT0003\nT0004\nAAPL", name="Large")
        data = envelope["data"]
        assert data["job_id"] is None and data["counts"]["added"] == 5
        assert {r["validation_status"] for r in data["rows"] if r["symbol"] != "AAPL"} == {"unknown"}
        assert "added without validation" in data["rows"][0]["reason"]


async def test_a_large_import_starts_its_job_only_when_the_caller_may_validate(make_settings):
    # The hand-over is admitted like start_bulk_validation itself: here the caller's validate budget is spent, so
    # the import lands and says its symbols were added without validation, and no job is started.
    settings = make_settings(csv_job_threshold=3, local_rate_limits=True, rate_limit_validate="1/minute")
    async with Client(build_server(settings)) as client:
        call = Call(client)
        await call.ok("validate_symbols", symbols=["AAPL"])  # spends the one validate call of this minute
        data = await call.ok("import_universe_csv", csv_text="T0001\nT0002\nT0003\nT0004\n", name="No budget")
        assert data["job_id"] is None and data["counts"]["added"] == 4
        assert {r["reason"] for r in data["rows"]} == {"added without validation (too many to check inline)"}


async def test_an_import_longer_than_one_call_is_added_in_chunks_in_file_order(make_settings):
    async with Client(build_server(make_settings(max_symbols_per_call=2))) as client:
        call = Call(client)
        uid = (await call.ok("create_universe", name="Chunked", symbols=["KO"], validate=False))["universe"]["id"]
        text = "symbol\nAAPL\nKO\nMSFT\nNVDA\nJPM\n"
        data = await call.ok("import_universe_csv", universe_id=uid, csv_text=text, validate=False)
        assert data["counts"] == {"added": 4, "duplicate": 1, "invalid": 0}
        assert data["universe"]["asset_count"] == 5
        detail = await call.ok("get_universe", universe_id=uid)
        assert [(a["symbol"], a["position"]) for a in detail["assets"]] == [
            ("KO", 0),
            ("AAPL", 1),
            ("MSFT", 2),
            ("NVDA", 3),
            ("JPM", 4),
        ]


async def test_importing_nothing_keeps_or_empties_the_members(settings):
    # The CSV tools refuse a file without a ticker; the service itself takes an empty list: appending nothing
    # changes nothing, replacing with nothing removes every member.
    from server.lifespan import open_app_state
    from services.universes import UniverseService

    async with open_app_state(settings) as state:
        async with state.unit_of_work() as session:
            service = UniverseService(session, state.local_caller, limits=state.limits)
            universe, _ = await service.create("Emptied", symbols=["AAPL", "MSFT"], validate=False)
        async with state.unit_of_work() as session:
            service = UniverseService(session, state.local_caller, limits=state.limits)
            kept, report, removed, _ = await service.import_members(universe.id, [], validate=False)
            assert (kept.asset_count, report.asset_count, report.results, removed) == (2, 2, [], [])
            emptied, report, removed, _ = await service.import_members(universe.id, [], replace=True, validate=False)
            assert (emptied.asset_count, report.asset_count, removed) == (0, 0, ["AAPL", "MSFT"])
            assert emptied.updated_at > kept.updated_at


async def test_import_members_asks_the_providers_itself_when_given_no_verdicts(settings):
    # The CSV tools hand import_members the verdicts they asked for before any lock; called without them, the
    # service asks its validator itself, unless told not to validate.
    from server.lifespan import open_app_state
    from services.universes import UniverseService

    async with open_app_state(settings) as state:
        async with state.unit_of_work() as session:
            service = UniverseService(session, state.local_caller, limits=state.limits, validator=state.validation)
            universe, _ = await service.create("Self-checked", validate=False)
            _, report, _, _ = await service.import_members(universe.id, ["KO", "ZZQQ"])
            assert [(r.symbol, r.outcome, r.validation_status) for r in report.results] == [
                ("KO", "added", "valid"),  # in the offline catalog
                ("ZZQQ", "added", "pending"),  # not in it: no provider could settle it offline
            ]
            appended, report, removed, _ = await service.import_members(universe.id, ["ZZQR"], validate=False)
            assert [(r.symbol, r.outcome, r.validation_status) for r in report.results] == [
                ("ZZQR", "added", "unknown")
            ]
            assert (removed, appended.asset_count) == ([], 3)  # appends unless told to replace
