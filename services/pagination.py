"""Opaque cursors the caller hands back unchanged: signed, so a forged or altered one is invalid_argument.

A cursor is ``base64url(JSON {"k": kind, "v": position}) "." base64url(tag)``, the tag being the first 16 bytes of
HMAC-SHA256 over the kind and the payload. Only a cursor this deployment issued verifies, so nothing a caller makes
up (ids that are not UUIDs, ``null``, 50,000-deep JSON, 10**30 offsets) ever reaches a parser or a query: it is
refused before its payload is decoded, with the same message whatever was wrong with it.

The key is per deployment and shared by its replicas: the ``cursor_secret`` setting, else a random key kept in the
store (``server_secrets``, created by migration 0005), installed at start (core/wiring.py: ``open_app_state``). A
process that never installs one (a script using the services directly) signs with a random key of its own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from typing import Any

from services.errors import InvalidArgument

__all__ = ["CURSOR_MAX_CHARS", "decode_cursor", "encode_cursor", "install_key", "invalid_cursor"]

# Far above any cursor this server issues (the longest holds a 200-character name key and a UUID: ~1,200 characters).
CURSOR_MAX_CHARS = 4_096
_TAG_BYTES = 16
_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,4000}\.[A-Za-z0-9_-]{22}")

# The signing key first; keys installed before it still verify (a process serving one store has exactly one).
_KEYS: list[bytes] = [secrets.token_bytes(32)]
_DEFAULT_KEY = _KEYS[0]


def install_key(secret: str | bytes) -> None:
    """Sign cursors with ``secret`` from now on (the deployment's key; see the module docstring)."""
    key = hashlib.sha256(secret.encode() if isinstance(secret, str) else secret).digest()
    if _DEFAULT_KEY in _KEYS:
        _KEYS.remove(_DEFAULT_KEY)
    if key in _KEYS:
        _KEYS.remove(key)
    # Several servers in one process (tests) each keep verifying their own cursors; the list stays short.
    _KEYS.insert(0, key)
    del _KEYS[8:]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _tag(key: bytes, kind: str, payload: str) -> bytes:
    return hmac.new(key, f"{kind}\n{payload}".encode(), hashlib.sha256).digest()[:_TAG_BYTES]


def invalid_cursor() -> InvalidArgument:
    return InvalidArgument(
        "The cursor is not one this list returned.",
        hint="Pass next_cursor from the previous page unchanged, or omit cursor to start from the first page.",
        details={"field": "cursor"},
    )


def encode_cursor(kind: str, key: Any) -> str:
    payload = _b64(json.dumps({"k": kind, "v": key}, separators=(",", ":"), ensure_ascii=False).encode())
    return f"{payload}.{_b64(_tag(_KEYS[0], kind, payload))}"


def decode_cursor(kind: str, cursor: str) -> Any:
    """The position a cursor of list ``kind`` holds; invalid_argument for anything this deployment did not issue."""
    if not isinstance(cursor, str) or len(cursor) > CURSOR_MAX_CHARS or not _SHAPE.fullmatch(cursor):
        raise invalid_cursor()
    payload, tag_text = cursor.split(".")
    try:
        tag = base64.urlsafe_b64decode(tag_text + "==")
    except (binascii.Error, ValueError):
        raise invalid_cursor() from None
    if not any(hmac.compare_digest(tag, _tag(key, kind, payload)) for key in _KEYS):
        raise invalid_cursor()
    try:  # signed by us, so well-formed; checked anyway rather than trusted blindly
        decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        raise invalid_cursor() from None
    if not isinstance(decoded, dict) or decoded.get("k") != kind or "v" not in decoded:
        raise invalid_cursor()
    return decoded["v"]
