"""The dashboard follows pages (issue 16: every answer under 16 KB): an export larger than one page downloads whole,
and universes beyond the first state's list are loaded on demand. Own module: its own server, so its universes do
not crowd the other browser tests' lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from providers.catalog import CatalogProvider
from tests.browser.conftest import expect

pytestmark = pytest.mark.slow


def test_exporting_a_universe_larger_than_one_page_downloads_the_whole_csv(server, page):
    symbols = sorted(e.symbol for e in CatalogProvider().entries())[:600]
    uid = server.call("create_universe", name="Six hundred", symbols=symbols, validate=False)["universe"]["id"]
    first = server.call("export_universe_csv", universe_id=uid)
    assert first["next_cursor"] and first["row_count"] < 600  # more than one page
    view = page.open(f"{server.base_url}/?universe={uid}")

    with page.page.expect_download() as download:
        view.locator("#export").click()
    text = Path(download.value.path()).read_bytes().decode()  # bytes as saved: CRLF line ends kept
    assert text == server.read(f"universe://{uid}/assets.csv")  # every page, joined: exactly the whole file
    assert text.count("\r\n") == 601 and download.value.suggested_filename == "Six-hundred.csv"
    expect(view.locator("#status")).to_have_text("Exported 600 rows to Six-hundred.csv")
    log = page.page.locator("#log").text_content()
    assert log.count("tools/call export_universe_csv") >= 600 // first["row_count"]
    assert not page.errors


def test_universes_beyond_the_first_state_load_on_demand_and_stay_after_a_refresh(server, page):
    names = [f"Paged universe {i:03d} with a long enough name" for i in range(70)]
    for name in names:
        server.call("create_universe", name=name, description="A universe among many, to page through.")
    state = server.call("get_dashboard_state")
    listed = len(state["universes"])
    assert state["universes_next_cursor"] and listed < len(server.universe_names())
    view = page.open(f"{server.base_url}/")
    rows = view.locator("#universes tbody tr")
    expect(rows).to_have_count(listed)

    view.locator("#universes-more").click()
    expect(rows).to_have_count(len(server.universe_names()), timeout=15_000)
    expect(view.locator("#universes-more")).to_be_hidden()
    shown = view.locator("#universes tbody tr button").all_text_contents()
    assert set(names) <= set(shown)

    # Choosing a universe refreshes the state (first universes only): the ones loaded stay listed.
    view.locator(f"#universes button[data-universe]:text-is('{names[-1]}')").click()
    expect(view.locator("#universe-name")).to_have_text(names[-1])
    expect(rows).to_have_count(len(server.universe_names()))
    assert not page.errors
