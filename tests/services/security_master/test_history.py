"""History from the dated copies: renames, delistings and reused tickers, with the cited table and CIK continuity
(SEC copies) as the oracle."""

from __future__ import annotations

import collections
from datetime import date

import pytest

from providers.listings.corporate_actions import load_corporate_actions
from providers.listings.recorded import RecordedListings
from providers.listings.symbols import parse_symbol
from services.security_master.history import build_securities
from services.security_master.model import Security
from tests.services.security_master.conftest import by_symbol, inputs_of


def _current(securities: list[Security], symbol: str) -> Security:
    found = [s for s in securities if s.symbol == symbol and s.is_listed and s.region == "us"]
    assert len(found) == 1, [s.key for s in found]
    return found[0]


def _symbols(security: Security) -> list[str]:
    return [span.symbol for span in security.symbols]


def test_cited_renames_are_one_security_with_exact_dates(securities: list[Security]) -> None:
    for action in load_corporate_actions():
        if action.kind != "rename":
            continue
        security = _current(securities, str(action.new_symbol))
        names = _symbols(security)
        assert names[-2:] == [action.old_symbol, action.new_symbol], security.key
        old, new = security.symbols[-2:]
        assert old.valid_to == new.valid_from == action.effective_date
        assert old.exact and old.source == "corporate_actions"


def test_meta_keeps_its_fb_years(securities: list[Security]) -> None:
    meta = _current(securities, "META")
    fb, current = meta.symbols
    assert (fb.symbol, fb.valid_from, fb.valid_to) == ("FB", date(2012, 5, 18), date(2022, 6, 9))
    assert (current.symbol, current.valid_from, current.valid_to) == ("META", date(2022, 6, 9), None)
    assert meta.cik == 1326801 and meta.sector == "Communication Services"
    etf = _current(securities, "FB")
    assert etf.asset_type == "etf" and etf is not meta and etf.symbols[0].valid_from == date(2025, 6, 26)
    assert len(by_symbol(securities, "FB")) == 2


@pytest.mark.parametrize(("old", "new"), [("ZI", "GTM"), ("JBT", "JBTM"), ("SQ", "XYZ")])
def test_cik_continuity_renames_are_bounded_by_the_copies(securities: list[Security], old: str, new: str) -> None:
    security = _current(securities, new)
    before, after = security.symbols[-2:]
    assert (before.symbol, after.symbol) == (old, new)
    # Last seen as the old ticker in the SEC copy of 2024-12-19, first seen as the new one in the 2025-07-21 copy.
    assert before.valid_to == after.valid_from == date(2025, 7, 21)
    assert before.changed_after == date(2024, 12, 19) and not before.exact


def _cik_pairs(recorded: RecordedListings) -> list[tuple[str, str]]:
    """One-ticker issuers whose ticker changed between the two SEC copies, old ticker gone from the newest
    directory copy and new ticker in it: every one of them is a rename (the oracle the issue names)."""
    older, newer = recorded.sec[0], recorded.sec[-1]
    tickers_old: dict[int | None, set[str]] = collections.defaultdict(set)
    tickers_new: dict[int | None, set[str]] = collections.defaultdict(set)
    for row in older.rows:
        tickers_old[row.cik].add(row.symbol)
    for row in newer.rows:
        tickers_new[row.cik].add(row.symbol)
    directories = [{r.symbol for r in b.rows} for b in recorded.directories]
    pairs = []
    for cik, olds in tickers_old.items():
        news = tickers_new.get(cik, set())
        if len(olds) != 1 or len(news) != 1 or olds == news:
            continue
        (old,), (new,) = olds, news
        if parse_symbol(old).kind != "common" or parse_symbol(new).kind != "common":
            continue
        if (old in directories[0] or old in directories[1]) and new in directories[-1] and old not in directories[-1]:
            pairs.append((old, new))
    return sorted(pairs)


def test_every_cik_continuity_rename_is_linked(securities: list[Security], recorded_listings: RecordedListings) -> None:
    pairs = _cik_pairs(recorded_listings)
    assert len(pairs) >= 90
    unlinked = []
    for old, new in pairs:
        security = _current(securities, new)
        names = _symbols(security)
        if old not in names or names.index(old) + 1 >= len(names) or names[names.index(old) + 1] != new:
            unlinked.append((old, new))
    assert unlinked == []


def test_cited_removals_are_delisted_on_the_cited_date(securities: list[Security]) -> None:
    for action in load_corporate_actions():
        if action.kind != "removal":
            continue
        gone = [s for s in by_symbol(securities, str(action.old_symbol)) if s.delisted_on == action.effective_date]
        assert len(gone) == 1, action
        assert gone[0].listing_status == "delisted" and gone[0].delisted_on_source == "corporate_actions"


@pytest.mark.parametrize(
    ("symbol", "delisted_on", "in_copies"),
    [("TWTR", date(2022, 11, 8), True), ("ATVI", date(2023, 10, 13), True), ("XLNX", date(2022, 2, 14), False)],
)
def test_well_known_delistings(securities: list[Security], symbol: str, delisted_on: date, in_copies: bool) -> None:
    (security,) = by_symbol(securities, symbol)
    assert security.listing_status == "delisted" and security.delisted_on == delisted_on
    # XLNX left before our first directory copy: Alpha Vantage alone knows it (and the table dates it).
    assert ("nasdaq_trader" in security.sources) == in_copies


def test_a_disappearance_without_a_date_is_bounded_by_the_copies(securities: list[Security]) -> None:
    windowed = [s for s in securities if s.delisted_on_source == "snapshots"]
    assert windowed
    for security in windowed:
        assert security.delisted_after is not None and security.delisted_on is not None
        assert security.delisted_after < security.delisted_on
        assert not security.symbols[-1].exact


def test_replaying_the_copies_in_order_reproduces_the_history(
    recorded_listings: RecordedListings, securities: list[Security]
) -> None:
    first = build_securities(inputs_of(recorded_listings, directories=1))
    assert _current(first, "FB").name.startswith("Meta Platforms")
    assert _current(first, "TWTR").is_listed and _current(first, "ZI").is_listed
    second = build_securities(inputs_of(recorded_listings, directories=2))
    assert _current(second, "META").symbols[-2].symbol == "FB"
    assert _current(second, "FB").asset_type == "etf"
    (twitter,) = by_symbol(second, "TWTR")
    assert twitter.delisted_on == date(2022, 11, 8)
    # By 2025-07-21 ZI has gone and GTM has appeared, but nothing links them yet: the SEC copy that shows ZoomInfo's
    # CIK under GTM is dated 2025-12-14. A later copy can turn a "delisting" into a rename.
    assert _symbols(_current(second, "GTM")) == ["GTM"]
    (zoominfo,) = by_symbol(second, "ZI")
    assert zoominfo.listing_status == "delisted" and zoominfo.delisted_after == date(2024, 12, 19)
    assert _symbols(_current(securities, "GTM")) == ["ZI", "GTM"]


def test_invariants(securities: list[Security]) -> None:
    keys = [s.key for s in securities]
    assert len(keys) == len(set(keys))
    open_holders: dict[str, list[str]] = collections.defaultdict(list)
    for security in securities:
        spans = security.symbols
        assert spans, security.key
        for earlier, later in zip(spans, spans[1:], strict=False):
            assert earlier.valid_to is not None and earlier.valid_to == later.valid_from, security.key
        if security.is_listed:
            assert spans[-1].valid_to is None, security.key
            open_holders[spans[-1].symbol].append(security.key)
        else:
            assert spans[-1].valid_to == security.delisted_on, security.key
    # One current holder per symbol.
    assert {symbol: keys for symbol, keys in open_holders.items() if len(keys) > 1} == {}


def test_test_issues_never_reach_the_master(securities: list[Security]) -> None:
    symbols = {span.symbol for s in securities for span in s.symbols}
    assert not {"ZVZZT", "ZXYZ.A", "ATEST", "MTEST", "ZBZX", "ZIEXT"} & symbols


def test_names_and_sectors_of_well_known_listings(securities: list[Security]) -> None:
    stm = _current(securities, "STM")
    assert stm.name.startswith("STMicroelectronics") and stm.sector == "Information Technology"
    amd = _current(securities, "AMD")
    assert amd.sector == "Information Technology" and amd.source_sector == "Technology"
    visa = _current(securities, "V")
    assert (visa.sector, visa.sector_source) == ("Financials", "override")
    assert (visa.source_sector, visa.source_industry) == ("Consumer Discretionary", "Business Services")
    assert _current(securities, "BRK.B").indices == ("S&P 100", "S&P 500")
    assert _current(securities, "ARKK").asset_type == "etf"

    brk = _current(securities, "BRK.B")
    assert brk.cik == 1067983 and brk.exchange == "NYSE"
