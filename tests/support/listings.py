"""A small listings snapshot cut from the shipped one, for tests of the security master in the store.

The shipped snapshot (~30,000 securities) makes a 50 MB store that takes seconds to load; these securities — every
one that ever used one of ``SYMBOLS`` — keep the cases the tests need (share classes, renames, a reused ticker,
delistings, foreign listings, indices, typo neighbours) in a store that loads in a fraction of a second.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from services.security_master.model import Security
from services.security_master.snapshot import Snapshot, encode_snapshot, load_shipped_snapshot

__all__ = ["SYMBOLS", "small_snapshot_bytes", "write_small_snapshot"]

SYMBOLS = frozenset(
    {
        # share classes, large caps, typo neighbours (APPL -> AAPL, MSFY -> MSFT)
        "AAPL", "MSFT", "NVDA", "AMD", "AMZN", "GOOGL", "GOOG", "JPM", "KO", "PG", "TSLA", "BRK.A", "BRK.B", "BF.B",
        # a reused ticker (FB: Meta until 2022-06-09, an ETF today) and renames (ZI -> GTM, JBT -> JBTM, ANTM -> ELV)
        "FB", "META", "ZI", "GTM", "JBT", "JBTM", "ANTM", "ELV",
        # delistings
        "TWTR", "ATVI", "XLNX",
        # ETFs, an index, foreign index members
        "SPY", "QQQ", "ARKK", "EEM", "^GSPC", "VNX.F", "AC.PA", "SAP.DE",
    }
)  # fmt: skip


def _header(snapshot: Snapshot) -> dict:
    computed = {"format", "schema_version", "securities", "sha256"}
    return {k: v for k, v in snapshot.header.items() if k not in computed}


def small_snapshot_bytes(
    symbols: Iterable[str] = SYMBOLS, *, edit: dict[str, dict] | None = None, source: Snapshot | None = None
) -> bytes:
    """The securities that ever used one of ``symbols``; ``edit`` replaces fields of securities by key."""
    from dataclasses import replace

    wanted = set(symbols)
    snapshot = source or load_shipped_snapshot()
    chosen: list[Security] = [s for s in snapshot.securities if any(span.symbol in wanted for span in s.symbols)]
    if edit:
        chosen = [replace(s, **edit[s.key]) if s.key in edit else s for s in chosen]
    return encode_snapshot(chosen, _header(snapshot))


def write_small_snapshot(path: Path, symbols: Iterable[str] = SYMBOLS, **kwargs: Any) -> Path:
    path.write_bytes(small_snapshot_bytes(symbols, **kwargs))
    return path
