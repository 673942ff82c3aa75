"""Merge dated source snapshots into securities with identity and history (pure: rows in, securities out).

Identity: a *listing* is an exchange + canonical symbol at a date; a *security* is a chain of listings that are the
same thing over time; an *issuer* is a CIK (SEC). The rules, in the order they are applied:

1. **Chains from the symbol directory.** The directory lists every exchange-listed security, so it alone can say
   "gone": walking its dated copies in order, a symbol present in consecutive copies continues its chain — unless
   the symbol was *reused* in between: a cited corporate action moved it away (FB -> META on 2022-06-09, so the FB
   of 2025 is someone else), or the ETF flag flipped and the names share no word, or Alpha Vantage dates the
   current holder's listing after the earlier copy and the names differ.
2. **Other sources attach** by symbol to the chain that can hold the symbol on their date (SEC tickers with their
   CIK, screener rows with sector, industry and market cap). A row no chain can take starts its own chain: a
   listing that lived between two directory copies (seen by the screener or the SEC only), or an OTC ticker (the
   directory does not cover OTC; the SEC copies bound those).
3. **Renames link chains**, strongest evidence first: a cited corporate action (exact date); the same CIK under a
   new ticker (ZI -> GTM, JBT -> JBTM, SQ -> XYZ; the change happened between the last copy showing the old ticker
   and the first showing the new one); the very same security name under a new ticker with nothing else to
   explain it. A linked chain is the same security: one key, a symbol history.
4. **Delistings**: a chain that ends with no successor is delisted, dated by a cited removal, else by Alpha
   Vantage's delistingDate when it falls inside the window the snapshots allow, else by the window itself
   (``delisted_on`` = the first copy without it, ``delisted_after`` = the last copy with it). Alpha Vantage's
   delisted rows that match no chain are older delistings, kept as delisted securities of their own.

Ticker reuse is normal: lookups by symbol take a date (``SymbolSpan.contains``), so FB resolves to Meta for 2021
and to the ProShares ETF for 2026.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from providers.listings.asset_types import split_security_name
from providers.listings.base import ListingRow, SourceBatch
from providers.listings.corporate_actions import CorporateAction
from providers.listings.indices import US_INDICES
from providers.listings.sectors import SectorOverride, gics_from_nasdaq, normalise_industry
from providers.listings.symbols import parse_symbol
from services.security_master.model import DateBasis, Security, SymbolSpan
from services.security_master.names import names_similar

__all__ = ["MasterInputs", "build_securities"]

LISTED_EXCHANGES = frozenset({"NASDAQ", "NYSE", "NYSE American", "NYSE Arca", "Cboe BZX", "Cboe", "IEX", "NYSE Texas"})
_NO_SECTOR_TYPES = frozenset({"etf", "fund", "index"})


@dataclass(frozen=True, slots=True)
class MasterInputs:
    """Everything the master is built from; each sequence oldest first."""

    directories: Sequence[SourceBatch[ListingRow]]
    screeners: Sequence[SourceBatch[ListingRow]] = ()
    sec: Sequence[SourceBatch[ListingRow]] = ()
    alpha_vantage: Sequence[SourceBatch[ListingRow]] = ()
    indices: SourceBatch[ListingRow] | None = None
    actions: Sequence[CorporateAction] = ()
    sector_overrides: Mapping[int, SectorOverride] = field(default_factory=dict)


@dataclass(slots=True)
class _Obs:
    when: date
    source: Literal["nasdaq_trader", "nasdaq_screener", "sec"]
    row: ListingRow


@dataclass(eq=False, slots=True)
class _Chain:
    symbol: str
    coverage: Literal["listed", "otc"]
    prev_absent: date | None  # latest complete copy before the first observation that did not list it
    next_absent: date | None  # earliest complete copy after the last observation that did not list it
    obs: list[_Obs] = field(default_factory=list)
    start_exact: date | None = None
    end_exact: date | None = None
    end_kind: Literal["rename", "removal"] | None = None
    prev: _Chain | None = None
    next: _Chain | None = None
    link_exact: bool = False  # the boundary to `next` is a cited date
    pre_history: list[SymbolSpan] = field(default_factory=list)

    def add(self, obs: _Obs) -> None:
        self.obs.append(obs)

    @property
    def first_obs(self) -> date:
        return min(o.when for o in self.obs)

    @property
    def last_obs(self) -> date:
        return max(o.when for o in self.obs)

    def could_hold(self, when: date) -> bool:
        if self.start_exact is not None:
            if when < self.start_exact:
                return False
        elif self.prev_absent is not None and when <= self.prev_absent:
            return False
        if self.end_exact is not None:
            return when < self.end_exact
        return self.next_absent is None or when < self.next_absent

    def latest(self, source: str) -> _Obs | None:
        found = [o for o in self.obs if o.source == source]
        return max(found, key=lambda o: o.when) if found else None

    @property
    def ciks(self) -> set[int]:
        return {o.row.cik for o in self.obs if o.row.cik is not None}

    @property
    def name(self) -> str | None:
        for source in ("nasdaq_trader", "nasdaq_screener", "sec"):
            latest = self.latest(source)
            if latest is not None and latest.row.name:
                return latest.row.name
        return None

    @property
    def asset_type(self) -> str:
        for source in ("nasdaq_trader", "nasdaq_screener", "sec"):
            latest = self.latest(source)
            if latest is not None and latest.row.asset_type:
                return latest.row.asset_type
        return "stock"

    @property
    def type_known(self) -> bool:
        """Whether a source that names the security described it (SEC rows carry only the issuer's name)."""
        return any(o.source != "sec" for o in self.obs) or parse_symbol(self.symbol).kind != "common"

    @property
    def ended(self) -> bool:
        return self.end_exact is not None or self.next_absent is not None


# --- phase 1: chains from the directory ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _SecIndex:
    """The SEC copies as (date, symbol -> CIK, CIK -> symbols), oldest first."""

    copies: tuple[tuple[date, dict[str, int], dict[int, set[str]]], ...]

    @classmethod
    def of(cls, batches: Sequence[SourceBatch[ListingRow]]) -> _SecIndex:
        copies = []
        for batch in batches:
            by_symbol = {row.symbol: row.cik for row in batch.rows if row.cik is not None}
            by_cik: dict[int, set[str]] = defaultdict(set)
            for symbol, cik in by_symbol.items():
                by_cik[cik].add(symbol)
            copies.append((batch.as_of, by_symbol, dict(by_cik)))
        return cls(tuple(copies))

    def says_reused(self, symbol: str, before: date, after: date) -> bool:
        """An SEC copy dated between the two directory copies shows the issuer that holds ``symbol`` on ``after``
        under another ticker, or shows ``symbol`` under another issuer: the symbol changed hands in between
        (Cornerstone's CNR went to CONSOL Energy, formerly CEIX). Needs an SEC copy on or after ``after``."""
        later = [syms for when, syms, _ in self.copies if when >= after and symbol in syms]
        if not later:
            return False
        new_cik = later[0][symbol]
        for when, syms, ciks in self.copies:
            if not before <= when < after:
                continue
            if symbol in syms and syms[symbol] != new_cik:
                return True
            if new_cik in ciks and symbol not in ciks[new_cik]:
                return True
        return False


def _reused(
    previous: ListingRow,
    row: ListingRow,
    before: date,
    after: date,
    moves: Mapping[str, list[CorporateAction]],
    av_active: Mapping[str, ListingRow],
    sec: _SecIndex,
) -> bool:
    """Whether ``row`` (listed on ``after``) is another security than ``previous`` (same symbol on ``before``)."""
    if any(before < action.effective_date <= after for action in moves.get(row.symbol, ())):
        return True
    if names_similar(previous.name, row.name):
        return False  # renaming a company keeps its ticker often enough; only a different name is a hint
    if previous.is_etf != row.is_etf:
        return True
    current = av_active.get(row.symbol)
    if (
        current is not None
        and current.listed_on is not None
        and before < current.listed_on <= after
        and names_similar(current.name, row.name)
    ):
        return True
    return sec.says_reused(row.symbol, before, after)


def _directory_chains(
    inputs: MasterInputs, moves: Mapping[str, list[CorporateAction]], av_active: Mapping[str, ListingRow]
) -> list[_Chain]:
    sec = _SecIndex.of(inputs.sec)
    chains: list[_Chain] = []
    current: dict[str, _Chain] = {}
    previous_date: date | None = None
    for batch in inputs.directories:
        following: dict[str, _Chain] = {}
        for row in batch.rows:
            chain = current.get(row.symbol)
            if chain is None or (
                previous_date is not None
                and _reused(chain.obs[-1].row, row, previous_date, batch.as_of, moves, av_active, sec)
            ):
                chain = _Chain(row.symbol, "listed", prev_absent=previous_date, next_absent=None)
                chains.append(chain)
            chain.add(_Obs(batch.as_of, "nasdaq_trader", row))
            following[row.symbol] = chain
        for symbol, chain in current.items():
            if following.get(symbol) is not chain:
                chain.next_absent = batch.as_of
        current = following
        previous_date = batch.as_of
    return chains


def _apply_action_bounds(chains: Iterable[_Chain], actions: Sequence[CorporateAction]) -> None:
    """Exact starts and ends from the cited table, where they fall inside what the snapshots allow."""
    for chain in chains:
        first, last = chain.first_obs, chain.last_obs
        for action in actions:
            when = action.effective_date
            if (
                action.old_symbol == chain.symbol
                and when > last
                and (chain.next_absent is None or when <= chain.next_absent)
            ):
                chain.end_exact = when
                chain.end_kind = "rename" if action.new_symbol else "removal"
            if (
                action.new_symbol == chain.symbol
                and when <= first
                and (chain.prev_absent is None or when > chain.prev_absent)
            ):
                chain.start_exact = when


# --- phase 2: other sources attach ---------------------------------------------------------------------------------
def _pick(candidates: list[_Chain], row: ListingRow, when: date) -> _Chain | None:
    if not candidates:
        return None

    otc_row = row.exchange not in LISTED_EXCHANGES and row.exchange is not None or (row.cik and not row.exchange)

    def score(chain: _Chain) -> tuple[int, int, int, int, int]:
        # An OTC quote of a ticker goes with the OTC chain, an exchange listing with the directory's chain (a
        # company moving between them keeps its ticker: ACFN was quoted OTC, then listed on Nasdaq).
        venue = int((chain.coverage == "otc") == bool(otc_row))
        covers = int(chain.first_obs <= when <= chain.last_obs)
        cik = int(row.cik is not None and row.cik in chain.ciks)
        similar = int(names_similar(chain.name, row.name))
        distance = min(abs((o.when - when).days) for o in chain.obs)
        return (venue, cik, covers, similar, -distance)

    return max(candidates, key=score)


def _attach(chains: list[_Chain], inputs: MasterInputs) -> None:
    by_symbol: dict[str, list[_Chain]] = defaultdict(list)
    for chain in chains:
        by_symbol[chain.symbol].append(chain)
    directory_dates = [batch.as_of for batch in inputs.directories]
    frames: list[tuple[date, int, Literal["nasdaq_screener", "sec"], SourceBatch[ListingRow]]] = []
    frames += [(batch.as_of, 0, "nasdaq_screener", batch) for batch in inputs.screeners]
    frames += [(batch.as_of, 1, "sec", batch) for batch in inputs.sec]
    frames.sort(key=lambda frame: (frame[0], frame[1]))
    for when, _, source, batch in frames:
        for row in batch.rows:
            if parse_symbol(row.symbol).kind == "other":
                continue  # not a US listing symbol (never in the recorded files, but live data may surprise)
            candidates = [c for c in by_symbol[row.symbol] if c.could_hold(when)]
            chain = _pick(candidates, row, when)
            if chain is None:
                listed = source == "nasdaq_screener" or row.exchange in LISTED_EXCHANGES
                if listed:
                    before = [d for d in directory_dates if d < when]
                    after = [d for d in directory_dates if d > when]
                    chain = _Chain(row.symbol, "listed", max(before, default=None), min(after, default=None))
                else:
                    before_sec = [b.as_of for b in inputs.sec if b.as_of < when]
                    chain = _Chain(row.symbol, "otc", max(before_sec, default=None), None)
                chains.append(chain)
                by_symbol[row.symbol].append(chain)
            chain.add(_Obs(when, source, row))
        if source == "sec":  # an OTC ticker missing from a later SEC copy has gone
            for chain in chains:
                if chain.coverage == "otc" and chain.next_absent is None and chain.last_obs < when:
                    chain.next_absent = when


# --- phase 3: renames link chains ---------------------------------------------------------------------------------
def _link(first: _Chain, second: _Chain, exact: bool) -> None:
    first.next, second.prev, first.link_exact = second, first, exact


def _link_actions(chains: list[_Chain], actions: Sequence[CorporateAction]) -> None:
    for action in actions:
        if action.kind != "rename":
            continue
        old = [c for c in chains if c.symbol == action.old_symbol and c.end_exact == action.effective_date]
        new = [c for c in chains if c.symbol == action.new_symbol and c.start_exact == action.effective_date]
        if old and new and old[0].next is None and new[0].prev is None:
            _link(old[0], new[0], exact=True)
        elif new and not old and new[0].prev is None:
            # The old symbol predates every copy (UTX -> RTX in 2020): history from the table alone.
            new[0].pre_history.append(
                SymbolSpan(str(action.old_symbol), None, action.effective_date, "corporate_actions", exact=True)
            )


def _rename_window_fits(old: _Chain, new: _Chain) -> bool:
    """``new`` first appears after ``old`` was last seen, and no later than the copy that first missed ``old``."""
    if old.next is not None or new.prev is not None or not old.ended or old.end_kind == "removal":
        return False
    if new.start_exact is not None:
        return False  # a cited new listing, not a rename
    last, first = old.last_obs, new.first_obs
    if not last < first:
        return False
    limit = old.end_exact or old.next_absent
    return limit is None or first <= limit


_NUMBER = re.compile(r"\d+(?:[.,/]\d+)?")


def _similar_kind(first: _Chain, second: _Chain) -> bool:
    """Same kind of security, and — for notes, preferreds and the like — the same terms: a 7.75% note due 2030 and
    an 8.50% note due 2029 of one issuer share a CIK but are two securities."""
    equity = {"stock", "adr"}
    a, b = first.asset_type, second.asset_type
    if not first.type_known or not second.type_known:
        equity = {"stock", "adr", "fund", "etf"}  # an SEC-only ticker: some kind of share, we cannot tell which
    if not (a == b or (a in equity and b in equity)):
        return False
    terms_a, terms_b = set(_NUMBER.findall(first.name or "")), set(_NUMBER.findall(second.name or ""))
    return not (terms_a and terms_b) or terms_a == terms_b


def _link_by_cik(chains: list[_Chain]) -> None:
    by_cik: dict[int, list[_Chain]] = defaultdict(list)
    for chain in chains:
        for cik in chain.ciks:
            by_cik[cik].append(chain)
    for cik in sorted(by_cik):
        group = sorted(by_cik[cik], key=lambda c: (c.first_obs, c.symbol))
        for old in group:
            options = [
                new for new in group if new is not old and _rename_window_fits(old, new) and _similar_kind(old, new)
            ]
            if not options:
                continue
            # Several classes of one issuer renamed at once: pair the closest descriptions.
            best = max(
                options, key=lambda new: (names_similar(old.name, new.name), -(new.first_obs - old.last_obs).days)
            )
            _link(old, best, exact=False)


def _link_uplistings(chains: list[_Chain]) -> None:
    """An OTC-quoted ticker that shows up in a later directory copy was uplisted (BCHT: OTC, then NYSE American):
    one security, the OTC chain ending where the exchange listing begins."""
    listed_by_symbol: dict[str, list[_Chain]] = defaultdict(list)
    for chain in chains:
        if chain.coverage == "listed" and chain.prev is None:
            listed_by_symbol[chain.symbol].append(chain)
    for chain in chains:
        if chain.coverage != "otc" or chain.next is not None or chain.next_absent is not None:
            continue
        later = [c for c in listed_by_symbol.get(chain.symbol, []) if c.first_obs > chain.first_obs and c.prev is None]
        if later:
            following = min(later, key=lambda c: c.first_obs)
            chain.next_absent = following.first_obs
            _link(chain, following, exact=False)


def _normalised_name(name: str | None) -> str:
    return " ".join((name or "").lower().replace(",", " ").split())


def _link_by_name(chains: list[_Chain]) -> None:
    ended: dict[str, list[_Chain]] = defaultdict(list)
    started: dict[str, list[_Chain]] = defaultdict(list)
    for chain in chains:
        directory = chain.latest("nasdaq_trader")
        if directory is None:
            continue
        key = _normalised_name(directory.row.name)
        if chain.next is None and chain.ended:
            ended[key].append(chain)
        if chain.prev is None:
            started[key].append(chain)
    for key, olds in sorted(ended.items()):
        news = [c for c in started.get(key, []) if c not in olds]
        if len(olds) == 1 and len(news) == 1 and _rename_window_fits(olds[0], news[0]):
            _link(olds[0], news[0], exact=False)


# --- phase 4: securities -----------------------------------------------------------------------------------------
@dataclass(slots=True)
class _AlphaVantage:
    active: dict[str, ListingRow]
    delisted: dict[str, list[ListingRow]]
    as_of: date | None
    consumed: set[int] = field(default_factory=set)


def _alpha_vantage(inputs: MasterInputs) -> _AlphaVantage:
    active: dict[str, ListingRow] = {}
    delisted: dict[str, list[ListingRow]] = defaultdict(list)
    as_of: date | None = None
    for batch in inputs.alpha_vantage:  # oldest first: later copies win
        as_of = batch.as_of
        for row in batch.rows:
            if parse_symbol(row.raw_symbol, "alpha_vantage").kind == "other":
                continue  # ACWV:BAT duplicates, "ASRV 8.45 06-30-28" and the like
            if row.status == "active":
                active[row.symbol] = row
            else:
                delisted[row.symbol].append(row)
    return _AlphaVantage(active, delisted, as_of)


def _real_av_date(row: ListingRow, av: _AlphaVantage) -> date | None:
    # A delistingDate equal to the day of the request is Alpha Vantage's placeholder for "delisted, date unknown".
    return None if row.delisted_on is None or row.delisted_on == av.as_of else row.delisted_on


def _sequence(head: _Chain) -> list[_Chain]:
    out = [head]
    while out[-1].next is not None:
        out.append(out[-1].next)  # type: ignore[arg-type]
    return out


def _spans(
    sequence: list[_Chain],
    listed_on: tuple[date | None, DateBasis | None],
    delisted_on: tuple[date | None, DateBasis | None],
) -> list[SymbolSpan]:
    """The symbol history of one security. Each span's ``source`` says what dated its end (its start, while it is
    the current span); a boundary taken from the copies is not exact and says when the old symbol was last seen."""
    spans: list[SymbolSpan] = list(sequence[0].pre_history)
    head = sequence[0]
    start: date | None
    start_basis: DateBasis
    if spans:
        start, start_basis = spans[-1].valid_to, "corporate_actions"
    elif head.start_exact is not None:
        start, start_basis = head.start_exact, "corporate_actions"
    elif head.prev_absent is not None:
        # Appeared inside our window: its listing date when that falls inside the window too (the ProShares FB ETF,
        # listed 2025-06-26), else the first copy showing it (an older listing date means it traded before under
        # a ticker we have no record of).
        if listed_on[0] is not None and head.prev_absent < listed_on[0] <= head.first_obs:
            start, start_basis = listed_on[0], listed_on[1] or "alpha_vantage"
        else:
            start, start_basis = head.first_obs, "snapshots"
    elif listed_on[0] is not None:
        start, start_basis = listed_on[0], listed_on[1] or "alpha_vantage"
    else:
        start, start_basis = None, "snapshots"
    start_exact = start_basis != "snapshots"
    for index, chain in enumerate(sequence):
        following = sequence[index + 1] if index + 1 < len(sequence) else None
        if following is not None:
            if chain.link_exact:
                end = chain.end_exact
                spans.append(SymbolSpan(chain.symbol, start, end, "corporate_actions", exact=True))
                start, start_basis, start_exact = end, "corporate_actions", True
            else:
                end = following.first_obs
                spans.append(
                    SymbolSpan(chain.symbol, start, end, "snapshots", exact=False, changed_after=chain.last_obs)
                )
                start, start_basis, start_exact = end, "snapshots", False
        elif delisted_on[0] is not None:
            basis = delisted_on[1] or "snapshots"
            after = chain.last_obs if basis == "snapshots" else None
            spans.append(SymbolSpan(chain.symbol, start, delisted_on[0], basis, basis != "snapshots", after))
        else:
            spans.append(SymbolSpan(chain.symbol, start, None, start_basis, start_exact))
    if spans and spans[0].valid_from is None and listed_on[0] is not None and head.prev_absent is None:
        first = spans[0]
        spans[0] = SymbolSpan(
            first.symbol, listed_on[0], first.valid_to, first.source, first.exact, first.changed_after
        )
    # A move between venues under one ticker (OTC -> Nasdaq) links two chains of the same symbol: one span.
    merged: list[SymbolSpan] = []
    for span in spans:
        if merged and merged[-1].symbol == span.symbol:
            previous = merged.pop()
            span = SymbolSpan(
                span.symbol, previous.valid_from, span.valid_to, span.source, span.exact, span.changed_after
            )
        merged.append(span)
    return merged


def _sector(
    chain_seq: list[_Chain], asset_type: str, cik: int | None, overrides: Mapping[int, SectorOverride]
) -> tuple[str | None, str | None, str | None, str | None]:
    """(GICS sector, how it was decided, source sector, source industry)."""
    screener = None
    for chain in reversed(chain_seq):
        screener = chain.latest("nasdaq_screener")
        if screener is not None:
            break
    source_sector = screener.row.source_sector if screener else None
    source_industry = normalise_industry(screener.row.source_industry) if screener else None
    if cik is not None and cik in overrides and asset_type not in _NO_SECTOR_TYPES:
        return overrides[cik].sector, "override", source_sector, source_industry or None
    if asset_type in _NO_SECTOR_TYPES or screener is None:
        return None, None, source_sector, source_industry or None
    mapped = gics_from_nasdaq(source_industry, source_sector, screener.row.name)
    return mapped, ("nasdaq_industry" if mapped else None), source_sector, source_industry or None


def _security(sequence: list[_Chain], inputs: MasterInputs, av: _AlphaVantage) -> Security:
    last = sequence[-1]
    every = [o for chain in sequence for o in chain.obs]
    latest_obs = max(every, key=lambda o: (o.when, o.source == "nasdaq_trader"))
    directory = last.latest("nasdaq_trader") or next(
        (c.latest("nasdaq_trader") for c in reversed(sequence) if c.latest("nasdaq_trader")), None
    )
    sec = next((c.latest("sec") for c in reversed(sequence) if c.latest("sec")), None)
    screener = next((c.latest("nasdaq_screener") for c in reversed(sequence) if c.latest("nasdaq_screener")), None)
    name_row = (directory or screener or sec or latest_obs).row
    name = name_row.name or last.symbol
    issuer, _ = split_security_name(name) if directory else (None, "")
    if directory and " - " not in (directory.row.name or ""):
        issuer = None
    if issuer is None and sec is not None:
        issuer = sec.row.name
    exchange = (directory or screener or sec or latest_obs).row.exchange
    asset_type = last.asset_type
    cik = sec.row.cik if sec else None
    first_seen = min(o.when for o in every)

    # Listing date: a cited new listing, else Alpha Vantage's ipoDate when it does not contradict the copies.
    listed_on: date | None = None
    listed_on_source: DateBasis | None = None
    if sequence[0].start_exact is not None and not sequence[0].pre_history:
        listed_on, listed_on_source = sequence[0].start_exact, "corporate_actions"
    else:
        current_av = av.active.get(last.symbol)
        if current_av is not None and current_av.listed_on is not None and names_similar(current_av.name, name):
            if current_av.listed_on <= first_seen:
                listed_on, listed_on_source = current_av.listed_on, "alpha_vantage"

    # Delisting.
    status: Literal["listed", "delisted"] = "listed"
    delisted_on: date | None = None
    delisted_source: DateBasis | None = None
    delisted_after: date | None = None
    candidates = av.delisted.get(last.symbol, [])
    observed = sorted({o.when for o in last.obs if o.source == "nasdaq_trader"})

    def covers(row: ListingRow) -> bool:
        # One symbol, one holder at a time: an Alpha Vantage listing that spans a day a copy shows this chain is
        # this chain, whatever its name (ETFs and SPACs rename without changing ticker).
        start, end = row.listed_on or date.min, row.delisted_on or date.max
        return any(start <= when < end for when in observed)

    matches = [row for row in candidates if names_similar(row.name, name) or covers(row)]
    # This security's own Alpha Vantage rows (an interim record, or a delisting dated later than it really was) are
    # consumed here, so that they do not come back as a second, phantom security.
    for row in matches:
        if covers(row):
            av.consumed.add(id(row))
    for chain in sequence:
        for row in av.delisted.get(chain.symbol, []):
            if (
                (names_similar(row.name, name) or names_similar(row.name, chain.name))
                and (row.listed_on or date.min) <= (chain.end_exact or chain.next_absent or date.max)
                and (row.delisted_on or date.max) >= (chain.start_exact or chain.prev_absent or date.min)
            ):
                av.consumed.add(id(row))
    if listed_on is None:
        earliest = [r.listed_on for r in matches if r.listed_on is not None and r.listed_on <= first_seen]
        if earliest:
            listed_on, listed_on_source = min(earliest), "alpha_vantage"
    if last.ended:
        status = "delisted"
        if last.end_exact is not None:
            delisted_on, delisted_source = last.end_exact, "corporate_actions"
        else:
            window = [
                r for r in matches
                if (d := _real_av_date(r, av)) is not None and last.last_obs < d <= (last.next_absent or date.max)
            ]  # fmt: skip
            if window:
                delisted_on, delisted_source = _real_av_date(window[0], av), "alpha_vantage"
                av.consumed.add(id(window[0]))
            else:
                delisted_on, delisted_source = last.next_absent, "snapshots"
                delisted_after = last.last_obs
    else:
        # Still in the latest copies; Alpha Vantage may know of a delisting after them.
        later = [r for r in matches if (d := _real_av_date(r, av)) is not None and d > last.last_obs]
        if later and av.as_of is not None and av.as_of > last.last_obs:
            status = "delisted"
            delisted_on, delisted_source = _real_av_date(later[0], av), "alpha_vantage"
            av.consumed.add(id(later[0]))

    sector, sector_source, source_sector, source_industry = _sector(sequence, asset_type, cik, inputs.sector_overrides)
    spans = _spans(sequence, (listed_on, listed_on_source), (delisted_on, delisted_source))
    sources = sorted({o.source for o in every} | ({"alpha_vantage_listing_status"} if listed_on_source == "alpha_vantage" or delisted_source == "alpha_vantage" else set()))  # fmt: skip
    return Security(
        key="",
        symbol=last.symbol,
        name=name,
        issuer=issuer,
        exchange=exchange,
        asset_type=asset_type,
        listing_status=status,
        listed_on=listed_on,
        listed_on_source=listed_on_source,
        delisted_on=delisted_on,
        delisted_on_source=delisted_source,
        delisted_after=delisted_after,
        last_seen=max(o.when for o in every),
        cik=cik,
        country=screener.row.country if screener else None,
        sector=sector,
        sector_source=sector_source,
        industry=source_industry,
        source_sector=source_sector,
        source_industry=source_industry,
        market_cap=screener.row.market_cap if screener else None,
        market_cap_as_of=screener.when if screener and screener.row.market_cap is not None else None,
        ipo_year=screener.row.ipo_year if screener else None,
        symbols=tuple(spans),
        sources=tuple(sources),
    )


def _av_only(row: ListingRow, av: _AlphaVantage, removals: Mapping[str, list[CorporateAction]]) -> Security:
    """A delisting Alpha Vantage knows and no copy shows (before our first copy, usually). A cited removal of the
    symbol within a month of Alpha Vantage's date dates it instead (Cimarex: completed 2021-10-01, Alpha Vantage
    2021-10-04); a placeholder date (the day of the request) is kept as an upper bound, not as the date."""
    delisted: date | None = row.delisted_on
    source: DateBasis = "alpha_vantage"
    exact = _real_av_date(row, av) is not None
    for action in removals.get(row.symbol, ()):
        if delisted is not None and abs((action.effective_date - delisted).days) <= 31:
            delisted, source, exact = action.effective_date, "corporate_actions", True
    return Security(
        key="",
        symbol=row.symbol,
        name=row.name or row.symbol,
        issuer=None,
        exchange=row.exchange,
        asset_type=row.asset_type or "stock",
        listing_status="delisted",
        listed_on=row.listed_on,
        listed_on_source="alpha_vantage" if row.listed_on else None,
        delisted_on=delisted,
        delisted_on_source=source,
        last_seen=None,
        symbols=(SymbolSpan(row.symbol, row.listed_on, delisted, source, exact=exact),),
        sources=("alpha_vantage_listing_status",),
    )


def _foreign_and_indices(batch: SourceBatch[ListingRow] | None, us_symbols: set[str]) -> list[Security]:
    """Index symbols (^GSPC) and non-US index members with an exchange suffix (SAP.DE), as the catalog knows them."""
    if batch is None:
        return []
    out: list[Security] = []
    for row in batch.rows:
        is_index = row.asset_type == "index"
        foreign = "." in row.raw_symbol and row.exchange not in (None, "NASDAQ", "NYSE", "OTC Markets")
        if not (is_index or foreign) or row.symbol in us_symbols:
            continue
        out.append(
            Security(
                key="",
                symbol=row.raw_symbol.upper() if not is_index else row.symbol,
                name=row.name or row.raw_symbol,
                issuer=None,
                exchange=row.exchange,
                asset_type="index" if is_index else "stock",
                listing_status="listed",
                isin=str(row.extra.get("isin")) if row.extra.get("isin") else None,
                country=row.country,
                sector=None if is_index else (str(row.extra["gics_sector"]) if row.extra.get("gics_sector") else None),
                sector_source=None if is_index or not row.extra.get("gics_sector") else "pytickersymbols",
                industry=row.source_industry,
                source_industry=row.source_industry,
                indices=row.indices,
                last_seen=batch.as_of,
                symbols=(
                    SymbolSpan(row.raw_symbol.upper() if not is_index else row.symbol, None, None, "pytickersymbols"),
                ),
                sources=("pytickersymbols",),
                region="index" if is_index else "foreign",
            )
        )
    return out


def _with_indices(securities: list[Security], batch: SourceBatch[ListingRow] | None) -> list[Security]:
    """US index membership, and a last-resort sector, from the catalog — for listed US securities only."""
    if batch is None:
        return securities
    by_symbol = {row.symbol: row for row in batch.rows if set(row.indices) & US_INDICES}
    out: list[Security] = []
    for security in securities:
        row = by_symbol.get(security.symbol) if security.is_listed and security.region == "us" else None
        if row is None or not names_similar(row.name, security.issuer or security.name):
            out.append(security)
            continue
        sector, sector_source = security.sector, security.sector_source
        if sector is None and security.asset_type not in _NO_SECTOR_TYPES and row.extra.get("gics_sector"):
            sector, sector_source = str(row.extra["gics_sector"]), "pytickersymbols"
        out.append(
            _replace(
                security,
                indices=tuple(sorted(set(row.indices) & US_INDICES)),
                sector=sector,
                sector_source=sector_source,
                isin=security.isin or (str(row.extra["isin"]) if row.extra.get("isin") else None),
                sources=tuple(sorted({*security.sources, "pytickersymbols"})),
            )
        )
    return out


def _replace(security: Security, **changes: object) -> Security:
    from dataclasses import replace

    return replace(security, **changes)  # type: ignore[arg-type]


def _keys(securities: list[Security]) -> list[Security]:
    """Deterministic keys: the first symbol and the first date we know it by; a counter separates rare twins."""

    def base(security: Security) -> str:
        first = security.symbols[0] if security.symbols else None
        symbol = first.symbol if first else security.symbol
        start = (first.valid_from if first else None) or security.listed_on
        if security.region == "foreign":
            return f"{symbol}@{security.exchange or 'foreign'}"
        return f"{symbol}@{start.isoformat() if start else 'before'}"

    ordered = sorted(
        securities,
        key=lambda s: (base(s), s.delisted_on or date.max, s.name, s.exchange or "", s.symbol),
    )
    used: dict[str, int] = {}
    out: list[Security] = []
    for security in ordered:
        key = base(security)
        used[key] = used.get(key, 0) + 1
        out.append(_replace(security, key=key if used[key] == 1 else f"{key}#{used[key]}"))
    return out


def build_securities(inputs: MasterInputs) -> list[Security]:
    """Every security the inputs describe, with identity, attributes and symbol history, sorted by key."""
    if not inputs.directories:
        raise ValueError("the security master needs at least one symbol directory copy")
    moves: dict[str, list[CorporateAction]] = defaultdict(list)
    removals: dict[str, list[CorporateAction]] = defaultdict(list)
    for action in inputs.actions:
        if action.old_symbol:
            moves[action.old_symbol].append(action)
            if action.kind == "removal":
                removals[action.old_symbol].append(action)
    av = _alpha_vantage(inputs)

    chains = _directory_chains(inputs, moves, av.active)
    _apply_action_bounds(chains, inputs.actions)
    _attach(chains, inputs)
    _link_actions(chains, inputs.actions)
    _link_by_cik(chains)
    _link_uplistings(chains)
    _link_by_name(chains)

    securities = [_security(_sequence(chain), inputs, av) for chain in chains if chain.prev is None]
    names_by_symbol: dict[str, list[str]] = defaultdict(list)
    for chain in chains:  # every name each symbol was known by (Bionomics' BNOX is Neuphoria's NEUP today)
        if chain.name:
            names_by_symbol[chain.symbol].append(chain.name)
    for rows in av.delisted.values():
        for row in rows:
            if id(row) in av.consumed or row.delisted_on is None:
                continue
            if any(names_similar(row.name, name) for name in names_by_symbol.get(row.symbol, ())):
                continue  # another record of a security the copies already describe (CSWI listed 2026-02-06?)
            securities.append(_av_only(row, av, removals))
    securities = _with_indices(securities, inputs.indices)
    us_symbols = {s.symbol for s in securities}
    securities += _foreign_and_indices(inputs.indices, us_symbols)
    return _keys(securities)
