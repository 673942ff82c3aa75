"""Toolsets declared as data (github-mcp-server style): the server registers the enabled ones."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mcp.types import ToolAnnotations

__all__ = ["READ", "WRITE", "DESTRUCTIVE", "ToolSpec", "Toolset"]

# Honest annotations. open_world is False for tools that touch only our store; validation tools talk to providers.
READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)
DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)


@dataclass(frozen=True)
class ToolSpec:
    fn: Callable[..., Any]
    title: str
    annotations: ToolAnnotations
    scope: str = "read"  # the token scope a caller needs: read | write | validate
    meta: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.fn.__name__

    @property
    def read_only(self) -> bool:
        return bool(self.annotations.read_only_hint)


@dataclass(frozen=True)
class Toolset:
    id: str
    description: str
    tools: list[ToolSpec] = field(default_factory=list)
    instructions: str = ""
