"""The curated table of corporate actions shipped with the package: renames, removals and new listings, each with
its effective date and the public page that states it.

Built from the cited table ``changes/symbol_changes.csv`` of the recorded listings (copied unchanged into
``providers/listings/data/corporate_actions.csv``). Columns: ``old_symbol,new_symbol,effective_date,company,
source_url``. A row with both symbols is a rename (the effective date is the first trading day under the new symbol);
an empty ``new_symbol`` is a removal (acquisition or delisting completed on that date); an empty ``old_symbol`` a new
listing (first trading day). The history builder prefers these dates to any inferred from snapshots.

Adding a row: cite a page that states the date, keep the file sorted by date, run the tests (they parse the table
strictly and check it against the recorded listings).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from typing import Literal

from providers.listings import data_file
from providers.listings.base import ListingSourceError, SourceBatch, SourceName
from providers.listings.symbols import canonical_symbol

__all__ = ["CORPORATE_ACTIONS_FILE", "CorporateAction", "CorporateActionsSource", "load_corporate_actions",
           "parse_corporate_actions"]  # fmt: skip

SOURCE: SourceName = "corporate_actions"
CORPORATE_ACTIONS_FILE = "corporate_actions.csv"
HEADER = ["old_symbol", "new_symbol", "effective_date", "company", "source_url"]


@dataclass(frozen=True, slots=True)
class CorporateAction:
    """One cited change. Symbols are canonical; ``kind`` follows from which symbols are present."""

    old_symbol: str | None
    new_symbol: str | None
    effective_date: date
    company: str
    source_url: str

    @property
    def kind(self) -> Literal["rename", "removal", "new_listing"]:
        if self.old_symbol and self.new_symbol:
            return "rename"
        return "removal" if self.old_symbol else "new_listing"


def parse_corporate_actions(body: bytes) -> list[CorporateAction]:
    """Parse the table strictly: exact header, a date and an http(s) source on every row, at least one symbol."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ListingSourceError(SOURCE, "the corporate-actions table is not UTF-8") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    if next(reader, None) != HEADER:
        raise ListingSourceError(SOURCE, f"the corporate-actions table header is not {','.join(HEADER)}")
    actions: list[CorporateAction] = []
    for line_no, fields in enumerate(reader, start=2):
        if not fields:
            continue
        if len(fields) != len(HEADER):
            raise ListingSourceError(SOURCE, f"corporate actions line {line_no} has {len(fields)} fields, expected 5")
        old, new, effective, company, url = (field.strip() for field in fields)
        if not old and not new:
            raise ListingSourceError(SOURCE, f"corporate actions line {line_no} names no symbol")
        if not url.startswith(("https://", "http://")):
            raise ListingSourceError(SOURCE, f"corporate actions line {line_no} cites no source page")
        try:
            when = date.fromisoformat(effective)
        except ValueError:
            raise ListingSourceError(SOURCE, f"corporate actions line {line_no}: {effective!r} is not a date") from None
        actions.append(
            CorporateAction(
                old_symbol=canonical_symbol(old) if old else None,
                new_symbol=canonical_symbol(new) if new else None,
                effective_date=when,
                company=company,
                source_url=url,
            )
        )
    if not actions:
        raise ListingSourceError(SOURCE, "the corporate-actions table has no rows")
    return actions


def load_corporate_actions() -> list[CorporateAction]:
    """The table shipped with the package."""
    return parse_corporate_actions(data_file(CORPORATE_ACTIONS_FILE).read_bytes())


class CorporateActionsSource:
    """The shipped table as a listing source (no network): ``as_of`` is the latest effective date in it."""

    name: SourceName = SOURCE

    async def fetch(self) -> SourceBatch[CorporateAction]:
        actions = load_corporate_actions()
        return SourceBatch(source=SOURCE, as_of=max(a.effective_date for a in actions), rows=tuple(actions))
