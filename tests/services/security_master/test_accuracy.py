"""The labelled accuracy set (bench/accuracy.py): deterministic, and the master's verdicts reach the target."""

from __future__ import annotations

from datetime import date

from bench.accuracy import CASES_PATH, TARGET, build_cases, judge, load_cases, score
from providers.listings.recorded import RecordedListings
from services.security_master.resolver import Resolution, Resolver
from tests.providers.listings.conftest import RECORDED


def test_cases_are_built_deterministically_from_the_recorded_files(recorded_listings: RecordedListings) -> None:
    assert build_cases(RECORDED, recorded_listings) == load_cases(CASES_PATH)


def test_every_category_of_the_issue_is_present() -> None:
    categories = {case["category"] for case in load_cases()}
    assert categories == {
        "active_stock", "etf", "adr", "delisted", "renamed", "reused", "share_class", "invented", "typo", "sector",
    }  # fmt: skip
    assert len(load_cases()) >= 400


def test_the_master_reaches_the_target(resolver: Resolver) -> None:
    report = score(load_cases(), resolver.resolve)
    assert report.accuracy >= TARGET, report.table() + "\n" + "\n".join(str(f) for f in report.failures)
    for category, (right, total) in report.by_category.items():
        assert right / total >= 0.95, (category, report.table())


def test_the_scoring_can_fail() -> None:
    """A resolver that calls everything listed scores badly, and the reasons say why."""

    def naive(symbol: str, as_of: date | None) -> Resolution:
        return Resolution(query=symbol, symbol=symbol, status="listed", reason="", data_as_of=date(2026, 1, 1))

    report = score(load_cases(), naive)
    assert report.accuracy < 0.5
    assert report.by_category["delisted"][0] == 0 and report.by_category["typo"][0] == 0
    case = {"query": "APPL", "expect": {"status": "unknown", "candidate": "AAPL"}}
    echo = Resolution(
        query="APPL", symbol="APPL", status="unknown", reason="", data_as_of=date(2026, 1, 1), candidates=("APPL",)
    )
    assert "query itself" in str(judge(case, echo))
