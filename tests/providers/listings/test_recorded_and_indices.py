"""Reading a directory of recorded copies; pytickersymbols index membership; asset types from names."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from providers.listings.asset_types import classify_asset_type, split_security_name
from providers.listings.base import ListingSourceError
from providers.listings.indices import US_INDICES, IndexMembershipSource, index_membership_batch
from providers.listings.recorded import read_recorded
from tests.providers.listings.conftest import RECORDED

pytestmark = pytest.mark.anyio


def test_reads_every_dated_copy_in_order() -> None:
    listings = read_recorded(RECORDED)
    assert [b.as_of for b in listings.directories] == [date(2022, 5, 11), date(2025, 7, 21), date(2026, 3, 3)]
    assert [b.as_of for b in listings.screeners] == [date(2024, 8, 22), date(2026, 8, 22)]
    assert [b.as_of for b in listings.sec] == [date(2024, 12, 19), date(2025, 12, 14)]
    assert [b.as_of for b in listings.alpha_vantage] == [date(2026, 4, 9)]
    assert len(listings.files) == 6 + 6 + 2 + 2
    assert all(len(f.sha256) == 64 for f in listings.files)


def test_a_half_set_is_refused(tmp_path: Path) -> None:
    shutil.copytree(RECORDED / "nasdaqtrader", tmp_path / "nasdaqtrader")
    (tmp_path / "nasdaqtrader" / "otherlisted-2025-07-21.txt").unlink()
    with pytest.raises(ListingSourceError, match="lacks otherlisted-2025-07-21"):
        read_recorded(tmp_path)


def test_an_empty_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ListingSourceError, match="no symbol directory"):
        read_recorded(tmp_path)


async def test_index_membership() -> None:
    batch = await IndexMembershipSource().fetch()
    assert batch == index_membership_batch()
    rows = {row.symbol: row for row in batch.rows}
    assert {"S&P 500", "NASDAQ 100"} <= set(rows["AAPL"].indices)
    assert rows["BRK.B"].raw_symbol == "BRK-B" and "S&P 500" in rows["BRK.B"].indices
    assert rows["^GSPC"].asset_type == "index"
    assert rows["SAP.DE"].exchange == "XETRA" and not set(rows["SAP.DE"].indices) & US_INDICES


@pytest.mark.parametrize(
    ("name", "etf", "expected"),
    [
        ("Apple Inc. - Common Stock", False, "stock"),
        ("SPDR S&P 500 ETF Trust", True, "etf"),
        ("Armada Acquisition Corp. II - Units", False, "unit"),
        (
            "Rithm Acquisition Corp. Units (each consists of one Class A Ordinary Share and one-third of one redeemable Warrant)",
            False,
            "unit",
        ),
        ("Able View Global Inc. - Warrant", False, "warrant"),
        ("StoneBridge Acquisition II Corporation - Rights", False, "right"),
        (
            "AGNC Investment Corp. - Depositary Shares, each representing a 1/1,000th interest in a share of 7.75% Series G Preferred Stock",
            False,
            "preferred",
        ),
        ("Pearl Diver Credit Company Inc. 8.00% Series A Preferred Stock Due 2029", False, "preferred"),
        ("Adamas Trust, Inc. - 9.125% Senior Notes Due 2030", False, "other"),
        ("Abivax SA - American Depositary Shares", False, "adr"),
        ("Banco Macro S.A.  ADR (representing Ten Class B Common Shares)", False, "adr"),
        ("Ares Capital Corporation - Closed End Fund", False, "fund"),
        ("Plains All American Pipeline, L.P. - Common Units representing Limited Partner Interests", False, "stock"),
        ("Marine Petroleum Trust - Units of Beneficial Interest", False, "stock"),
        ("Unit Corporation - Common Stock", False, "stock"),
    ],
)
def test_asset_types_from_names(name: str, etf: bool, expected: str) -> None:
    assert classify_asset_type(name, is_etf=etf) == expected


def test_split_security_name() -> None:
    assert split_security_name("Apple Inc. - Common Stock") == ("Apple Inc.", "Common Stock")
    assert split_security_name("Agilent Technologies, Inc. Common Stock") == (
        "Agilent Technologies, Inc. Common Stock",
        "",
    )
