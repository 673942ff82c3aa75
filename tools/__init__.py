"""Toolsets, one module each (CSV import and export, tools/universes_csv.py, are part of `universes`). ALL_TOOLSETS
is what the server can expose (filtered by --toolsets/--read-only), in the order it registers them."""

from tools import assets, dashboard, health, jobs, universes

ALL_TOOLSETS = [universes.TOOLSET, assets.TOOLSET, dashboard.TOOLSET, jobs.TOOLSET, health.TOOLSET]

__all__ = ["ALL_TOOLSETS"]
