"""A scriptable in-memory provider for tests and benchmarks (no network, deterministic for a given seed)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import anyio

from providers.base import AssetProfile, ProviderName, ProviderRateLimited, ProviderUnavailable, Verdict
from providers.sectors import GICS_SECTORS

__all__ = ["FakeProvider"]


class FakeProvider:
    """Knows the symbols in ``known`` (valid) and nothing else (invalid), with configurable misbehaviour.

    Order of effects on each call: count it; ``hang`` (sleep forever, for deadline tests); sleep ``latency_s``;
    every ``rate_limit_every``-th call raises ``ProviderRateLimited(retry_after_s)``; symbols in ``fail_symbols``
    and a ``fail_rate`` share of calls (seeded) raise ``ProviderUnavailable``; then the answer.
    ``calls`` counts validate and search calls; ``calls_by_symbol`` counts validate calls per symbol.
    """

    def __init__(
        self,
        name: str = "fake",
        known: Mapping[str, AssetProfile] | None = None,
        latency_s: float = 0.0,
        fail_symbols: Iterable[str] = frozenset(),
        fail_rate: float = 0.0,
        rate_limit_every: int = 0,
        retry_after_s: float = 1.0,
        seed: int = 0,
        hang: bool = False,
    ) -> None:
        if not 0.0 <= fail_rate <= 1.0:
            raise ValueError("fail_rate must be between 0 and 1")
        # A fake may stand in for a real provider in tests ("yahoo"), so any name is accepted and typed as a
        # provider's name.
        self.name: ProviderName = name  # type: ignore[assignment]
        self.known: dict[str, AssetProfile] = {sym.upper(): prof for sym, prof in (known or {}).items()}
        self.latency_s = latency_s
        self.fail_symbols = {sym.upper() for sym in fail_symbols}
        self.fail_rate = fail_rate
        self.rate_limit_every = rate_limit_every
        self.retry_after_s = retry_after_s
        self.hang = hang
        self.calls = 0
        self.calls_by_symbol: Counter[str] = Counter()
        self.closed = False
        self._rng = random.Random(seed)

    @classmethod
    def with_generated(cls, n: int, *, prefix: str = "SYM", **kwargs: Any) -> FakeProvider:
        """A fake knowing ``n`` deterministic valid symbols: SYM00001, SYM00002, ... with rotating GICS sectors."""
        width = max(5, len(str(n)))
        known: dict[str, AssetProfile] = {}
        for i in range(1, n + 1):
            symbol = f"{prefix}{i:0{width}d}"
            known[symbol] = AssetProfile(
                symbol=symbol,
                name=f"Generated Company {i}",
                exchange="FAKE",
                asset_type="equity",
                currency="USD",
                sector=GICS_SECTORS[i % len(GICS_SECTORS)],
                market_cap=float(i * 1_000_000),
            )
        return cls(known=known, **kwargs)

    async def _misbehave(self, what: str) -> None:
        self.calls += 1
        if self.hang:
            await anyio.sleep_forever()
        if self.latency_s > 0:
            await anyio.sleep(self.latency_s)
        if self.rate_limit_every > 0 and self.calls % self.rate_limit_every == 0:
            raise ProviderRateLimited(self.name, "simulated rate limit", self.retry_after_s)
        if what.upper() in self.fail_symbols or (self.fail_rate > 0 and self._rng.random() < self.fail_rate):
            raise ProviderUnavailable(self.name, "simulated outage")

    async def validate(self, symbol: str) -> Verdict:
        key = symbol.strip().upper()
        self.calls_by_symbol[key] += 1
        await self._misbehave(key)
        profile = self.known.get(key)
        if profile is None:
            return Verdict(symbol=key, status="invalid", source=self.name, reason=f"{self.name} does not list {key}")
        return Verdict(symbol=key, status="valid", source=self.name, profile=profile)

    async def search(self, query: str, limit: int = 10) -> list[AssetProfile]:
        await self._misbehave(query)
        text = query.strip()
        if not text or limit <= 0:
            return []
        upper, lower = text.upper(), text.lower()
        by_symbol = [p for sym, p in sorted(self.known.items()) if sym.startswith(upper)]
        by_name = [
            p for sym, p in sorted(self.known.items()) if not sym.startswith(upper) and lower in (p.name or "").lower()
        ]
        return (by_symbol + by_name)[:limit]

    async def aclose(self) -> None:
        self.closed = True
