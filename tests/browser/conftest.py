"""Browser tests: the real server (`python -m server serve`, offline) and Debian's Chromium driven by Playwright.

Chromium is the system one at /usr/bin/chromium (apt package `chromium`, installed by .ci/run); Playwright never
downloads a browser here. Without Chromium or the playwright package these tests are skipped with a loud reason,
except under CI=true, where they fail.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import http_server

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
IN_CI = os.environ.get("CI") in ("1", "true")
JOB_THRESHOLD = 20  # imports above this many symbols take the bulk path (background validation job)


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    if not Path(CHROMIUM).is_file():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


def expect(target: Any, *args: Any, **kwargs: Any) -> Any:
    """Playwright's ``expect``, imported when first used: a test module that imported it at the top (or skipped on
    its absence with a module-level importorskip) would be skipped before the ``browser`` fixture's CI check."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target, *args, **kwargs)


def pytest_report_header(config: pytest.Config) -> str | None:
    problem = _missing()
    return f"browser tests: SKIPPED, {problem}" if problem else f"browser tests: Chromium at {CHROMIUM}"


# Module scope, not session: sync Playwright keeps its event loop installed on this thread while it runs, and the
# asyncio tests of other modules cannot start theirs until it has stopped.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    problem = _missing()
    if problem:
        if IN_CI:
            pytest.fail(f"browser tests need Chromium under CI: {problem}")
        pytest.skip(f"BROWSER TESTS NOT RUN: {problem}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # launch() gives every run a fresh temporary profile (a new user-data-dir) and removes it afterwards.
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@dataclass
class Running:
    base_url: str
    db: Path

    def rows(self, sql: str, *args: Any) -> list[tuple]:
        """Read the server's store directly (read-only): what the server committed, not what the page shows."""
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as conn:
            return conn.execute(sql, args).fetchall()

    def members(self, universe: str) -> list[str]:
        return [
            r[0]
            for r in self.rows(
                "SELECT a.symbol FROM universes u JOIN universe_assets m ON m.universe_id = u.id "
                "JOIN assets a ON a.id = m.asset_id WHERE u.name = ? ORDER BY m.position",
                universe,
            )
        ]

    def universe_names(self) -> set[str]:
        return {r[0] for r in self.rows("SELECT name FROM universes")}

    def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        """A tool call over streamable HTTP with the official client (in a thread: Playwright owns this one)."""

        async def run(client: Any) -> dict[str, Any]:
            result = await client.call_tool(tool, arguments)
            assert not result.is_error, result.structured_content
            return result.structured_content["data"]

        return self._in_thread(run)

    def read(self, uri: str) -> str:
        """A resource's text, read like call() makes its calls."""

        async def run(client: Any) -> str:
            return (await client.read_resource(uri)).contents[0].text

        return self._in_thread(run)

    def _in_thread(self, run: Any) -> Any:
        from mcp import Client

        async def connected() -> Any:
            async with Client(f"{self.base_url}/mcp") as client:
                return await run(client)

        out: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: out.update(value=asyncio.run(connected())))
        thread.start()
        thread.join(30)
        return out["value"]


@pytest.fixture(scope="module")
def server(seeded_store: Path, tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[Running]:
    # seeded_store first: it runs asyncio.run(), which cannot run once sync Playwright's loop exists.
    data_dir = tmp_path_factory.mktemp("browser") / "data"
    data_dir.mkdir()
    shutil.copyfile(seeded_store, data_dir / "universe.db")
    # Offline, no provider can settle an unknown symbol: without retries a job records it as pending at once.
    with http_server(
        data_dir,
        UNIVERSE_MCP_CSV_JOB_THRESHOLD=str(JOB_THRESHOLD),
        UNIVERSE_MCP_JOB_MAX_RETRIES="0",
        UNIVERSE_MCP_JOB_RETRY_BASE_S="0.2",
    ) as mcp_url:
        yield Running(base_url=mcp_url.removesuffix("/mcp"), db=data_dir / "universe.db")


class Page:
    """A Playwright page plus the View's frame, collecting console errors and page errors from both."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        # Every request with the frame that made it: the View (child frame) must make none of its own.
        self.requests: list[tuple[bool, str]] = []
        page.on("request", lambda r: self.requests.append((r.frame == page.main_frame, r.url)))

    def open(self, url: str) -> Any:
        from playwright.sync_api import expect

        self.page.goto(url)
        view = self.page.frame_locator("iframe")
        expect(view.locator("#app")).to_have_attribute("aria-busy", "false", timeout=15_000)
        return view

    def view_requests(self) -> list[str]:
        return [url for from_host, url in self.requests if not from_host and not url.startswith(("about:", "data:"))]

    @property
    def frame(self) -> Any:
        return self.page.main_frame.child_frames[0]

    def shot(self, name: str) -> Path:
        """Screenshot of the whole page. Not full_page=True: Chromium paints the View's sandboxed (out-of-process)
        iframe blank in full-page captures, so the viewport is grown to the page's height for the shot instead."""
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        size = self.page.viewport_size
        height = self.page.evaluate("document.documentElement.scrollHeight")
        self.page.set_viewport_size({"width": size["width"], "height": min(max(height, size["height"]), 6000)})
        self.page.wait_for_timeout(150)  # let the View's frame repaint at the new size
        self.page.screenshot(path=path)
        self.page.set_viewport_size(size)
        return path


@pytest.fixture
def page(browser: Any) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    wrapped = Page(context.new_page())
    try:
        yield wrapped
    finally:
        context.close()
