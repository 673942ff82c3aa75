"""Chains of listings across dated copies, and the links between them (the first three phases of the history).

A chain is one symbol held by one security across consecutive directory copies, with the other sources'
observations attached; renames link chains into one security. ``services.security_master.history`` states the
rules and turns linked chains into securities.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from providers.listings.base import ListingRow, SourceBatch
from providers.listings.corporate_actions import CorporateAction
from providers.listings.sectors import SectorOverride
from providers.listings.symbols import parse_symbol
from services.security_master.model import SymbolSpan
from services.security_master.names import names_similar

__all__ = ["LISTED_EXCHANGES", "Chain", "MasterInputs", "Observation", "build_chains"]

LISTED_EXCHANGES = frozenset({"NASDAQ", "NYSE", "NYSE American", "NYSE Arca", "Cboe BZX", "Cboe", "IEX", "NYSE Texas"})


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
    # Keys a new security must not be given: those of the store's securities an incremental sync feeds in
    # (services/security_master/live.py), whether or not today's data continues them.
    reserved_keys: frozenset[str] = frozenset()


@dataclass(slots=True)
class Observation:
    when: date
    source: Literal["nasdaq_trader", "nasdaq_screener", "sec"]
    row: ListingRow


@dataclass(eq=False, slots=True)
class Chain:
    symbol: str
    coverage: Literal["listed", "otc"]
    prev_absent: date | None  # latest complete copy before the first observation that did not list it
    next_absent: date | None  # earliest complete copy after the last observation that did not list it
    obs: list[Observation] = field(default_factory=list)
    start_exact: date | None = None
    end_exact: date | None = None
    end_kind: Literal["rename", "removal"] | None = None
    prev: Chain | None = None
    next: Chain | None = None
    link_exact: bool = False  # the boundary to `next` is a cited date
    pre_history: list[SymbolSpan] = field(default_factory=list)

    def add(self, obs: Observation) -> None:
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

    def latest(self, source: str) -> Observation | None:
        found = [o for o in self.obs if o.source == source]
        # On a tie the observation added last wins: an incremental sync feeds the store's state in first, and a
        # fetch dated the same day (a second sync that day) is the newer word.
        return max(reversed(found), key=lambda o: o.when) if found else None

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
) -> list[Chain]:
    sec = _SecIndex.of(inputs.sec)
    chains: list[Chain] = []
    current: dict[str, Chain] = {}
    previous_date: date | None = None
    for batch in inputs.directories:
        following: dict[str, Chain] = {}
        for row in batch.rows:
            chain = current.get(row.symbol)
            if chain is None or (
                previous_date is not None
                and _reused(chain.obs[-1].row, row, previous_date, batch.as_of, moves, av_active, sec)
            ):
                chain = Chain(row.symbol, "listed", prev_absent=previous_date, next_absent=None)
                chains.append(chain)
            chain.add(Observation(batch.as_of, "nasdaq_trader", row))
            following[row.symbol] = chain
        for symbol, chain in current.items():
            if following.get(symbol) is not chain:
                chain.next_absent = batch.as_of
        current = following
        previous_date = batch.as_of
    return chains


def _apply_action_bounds(chains: Iterable[Chain], actions: Sequence[CorporateAction]) -> None:
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
def _pick(candidates: list[Chain], row: ListingRow, when: date) -> Chain | None:
    if not candidates:
        return None

    otc_row = row.exchange not in LISTED_EXCHANGES and row.exchange is not None or (row.cik and not row.exchange)

    def score(chain: Chain) -> tuple[int, int, int, int, int]:
        # An OTC quote of a ticker goes with the OTC chain, an exchange listing with the directory's chain (a
        # company moving between them keeps its ticker: ACFN was quoted OTC, then listed on Nasdaq).
        venue = int((chain.coverage == "otc") == bool(otc_row))
        covers = int(chain.first_obs <= when <= chain.last_obs)
        cik = int(row.cik is not None and row.cik in chain.ciks)
        similar = int(names_similar(chain.name, row.name))
        distance = min(abs((o.when - when).days) for o in chain.obs)
        return (venue, cik, covers, similar, -distance)

    return max(candidates, key=score)


def _attach(chains: list[Chain], inputs: MasterInputs) -> None:
    by_symbol: dict[str, list[Chain]] = defaultdict(list)
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
            target = _pick(candidates, row, when)
            if target is None:
                listed = source == "nasdaq_screener" or row.exchange in LISTED_EXCHANGES
                if listed:
                    before = [d for d in directory_dates if d < when]
                    after = [d for d in directory_dates if d > when]
                    target = Chain(row.symbol, "listed", max(before, default=None), min(after, default=None))
                else:
                    before_sec = [b.as_of for b in inputs.sec if b.as_of < when]
                    target = Chain(row.symbol, "otc", max(before_sec, default=None), None)
                chains.append(target)
                by_symbol[row.symbol].append(target)
            target.add(Observation(when, source, row))
        if source == "sec":  # an OTC ticker missing from a later SEC copy has gone
            for chain in chains:
                if chain.coverage == "otc" and chain.next_absent is None and chain.last_obs < when:
                    chain.next_absent = when


# --- phase 3: renames link chains ---------------------------------------------------------------------------------
def _link(first: Chain, second: Chain, exact: bool) -> None:
    first.next, second.prev, first.link_exact = second, first, exact


def _link_actions(chains: list[Chain], actions: Sequence[CorporateAction]) -> None:
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


def _rename_window_fits(old: Chain, new: Chain) -> bool:
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


def _similar_kind(first: Chain, second: Chain) -> bool:
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


def _link_by_cik(chains: list[Chain]) -> None:
    by_cik: dict[int, list[Chain]] = defaultdict(list)
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


def _link_uplistings(chains: list[Chain]) -> None:
    """An OTC-quoted ticker that shows up in a later directory copy was uplisted (BCHT: OTC, then NYSE American):
    one security, the OTC chain ending where the exchange listing begins."""
    listed_by_symbol: dict[str, list[Chain]] = defaultdict(list)
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


def _link_by_name(chains: list[Chain]) -> None:
    ended: dict[str, list[Chain]] = defaultdict(list)
    started: dict[str, list[Chain]] = defaultdict(list)
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


def build_chains(inputs: MasterInputs, av_active: Mapping[str, ListingRow]) -> list[Chain]:
    """Every chain the inputs describe, linked where the evidence says two are one security. ``av_active`` is
    Alpha Vantage's active listings by symbol (evidence of when a reused ticker's current holder was listed)."""
    moves: dict[str, list[CorporateAction]] = defaultdict(list)
    for action in inputs.actions:
        if action.old_symbol:
            moves[action.old_symbol].append(action)
    chains = _directory_chains(inputs, moves, av_active)
    _apply_action_bounds(chains, inputs.actions)
    _attach(chains, inputs)
    _link_actions(chains, inputs.actions)
    _link_by_cik(chains)
    _link_uplistings(chains)
    _link_by_name(chains)
    return chains
