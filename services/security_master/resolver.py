"""What a symbol means, today or at a date: the verdict the validation answers from (docs/SECURITY_MASTER.md).

``resolve(symbol, as_of=None)`` reads any spelling (``BRK-B``, ``brk/b``, ``$BRK.B``) and answers one of:
- ``listed``: a security holds the symbol (at ``as_of``, or now) and is listed;
- ``renamed``: the symbol belonged to a security that now trades under another one (``renamed_to``, ``renamed_on``);
- ``delisted``: the symbol's last holder is no longer listed (``delisted_on``);
- ``unknown``: no security ever used it as far as the master knows — with typo ``candidates`` (never the symbol).

Ticker reuse: without a date the *current* holder wins and the others come back as ``former_holders`` (FB today is
the ProShares ETF; Meta held it until 2022-06-09). With a date, the holder on that date wins (FB in 2021 is Meta,
listed then, trading today as META).

Pure and in memory: built from a snapshot's securities (phase 2 builds the same from the store's rows).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Literal

from providers.listings.symbols import canonical_symbol
from services.security_master.candidates import CandidateIndex
from services.security_master.model import Security, SymbolSpan
from services.security_master.snapshot import Snapshot

__all__ = ["Resolution", "Resolver", "Status", "describe_date"]

Status = Literal["listed", "delisted", "renamed", "unknown"]


@dataclass(frozen=True, slots=True)
class Resolution:
    """The master's answer about one symbol. ``data_as_of`` is the date of the data the answer rests on."""

    query: str
    symbol: str  # the canonical spelling of the query
    status: Status
    reason: str
    data_as_of: date
    as_of: date | None = None  # the date asked about (None: now)
    security: Security | None = None
    current_symbol: str | None = None  # the security's symbol today (or its last, if delisted)
    renamed_to: str | None = None
    renamed_on: date | None = None
    renamed_on_exact: bool = True
    delisted_on: date | None = None
    former_holders: tuple[Security, ...] = ()
    candidates: tuple[str, ...] = ()


def describe_date(when: date | None, exact: bool) -> str:
    if when is None:
        return "on a date the data does not give"
    return f"on {when.isoformat()}" if exact else f"by {when.isoformat()}"


class Resolver:
    """Symbol -> security lookups with history, over an immutable set of securities."""

    def __init__(self, securities: Iterable[Security], data_as_of: date, *, candidates: bool = True) -> None:
        """``candidates=False``: no typo index (a resolver over a few securities read from the store, which takes
        its candidates from an index of the whole master)."""
        self.data_as_of = data_as_of
        self._securities = tuple(securities)
        self._by_symbol: dict[str, list[tuple[SymbolSpan, Security]]] = defaultdict(list)
        self._by_key: dict[str, Security] = {}
        for security in self._securities:
            self._by_key[security.key] = security
            for span in security.symbols:
                self._by_symbol[span.symbol].append((span, security))
        self._candidates = CandidateIndex(self._securities if candidates else ())

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot) -> Resolver:
        return cls(snapshot.securities, snapshot.as_of)

    def __len__(self) -> int:
        return len(self._securities)

    def get(self, key: str) -> Security | None:
        return self._by_key.get(key)

    def holders(self, symbol: str) -> list[tuple[SymbolSpan, Security]]:
        """Every (span, security) that ever used ``symbol`` (any spelling), oldest first."""
        entries = self._by_symbol.get(canonical_symbol(symbol), [])
        return sorted(entries, key=lambda e: (e[0].valid_from or date.min, e[1].key))

    def candidates(self, symbol: str, limit: int = 5) -> tuple[str, ...]:
        return self._candidates.candidates(symbol, limit)

    # --- resolution ---------------------------------------------------------------------------------------------
    def resolve(self, query: str, as_of: date | None = None) -> Resolution:
        # A symbol held as typed is taken as typed: foreign listings such as AC.PA (Paris) would read as a US
        # preferred share (AC.PRA) in canonical form.
        symbol = query if query in self._by_symbol else canonical_symbol(query)
        entries = self._by_symbol.get(symbol, []) if symbol else []
        if not entries:
            return self._unknown(query, symbol, as_of, f"{symbol or query!r} is not a symbol any US listing used")
        if as_of is None:
            return self._now(query, symbol, entries)
        return self._at(query, symbol, entries, as_of)

    def _unknown(self, query: str, symbol: str, as_of: date | None, reason: str) -> Resolution:
        return Resolution(
            query=query,
            symbol=symbol,
            status="unknown",
            reason=reason,
            data_as_of=self.data_as_of,
            as_of=as_of,
            candidates=self.candidates(symbol) if symbol else (),
        )

    @staticmethod
    def _preference(entry: tuple[SymbolSpan, Security]) -> tuple[int, date, str]:
        span, security = entry
        return (int(security.region == "us"), security.last_seen or date.min, security.key)

    def _now(self, query: str, symbol: str, entries: list[tuple[SymbolSpan, Security]]) -> Resolution:
        current = [e for e in entries if e[0].valid_to is None and e[1].is_listed]
        if current:
            span, security = max(current, key=self._preference)
            former = tuple(s for _, s in entries if s is not security)
            reason = f"{symbol} is listed: {security.name}"
            if former:
                reason += f" (formerly the symbol of {former[-1].name})"
            return Resolution(
                query=query,
                symbol=symbol,
                status="listed",
                reason=reason,
                data_as_of=self.data_as_of,
                security=security,
                current_symbol=security.symbol,
                former_holders=former,
            )
        span, security = max(entries, key=lambda e: (e[0].valid_to or date.max, self._preference(e)))
        former = tuple(s for _, s in entries if s is not security)
        return self._after_span(query, symbol, span, security, former, None)

    def _after_span(
        self,
        query: str,
        symbol: str,
        span: SymbolSpan,
        security: Security,
        former: tuple[Security, ...],
        as_of: date | None,
    ) -> Resolution:
        """The verdict for a symbol whose (latest) holder stopped using it at ``span.valid_to``."""
        moved = span.symbol != security.symbol or span is not security.symbols[-1]
        listed = security.is_listed if as_of is None else security.listed_at(as_of)
        if moved and listed:
            next_span = self._next_span(security, span)
            renamed_to = next_span.symbol if as_of is not None and next_span else security.symbol
            when = describe_date(span.valid_to, span.exact)
            reason = f"{symbol} was renamed to {renamed_to} {when} ({security.name})"
            return Resolution(
                query=query,
                symbol=symbol,
                status="renamed",
                reason=reason,
                data_as_of=self.data_as_of,
                as_of=as_of,
                security=security,
                current_symbol=security.symbol,
                renamed_to=renamed_to,
                renamed_on=span.valid_to,
                renamed_on_exact=span.exact,
                former_holders=former,
            )
        last = security.symbols[-1]
        when = describe_date(security.delisted_on, last.exact and security.delisted_on_source != "snapshots")
        reason = f"{symbol} ({security.name}) was delisted {when}"
        if moved:
            reason = f"{symbol} ({security.name}) later traded as {security.symbol} and was delisted {when}"
        return Resolution(
            query=query,
            symbol=symbol,
            status="delisted",
            reason=reason,
            data_as_of=self.data_as_of,
            as_of=as_of,
            security=security,
            current_symbol=security.symbol,
            delisted_on=security.delisted_on,
            former_holders=former,
        )

    @staticmethod
    def _next_span(security: Security, span: SymbolSpan) -> SymbolSpan | None:
        spans = list(security.symbols)
        index = next((i for i, s in enumerate(spans) if s is span), None)
        return spans[index + 1] if index is not None and index + 1 < len(spans) else None

    def _at(self, query: str, symbol: str, entries: list[tuple[SymbolSpan, Security]], as_of: date) -> Resolution:
        holding = [e for e in entries if e[0].contains(as_of)]
        if holding:
            # Several holders on one day means sources disagree; the one listed then, with both ends of its span
            # known, is the most specific claim.
            span, security = max(
                holding,
                key=lambda e: (
                    e[1].listed_at(as_of),
                    e[0].valid_from is not None and e[0].valid_to is not None,
                    self._preference(e),
                ),
            )
            former = tuple(s for _, s in entries if s is not security)
            if security.listed_at(as_of):
                reason = f"{symbol} on {as_of.isoformat()}: {security.name}"
                if security.symbol != symbol:
                    state = "trades today as" if security.is_listed else "later traded as"
                    reason += f" ({state} {security.symbol})"
                return Resolution(
                    query=query,
                    symbol=symbol,
                    status="listed",
                    reason=reason,
                    data_as_of=self.data_as_of,
                    as_of=as_of,
                    security=security,
                    current_symbol=security.symbol,
                    former_holders=former,
                )
            return self._after_span(query, symbol, span, security, former, as_of)
        ended = [e for e in entries if e[0].valid_to is not None and e[0].valid_to <= as_of]
        if ended:
            span, security = max(ended, key=lambda e: (e[0].valid_to, self._preference(e)))
            former = tuple(s for _, s in entries if s is not security)
            return self._after_span(query, symbol, span, security, former, as_of)
        first = min((e[0].valid_from for e in entries if e[0].valid_from), default=None)
        reason = f"{symbol} was not in use on {as_of.isoformat()}"
        if first is not None:
            reason += f"; it is used from {first.isoformat()}"
        resolution = self._unknown(query, symbol, as_of, reason)
        return resolution
