"""A directory of recorded (dated) copies of the listing sources, read with the live adapters' own parsers.

Layout (the one of ``../shared/fixtures/listings``; the date in each name is the date the copy describes):

    nasdaqtrader/nasdaqlisted-YYYY-MM-DD.txt + nasdaqtrader/otherlisted-YYYY-MM-DD.txt
    nasdaq_screener/{nasdaq,nyse,amex}_full_tickers-YYYY-MM-DD.json
    sec/company_tickers_exchange-YYYY-MM-DD.json
    alpha_vantage_listing_status/listing_status-{active,delisted}-YYYY-MM-DD.csv

Other files (``etf/`` subsets, ``changes/`` — shipped as the corporate-actions table —, READMEs) are ignored. A date
with only part of a set (one directory file without its twin, two of the three screener exchanges) is an error:
a half set would read as thousands of delistings.

The symbol directory's ``as_of`` is its footer date; the other formats carry no date, so theirs comes from the name.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from providers.listings.alpha_vantage import listing_status_batch, parse_listing_status
from providers.listings.base import ListingRow, ListingSourceError, SourceBatch
from providers.listings.nasdaq_screener import SCREENER_EXCHANGES, parse_screener, screener_batch
from providers.listings.nasdaq_trader import parse_directory
from providers.listings.sec import parse_sec_tickers

__all__ = ["RecordedFile", "RecordedListings", "read_recorded"]

_DATED = re.compile(r"^(?P<stem>.+)-(?P<date>\d{4}-\d{2}-\d{2})\.(?P<ext>txt|json|csv)$")


@dataclass(frozen=True, slots=True)
class RecordedFile:
    path: str  # relative to the directory, with forward slashes
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class RecordedListings:
    """Every recorded batch, oldest first within each source."""

    directories: tuple[SourceBatch[ListingRow], ...]
    screeners: tuple[SourceBatch[ListingRow], ...]
    sec: tuple[SourceBatch[ListingRow], ...]
    alpha_vantage: tuple[SourceBatch[ListingRow], ...]
    files: tuple[RecordedFile, ...]


def _dated(folder: Path) -> dict[date, dict[str, Path]]:
    found: dict[date, dict[str, Path]] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.iterdir()):
        match = _DATED.match(path.name)
        if match is None or not path.is_file():
            continue
        try:
            when = date.fromisoformat(match["date"])
        except ValueError:
            continue
        found.setdefault(when, {})[match["stem"]] = path
    return found


def _need(parts: dict[str, Path], stems: tuple[str, ...], when: date, folder: str) -> list[Path]:
    missing = [stem for stem in stems if stem not in parts]
    if missing:
        raise ListingSourceError(
            "recorded", f"{folder} for {when.isoformat()} lacks {', '.join(f'{m}-{when.isoformat()}' for m in missing)}"
        )
    return [parts[stem] for stem in stems]


def read_recorded(root: Path) -> RecordedListings:
    """Read and parse every recorded copy under ``root``; raises ``ListingSourceError`` naming the bad file."""
    root = Path(root)
    if not root.is_dir():
        raise ListingSourceError("recorded", f"{root} is not a directory")
    used: list[Path] = []

    directories = []
    for when, parts in sorted(_dated(root / "nasdaqtrader").items()):
        nasdaq, other = _need(parts, ("nasdaqlisted", "otherlisted"), when, "nasdaqtrader/")
        used += [nasdaq, other]
        directories.append(parse_directory(nasdaq.read_bytes(), other.read_bytes()))

    screeners = []
    for when, parts in sorted(_dated(root / "nasdaq_screener").items()):
        stems = tuple(f"{exchange}_full_tickers" for exchange in SCREENER_EXCHANGES)
        paths = _need(parts, stems, when, "nasdaq_screener/")
        used += paths
        by_exchange = {ex: parse_screener(p.read_bytes(), ex) for ex, p in zip(SCREENER_EXCHANGES, paths, strict=True)}
        screeners.append(screener_batch(by_exchange, when))

    sec = []
    for when, parts in sorted(_dated(root / "sec").items()):
        (path,) = _need(parts, ("company_tickers_exchange",), when, "sec/")
        used.append(path)
        sec.append(parse_sec_tickers(path.read_bytes(), when))

    alpha_vantage = []
    for when, parts in sorted(_dated(root / "alpha_vantage_listing_status").items()):
        active, delisted = _need(parts, ("listing_status-active", "listing_status-delisted"), when, "alpha_vantage/")
        used += [active, delisted]
        alpha_vantage.append(
            listing_status_batch(
                parse_listing_status(active.read_bytes(), "active"),
                parse_listing_status(delisted.read_bytes(), "delisted"),
                when,
            )
        )

    if not directories:
        raise ListingSourceError("recorded", f"{root} holds no symbol directory copy (nasdaqtrader/*.txt)")
    files = tuple(
        RecordedFile(
            path.relative_to(root).as_posix(), hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_size
        )
        for path in sorted(used)
    )
    return RecordedListings(
        directories=tuple(directories),
        screeners=tuple(screeners),
        sec=tuple(sec),
        alpha_vantage=tuple(alpha_vantage),
        files=files,
    )
