"""HTTP connections that cannot be held open for nothing: header and body read deadlines, and a cap on open
connections per client address.

uvicorn closes idle keep-alive connections, but not one that is slow to send a request: a client dripping one
header byte at a time, or sending headers and then stalling its body, would hold its connection (and, for the
body, a server task) for ever. This is uvicorn's own h11 protocol with three additions:

* a **header deadline** (``http_header_timeout_s``): from the moment a connection opens, or the first byte of a
  request on a kept-alive one, the request's headers must be complete in time; a drip does not extend it;
* a **body deadline** (``http_body_timeout_s``): once the headers are in, the whole body must arrive in time;
* a **per-address cap** (``http_max_connections_per_client``): one address may hold only so many connections.

A request over a deadline gets ``408 Request Timeout`` (unless its response has started) and its connection is
closed, so the application sees a disconnect; a connection over the cap gets ``503`` and is closed at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from core.settings import Settings

__all__ = ["guarded_protocol"]

logger = logging.getLogger("universe_mcp.server")


def _closing_response(status: str, text: str) -> bytes:
    body = text.encode()
    head = f"HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
    return head.encode() + body


_TIMEOUT_408 = _closing_response("408 Request Timeout", "the request was not received in time")
_BUSY_503 = _closing_response("503 Service Unavailable", "too many open connections from your address")


def guarded_protocol(settings: Settings) -> type[asyncio.Protocol]:
    """The protocol class for ``uvicorn.Config(http=...)``, bound to ``settings`` (one per server)."""
    header_timeout = settings.http_header_timeout_s
    body_timeout = settings.http_body_timeout_s
    cap = settings.http_max_connections_per_client
    open_by_address: Counter[str] = Counter()

    class GuardedH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None
        _phase: str | None = None  # "headers" | "body" | None (nothing owed)
        _address: str | None = None

        # uvicorn's own signature, which narrows asyncio's BaseTransport the same way (and carries the same ignore).
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            address = self.client[0] if self.client else None
            if cap and address is not None:
                if open_by_address[address] >= cap:
                    logger.info("refused a connection from %s: %d already open (503)", address, cap)
                    transport.write(_BUSY_503)
                    transport.close()
                    return
                open_by_address[address] += 1
                self._address = address
            self._arm("headers", header_timeout)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if self._address is not None:
                open_by_address[self._address] -= 1
                if open_by_address[self._address] <= 0:
                    del open_by_address[self._address]
                self._address = None
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._phase is None and self.conn.their_state is h11.IDLE:
                self._arm("headers", header_timeout)  # the first byte of a new request on a kept-alive connection
            super().data_received(data)
            self._follow()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._follow()

        def _follow(self) -> None:
            """Move the deadline along with the request: headers done -> body deadline; body done -> none."""
            state = self.conn.their_state
            if state is h11.SEND_BODY:
                if self._phase != "body":
                    self._arm("body", body_timeout)
            elif state is not h11.IDLE or self._phase == "body":
                self._disarm()  # the request is complete (or the connection is ending): nothing is owed

        def _arm(self, phase: str, seconds: float) -> None:
            self._disarm()
            self._phase = phase
            self._deadline = self.loop.call_later(seconds, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline, self._phase = None, None

        def _expired(self) -> None:
            phase, self._deadline, self._phase = self._phase, None, None
            if self.transport.is_closing():
                return
            logger.info(
                "closed a connection from %s: request %s not received in time (408)",
                self.client[0] if self.client else "?",
                phase,
            )
            cycle: Any = self.cycle
            if phase == "headers" or cycle is None or not cycle.response_started:
                self.transport.write(_TIMEOUT_408)
            self.transport.close()

    return GuardedH11Protocol
