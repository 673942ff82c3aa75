"""The installed distribution's version (pyproject.toml), for `--version`, the banner and the MCP server info."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("universe-mcp")
except PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "0+unknown"
