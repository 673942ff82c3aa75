"""Verdicts from the shipped snapshot: listed, renamed, delisted, reused, unknown with typo candidates."""

from __future__ import annotations

from datetime import date

import pytest

from services.security_master.candidates import osa_distance
from services.security_master.resolver import Resolver


@pytest.mark.parametrize("spelling", ["BRK.B", "BRK-B", "BRK/B", "BRK B", "brk.b", "$BRK.B"])
def test_share_class_spellings_are_one_security(resolver: Resolver, spelling: str) -> None:
    verdict = resolver.resolve(spelling)
    assert verdict.status == "listed" and verdict.current_symbol == "BRK.B" and verdict.symbol == "BRK.B"
    assert verdict.security is resolver.resolve("BRK.B").security


@pytest.mark.parametrize("etf", ["ARKK", "EEM", "VNQ", "HYG", "LQD"])
def test_etfs_are_listed(resolver: Resolver, etf: str) -> None:
    verdict = resolver.resolve(etf)
    assert verdict.status == "listed" and verdict.security and verdict.security.asset_type == "etf"


def test_listed_carries_the_data_date(resolver: Resolver) -> None:
    verdict = resolver.resolve("AAPL")
    assert verdict.status == "listed" and verdict.data_as_of == date(2026, 8, 22)
    assert verdict.candidates == ()


@pytest.mark.parametrize(
    ("old", "new", "exact"),
    [("ZI", "GTM", False), ("JBT", "JBTM", False), ("ANTM", "ELV", True), ("PEAK", "DOC", True)],
)
def test_former_tickers_lead_to_the_current_one(resolver: Resolver, old: str, new: str, exact: bool) -> None:
    verdict = resolver.resolve(old)
    assert verdict.status == "renamed" and verdict.renamed_to == new and verdict.renamed_on_exact is exact
    assert verdict.reason is not None and verdict.renamed_on is not None
    assert new in verdict.reason and (verdict.renamed_on.isoformat() in verdict.reason)


@pytest.mark.parametrize(
    ("symbol", "delisted_on"), [("TWTR", date(2022, 11, 8)), ("ATVI", date(2023, 10, 13)), ("XLNX", date(2022, 2, 14))]
)
def test_delisted(resolver: Resolver, symbol: str, delisted_on: date) -> None:
    verdict = resolver.resolve(symbol)
    assert verdict.status == "delisted" and verdict.delisted_on == delisted_on
    assert f"delisted on {delisted_on.isoformat()}" in verdict.reason


def test_fb_today_is_the_etf_noting_its_former_holder(resolver: Resolver) -> None:
    verdict = resolver.resolve("FB")
    assert verdict.status == "listed" and verdict.security and verdict.security.asset_type == "etf"
    assert [s.symbol for s in verdict.former_holders] == ["META"]
    assert "Meta Platforms" in verdict.reason


def test_fb_in_2021_is_meta(resolver: Resolver) -> None:
    verdict = resolver.resolve("FB", as_of=date(2021, 6, 1))
    assert verdict.status == "listed" and verdict.current_symbol == "META"
    assert "trades today as META" in verdict.reason


def test_fb_between_its_holders_is_a_rename(resolver: Resolver) -> None:
    verdict = resolver.resolve("FB", as_of=date(2023, 6, 1))
    assert verdict.status == "renamed" and verdict.renamed_to == "META" and verdict.renamed_on == date(2022, 6, 9)


def test_doc_by_date(resolver: Resolver) -> None:
    then = resolver.resolve("DOC", as_of=date(2023, 1, 2))
    now = resolver.resolve("DOC")
    assert then.security and "Physicians Realty" in then.security.name
    assert now.security and "Healthpeak" in now.security.name


def test_before_a_symbol_was_used(resolver: Resolver) -> None:
    verdict = resolver.resolve("GEHC", as_of=date(2022, 12, 1))
    assert verdict.status == "unknown" and "used from 2023-01-04" in verdict.reason


@pytest.mark.parametrize(
    ("typo", "meant"), [("APPL", "AAPL"), ("MFST", "MSFT"), ("NVDIA", "NVDA"), ("TESLA", "TSLA"), ("GOOGLE", "GOOGL")]
)
def test_typos_get_candidates(resolver: Resolver, typo: str, meant: str) -> None:
    verdict = resolver.resolve(typo)
    assert verdict.status == "unknown"
    assert verdict.candidates[0] == meant
    assert typo not in verdict.candidates


def test_candidates_never_include_the_symbol_itself(resolver: Resolver) -> None:
    for symbol in ("AAPL", "BRK-B", "brk.b", "FB", "APPL"):
        assert resolver.candidates(symbol) and resolver.resolve(symbol).symbol not in resolver.candidates(symbol)


def test_invented_symbols_are_unknown(resolver: Resolver) -> None:
    verdict = resolver.resolve("QXZQ")
    assert verdict.status == "unknown" and verdict.security is None and "QXZQ" not in verdict.candidates


def test_indices_and_foreign_listings_known_to_the_catalog(resolver: Resolver) -> None:
    assert resolver.resolve("^GSPC").status == "listed"
    assert resolver.resolve("VNX.F").status == "listed"
    sap = resolver.resolve("SAP.DE")
    assert sap.status == "listed" and sap.security and sap.security.region == "foreign"


def test_osa_distance() -> None:
    assert osa_distance("APPL", "AAPL", 2) == 1  # one swap
    assert osa_distance("MSFT", "MSFT", 1) == 0
    assert osa_distance("NVDIA", "NVDA", 2) == 1
    assert osa_distance("ABCDE", "VWXYZ", 2) == 3  # capped at limit + 1
