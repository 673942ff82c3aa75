"""Toolsets, one module each. ALL_TOOLSETS is what the server can expose (filtered by --toolsets/--read-only)."""

from tools import assets, universes

ALL_TOOLSETS = [universes.TOOLSET, assets.TOOLSET]

__all__ = ["ALL_TOOLSETS"]
