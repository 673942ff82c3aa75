"""The result envelope every tool returns (DESIGN §4) and the helpers that build it."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from services.errors import NextActionHint

__all__ = ["Envelope", "ErrorInfo", "NextAction", "ok", "to_next_actions"]

DataT = TypeVar("DataT")


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
    error: ErrorInfo | None = None


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
    return Envelope[type(data)](  # type: ignore[misc]
        success=True, data=data, message=message, next_actions=next_actions or [], metadata=metadata
    )
