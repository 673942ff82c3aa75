"""The one place errors become tool results: domain errors, argument errors and crashes (the envelope: docs/ARCHITECTURE.md, "The envelope").

A failure is an ``isError`` result whose structured content has the envelope's shape with ``data: null`` and
``error: {code, message, hint, details}``. Crashes are logged with an error id and reach the caller as that id only:
no stack trace, SQL, path or secret ever leaves the server.
"""

from __future__ import annotations

import difflib
import logging
import re
import uuid
from collections.abc import Iterable
from typing import Any

import pydantic_core
from mcp.types import CallToolResult, TextContent
from pydantic import ValidationError

from services.errors import Conflict, InternalError, InvalidArgument, NotFound, UniverseMCPError
from storage.errors import lost_race
from tools._results import Envelope, ErrorInfo, NextAction, to_next_actions

__all__ = [
    "FILE_ARGUMENTS",
    "MULTILINE_ARGUMENTS",
    "arguments_problem",
    "control_character",
    "error_result",
    "from_exception",
    "render_result",
    "unknown_tool_error",
    "validation_error",
]

logger = logging.getLogger("universe_mcp.errors")


def _text(envelope: dict[str, Any]) -> list[TextContent]:
    # First block: a one-paragraph summary for people and text-only models; second: the envelope as compact JSON,
    # so clients that ignore structuredContent still get the data (MCP's backwards-compatibility advice).
    summary = envelope["message"]
    if envelope.get("error"):
        err = envelope["error"]
        summary = f"Error ({err['code']}): {err['message']}" + (f" Hint: {err['hint']}" if err.get("hint") else "")
    if envelope.get("next_actions"):
        summary += " Next: " + "; ".join(f"{a['tool']} ({a['reason']})" for a in envelope["next_actions"][:3]) + "."
    return [
        TextContent(type="text", text=summary),
        # pydantic-core writes the same compact JSON as json.dumps(separators=(",", ":")) a few times faster (non-ASCII
        # text stays UTF-8 instead of \u escapes); large results are rendered on every call.
        TextContent(type="text", text=pydantic_core.to_json(envelope, fallback=str).decode()),
    ]


def render_result(envelope: dict[str, Any], *, is_error: bool) -> CallToolResult:
    return CallToolResult(content=_text(envelope), structured_content=envelope, is_error=is_error)


def error_result(error: UniverseMCPError, *, registered: Iterable[str], elapsed_ms: float) -> CallToolResult:
    known = set(registered)
    envelope = Envelope[Any](
        success=False,
        data=None,
        message=error.message,
        next_actions=[a for a in to_next_actions(error.next_actions) if a.tool in known],
        metadata={"elapsed_ms": round(elapsed_ms, 3)},
        error=ErrorInfo(code=error.code, message=error.message, hint=error.hint, details=error.details),
    )
    return render_result(envelope.model_dump(mode="json"), is_error=True)


def from_exception(exc: BaseException, *, tool: str) -> UniverseMCPError:
    """A domain error for any exception; unexpected ones are logged once, with an id the caller can quote."""
    if isinstance(exc, UniverseMCPError):
        return exc
    error_id = uuid.uuid4().hex[:12]
    if (why := lost_race(exc)) is not None:
        # Logged (the services serialise writers, so a lost race is rare and worth knowing about), never shown.
        logger.warning("lost race %s in tool %s: %s", error_id, tool, type(exc).__name__)
        return Conflict(
            f"{tool} lost a race with a concurrent change ({why}); nothing was changed.",
            hint="Retry the same call; it is safe to repeat.",
            details={"retryable": True, "error_id": error_id},
        )
    logger.error("internal error %s in tool %s", error_id, tool, exc_info=exc)
    return InternalError(
        f"The server failed while running {tool} (error id {error_id}).",
        hint="This is a server problem, not your input. Retry once; if it persists, report the error id.",
        details={"error_id": error_id},
    )


def validation_error(exc: ValidationError, *, tool: str) -> InvalidArgument:
    """Argument errors without echoing the caller's values (they may be huge or secret)."""
    problems = []
    for err in exc.errors(include_url=False, include_input=False)[:20]:
        field = ".".join(str(p) for p in err["loc"]) or "(arguments)"
        problems.append({"field": field, "problem": err["msg"][:200], "type": err["type"]})
    listed = "; ".join(f"{p['field']}: {p['problem']}" for p in problems[:5])
    return InvalidArgument(
        f"Invalid arguments for {tool}: {listed}.",
        hint="Check the tool's input schema: argument names, types and limits.",
        details={"problems": problems, "error_count": exc.error_count()},
    )


def unknown_tool_error(name: str, registered: Iterable[str]) -> NotFound:
    names = sorted(registered)
    shown = name[:80]
    return NotFound(
        f"There is no tool named {shown!r}.",
        hint="Call one of the listed tools; names are snake_case.",
        candidates=difflib.get_close_matches(shown, names, n=3, cutoff=0.5) or names[:10],
    )


# Arguments whose text may span lines: newlines and tabs are legitimate there.
MULTILINE_ARGUMENTS = frozenset({"description"})
# A whole file's text: its parser judges the content (services/csv_io.py says a file with NUL is binary, and a row
# with junk is an invalid row); only what cannot be text at all (lone surrogates) is refused here.
FILE_ARGUMENTS = frozenset({"csv_text"})
# Control characters (C0 and C1, DEL) and lone surrogates: never part of a name, symbol or query, and NUL or a lone
# surrogate cannot even be stored (PostgreSQL's driver refuses them). Multi-line text may keep tab, LF and CR.
_CONTROL = {
    "line": re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]"),
    "multiline": re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]"),
    "file": re.compile("[\ud800-\udfff]"),
}


def _kind(argument: Any) -> str:
    return "multiline" if argument in MULTILINE_ARGUMENTS else "file" if argument in FILE_ARGUMENTS else "line"


def control_character(text: str, *, kind: str = "line") -> int | None:
    """The index of the first character ``text`` may not hold (see _CONTROL), or None."""
    found = _CONTROL[kind].search(text)
    return found.start() if found else None


def _field_name(path: tuple[Any, ...]) -> str:
    name = str(path[0])[:60]
    for part in path[1:]:
        name += f"[{part}]" if isinstance(part, int) else f".{str(part)[:60]}"
    return name


def _control_problem(path: tuple[Any, ...], text: str, at: int) -> InvalidArgument:
    field = _field_name(path)
    code = f"U+{ord(text[at]):04X}"
    kind = _kind(path[0])
    return InvalidArgument(
        f"{field} contains a control character ({code}) at position {at}.",
        hint="Remove control characters (NUL, escape, ...) from the text."
        + (
            " Tabs and line breaks are fine here."
            if kind != "line"
            else " Newlines and tabs belong only in description and csv_text."
        ),
        details={"field": field, "character": code, "position": at},
    )


def arguments_problem(
    arguments: Any, *, allowed: set[str] | None, max_depth: int, max_bytes: int
) -> InvalidArgument | None:
    """Size, depth, control-character and unknown-field checks, done before pydantic sees the arguments."""
    if not isinstance(arguments, dict):
        return InvalidArgument("Arguments must be a JSON object.")
    # Iterative walk: a recursive one would itself blow the stack on hostile input. Each entry carries its path
    # from the argument's name, to name the field of a control character.
    stack: list[tuple[Any, int, tuple[Any, ...]]] = [(v, 2, (k,)) for k, v in arguments.items()]
    budget = max_bytes - 2 * len(arguments) - sum(len(str(k)) for k in arguments)
    while stack:
        value, depth, path = stack.pop()
        if depth > max_depth:
            return InvalidArgument(
                f"Arguments are nested deeper than {max_depth} levels.",
                hint="Pass flat values: strings, numbers and lists of strings.",
            )
        if isinstance(value, dict):
            budget -= 2 * len(value)
            stack.extend((v, depth + 1, (*path, k)) for k, v in value.items())
            budget -= sum(len(str(k)) for k in value)
        elif isinstance(value, list):
            budget -= len(value)
            stack.extend((v, depth + 1, (*path, i)) for i, v in enumerate(value))
        elif isinstance(value, str):
            budget -= len(value)
            if budget >= 0 and (at := control_character(value, kind=_kind(path[0]))) is not None:
                return _control_problem(path, value, at)
        if budget < 0:
            return InvalidArgument(
                f"Arguments are larger than {max_bytes:,} bytes.",
                hint="Split the request into smaller calls (bulk work: start_bulk_validation).",
            )
    if allowed is not None:
        unknown = sorted(set(arguments) - allowed)
        if unknown:
            shown = [u[:40] for u in unknown[:10]]
            suggestions = {u: difflib.get_close_matches(u, sorted(allowed), n=1) for u in shown}
            return InvalidArgument(
                f"Unknown argument(s): {', '.join(shown)}.",
                hint="Allowed arguments: " + ", ".join(sorted(allowed)) + ".",
                details={"unknown": shown, "did_you_mean": {k: v[0] for k, v in suggestions.items() if v}},
            )
    return None


def next_action_filter(actions: list[dict[str, Any]], registered: set[str]) -> list[dict[str, Any]]:
    return [a for a in actions if a.get("tool") in registered]


__all__ += ["NextAction", "next_action_filter"]
