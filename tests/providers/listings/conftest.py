"""Fixtures for the listing sources: the recorded files (``recorded/``, byte-for-byte copies of
../shared/fixtures/listings, see recorded/README.md) and a local HTTP server that serves them, or broken variants.

Nothing here reaches beyond 127.0.0.1.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

RECORDED = Path(__file__).resolve().parent / "recorded"


def recorded(relative: str) -> bytes:
    return (RECORDED / relative).read_bytes()


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain"
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


@dataclass
class ListingServer:
    """``routes[path]`` answers GET path (any query; ``routes[(path, key, value)]`` matches a query parameter)."""

    base_url: str
    routes: dict[Any, Reply]
    requests: list[Seen]

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"


@pytest.fixture
def listing_server() -> Iterator[ListingServer]:
    routes: dict[Any, Reply] = {}
    seen: list[Seen] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            seen.append(Seen(parts.path, query, {k.lower(): v for k, v in self.headers.items()}))
            reply = next(
                (
                    routes[key]
                    for key in routes
                    if isinstance(key, tuple) and key[0] == parts.path and query.get(key[1], [None])[0] == key[2]
                ),
                routes.get(parts.path, Reply(status=404, body=b"not found")),
            )
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
                pass  # the client gave up (the timeout tests)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    host, port = "127.0.0.1", server.server_port
    try:
        yield ListingServer(base_url=f"http://{host}:{port}", routes=routes, requests=seen)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0), trust_env=False) as http:
        yield http


def truncated(body: bytes, fraction: float = 0.5) -> bytes:
    """The first part of a body, as a download cut short leaves it."""
    return body[: int(len(body) * fraction)]


HTML_PAGE = b"<!DOCTYPE html><html><head><title>Access Denied</title></head><body>Request blocked</body></html>"
