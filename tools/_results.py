"""The result envelope every tool returns (docs/ARCHITECTURE.md, "The envelope") and the helpers that build it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, Field, WithJsonSchema

from services.errors import NextActionHint

__all__ = [
    "LISTED_BYTES",
    "LISTED_ROWS",
    "Envelope",
    "ErrorInfo",
    "NextAction",
    "attention_first",
    "ok",
    "to_next_actions",
]

DataT = TypeVar("DataT")
RowT = TypeVar("RowT", bound=BaseModel)

# A bulk outcome lists at most this many rows, and stops earlier once their JSON reaches LISTED_BYTES: with the
# envelope around them a result stays under 16 KB (issue 16) however many symbols were sent. Counts cover every row;
# the rest is reachable (a report resource, a job's pages, the universe's members).
LISTED_ROWS = 50
LISTED_BYTES = 10_000


class NextAction(BaseModel):
    """A follow-up call the model can make as is."""

    tool: str = Field(description="A tool name registered on this server.")
    arguments: dict[str, Any] = Field(default_factory=dict, description="Arguments valid for that tool.")
    reason: str = Field(description="Why this call is a sensible next step.")


class ErrorInfo(BaseModel):
    code: str = Field(
        description="invalid_argument | not_found | already_exists | invalid_symbol | limit_exceeded | rate_limited "
        "| provider_unavailable | unauthorized | forbidden | conflict | internal"
    )
    message: str
    hint: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class Envelope(BaseModel, Generic[DataT]):
    """success + data + message + next_actions + metadata; on failure data is null and error is set."""

    success: bool
    data: DataT | None = None
    message: str = Field(description="One-paragraph summary of what happened.")
    next_actions: list[NextAction] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    # Only failures carry an error, and clients never check an isError result against the output schema: spelling
    # ErrorInfo out in each of the 20 tools' schemas cost ~4 KB of tools/list. Its shape is said once, in the server
    # instructions and docs/ARCHITECTURE.md ("The envelope").
    error: Annotated[ErrorInfo | None, WithJsonSchema({"type": ["object", "null"]})] = None


def to_next_actions(hints: list[NextActionHint] | tuple[NextActionHint, ...]) -> list[NextAction]:
    return [NextAction(tool=t, arguments=dict(a), reason=r) for t, a, r in hints]


def ok(
    data: DataT,
    message: str,
    *,
    next_actions: list[NextAction] | None = None,
    **metadata: Any,
) -> Envelope[DataT]:
    # elapsed_ms is filled in by the server once the call is done (server/errors.py), so it covers the whole call.
    # Parametrised with the data's class at run time, so pydantic validates and serialises data as that model; a
    # static checker cannot follow a run-time type argument.
    return Envelope[type(data)](  # type: ignore[misc, operator]
        success=True, data=data, message=message, next_actions=next_actions or [], metadata=metadata
    )


def attention_first(
    rows: Sequence[RowT],
    rank: Callable[[RowT], int],
    *,
    max_rows: int = LISTED_ROWS,
    max_bytes: int = LISTED_BYTES,
) -> list[RowT]:
    """The rows to list in a bulk outcome, cut at ``max_rows`` rows or ``max_bytes`` bytes of JSON (at least one).

    When they all fit they stay in input order, as a small call's answer always did; when some
    must go, the lowest ``rank`` come first (rejected, invalid, pending ...), in input order within a rank.
    """
    if len(rows) <= 1:  # one row is always listed: no need to measure it (the common one-symbol call)
        return list(rows)
    sizes = [len(row.__pydantic_serializer__.to_json(row)) for row in rows[: max_rows + 1]]
    if len(rows) <= max_rows and sum(sizes) <= max_bytes:
        return list(rows)
    listed: list[RowT] = []
    used = 0
    for row in sorted(rows, key=rank)[:max_rows]:  # sorted() is stable: input order within a rank
        size = len(row.__pydantic_serializer__.to_json(row))
        if listed and used + size > max_bytes:
            break
        listed.append(row)
        used += size
    return listed
