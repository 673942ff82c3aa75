"""Offline "did you mean" candidates for a symbol the master does not know: close spellings and name matches.

Two kinds of evidence, merged into one ranking:
- **edit distance** (optimal string alignment: insertions, deletions, substitutions and swaps of neighbours — the
  swap is the commonest ticker typo, APPL for AAPL), at most 1 for symbols of up to four characters and 2 for longer
  ones;
- **name match**: a query of three or more letters that begins the issuer's name (TESLA -> TSLA, APPLE -> AAPL).

Ranked by evidence (distance, name matches count as distance 1), then by kind (shares and ETFs before preferreds,
warrants and units, unless the query itself names such a kind), then by market cap (big names are typed more often),
then index membership, then alphabetically. The query itself is never a candidate, in any spelling.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from providers.listings.symbols import canonical_symbol, parse_symbol
from services.security_master.model import Security
from services.security_master.names import issuer_words

__all__ = ["CandidateIndex", "osa_distance"]

_MAIN_KINDS = frozenset({"stock", "etf", "adr", "fund", "index"})


def osa_distance(first: str, second: str, limit: int) -> int:
    """Optimal string alignment distance, or ``limit + 1`` as soon as it must exceed ``limit``."""
    if abs(len(first) - len(second)) > limit:
        return limit + 1
    previous_previous: list[int] = []
    previous = list(range(len(second) + 1))
    for i, a in enumerate(first, start=1):
        current = [i] + [0] * len(second)
        for j, b in enumerate(second, start=1):
            cost = 0 if a == b else 1
            value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a == second[j - 2] and first[i - 2] == b:
                value = min(value, previous_previous[j - 2] + 1)
            current[j] = value
        if min(current) > limit and min(previous) > limit:  # a swap can reach back one row, no further
            return limit + 1
        previous_previous, previous = previous, current
    return previous[-1]


@dataclass(frozen=True, slots=True)
class _Entry:
    symbol: str
    first_word: str
    main_kind: bool
    market_cap: float
    in_index: bool


def _deletes(text: str, depth: int) -> set[str]:
    """``text`` with up to ``depth`` characters deleted (the symmetric-delete index of SymSpell)."""
    found = {text}
    frontier = {text}
    for _ in range(depth):
        frontier = {word[:i] + word[i + 1 :] for word in frontier for i in range(len(word))} - found
        found |= frontier
    return found


class CandidateIndex:
    """Candidates among the *listed US* securities given.

    Lookups use a symmetric-delete index: every symbol is stored under each string obtained by deleting up to two
    of its characters; a query's own deletions then meet every symbol within edit distance 2 in a few dictionary
    lookups, and OSA confirms the distance. About 15,000 symbols give ~170,000 keys.
    """

    def __init__(self, securities: Iterable[Security]) -> None:
        self._by_delete: dict[str, list[_Entry]] = defaultdict(list)
        self._by_word: dict[str, list[_Entry]] = defaultdict(list)
        for security in securities:
            if not security.is_listed or security.region != "us":
                continue
            words = issuer_words(security.issuer or security.name)
            entry = _Entry(
                symbol=security.symbol,
                first_word=words[0] if words else "",
                main_kind=security.asset_type in _MAIN_KINDS,
                market_cap=security.market_cap or 0.0,
                in_index=bool(security.indices),
            )
            for key in _deletes(entry.symbol, 2):
                self._by_delete[key].append(entry)
            if entry.first_word and entry.main_kind:
                self._by_word[entry.first_word[:3]].append(entry)

    def candidates(self, query: str, limit: int = 5) -> tuple[str, ...]:
        """Up to ``limit`` listed symbols the caller may have meant; never ``query`` itself."""
        symbol = canonical_symbol(query)
        if not symbol or limit <= 0:
            return ()
        wants_other_kinds = parse_symbol(symbol).kind in ("preferred", "warrant", "unit", "right")
        max_distance = 1 if len(symbol) <= 4 else 2
        scored: dict[str, tuple[int, int, float, int, str]] = {}

        def offer(entry: _Entry, distance: int) -> None:
            if entry.symbol == symbol:
                return
            kind_rank = 0 if (entry.main_kind or wants_other_kinds) else 1
            score = (distance, kind_rank, -entry.market_cap, 0 if entry.in_index else 1, entry.symbol)
            if entry.symbol not in scored or score < scored[entry.symbol]:
                scored[entry.symbol] = score

        seen: set[str] = set()
        for key in _deletes(symbol, max_distance):
            for entry in self._by_delete.get(key, ()):
                if entry.symbol in seen:
                    continue
                seen.add(entry.symbol)
                distance = osa_distance(symbol, entry.symbol, max_distance)
                if distance <= max_distance:
                    offer(entry, distance)
        word = symbol.lower()
        if len(word) >= 3 and word.isalpha():
            for entry in self._by_word.get(word[:3], ()):
                if entry.first_word.startswith(word):
                    offer(entry, 1)
        ranked = sorted(scored.values())
        return tuple(score[-1] for score in ranked[:limit])
