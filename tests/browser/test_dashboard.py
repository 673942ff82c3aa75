"""The dashboard in headless Chromium: the page at / hosting the View, against the real server process.

Each test checks the server's store after the UI says it is done, so a View that only pretends fails. Screenshots go
to tests/artifacts/ (git-ignored). Plain `def` tests: sync Playwright cannot run inside an asyncio loop.
"""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path

import pytest

from tests.browser.conftest import JOB_THRESHOLD, expect

pytestmark = pytest.mark.slow

MEGACAPS = ["NVDA", "MSFT", "AAPL", "AMZN", "KO", "JPM"]


def _first_column(view, table: str) -> list[str]:
    return view.locator(f"#{table} tbody tr td:nth-child(2)").all_text_contents()


def test_renders_from_the_tool_result_then_sorts_and_filters(server, page):
    uid = server.call("create_universe", name="Megacaps", symbols=MEGACAPS)["universe"]["id"]
    server.call("create_universe", name="Dividends", symbols=["KO", "PEP"])
    view = page.open(f"{server.base_url}/?theme=light&universe={uid}")

    # Rendered from open_universe_dashboard's structuredContent, in the universe's own order.
    expect(view.locator("#universe-name")).to_have_text("Megacaps")
    assert _first_column(view, "assets") == MEGACAPS
    expect(view.locator("#universes tbody tr[aria-current=true]")).to_have_text("Megacaps6")
    model_tools = page.page.locator("#model-tools").text_content()
    assert "get_dashboard_state" not in model_tools and "open_universe_dashboard" in model_tools  # app-only: hidden

    view.locator("#assets th[data-sort=symbol] button").click()
    assert _first_column(view, "assets") == sorted(MEGACAPS)
    view.locator("#assets th[data-sort=symbol] button").click()
    assert _first_column(view, "assets") == sorted(MEGACAPS, reverse=True)
    expect(view.locator("#assets th[data-sort=symbol]")).to_have_attribute("aria-sort", "descending")

    view.locator("#asset-filter").fill("micro")
    assert _first_column(view, "assets") == ["MSFT"]
    view.locator("#asset-filter").fill("")
    view.locator("#status-filter").select_option("pending")
    expect(view.locator("#assets tbody tr")).to_have_count(0)
    expect(view.locator("#assets-empty")).to_have_text("No member matches the filter.")
    view.locator("#status-filter").select_option("")

    view.locator("#universes th[data-sort=asset_count] button").click()
    expect(view.locator("#universes tbody tr").first).to_contain_text("Dividends")
    view.locator("#universe-filter").fill("mega")
    expect(view.locator("#universes tbody tr")).to_have_count(1)

    page.page.wait_for_function("document.querySelector('iframe').offsetHeight > 500")  # the View reported its size
    page.shot("dashboard-light-desktop.png")
    assert not page.errors


def test_search_and_live_validation_show_status(server, page):
    uid = server.call("create_universe", name="Search test")["universe"]["id"]
    view = page.open(f"{server.base_url}/?universe={uid}")
    view.locator("#search").fill("nvidia")
    expect(view.locator("#search-results li[data-symbol=NVDA]")).to_contain_text("valid")
    expect(view.locator("#search-state")).to_contain_text("match")

    view.locator("#add-symbols").fill("nvda, zzzzq")
    # Offline, the catalog knows NVDA; nobody can settle ZZZZQ, which is pending, never "invalid".
    expect(view.locator("[data-verdict=NVDA]")).to_have_text("NVDA: valid (Nvidia)")
    expect(view.locator("[data-verdict=ZZZZQ]")).to_contain_text("ZZZZQ: pending")
    expect(view.locator("[data-verdict=ZZZZQ]")).to_have_class("badge pending")
    view.locator("#add-symbols").fill("a%b")  # ("a$b" is a preferred share in NASDAQ's notation: A.PRB)
    expect(view.locator("#verdicts")).to_contain_text("not valid tickers")
    assert page.page.locator("#log").text_content().count("tools/call validate_symbols") >= 2
    # Every one of those calls went through the host: the View itself requested nothing, and the host only /mcp.
    assert page.view_requests() == []
    assert {url.removeprefix(server.base_url).split("?")[0] for _, url in page.requests} == {"/", "/mcp"}
    assert not page.errors


def test_editor_create_rename_add_remove_delete(server, page):
    view = page.open(f"{server.base_url}/")
    view.locator("#create-name").fill("Editor test")
    view.locator("#create-symbols").fill("aapl, msft")
    view.locator("#create").click()
    expect(view.locator("#universe-name")).to_have_text("Editor test")
    assert server.members("Editor test") == ["AAPL", "MSFT"]

    view.locator("#rename-name").fill("Edited universe")
    view.locator("#rename").click()
    expect(view.locator("#universe-name")).to_have_text("Edited universe")
    assert "Edited universe" in server.universe_names() and "Editor test" not in server.universe_names()

    view.locator("#add-symbols").fill("NVDA, KO")
    view.locator("#add").click()
    expect(view.locator("#assets tbody tr")).to_have_count(4)
    assert server.members("Edited universe") == ["AAPL", "MSFT", "NVDA", "KO"]

    view.locator("#assets input[data-symbol=MSFT]").check()
    view.locator("#remove-selected").click()
    expect(view.locator("#assets tbody tr")).to_have_count(3)
    assert server.members("Edited universe") == ["AAPL", "NVDA", "KO"]

    view.locator("#delete").click()
    expect(view.locator("#confirm")).to_be_visible()
    expect(view.locator("#confirm-text")).to_contain_text("3 members")
    view.locator("#cancel-delete").click()
    expect(view.locator("#confirm")).to_be_hidden()
    assert "Edited universe" in server.universe_names()  # cancelling changes nothing
    view.locator("#delete").click()
    view.locator("#confirm-delete").click()
    expect(view.locator("#status")).to_contain_text("Deleted Edited universe")
    assert "Edited universe" not in server.universe_names()
    expect(view.locator("#universes tbody tr[data-id]", has_text="Edited universe")).to_have_count(0)
    assert not page.errors


CATALOG = [
    "AAPL",
    "MSFT",
    "NVDA",
    "AMZN",
    "GOOGL",
    "JPM",
    "KO",
    "XOM",
    "META",
    "TSLA",
    "PEP",
    "WMT",
    "V",
    "MA",
    "UNH",
    "JNJ",
    "PG",
    "HD",
    "BAC",
    "CVX",
    "ABBV",
    "MRK",
    "COST",
    "ADBE",
    "CRM",
]


def test_csv_import_progress_reaches_100_and_export_matches_the_store(server, page):
    uid = server.call("create_universe", name="Imported")["universe"]["id"]
    view = page.open(f"{server.base_url}/?universe={uid}")
    unknown = [f"ZQX{i:02d}" for i in range(5)]
    lines = ["symbol;name", *(f"{s};Company {s}" for s in CATALOG + unknown), "=cmd|' /C calc'!A0;evil", "AAPL;again"]
    # Semicolons, a BOM and Windows-1252 bytes: what a spreadsheet on a European desktop writes.
    body = "\ufeff".encode() + "\r\n".join(lines).replace("Company KO", "Société KO").encode("cp1252", errors="replace")
    view.locator("#csv-file").set_input_files(files=[{"name": "megalist.csv", "mimeType": "text/csv", "buffer": body}])
    view.locator("#import").click()

    bar = view.locator("#import-progress")
    expect(view.locator("#import-status")).to_contain_text("Import complete", timeout=30_000)
    expect(view.locator("#import-status")).to_contain_text("(100 %)")
    assert bar.evaluate("b => b.value === b.max && b.max > 0")
    assert server.members("Imported") == CATALOG + unknown  # the rows landed, in file order
    report = view.locator("#import-report")
    expect(report.locator("tr[data-line='32']")).to_contain_text("formula")
    expect(report.locator("tr[data-line='33']")).to_contain_text("repeats line 2")
    assert len(CATALOG + unknown) > JOB_THRESHOLD  # the bulk path
    log = page.page.locator("#log").text_content()
    # The server runs with every toolset, so the jobs toolset is there and the bar was fed by the job.
    assert "start_bulk_validation" in set(server.call("get_dashboard_state")["tools"])
    assert log.count("tools/call get_job_status") >= 1
    expect(view.locator("#import-status")).to_contain_text("validation completed for 5 symbols")
    assert bar.evaluate("b => b.max") == len(unknown)  # the job's own total drove the bar
    page.shot("dashboard-import.png")

    with page.page.expect_download() as download:
        view.locator("#export").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    exported = list(csv.DictReader(io.StringIO(text)))
    stored = server.rows(
        "SELECT a.symbol, coalesce(a.name, ''), a.validation_status FROM universes u "
        "JOIN universe_assets m ON m.universe_id = u.id JOIN assets a ON a.id = m.asset_id "
        "WHERE u.name = 'Imported' ORDER BY m.position"
    )
    assert [(r["symbol"], r["name"], r["validation_status"]) for r in exported] == stored
    assert download.value.suggested_filename == "Imported.csv"
    assert not page.errors


def test_dark_theme_narrow_viewport_and_error_state(server, page):
    page.page.set_viewport_size({"width": 375, "height": 812})
    uid = server.call("create_universe", name="Phone view", symbols=["AAPL", "KO"])["universe"]["id"]
    view = page.open(f"{server.base_url}/?theme=dark&universe={uid}")
    expect(view.locator("body")).to_have_css("background-color", "rgb(23, 24, 28)")  # painted, not just data-theme
    expect(view.locator("html")).to_have_attribute("data-theme", "dark")
    frame = page.frame
    # No sideways scrolling at phone width.
    assert frame.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    listed = view.locator("#universes-card").bounding_box()
    main = view.locator(".main").bounding_box()
    new = view.locator("#new-card").bounding_box()
    # One column: the list, then the universe itself, then the form for a new one.
    assert main["y"] >= listed["y"] + listed["height"] - 1 and new["y"] >= main["y"] + main["height"] - 1
    expect(view.locator("#assets th.wide").first).to_be_hidden()
    rename, delete = view.locator("#rename").bounding_box(), view.locator("#delete").bounding_box()
    assert rename["x"] + rename["width"] <= delete["x"] or rename["y"] + rename["height"] <= delete["y"]  # no overlap
    page.shot("dashboard-dark-phone.png")

    page.page.locator("#theme").click()  # host-context-changed: the View repaints in the light theme
    expect(view.locator("body")).to_have_css("background-color", "rgb(255, 255, 255)")

    missing = uuid.uuid4()
    view = page.open(f"{server.base_url}/?universe={missing}")
    expect(view.locator("#error")).to_be_visible()
    expect(view.locator("#error-message")).to_contain_text(f"No universe with id {missing}")
    expect(view.locator("#error")).to_have_attribute("data-code", "not_found")
    page.shot("dashboard-error.png")
    assert not page.errors


def _issue_token(db: Path, user: str) -> str:
    """A bearer token in the server's store, issued as `universe-mcp token create` does (in a thread: Playwright
    owns this thread's event loop)."""
    import asyncio
    import threading

    from services.tokens import issue_token
    from storage.db import make_engine, make_sessionmaker, unit_of_work

    async def issue() -> str:
        engine = make_engine(f"sqlite+aiosqlite:///{db}")
        try:
            async with unit_of_work(make_sessionmaker(engine)) as session:
                return (await issue_token(session, user)).token
        finally:
            await engine.dispose()

    out: dict[str, str] = {}
    thread = threading.Thread(target=lambda: out.update(token=asyncio.run(issue())))
    thread.start()
    thread.join(30)
    return out["token"]


def test_with_token_auth_the_page_asks_for_a_token_and_keeps_it_out_of_urls_and_logs(tmp_path, seeded_store, page):
    import shutil

    from tests.support.servers import http_server

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copyfile(seeded_store, data_dir / "universe.db")
    token = _issue_token(data_dir / "universe.db", "alice")
    with http_server(data_dir, UNIVERSE_MCP_AUTH="token", UNIVERSE_MCP_LOG_LEVEL="INFO") as mcp_url:
        base = mcp_url.removesuffix("/mcp")
        page.page.goto(f"{base}/")
        host = page.page
        expect(host.locator("#token-form")).to_be_visible()  # /mcp said 401: the page asks, it does not fail
        expect(host.locator("#host-status")).to_have_text("Sign in with an access token.")
        host.locator("#token").fill("umcp_not-a-real-token")
        host.locator("#token-form button").click()
        expect(host.locator("#host-status")).to_have_text("That token was not accepted.")
        host.locator("#token").fill(token)
        host.locator("#token-form button").click()
        view = host.frame_locator("iframe")
        expect(view.locator("#app")).to_have_attribute("aria-busy", "false", timeout=15_000)
        expect(host.locator("#token-form")).to_be_hidden()
        view.locator("#create-name").fill("Alice's list")
        view.locator("#create").click()
        expect(view.locator("#universe-name")).to_have_text("Alice's list")
        assert host.locator("#token").input_value() == ""  # not left in the form either
        assert token not in host.url and "token" not in host.url
        page.shot("dashboard-token-signed-in.png")
    log = next(tmp_path.glob("server-*.log")).read_text()
    assert token not in log and token[12:] not in log
    import sqlite3

    with sqlite3.connect(data_dir / "universe.db") as db:
        owners = db.execute(
            "SELECT users.name FROM universes JOIN users ON users.id = universes.owner_id WHERE universes.name = ?",
            ("Alice's list",),
        ).fetchall()
    assert owners == [("alice",)]  # created as the token's owner, not the local user
    assert not [e for e in page.errors if "401" not in e]  # the rejected attempts are the only console noise
