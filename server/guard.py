"""Guards where JSON-RPC messages enter (stdio lines and HTTP bodies).

The SDK silently drops a message it cannot parse, such as one nested a few hundred levels deep: the client then
waits out its timeout. We scan every incoming message first (one linear pass, no recursion) and answer an
over-deep or over-large one at once with a small JSON-RPC error that names the limit and never echoes the input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["GuardVerdict", "inspect_message", "rejection"]

INVALID_REQUEST = -32600


@dataclass(frozen=True, slots=True)
class GuardVerdict:
    problem: str | None
    request_id: Any = None


def _top_level_id(text: str) -> Any:
    """The top-level "id" of a JSON-RPC object, found without parsing the whole (possibly hostile) text."""
    depth = 0
    i = 0
    n = len(text)
    in_string = False
    key_start = -1
    last_key: str | None = None
    while i < n:
        ch = text[i]
        if in_string:
            if ch == "\\":
                i += 2
                continue
            if ch == '"':
                in_string = False
                if depth == 1 and key_start >= 0:
                    last_key = text[key_start:i]
                    key_start = -1
            i += 1
            continue
        if ch == '"':
            in_string = True
            # A string at depth 1 right after '{' or ',' is a key.
            j = i - 1
            while j >= 0 and text[j] in " \t\r\n":
                j -= 1
            key_start = i + 1 if depth == 1 and j >= 0 and text[j] in "{," else -1
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
        elif ch == ":" and depth == 1 and last_key == "id":
            rest = text[i + 1 : i + 80].lstrip()
            try:
                value, _ = json.JSONDecoder().raw_decode(rest)
            except ValueError:
                return None
            return value if isinstance(value, (str, int)) else None
        elif ch == ",":
            last_key = None if depth == 1 else last_key
        i += 1
    return None


def inspect_message(raw: str | bytes, *, max_depth: int, max_bytes: int) -> GuardVerdict:
    """Check size and nesting of one message; ``problem`` is None when it may go on to the SDK."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    if len(text) > max_bytes:
        return GuardVerdict(f"message is larger than {max_bytes:,} bytes", _top_level_id(text[:4096]))
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
            if depth > deepest:
                deepest = depth
        elif ch in "}]":
            depth -= 1
    # JSON-RPC envelope + params + arguments take 3 levels before the caller's own values begin.
    if deepest > max_depth + 3:
        return GuardVerdict(f"message is nested deeper than {max_depth} levels", _top_level_id(text))
    return GuardVerdict(None)


def rejection(verdict: GuardVerdict) -> dict[str, Any]:
    """A JSON-RPC error response for a rejected message."""
    return {
        "jsonrpc": "2.0",
        "id": verdict.request_id,
        "error": {
            "code": INVALID_REQUEST,
            "message": f"Request rejected: {verdict.problem}.",
            "data": {
                "code": "invalid_argument",
                "hint": "Send smaller, flatter arguments; split large symbol lists (bulk work: start_bulk_validation).",
            },
        },
    }
