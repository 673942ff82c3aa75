"""One careful HTTP GET for every listing source: a deadline for the whole exchange, status codes and bodies checked
before any parser sees them, and reasons a person can act on.

Why a whole-request deadline on top of httpx's timeouts: httpx bounds each connect/read separately, so a server that
drips a byte every few seconds never trips a read timeout; ``anyio.fail_after`` bounds the total.

Error texts never include the URL or the exception's own text: a URL can carry an API key (Alpha Vantage), and
httpx's exception messages include the URL. Only exception type names are reported.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import anyio
import httpx

from providers.listings.base import ListingSourceError

__all__ = ["DEFAULT_MAX_BYTES", "fetch_bytes", "looks_like_html"]

DEFAULT_MAX_BYTES = 64 * 1024 * 1024  # the largest recorded file is 1.6 MB; anything near this is not a listing file


def looks_like_html(body: bytes, content_type: str | None = None) -> bool:
    """A block page, a login wall or an error page rather than data."""
    if content_type and "html" in content_type.lower():
        return True
    head = body[:512].lstrip().lower()
    return head.startswith((b"<!doctype", b"<html", b"<head", b"<body", b"<?xml")) or b"<html" in head


def _retry_after(value: str | None) -> str:
    if not value:
        return ""
    try:
        seconds = float(value)
    except ValueError:
        return ""
    return f", retry after {math.ceil(seconds)} s" if seconds >= 0 else ""


async def fetch_bytes(
    client: httpx.AsyncClient,
    url: str,
    *,
    source: str,
    what: str,
    deadline_s: float,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> tuple[bytes, str | None]:
    """GET ``url`` within ``deadline_s``; return (body, content type) of a 200 answer that is not empty and not HTML.

    ``what`` names the expected document in error reasons ("the NASDAQ symbol directory").
    Raises ``ListingSourceError`` for every other outcome.
    """
    failure: str | None = None
    response: httpx.Response | None = None
    body = b""
    try:
        with anyio.fail_after(deadline_s):
            async with client.stream("GET", url, params=params, headers=headers) as response:
                if response.status_code == 200:
                    chunks: list[bytes] = []
                    size = 0
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > max_bytes:
                            failure = f"answer larger than {max_bytes // (1024 * 1024)} MB; not {what}"
                            break
                        chunks.append(chunk)
                    body = b"".join(chunks)
    except TimeoutError:
        failure = f"no complete answer within {deadline_s:g} s"
    except httpx.TimeoutException:
        failure = f"no answer within {deadline_s:g} s"
    except httpx.HTTPError as exc:  # the text of exc includes the URL: report its type only
        failure = f"network error ({type(exc).__name__})"
    if failure is not None:
        raise ListingSourceError(source, failure)
    assert response is not None
    status = response.status_code
    if status == 429:
        raise ListingSourceError(source, f"rate limited (HTTP 429{_retry_after(response.headers.get('Retry-After'))})")
    if status in (401, 403):
        raise ListingSourceError(source, f"access refused (HTTP {status})")
    if 500 <= status < 600:
        raise ListingSourceError(source, f"server error (HTTP {status}); the previous data is kept")
    if status != 200:
        raise ListingSourceError(source, f"unexpected HTTP status {status}")
    content_type = response.headers.get("Content-Type")
    if not body.strip():
        raise ListingSourceError(source, f"empty answer instead of {what}")
    if looks_like_html(body, content_type):
        raise ListingSourceError(source, f"answered an HTML page instead of {what} (a block or error page?)")
    return body, content_type
