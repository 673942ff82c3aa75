"""The HTTP edge of the real server: Host and Origin allow-lists (DNS rebinding), read deadlines and the
per-address connection cap (raw sockets), and /readyz following the Redis broker (issue 10 items 10, 14, 15;
issue 18's Host/Origin cases).

No timing assertions: a deadline is shown by the server closing a connection that a client keeps feeding (or
waiting on) many times longer than the configured deadline; each socket read has a generous time-out that only
fires when the server never closes.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.types import ASGIApp

from core.settings import Settings
from server.app import build_server
from server.transports import http_app
from tests.support.servers import http_server

pytestmark = [pytest.mark.slow]

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "edge", "version": "1"}},
}
MCP_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
PATIENCE_S = 20.0  # far beyond every deadline configured below; reached only when the server never closes


def post(url: str, **headers: str) -> httpx.Response:
    return httpx.post(url, json=INITIALIZE, headers=MCP_HEADERS | headers, timeout=10)


# --- Host and Origin ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def alias_server(tmp_path_factory) -> Iterator[str]:
    """A server bound to 127.0.0.2, with a cap of 3 connections per client address."""
    data = tmp_path_factory.mktemp("alias") / "data"
    with http_server(data, host="127.0.0.2", UNIVERSE_MCP_HTTP_MAX_CONNECTIONS_PER_CLIENT="3") as url:
        yield url


def test_a_loopback_alias_bind_refuses_foreign_hosts_and_origins(alias_server):
    # 127.0.0.2 is loopback, but not one of the three names the SDK protects: before the fix, nothing was checked.
    url = alias_server
    netloc = urlsplit(url).netloc
    port = urlsplit(url).port
    assert post(url).status_code == 200  # Host: 127.0.0.2:port, as any client sends it
    assert post(url, host=f"localhost:{port}").status_code == 200
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.2.evil.example:{port}", ""):
        refused = post(url, host=host)
        assert refused.status_code == 421, host
        assert refused.json()["error"]["code"] == "misdirected_request"
    for origin in ("http://evil.example", f"http://evil.example:{port}", "null", f"http://{netloc}.evil.example"):
        refused = post(url, origin=origin)
        assert refused.status_code == 403, origin
        assert refused.json()["error"]["code"] == "forbidden"
    assert post(url, origin=f"http://{netloc}").status_code == 200  # the dashboard page's own origin
    base = url.removesuffix("/mcp")
    assert httpx.get(base + "/", headers={"host": "evil.example"}, timeout=10).status_code == 421
    # Probes answer whatever the Host: orchestrators call them by pod address.
    assert httpx.get(base + "/healthz", headers={"host": "10.0.0.7:8000"}, timeout=10).status_code == 200


@pytest.fixture
def wildcard_app(tmp_path: Path) -> ASGIApp:
    """The real ASGI app for a 0.0.0.0 bind with token auth and configured names (no port is opened)."""
    settings = Settings(
        data_dir=tmp_path / "data",
        offline=True,
        host="0.0.0.0",
        auth="token",
        public_url="https://mcp.example.org/mcp",
        allowed_hosts=["universe.example.com", "10.1.2.3:8000"],
        allowed_origins=["https://app.example.com"],
    )
    return http_app(build_server(settings), settings)


@pytest.mark.anyio
async def test_a_wildcard_bind_accepts_only_the_configured_hosts_and_origins(wildcard_app):
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=wildcard_app), base_url="http://testserver")

    async def status(**headers: str) -> int:
        return (await client.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS | headers)).status_code

    # Accepted requests reach authentication (401: no token); refused ones never do.
    for host in (
        "universe.example.com",
        "universe.example.com:8443",
        "mcp.example.org",
        "10.1.2.3:8000",
        "127.0.0.1:8000",
    ):
        assert await status(host=host) == 401, host
    for host in ("evil.example", "10.1.2.3:9999", "10.9.9.9:8000", "0.0.0.0:8000", "universe.example.com.evil.example"):
        assert await status(host=host) == 421, host
    ok_host = "universe.example.com"
    for origin in ("https://app.example.com", "https://universe.example.com", "https://mcp.example.org"):
        assert await status(host=ok_host, origin=origin) == 401, origin
    for origin in ("https://evil.example", "https://app.example.com.evil.example", "http://app.example.com:8080"):
        assert await status(host=ok_host, origin=origin) == 403, origin


# --- read deadlines and the per-address cap ------------------------------------------------------------------------


def connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=PATIENCE_S)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (socket.timeout if it never does)."""
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed the connection (FIN or reset); socket.timeout if it never does.

    After a drip, the server may close while a byte of ours is in flight: its kernel then answers with a reset,
    which can discard the 408 before we read it. The close is what matters here.
    """
    try:
        read_until_closed(sock)
    except ConnectionResetError:
        pass
    return True


def drip(sock: socket.socket, payload: bytes, every_s: float = 0.2) -> int:
    """Send ``payload`` one byte at a time; the number of bytes sent before the server answered or closed."""
    for sent, byte in enumerate(payload):
        readable, _, _ = select.select([sock], [], [], 0)
        if readable:
            return sent
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            return sent
        time.sleep(every_s)
    return len(payload)


@pytest.fixture(scope="module")
def deadline_server(tmp_path_factory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("deadlines") / "data"
    with http_server(
        data,
        UNIVERSE_MCP_HTTP_HEADER_TIMEOUT_S="1",
        UNIVERSE_MCP_HTTP_BODY_TIMEOUT_S="1",
        UNIVERSE_MCP_LOG_LEVEL="INFO",
    ) as url:
        yield url


def request_head(url: str, content_length: int) -> bytes:
    netloc = urlsplit(url).netloc
    return (
        f"POST /mcp HTTP/1.1\r\nHost: {netloc}\r\nContent-Type: application/json\r\n"
        f"Accept: application/json, text/event-stream\r\nContent-Length: {content_length}\r\n\r\n"
    ).encode()


def test_stalled_headers_are_cut_off(deadline_server):
    with connect(deadline_server) as sock:
        sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: ")  # ... and nothing more
        assert read_until_closed(sock).startswith(b"HTTP/1.1 408")
    with connect(deadline_server) as sock:  # connected, never sends a byte
        assert read_until_closed(sock).startswith(b"HTTP/1.1 408")


def test_slow_drip_headers_do_not_extend_the_deadline(deadline_server):
    head = request_head(deadline_server, 2) + b"{}"
    assert len(head) * 0.2 > 20  # the drip would take over 20 s; the header deadline is 1 s
    with connect(deadline_server) as sock:
        sent = drip(sock, head)
        assert sent < len(head) and closed_by_server(sock)


def test_a_stalled_or_dripping_body_is_cut_off(deadline_server):
    body = b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}' + b" " * 200
    with connect(deadline_server) as sock:
        sock.sendall(request_head(deadline_server, len(body)) + body[:10])  # then stalls
        assert read_until_closed(sock).startswith(b"HTTP/1.1 408")
    with connect(deadline_server) as sock:
        sock.sendall(request_head(deadline_server, len(body)))
        sent = drip(sock, body)
        assert sent < len(body) and closed_by_server(sock)
    # A client that sends at normal speed is unaffected, on the same server.
    assert post(deadline_server).status_code == 200


def test_connections_per_client_address_are_capped(alias_server):
    url = alias_server
    held = [connect(url) for _ in range(3)]
    try:
        with connect(url) as fourth:
            assert read_until_closed(fourth).startswith(b"HTTP/1.1 503")
        held.pop().close()
        # Once the server has seen one close, a new connection is served again.
        deadline = time.monotonic() + PATIENCE_S
        while True:
            try:
                status = httpx.get(url.removesuffix("/mcp") + "/healthz", timeout=10).status_code
            except httpx.TransportError:  # refused before our request was read: a reset instead of the 503
                status = 503
            if status == 200:
                break
            assert status == 503 and time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        for sock in held:
            sock.close()


# --- /readyz and the broker ---------------------------------------------------------------------------------------


def test_readyz_is_503_while_the_redis_broker_is_down(tmp_path, throwaway_redis):
    with http_server(tmp_path / "data", UNIVERSE_MCP_REDIS_URL=throwaway_redis.url) as url:
        ready = url.removesuffix("/mcp") + "/readyz"
        up = httpx.get(ready, timeout=10)
        assert up.status_code == 200 and up.json()["checks"]["broker"] == "up", up.text
        throwaway_redis.stop()
        down = httpx.get(ready, timeout=10)
        assert down.status_code == 503, down.text
        assert down.json()["status"] == "not ready" and down.json()["checks"]["broker"].startswith("down")
        assert "redis://" not in down.text  # the kind of failure only, never the URL
        throwaway_redis.start()
        assert httpx.get(ready, timeout=10).status_code == 200
