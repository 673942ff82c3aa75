"""Toolsets, one module each. ALL_TOOLSETS is what the server can expose (filtered by --toolsets/--read-only)."""

from tools import assets, dashboard, health, jobs, universes, universes_csv

ALL_TOOLSETS = [universes.TOOLSET, assets.TOOLSET, universes_csv.TOOLSET, dashboard.TOOLSET]
ALL_TOOLSETS += [jobs.TOOLSET, health.TOOLSET]

__all__ = ["ALL_TOOLSETS"]
