"""Toolsets declared as data (github-mcp-server style): each names its tools, resources, prompts and the lines it
adds to the server's instructions; the server (server/app.py) registers the enabled ones, and nothing else.

Limits quoted in descriptions are written ``{settings.<name>}`` and filled in from the server's settings when it is
built (``describe``), so a description never quotes a limit the deployment does not apply.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from mcp.types import ToolAnnotations

from core.settings import Settings, ToolsetName

__all__ = ["READ", "WRITE", "DESTRUCTIVE", "PromptSpec", "ResourceSpec", "ToolSpec", "Toolset", "describe"]

_SETTING = re.compile(r"\{settings\.(\w+)\}")


def describe(text: str, settings: Settings) -> str:
    """``text`` with each ``{settings.<name>}`` replaced by that setting's value (numbers with thousands separators,
    whole floats without decimals: 10,000 and 45)."""

    def value(match: re.Match[str]) -> str:
        v = getattr(settings, match.group(1))
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)

    return _SETTING.sub(value, text)


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
class ResourceSpec:
    """A resource (template) a toolset serves. ``fn`` takes the URI's parameters (and ``ctx``) and returns the
    text; it raises domain errors (services/errors.py), which the server maps for every resource alike."""

    uri: str
    fn: Callable[..., Awaitable[str]]
    title: str
    description: str
    mime_type: str = "application/json"
    name: str | None = None  # default: the function's name


@dataclass(frozen=True)
class PromptSpec:
    fn: Callable[..., Any]  # its docstring is the prompt's description
    title: str


@dataclass(frozen=True)
class Toolset:
    id: ToolsetName
    description: str
    tools: list[ToolSpec] = field(default_factory=list)
    resources: list[ResourceSpec] = field(default_factory=list)
    prompts: list[PromptSpec] = field(default_factory=list)
    instructions: str = ""  # joined into the server's instructions when the toolset is enabled
