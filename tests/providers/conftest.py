"""Fixtures for provider tests: recorded bodies, a local Alpha Vantage server, a canned Yahoo transport, a black hole.

Nothing here reaches beyond 127.0.0.1. The recorded bodies are copies of ../shared/fixtures/providers (see
fixtures/README.md for where each came from); bodies that no recording exists for are built in the tests and
say so where they are defined.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

# yfinance picks its HTTP backend when it is first imported; when this suite runs alone, make that the requests
# backend for the transport-level tests. (The tests also pass on the curl_cffi backend.)
os.environ.setdefault("YF_DISABLE_CURL_CFFI", "1")

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture_bytes(provider: str, name: str) -> bytes:
    return (FIXTURES / provider / name).read_bytes()


# --- a TCP server that accepts connections and never answers ------------------------------------------------------
@pytest.fixture
def black_hole() -> Iterator[tuple[str, int]]:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.settimeout(0.1)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept_forever() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            held.append(conn)  # read nothing, answer nothing

    thread = threading.Thread(target=accept_forever, daemon=True)
    thread.start()
    try:
        yield server.getsockname()
    finally:
        stop.set()
        thread.join(timeout=2)
        for conn in held:
            conn.close()
        server.close()


# --- a local HTTP server speaking Alpha Vantage ---------------------------------------------------------------------
@dataclass
class Reply:
    status: int = 200
    body: bytes = b"{}"
    content_type: str = "application/json"
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class LocalServer:
    base_url: str
    routes: dict[tuple[str, str], Reply]
    requests: list[dict[str, list[str]]]


@pytest.fixture
def av_server() -> Iterator[LocalServer]:
    """Serves ``routes[(function, symbol-or-keywords)]``; unknown routes get 404. Records every query."""
    routes: dict[tuple[str, str], Reply] = {}
    seen: list[dict[str, list[str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            query = parse_qs(urlsplit(self.path).query)
            seen.append(query)
            function = query.get("function", [""])[0]
            subject = query.get("symbol", query.get("keywords", [""]))[0]
            reply = routes.get((function, subject), Reply(status=404, body=b"not found", content_type="text/plain"))
            if reply.delay_s:
                time.sleep(reply.delay_s)
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply.body)
            except OSError:
                pass  # the client gave up (timeout tests)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    host, port = "127.0.0.1", server.server_port
    try:
        yield LocalServer(base_url=f"http://{host}:{port}/query", routes=routes, requests=seen)
    finally:
        server.shutdown()
        server.server_close()


# --- canned Yahoo responses behind a requests transport adapter -----------------------------------------------------
class CannedYahoo:
    """A ``requests`` transport adapter answering Yahoo URLs from a route list; records every URL it is asked for."""

    def __init__(self, routes: list[tuple[str, int, bytes]]) -> None:
        self.routes = [(re.compile(pattern), status, body) for pattern, status, body in routes]
        self.urls: list[str] = []

    def adapter(self) -> Any:
        import requests
        import requests.adapters

        canned = self

        class Adapter(requests.adapters.BaseAdapter):
            def send(
                self,
                request: Any,
                stream: bool = False,
                timeout: Any = None,
                verify: Any = True,
                cert: Any = None,
                proxies: Any = None,
            ) -> Any:
                canned.urls.append(request.url)
                route = next((r for r in canned.routes if r[0].search(request.url)), None)
                status, body = (route[1], route[2]) if route else (404, b"")
                response = requests.Response()
                response.status_code = status
                response._content = body
                response.headers["Content-Type"] = "application/json;charset=utf-8"
                response.url = request.url
                response.request = request
                response.encoding = "utf-8"
                return response

            def close(self) -> None:
                return None

        return Adapter()

    def session_factory(self) -> Callable[[], Any]:
        import requests

        def make() -> Any:
            session = requests.Session()
            session.trust_env = False
            adapter = self.adapter()
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            return session

        return make

    def count(self, fragment: str) -> int:
        return sum(1 for url in self.urls if fragment in url)


# Routes every yfinance call needs besides the data: the cookie page and the crumb (a dummy one).
BOOTSTRAP_ROUTES: list[tuple[str, int, bytes]] = [
    (r"^https://fc\.yahoo\.com", 200, b""),
    (r"/v1/test/getcrumb", 200, b"test-crumb"),
]


@pytest.fixture
def yahoo_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Fresh yfinance process state for one test: no crumb or cookie, no memoised responses, caches in tmp."""
    import yfinance as yf
    from yfinance.data import YfData

    monkeypatch.setenv("YF_DISABLE_CURL_CFFI", "1")
    cache_dir = tmp_path / "yf-cache"
    cache_dir.mkdir()
    yf.set_tz_cache_location(str(cache_dir))

    def reset() -> None:
        data = YfData()
        data._crumb = None
        data._cookie = None
        data._cookie_strategy = "basic"
        YfData.cache_get.cache_clear()

    reset()
    yield cache_dir
    reset()


def json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()
