"""Toolsets, one module each. ALL_TOOLSETS is what the server can expose (filtered by --toolsets/--read-only)."""

from tools import universes

ALL_TOOLSETS = [universes.TOOLSET]

__all__ = ["ALL_TOOLSETS"]
