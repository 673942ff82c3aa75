"""Accuracy of symbol verdicts on a labelled set built from the recorded listings (docs/SECURITY_MASTER.md, issue 12).

    python -m bench.accuracy build --from ../shared/fixtures/listings   # writes bench/data/accuracy_cases.json
    python -m bench.accuracy score [--cases PATH] [--snapshot PATH]      # scores the shipped snapshot's resolver

The cases are labelled from the recorded source files directly — the raw directory copies, screener files, SEC
copies, Alpha Vantage LISTING_STATUS and the cited corporate-actions table — not from the security master, so the
master is checked against the data rather than against itself. Where the label needs a judgement (is this a rename?)
the oracle is the cited table or CIK continuity in the SEC copies, as the issue asks. The labels are deterministic:
every sample is drawn with a fixed seed from sorted lists.

Categories: active stocks, ETFs and ADRs (listed in the newest directory and confirmed by a second source);
delisted (cited removals, directory disappearances confirmed by Alpha Vantage, and older Alpha Vantage
delistings); renamed (cited renames, and one-ticker issuers whose CIK changed ticker between the SEC copies);
reused tickers at a date; share-class spellings; invented tickers absent from every list; typos of well-known
tickers (the original must be among the first five candidates); and the sector pins.

``score(cases, resolve)`` is pure: give it any ``resolve(symbol, as_of) -> Resolution``.
"""

from __future__ import annotations

import argparse
import json
import random
import string
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from providers.listings.base import ListingRow
from providers.listings.corporate_actions import parse_corporate_actions
from providers.listings.indices import index_membership_batch
from providers.listings.recorded import RecordedListings, read_recorded
from providers.listings.symbols import SpellingStyle, canonical_symbol, parse_symbol, spell
from services.security_master.names import names_similar
from services.security_master.resolver import Resolution, Status

__all__ = ["CASES_PATH", "Report", "build_cases", "judge", "score"]

ROOT = Path(__file__).resolve().parents[1]
CASES_PATH = ROOT / "bench" / "data" / "accuracy_cases.json"
TARGET = 0.995
SEED = 20260303

# The pins of the issue (sector mapped from the source's industry, reviewed).
SECTOR_PINS = {
    "AMD": "Information Technology",
    "NVDA": "Information Technology",
    "JPM": "Financials",
    "V": "Financials",
    "MA": "Financials",
    "PG": "Consumer Staples",
    "KO": "Consumer Staples",
    "XOM": "Energy",
    "NEE": "Utilities",
    "AMT": "Real Estate",
    "LIN": "Materials",
    "CAT": "Industrials",
    "HD": "Consumer Discretionary",
}


# --- building the cases --------------------------------------------------------------------------------------------
def _case(category: str, query: str, expect: Mapping[str, Any], why: str, as_of: date | None = None) -> dict[str, Any]:
    return {
        "category": category,
        "query": query,
        "as_of": as_of.isoformat() if as_of else None,
        "expect": dict(expect),
        "why": why,
    }


def _sample(items: Sequence[Any], count: int, salt: str) -> list[Any]:
    ordered = sorted(items)
    rng = random.Random(f"{SEED}:{salt}")
    return sorted(rng.sample(ordered, min(count, len(ordered))))


@dataclass
class _Facts:
    """What the raw files say, indexed the simple way (canonical symbol -> rows)."""

    recorded: RecordedListings
    directory: list[dict[str, ListingRow]] = field(default_factory=list)  # per copy, oldest first
    screener: list[dict[str, ListingRow]] = field(default_factory=list)
    sec: list[dict[str, ListingRow]] = field(default_factory=list)
    av_active: dict[str, ListingRow] = field(default_factory=dict)
    av_delisted: dict[str, list[ListingRow]] = field(default_factory=dict)
    everything: set[str] = field(default_factory=set)  # every symbol any source spells, canonical and raw

    @classmethod
    def read(cls, from_dir: Path, recorded: RecordedListings | None = None) -> _Facts:
        recorded = recorded if recorded is not None else read_recorded(from_dir)
        facts = cls(recorded)
        facts.directory = [{r.symbol: r for r in b.rows} for b in recorded.directories]
        facts.screener = [{r.symbol: r for r in b.rows} for b in recorded.screeners]
        facts.sec = [{r.symbol: r for r in b.rows} for b in recorded.sec]
        delisted: dict[str, list[ListingRow]] = defaultdict(list)
        for batch in recorded.alpha_vantage:
            for row in batch.rows:
                if row.status == "active":
                    facts.av_active[row.symbol] = row
                else:
                    delisted[row.symbol].append(row)
        facts.av_delisted = dict(delisted)
        rows: list[ListingRow] = [
            *(r for b in recorded.directories for r in b.rows),
            *(r for b in recorded.screeners for r in b.rows),
            *(r for b in recorded.sec for r in b.rows),
            *(r for b in recorded.alpha_vantage for r in b.rows),
            *index_membership_batch().rows,
        ]
        for row in rows:
            facts.everything.update({row.symbol, row.raw_symbol.upper(), row.raw_symbol.upper().split(".")[0]})
        return facts

    def anywhere_after(self, symbol: str, index: int) -> bool:
        """Present in a directory copy after ``index``, the newest screener or SEC copy, or Alpha Vantage's active."""
        return (
            any(symbol in d for d in self.directory[index + 1 :])
            or symbol in self.screener[-1]
            or symbol in self.sec[-1]
            or symbol in self.av_active
        )


def _listed_now(facts: _Facts) -> list[ListingRow]:
    newest = facts.directory[-1]
    return [row for symbol, row in sorted(newest.items())]


def _active(facts: _Facts) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    newest_screener = facts.screener[-1]
    stocks = [
        r.symbol
        for r in _listed_now(facts)
        if r.asset_type == "stock" and parse_symbol(r.symbol).kind == "common" and r.symbol in newest_screener
    ]
    for symbol in _sample(stocks, 80, "stock"):
        cases.append(
            _case("active_stock", symbol, {"status": "listed", "symbol": symbol}, "newest directory + screener")
        )
    etfs = [r.symbol for r in _listed_now(facts) if r.is_etf and (a := facts.av_active.get(r.symbol)) and a.is_etf]
    named = ["ARKK", "EEM", "VNQ", "HYG", "LQD", "SPY", "QQQ"]
    for symbol in named + [s for s in _sample(etfs, 50, "etf") if s not in named]:
        cases.append(_case("etf", symbol, {"status": "listed", "symbol": symbol}, "ETF=Y in the newest directory"))
    adrs = [
        r.symbol
        for r in _listed_now(facts)
        if r.asset_type == "adr" and r.symbol in newest_screener and parse_symbol(r.symbol).kind == "common"
    ]
    for symbol in _sample(adrs, 30, "adr"):
        cases.append(_case("adr", symbol, {"status": "listed", "symbol": symbol}, "ADR in the directory + screener"))
    return cases


def _delisted(facts: _Facts, actions: Sequence[Any]) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    reused_later = {a.new_symbol for a in actions if a.new_symbol}
    for action in actions:
        if action.kind == "removal" and action.old_symbol not in reused_later:
            cases.append(
                _case("delisted", action.old_symbol, {"status": "delisted"}, f"cited removal {action.effective_date}")
            )
    # Gone from every source after the oldest directory copy; Alpha Vantage confirms a delisting in the window.
    first, second = facts.recorded.directories[0].as_of, facts.recorded.directories[1].as_of
    ciks_later = {r.cik for r in facts.sec[-1].values()}
    gone: list[str] = []
    for symbol, row in facts.directory[0].items():
        if row.asset_type != "stock" or parse_symbol(symbol).kind != "common" or facts.anywhere_after(symbol, 0):
            continue
        sec_row = facts.sec[0].get(symbol)
        if sec_row is not None and sec_row.cik in ciks_later:
            continue  # the issuer lives on under another ticker: not a plain delisting
        confirmed = [
            r for r in facts.av_delisted.get(symbol, [])
            if r.delisted_on and first < r.delisted_on <= second and names_similar(r.name, row.name)
        ]  # fmt: skip
        if len(confirmed) == 1:
            gone.append(symbol)
    cited = {c["query"] for c in cases}
    for symbol in _sample([s for s in gone if s not in cited], 50, "gone"):
        cases.append(_case("delisted", symbol, {"status": "delisted"}, "left the directory; AV delisting in window"))
    # Older delistings only Alpha Vantage records (before the first directory copy), symbols never reused.
    old = [
        symbol
        for symbol, rows in facts.av_delisted.items()
        if len(rows) == 1
        and rows[0].delisted_on is not None
        and rows[0].delisted_on < first
        and rows[0].asset_type == "stock"
        and parse_symbol(rows[0].raw_symbol, "alpha_vantage").kind == "common"
        and not any(symbol in d for d in facts.directory)
        and not any(symbol in s for s in facts.sec)
        and not any(symbol in s for s in facts.screener)
        and symbol not in facts.av_active
    ]
    for symbol in _sample(old, 25, "old"):
        cases.append(_case("delisted", symbol, {"status": "delisted"}, "Alpha Vantage delisting before 2022"))
    return cases


def _renamed(facts: _Facts, actions: Sequence[Any]) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    newest = facts.directory[-1]
    for action in actions:
        if action.kind != "rename" or facts.anywhere_after(action.old_symbol, 0):
            continue  # the old ticker is in use again (FB, see _reused; UTX is an SEC-registered ticker again)
        cases.append(
            _case("renamed", action.old_symbol, {"status": "renamed", "renamed_to": action.new_symbol}, "cited rename")
        )
    # CIK continuity: one-ticker issuers whose ticker changed between the two SEC copies.
    older, newer = facts.sec[0], facts.sec[-1]
    by_cik_old: dict[int | None, list[str]] = defaultdict(list)
    by_cik_new: dict[int | None, list[str]] = defaultdict(list)
    for symbol, row in older.items():
        by_cik_old[row.cik].append(symbol)
    for symbol, row in newer.items():
        by_cik_new[row.cik].append(symbol)
    pairs: list[tuple[str, str]] = []
    for cik, old_symbols in by_cik_old.items():
        new_symbols = by_cik_new.get(cik, [])
        if len(old_symbols) != 1 or len(new_symbols) != 1 or old_symbols == new_symbols:
            continue
        old_symbol, new_symbol = old_symbols[0], new_symbols[0]
        if old_symbol in newest or facts.anywhere_after(old_symbol, 0) or new_symbol not in newest:
            continue  # the old ticker is in use again, or the new one is not an exchange listing now
        if parse_symbol(old_symbol).kind != "common" or parse_symbol(new_symbol).kind != "common":
            continue
        pairs.append((old_symbol, new_symbol))
    cited = {c["query"] for c in cases}
    for old_symbol, new_symbol in _sample([p for p in pairs if p[0] not in cited], 50, "cik"):
        cases.append(
            _case("renamed", old_symbol, {"status": "renamed", "renamed_to": new_symbol}, "same CIK, new ticker (SEC)")
        )
    return cases


def _reused() -> list[dict[str, Any]]:
    meta = date(2021, 6, 1)
    return [
        _case("reused", "FB", {"status": "listed", "symbol": "FB", "name_contains": "proshares"}, "FB is an ETF today"),
        _case("reused", "FB", {"status": "listed", "symbol": "META"}, "FB was Meta in 2021", as_of=meta),
        _case("reused", "FB", {"status": "renamed", "renamed_to": "META"}, "after 2022-06-09", as_of=date(2023, 6, 1)),
        _case("reused", "DOC", {"status": "listed", "name_contains": "healthpeak"}, "DOC is Healthpeak today"),
        _case("reused", "DOC", {"status": "listed", "name_contains": "physicians"}, "DOC was Physicians Realty", as_of=date(2023, 1, 2)),
        _case("reused", "COR", {"status": "listed", "name_contains": "coresite"}, "COR was CoreSite in 2021", as_of=date(2021, 6, 1)),
        _case("reused", "COR", {"status": "listed", "name_contains": "cencora"}, "COR is Cencora today"),
    ]  # fmt: skip


def _share_classes(facts: _Facts) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for spelling in ("BRK.B", "BRK-B", "BRK/B", "BRK B", "brk.b", "$BRK.B", "BRK.A", "BRK-A", "BF-B", "BF.B", "BF/A"):
        cases.append(
            _case("share_class", spelling, {"status": "listed", "symbol": canonical_symbol(spelling)}, "class share")
        )
    classes = [r.symbol for r in _listed_now(facts) if parse_symbol(r.symbol).kind == "class" and not r.is_etf]
    styles: list[SpellingStyle] = ["sec", "screener", "alpha_vantage", "yahoo"]
    for index, symbol in enumerate(_sample([s for s in classes if not s.startswith(("BRK", "BF."))], 12, "class")):
        spelling = spell(symbol, styles[index % len(styles)])
        cases.append(_case("share_class", spelling, {"status": "listed", "symbol": symbol}, f"{symbol} spelled"))
    return cases


def _invented(facts: _Facts) -> list[dict[str, Any]]:
    rng = random.Random(f"{SEED}:invented")
    cases: list[dict[str, Any]] = []
    tried: set[str] = set()
    while len(cases) < 40:
        candidate = "".join(rng.choice(string.ascii_uppercase) for _ in range(rng.choice((3, 4, 4, 5))))
        if candidate in tried or candidate in facts.everything:
            continue
        tried.add(candidate)
        cases.append(_case("invented", candidate, {"status": "unknown"}, "absent from every recorded list"))
    return cases


def _typos(facts: _Facts) -> list[dict[str, Any]]:
    newest_screener = facts.screener[-1]
    big = sorted(
        (
            r
            for r in newest_screener.values()
            if r.market_cap and r.asset_type == "stock" and r.symbol in facts.directory[-1]
        ),
        key=lambda r: (-(r.market_cap or 0), r.symbol),
    )
    seen_issuers: set[str] = set()
    originals: list[str] = []
    for row in big:
        issuer = (row.name or "").split()[0].lower()
        if issuer in seen_issuers or parse_symbol(row.symbol).kind != "common" or len(row.symbol) < 2:
            continue
        seen_issuers.add(issuer)
        originals.append(row.symbol)
        if len(originals) == 120:
            break
    cases = [
        _case("typo", "APPL", {"status": "unknown", "candidate": "AAPL"}, "the issue's example"),
        _case("typo", "MFST", {"status": "unknown", "candidate": "MSFT"}, "swapped letters"),
        _case("typo", "NVDIA", {"status": "unknown", "candidate": "NVDA"}, "the company's name typed as ticker"),
        _case("typo", "TESLA", {"status": "unknown", "candidate": "TSLA"}, "the company's name typed as ticker"),
    ]
    rng = random.Random(f"{SEED}:typos")
    used = {c["query"] for c in cases}
    for original in originals:
        for _ in range(10):
            typo = _mistype(original, rng)
            if typo and typo not in facts.everything and typo not in used:
                used.add(typo)
                cases.append(_case("typo", typo, {"status": "unknown", "candidate": original}, f"mistyped {original}"))
                break
        if len(cases) >= 64:
            break
    return cases


def _mistype(symbol: str, rng: random.Random) -> str | None:
    operation = rng.choice(("swap", "drop", "double", "swap"))
    position = rng.randrange(len(symbol))
    if operation == "swap" and position + 1 < len(symbol) and symbol[position] != symbol[position + 1]:
        return symbol[:position] + symbol[position + 1] + symbol[position] + symbol[position + 2 :]
    if operation == "drop" and len(symbol) >= 4:
        return symbol[:position] + symbol[position + 1 :]
    if operation == "double":
        return symbol[: position + 1] + symbol[position] + symbol[position + 1 :]
    return None


def _sectors() -> list[dict[str, Any]]:
    return [_case("sector", s, {"sector": sector}, "issue 12 pin") for s, sector in SECTOR_PINS.items()]


def build_cases(from_dir: Path, recorded: RecordedListings | None = None) -> list[dict[str, Any]]:
    """The labelled cases, deterministic for the same recorded files (and the same pytickersymbols). ``recorded``
    may pass the files of ``from_dir`` already parsed."""
    facts = _Facts.read(Path(from_dir), recorded)
    actions_file = Path(from_dir) / "changes" / "symbol_changes.csv"
    actions = parse_corporate_actions(actions_file.read_bytes())
    cases = [
        *_active(facts),
        *_delisted(facts, actions),
        *_renamed(facts, actions),
        *_reused(),
        *_share_classes(facts),
        *_invented(facts),
        *_typos(facts),
        *_sectors(),
    ]
    return cases


# --- scoring -------------------------------------------------------------------------------------------------------
@dataclass
class Report:
    by_category: dict[str, tuple[int, int]]  # category -> (right, total)
    failures: list[dict[str, Any]]

    @property
    def right(self) -> int:
        return sum(right for right, _ in self.by_category.values())

    @property
    def total(self) -> int:
        return sum(total for _, total in self.by_category.values())

    @property
    def accuracy(self) -> float:
        return self.right / self.total if self.total else 0.0

    def table(self) -> str:
        lines = [f"{'category':14} {'right':>6} {'total':>6} {'accuracy':>9}"]
        for category, (right, total) in self.by_category.items():
            lines.append(f"{category:14} {right:6} {total:6} {right / total:9.1%}")
        lines.append(f"{'all':14} {self.right:6} {self.total:6} {self.accuracy:9.1%}")
        return "\n".join(lines)


def judge(case: Mapping[str, Any], resolution: Resolution) -> str | None:
    """None when ``resolution`` is what ``case`` expects, else what differs."""
    expect = case["expect"]
    query_symbol = canonical_symbol(case["query"])
    if query_symbol in resolution.candidates:
        return f"the query itself is among the candidates {resolution.candidates}"
    if "status" in expect and resolution.status != expect["status"]:
        return f"status {resolution.status}, expected {expect['status']} ({resolution.reason})"
    if "symbol" in expect and resolution.current_symbol != expect["symbol"]:
        return f"symbol {resolution.current_symbol}, expected {expect['symbol']}"
    if "renamed_to" in expect and resolution.renamed_to != expect["renamed_to"]:
        return f"renamed_to {resolution.renamed_to}, expected {expect['renamed_to']}"
    if "name_contains" in expect:
        name = (resolution.security.name if resolution.security else "").lower()
        if expect["name_contains"] not in name:
            return f"security {name!r}, expected one named like {expect['name_contains']!r}"
    if "candidate" in expect and expect["candidate"] not in resolution.candidates[:5]:
        return f"candidates {resolution.candidates}, expected {expect['candidate']} among the first five"
    if "sector" in expect:
        sector = resolution.security.sector if resolution.security else None
        if sector != expect["sector"]:
            return f"sector {sector}, expected {expect['sector']}"
    return None


def score(cases: Iterable[Mapping[str, Any]], resolve: Callable[[str, date | None], Resolution]) -> Report:
    """Run every case through ``resolve`` and count the right verdicts per category (in order of appearance)."""
    counts: dict[str, list[int]] = {}
    failures: list[dict[str, Any]] = []
    for case in cases:
        as_of = date.fromisoformat(case["as_of"]) if case.get("as_of") else None
        problem = judge(case, resolve(case["query"], as_of))
        tally = counts.setdefault(case["category"], [0, 0])
        tally[1] += 1
        if problem is None:
            tally[0] += 1
        else:
            failures.append({**case, "problem": problem})
    return Report({k: (v[0], v[1]) for k, v in counts.items()}, failures)


def verdict_resolution(query: str, as_of: date | None, verdict: Any, data_as_of: date) -> Resolution:
    """A validation verdict (services.schemas.SymbolVerdict) read as the resolver's answer, so that ``judge``
    scores the real validation path: valid -> listed, invalid from the master -> delisted or renamed, anything
    else (pending, or a provider's invalid) -> unknown, with the verdict's candidates."""
    from services.security_master.model import Security

    profile = verdict.profile or {}
    status: Status = "unknown"
    if verdict.status == "valid":
        status = "listed"
    elif verdict.listing_status in ("delisted", "renamed"):
        status = verdict.listing_status
    current = profile.get("symbol") if status == "listed" else (verdict.current_symbol or verdict.symbol)
    if status == "renamed":
        current = verdict.current_symbol
    security = None
    if status != "unknown":
        security = Security(
            key=str(current),
            symbol=str(current),
            name=str(profile.get("name") or verdict.reason or ""),
            asset_type=str(profile.get("asset_type") or "stock"),
            listing_status="delisted" if status == "delisted" else "listed",
            sector=profile.get("sector"),
        )
    return Resolution(
        query=query,
        symbol=verdict.symbol,
        status=status,
        reason=verdict.reason or "",
        data_as_of=data_as_of,
        as_of=as_of,
        security=security,
        current_symbol=current,
        renamed_to=verdict.renamed_to,
        delisted_on=verdict.delisted_on,
        candidates=tuple(verdict.candidates),
    )


def load_cases(path: Path = CASES_PATH) -> list[dict[str, Any]]:
    return list(json.loads(path.read_text(encoding="utf-8"))["cases"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.accuracy")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="label the cases from a directory of recorded listings")
    build.add_argument("--from", dest="source", type=Path, required=True)
    build.add_argument("--out", type=Path, default=CASES_PATH)
    run = sub.add_parser("score", help="score the resolver over a snapshot")
    run.add_argument("--cases", type=Path, default=CASES_PATH)
    run.add_argument("--snapshot", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.command == "build":
        cases = build_cases(args.source)
        payload = {"version": 1, "seed": SEED, "cases": cases}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {len(cases)} cases to {args.out}")
        return 0
    from services.security_master.resolver import Resolver
    from services.security_master.snapshot import load_shipped_snapshot, load_snapshot

    snapshot = load_snapshot(args.snapshot) if args.snapshot else load_shipped_snapshot()
    resolver = Resolver.from_snapshot(snapshot)
    report = score(load_cases(args.cases), resolver.resolve)
    print(f"snapshot as_of {snapshot.as_of}, {len(snapshot.securities):,} securities")
    print(report.table())
    for failure in report.failures:
        print(f"  x {failure['category']}: {failure['query']!r} (as_of {failure['as_of']}): {failure['problem']}")
    return 0 if report.accuracy >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
