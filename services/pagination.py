"""Opaque cursors: base64url JSON the caller hands back unchanged. A tampered cursor is invalid_argument."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from services.errors import InvalidArgument

__all__ = ["decode_cursor", "encode_cursor"]


def encode_cursor(kind: str, key: Any) -> str:
    raw = json.dumps({"k": kind, "v": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str) -> Any:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        payload = None
    if not isinstance(payload, dict) or payload.get("k") != kind or "v" not in payload:
        raise InvalidArgument(
            "The cursor is not one this list returned.",
            hint="Pass next_cursor from the previous page unchanged, or omit cursor to start from the first page.",
        )
    return payload["v"]
