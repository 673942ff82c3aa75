"""Online search: when the store has too few hits for a name query, ask Yahoo Search and Alpha Vantage
SYMBOL_SEARCH at once, within one deadline (docs/ARCHITECTURE.md, "Screening").

Only the network providers that can search are asked (the offline catalog is already in the store), each through
what ``core/wiring.py`` built: behind its circuit breaker and its shared rate limit (providers/guard.py), so a
search spends the same budget a validation does. Nothing a provider does can fail the search or hold it past the
deadline: an error, a refusal or a provider still silent when the deadline passes only means fewer results.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from providers.base import AssetProfile, MarketDataProvider, ProviderError
from services.quotas import Quotas
from services.symbols import normalise_symbol, symbol_problem

__all__ = ["SEARCH_SOURCES", "Found", "OnlineSearch"]

logger = logging.getLogger(__name__)

# The providers that search the market by name, in the order their hits are merged (Yahoo ranks names better; Alpha
# Vantage's SYMBOL_SEARCH ranks by string similarity, e.g. APLE above AAPL for "Apple").
SEARCH_SOURCES = ("yahoo", "alpha_vantage")


@dataclass(frozen=True, slots=True)
class Found:
    """One security a provider's search returned, under its canonical symbol."""

    symbol: str
    source: str
    profile: AssetProfile


@dataclass(frozen=True, slots=True)
class OnlineSearch:
    """Asks ``providers`` (those named in ``SEARCH_SOURCES``) concurrently within ``deadline_s``.

    ``admit`` is asked once before any provider: the caller's right to spend provider quota (its token scope and
    rate limit); False skips the online part. ``quotas`` bound the unconfirmed assets the results create.
    """

    providers: Sequence[MarketDataProvider]
    deadline_s: float
    quotas: Quotas = Quotas()
    admit: Callable[[], Awaitable[bool]] | None = None

    @classmethod
    def over(
        cls,
        providers: Sequence[MarketDataProvider],
        deadline_s: float,
        quotas: Quotas = Quotas(),
        admit: Callable[[], Awaitable[bool]] | None = None,
    ) -> OnlineSearch | None:
        """The online search over the searching providers among ``providers``; None when there are none."""
        searching = sorted(
            (p for p in providers if p.name in SEARCH_SOURCES), key=lambda p: SEARCH_SOURCES.index(p.name)
        )
        return cls(searching, deadline_s, quotas, admit) if searching else None

    async def find(self, query: str, limit: int) -> list[Found]:
        """Each provider's hits in its order, Yahoo's first, one per canonical symbol; whatever arrived within the
        deadline (possibly nothing)."""
        if limit <= 0 or not self.providers:
            return []
        if self.admit is not None and not await self.admit():
            return []
        answers: dict[str, list[AssetProfile]] = {}

        async def ask(provider: MarketDataProvider) -> None:
            try:
                answers[provider.name] = await provider.search(query, limit)
            except ProviderError as exc:
                logger.info("online search: %s could not answer: %s", provider.name, exc.message)
            except Exception:  # a provider outside its contract (unguarded): fewer results, never a failed search
                logger.exception("online search: %s raised outside its contract", provider.name)

        tasks = [asyncio.create_task(ask(p)) for p in self.providers]
        _, pending = await asyncio.wait(tasks, timeout=self.deadline_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            logger.info("online search: %d provider(s) gave no answer within %g s", len(pending), self.deadline_s)
        found: dict[str, Found] = {}
        for provider in self.providers:
            for profile in answers.get(provider.name, []):
                symbol = normalise_symbol(profile.symbol)
                if symbol and symbol not in found and symbol_problem(symbol) is None:
                    found[symbol] = Found(symbol=symbol, source=provider.name, profile=profile)
        return list(found.values())
