"""The cited corporate-actions table shipped with the package."""

from __future__ import annotations

from datetime import date

import pytest

from providers.listings import data_file
from providers.listings.base import ListingSourceError
from providers.listings.corporate_actions import (
    CORPORATE_ACTIONS_FILE,
    CorporateActionsSource,
    load_corporate_actions,
    parse_corporate_actions,
)
from tests.providers.listings.conftest import recorded

pytestmark = pytest.mark.anyio


def test_shipped_table_is_the_cited_one_unchanged() -> None:
    assert data_file(CORPORATE_ACTIONS_FILE).read_bytes() == recorded("changes/symbol_changes.csv")


def test_rows_and_kinds() -> None:
    actions = load_corporate_actions()
    assert len(actions) == 22
    assert all(a.source_url.startswith(("https://", "http://")) for a in actions)
    assert [a.effective_date for a in actions] == sorted(a.effective_date for a in actions)
    by_old = {a.old_symbol: a for a in actions if a.old_symbol}
    assert (by_old["FB"].kind, by_old["FB"].new_symbol, by_old["FB"].effective_date) == (
        "rename",
        "META",
        date(2022, 6, 9),
    )
    assert by_old["TWTR"].kind == "removal" and by_old["TWTR"].effective_date == date(2022, 11, 8)
    assert {a.new_symbol for a in actions if a.kind == "new_listing"} == {"CARR", "OTIS", "GEHC", "KVUE"}


async def test_source_protocol() -> None:
    batch = await CorporateActionsSource().fetch()
    assert batch.source == "corporate_actions" and batch.as_of == date(2025, 7, 18) and len(batch.rows) == 22


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"old,new,date,company,url\n", "header"),
        (b"old_symbol,new_symbol,effective_date,company,source_url\nFB,META,2022-06-09,Meta\n", "fields"),
        (b"old_symbol,new_symbol,effective_date,company,source_url\n,,2022-06-09,Meta,https://x\n", "names no symbol"),
        (b"old_symbol,new_symbol,effective_date,company,source_url\nFB,META,June 9,Meta,https://x\n", "not a date"),
        (b"old_symbol,new_symbol,effective_date,company,source_url\nFB,META,2022-06-09,Meta,\n", "cites no source"),
        (b"old_symbol,new_symbol,effective_date,company,source_url\n", "no rows"),
    ],
)
def test_strict_parsing(body: bytes, reason: str) -> None:
    with pytest.raises(ListingSourceError, match=reason):
        parse_corporate_actions(body)
