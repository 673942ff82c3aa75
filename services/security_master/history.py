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

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, Literal

from providers.listings.asset_types import split_security_name
from providers.listings.base import ListingRow, SourceBatch
from providers.listings.corporate_actions import CorporateAction
from providers.listings.indices import US_INDICES
from providers.listings.sectors import SectorOverride, gics_from_nasdaq, normalise_industry
from providers.listings.symbols import parse_symbol
from services.security_master.chains import Chain, MasterInputs, build_chains
from services.security_master.model import DateBasis, Security, SymbolSpan
from services.security_master.names import names_similar

__all__ = ["MasterInputs", "build_securities"]

_NO_SECTOR_TYPES = frozenset({"etf", "fund", "index"})


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


def _sequence(head: Chain) -> list[Chain]:
    out = [head]
    while out[-1].next is not None:
        out.append(out[-1].next)
    return out


def _spans(
    sequence: list[Chain],
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
    chain_seq: list[Chain], asset_type: str, cik: int | None, overrides: Mapping[int, SectorOverride]
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


def _security(sequence: list[Chain], inputs: MasterInputs, av: _AlphaVantage) -> Security:
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


def _replace(security: Security, **changes: Any) -> Security:
    return replace(security, **changes)


def _keys(securities: list[Security], reserved: frozenset[str] = frozenset()) -> list[Security]:
    """Deterministic keys: the first symbol and the first date we know it by; a counter separates rare twins.
    A security that already has a key (the store's, carried by an incremental sync: see ``_origins``) keeps it, and
    no generated key takes one of those."""

    def base(security: Security) -> str:
        first = security.symbols[0] if security.symbols else None
        symbol = first.symbol if first else security.symbol
        start = (first.valid_from if first else None) or security.listed_on
        if security.region == "foreign":
            return f"{symbol}@{security.exchange or 'foreign'}"
        return f"{symbol}@{start.isoformat() if start else 'before'}"

    kept = {security.key for security in securities if security.key} | reserved
    ordered = sorted(
        (s for s in securities if not s.key),
        key=lambda s: (base(s), s.delisted_on or date.max, s.name, s.exchange or "", s.symbol),
    )
    used: dict[str, int] = {}
    out: list[Security] = [s for s in securities if s.key]
    for security in ordered:
        key = base(security)
        while True:
            used[key] = used.get(key, 0) + 1
            candidate = key if used[key] == 1 else f"{key}#{used[key]}"
            if candidate not in kept:
                break
        out.append(_replace(security, key=candidate))
    return sorted(out, key=lambda s: s.key)


def _origins(sequence: list[Chain]) -> list[str]:
    """The store's keys of the securities a sequence continues, in the order of its chains, when an incremental
    sync (services/security_master/live.py) fed the store's state in as the previous copy (rows carrying
    ``extra["master_key"]``). The first is the one it continues; any other is a stored security that turned out to
    be part of it (a ticker first seen on its own that today's data links to the issuer's earlier one)."""
    keys: list[str] = []
    for chain in sequence:
        for obs in chain.obs:
            key = obs.row.extra.get("master_key")
            if key and str(key) not in keys:
                keys.append(str(key))
    return keys


def build_securities(inputs: MasterInputs, merged: dict[str, str] | None = None) -> list[Security]:
    """Every security the inputs describe, with identity, attributes and symbol history, sorted by key.

    ``merged`` (incremental syncs): filled with stored key -> the stored key of the security that absorbed it, for
    each stored security the inputs show to be part of another (see ``_origins``)."""
    if not inputs.directories:
        raise ValueError("the security master needs at least one symbol directory copy")
    removals: dict[str, list[CorporateAction]] = defaultdict(list)
    for action in inputs.actions:
        if action.kind == "removal" and action.old_symbol:
            removals[action.old_symbol].append(action)
    av = _alpha_vantage(inputs)

    chains = build_chains(inputs, av.active)

    securities = []
    for chain in chains:
        if chain.prev is None:
            sequence = _sequence(chain)
            origins = _origins(sequence)
            if merged is not None:
                merged.update((other, origins[0]) for other in origins[1:])
            securities.append(_replace(_security(sequence, inputs, av), key=origins[0] if origins else ""))
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
    return _keys(securities, inputs.reserved_keys)
