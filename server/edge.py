"""The HTTP edge: which Host and Origin headers are accepted (DNS-rebinding protection), derived from the settings.

A DNS-rebinding attack makes a victim's browser send requests to this server under the attacker's domain name:
the Host header then names that domain, and the Origin header the attacker's page. So the server accepts only the
names it is really reached by:

* loopback names (``localhost``, ``127.0.0.1``, ``[::1]``) — a page cannot make a browser send them for its own
  domain;
* the bind address, unless it is a wildcard (``0.0.0.0``, ``::``): ``127.0.0.2``, or a LAN address;
* the host of ``public_url``;
* ``allowed_hosts`` (a name without a port accepts any port).

Anything else gets 421 (Misdirected Request). An Origin header, when present, must be one of those hosts (either
scheme) or one of ``allowed_origins``; anything else gets 403. The probes (``/healthz``, ``/readyz``) are exempt:
orchestrators call them by pod address, and they reveal nothing.

This runs in front of every route (the MCP endpoint, the dashboard page, OAuth metadata) and before
authentication, so a foreign Host is refused the same way with or without a token.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from core.settings import Settings

__all__ = ["HostOriginGuard", "HostRules", "host_rules", "is_wildcard_bind"]

logger = logging.getLogger("universe_mcp.server")

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_BINDS = ("0.0.0.0", "::", "")
PROBE_PATHS = frozenset({"/healthz", "/readyz"})


def _split_host(value: str) -> tuple[str, int | None] | None:
    """``(host, port)`` of a Host header value (``name``, ``name:port``, ``[v6]:port``), host lower-cased."""
    value = value.strip().lower()
    if not value:
        return None
    try:
        parts = urlsplit("//" + value)
        host, port = parts.hostname, parts.port
    except ValueError:  # a bad port, or brackets that do not close
        return None
    if not host or parts.path or parts.query or parts.fragment or parts.username is not None:
        return None
    return host.rstrip("."), port


@dataclass(frozen=True)
class HostRules:
    """Accepted hosts: names accepted on any port, and exact ``(name, port)`` pairs; plus extra exact origins."""

    any_port: frozenset[str]
    exact: frozenset[tuple[str, int]]
    origins: frozenset[str]

    def host_allowed(self, value: str | None) -> bool:
        split = _split_host(value or "")
        if split is None:
            return False
        host, port = split
        return host in self.any_port or (port is not None and (host, port) in self.exact)

    def origin_allowed(self, value: str | None) -> bool:
        if value is None:
            return True  # no Origin: not a cross-origin browser request
        origin = value.strip().lower().rstrip("/")
        if origin in self.origins:
            return True
        try:
            parts = urlsplit(origin)
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or parts.path or not parts.netloc:
            return False
        # An Origin naming an accepted host is this server's own page (the dashboard at /), under either scheme.
        return self.host_allowed(parts.netloc)

    def describe(self) -> str:
        names = sorted(self.any_port) + sorted(f"{h}:{p}" for h, p in self.exact)
        return ", ".join(names)


def host_rules(settings: Settings) -> HostRules:
    any_port = {name for name in LOOPBACK_NAMES}
    exact: set[tuple[str, int]] = set()

    def add(value: str) -> None:
        split = _split_host(value)
        if split is None:
            logger.warning("ignoring an allowed host that is not a host name: %r", value[:100])
            return
        host, port = split
        if port is None:
            any_port.add(host)
        else:
            exact.add((host, port))

    bind = settings.host.strip().strip("[]").lower()
    if bind not in WILDCARD_BINDS:
        any_port.add(bind)
    if settings.public_url:
        netloc = urlsplit(settings.public_url).netloc.rsplit("@", 1)[-1]
        if netloc:
            add(netloc)
    for value in settings.allowed_hosts:
        add(value)
    origins = {o.strip().lower().rstrip("/") for o in settings.allowed_origins if o.strip()}
    return HostRules(any_port=frozenset(any_port), exact=frozenset(exact), origins=frozenset(origins))


def is_wildcard_bind(host: str) -> bool:
    return host.strip().strip("[]") in WILDCARD_BINDS


class HostOriginGuard:
    """ASGI middleware: 421 for a Host this server is not reached by, 403 for a foreign Origin (see module doc)."""

    def __init__(self, app: ASGIApp, rules: HostRules) -> None:
        self.app, self.rules = app, rules

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in PROBE_PATHS:
            await self.app(scope, receive, send)
            return
        host = origin = None
        for name, value in scope.get("headers", ()):
            if name == b"host":
                host = value.decode("latin-1")
            elif name == b"origin":
                origin = value.decode("latin-1")
        if not self.rules.host_allowed(host):
            logger.info("refused a request for host %r (421)", (host or "")[:100])
            await _refuse(
                send,
                421,
                f"This server does not answer for host {(host or '')[:100]!r}.",
                "Use the server's own address, or add the name to UNIVERSE_MCP_ALLOWED_HOSTS.",
            )
            return
        if not self.rules.origin_allowed(origin):
            logger.info("refused a request from origin %r (403)", (origin or "")[:100])
            await _refuse(
                send,
                403,
                f"Requests from origin {(origin or '')[:100]!r} are not accepted.",
                "Add the origin to UNIVERSE_MCP_ALLOWED_ORIGINS if this page should reach the server.",
            )
            return
        await self.app(scope, receive, send)


async def _refuse(send: Send, status: int, message: str, hint: str) -> None:
    code = "misdirected_request" if status == 421 else "forbidden"
    body = json.dumps({"error": {"code": code, "message": message, "hint": hint}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
