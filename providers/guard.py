"""A market-data provider behind a circuit breaker and a shared rate limit (core/resilience.py's two mechanisms).

The breaker knows our error classes: only ``ProviderUnavailable`` (and cancellations and unexpected exceptions)
count as failures; ``ProviderRateLimited`` is neutral (the provider is healthy, just busy); ``ProviderMisconfigured``
holds the breaker open at once for ``misconfigured_hold_s`` (a rejected API key stays rejected, so asking again only
burns quota), and while it is open for that reason callers get the same ``ProviderMisconfigured`` back, fast.

The rate limit is a ``FallbackLimiter``: in process memory (``async+memory://``, one process), or in Redis
(``redis://...``) so every replica and worker shares one budget; if Redis fails, in-process limits for
``fallback_s`` instead of failing the call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

from core.resilience import BreakerState, FallbackLimiter
from core.resilience import CircuitBreaker as _Breaker
from providers.base import (
    AssetProfile,
    MarketDataProvider,
    ProviderError,
    ProviderMisconfigured,
    ProviderName,
    ProviderRateLimited,
    ProviderUnavailable,
    Verdict,
)

__all__ = ["CircuitBreaker", "GuardedProvider", "RateLimit"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class CircuitBreaker(_Breaker):
    """core/resilience.py's breaker in a provider's terms: five failures open it for thirty seconds, a refusal is
    raised as the provider error callers expect, and a configuration error holds it open for
    ``misconfigured_hold_s`` answering every call with that error."""

    def __init__(
        self,
        name: str,
        fail_max: int = 5,
        reset_timeout_s: float = 30.0,
        misconfigured_hold_s: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(name, fail_max, reset_timeout_s, clock=clock)
        self.misconfigured_hold_s = misconfigured_hold_s
        self._held_error: ProviderMisconfigured | None = None

    @property
    def consecutive_failures(self) -> int:
        return self.failures

    @property
    def misconfigured(self) -> str | None:
        """The configuration error holding the breaker open, if that is why it is open."""
        held = self._held_error
        return held.message if held is not None else None

    def before_call(self) -> None:
        """Let a call through (the half-open one as the probe) or raise at once."""
        if self.acquire() is not None:
            return
        held = self._held_error
        if held is not None:
            raise ProviderMisconfigured(held.provider, held.message)
        raise ProviderUnavailable(
            self.name, "circuit open after repeated failures; not calling the provider", cause="circuit_open"
        )

    def record_success(self) -> None:
        self._held_error = None
        self.success()

    def record_failure(self) -> None:
        if self.failure("probe" if self.probing else "call"):
            self._held_error = None

    def record_neutral(self) -> None:
        """Neither success nor failure (rate limited): frees a half-open probe without deciding anything."""
        self.release("probe")

    def trip(self, error: ProviderMisconfigured) -> None:
        """Hold open for ``misconfigured_hold_s``, answering every call with ``error`` meanwhile."""
        self._held_error = error
        self.hold(self.misconfigured_hold_s)


class RateLimit:
    """A named budget such as ``"5/second"`` or ``"1/second;25/day"``, spent in process memory or in Redis.

    ``storage_uri`` is ``async+memory://`` (default), or a Redis URL (``redis://``, ``rediss://`` or their
    ``async+`` forms). ``acquire`` takes one unit from every limit, shortest window first (so a refused burst does
    not spend the daily budget), and raises ``ProviderRateLimited`` with the wait until the refusing window frees a
    unit.
    """

    def __init__(
        self,
        key: str,
        limits: str,
        storage_uri: str = "async+memory://",
        storage_timeout_s: float = 0.5,
        fallback_s: float = 30.0,
    ) -> None:
        from limits import parse_many

        self.key = key
        self.items = sorted(parse_many(limits), key=lambda item: item.get_expiry())
        self.storage_uri = storage_uri if storage_uri.startswith("async+") else f"async+{storage_uri}"
        self.limiter = FallbackLimiter(
            key,
            None if self.storage_uri.startswith("async+memory") else self.storage_uri,
            timeout_s=storage_timeout_s,
            fallback_s=fallback_s,
        )

    @property
    def degraded(self) -> bool:
        """True while the shared storage is failing and a per-process memory limit is used instead."""
        return self.limiter.degraded

    async def acquire(self) -> None:
        """Take one unit, or raise ``ProviderRateLimited(retry_after_s)``. Never fails because of the storage."""
        refused = await self.limiter.hit(self.items, self.key)
        if refused is not None:
            item, wait = refused
            raise ProviderRateLimited(
                self.key, f"local rate limit {item} reached", retry_after_s=round(max(0.0, wait), 3)
            )

    async def remaining(self) -> dict[str, int]:
        """Units left in each window (``{"5 per 1 second": 3}``), read from the storage the budget is spent in;
        empty when that storage does not answer (metrics skip it then)."""
        return await self.limiter.remaining(self.items, self.key)


class GuardedProvider:
    """``inner`` behind a ``CircuitBreaker`` and an optional ``RateLimit``; itself a ``MarketDataProvider``.

    Also remembers a provider's own ``ProviderRateLimited`` answer: until its ``retry_after_s`` has passed, calls
    are refused locally with the remaining wait (Alpha Vantage's daily quota resets at most once a day, so asking
    again before then only adds load). Anything but a ``ProviderError`` escaping ``inner`` becomes
    ``ProviderUnavailable``, so callers can rely on the Protocol's promise.
    """

    def __init__(
        self,
        inner: MarketDataProvider,
        breaker: CircuitBreaker,
        limiter: RateLimit | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.name: ProviderName = inner.name
        self.breaker = breaker
        self.limiter = limiter
        self._clock = clock
        self._cooldown_until = 0.0

    @property
    def state(self) -> BreakerState:
        """The breaker's state, for health reports."""
        return self.breaker.state

    @property
    def cooldown_s(self) -> float:
        """Seconds until the provider's own rate limit is expected to lift (0 when none is known)."""
        return max(0.0, self._cooldown_until - self._clock())

    def health(self) -> dict[str, object]:
        """What ``get_service_health`` reports for this provider."""
        return {
            "provider": self.name,
            "state": self.state,
            "consecutive_failures": self.breaker.consecutive_failures,
            "misconfigured": self.breaker.misconfigured,
            "cooldown_s": round(self.cooldown_s, 1),
            "rate_limit_degraded": self.limiter.degraded if self.limiter is not None else False,
        }

    async def _guarded(self, call: Callable[[], Awaitable[T]]) -> T:
        wait = self.cooldown_s
        if wait > 0:
            raise ProviderRateLimited(self.name, "provider asked us to wait", retry_after_s=round(wait, 3))
        self.breaker.before_call()
        if self.limiter is not None:
            try:
                await self.limiter.acquire()
            except BaseException:
                self.breaker.record_neutral()  # our own budget said no: nothing learned about the provider
                raise
        outcome: Literal["success", "failure", "neutral"] = "failure"
        unexpected = ""
        try:
            result = await call()
            outcome = "success"
            return result
        except ProviderRateLimited as exc:
            outcome = "neutral"
            self._cooldown_until = max(self._cooldown_until, self._clock() + exc.retry_after_s)
            raise
        except ProviderMisconfigured as exc:
            outcome = "neutral"
            self.breaker.trip(exc)
            raise
        except ProviderError:
            raise
        except Exception as exc:
            unexpected = type(exc).__name__  # never its text: it may hold a URL with a key
        finally:
            # Cancellation (a caller's deadline) leaves outcome == "failure": a provider that hangs should open.
            if outcome == "success":
                self.breaker.record_success()
            elif outcome == "neutral":
                self.breaker.record_neutral()
            else:
                self.breaker.record_failure()
        # Raised here, outside the except block, so the original exception is not chained as its __context__.
        logger.warning("provider %s raised %s outside its contract", self.name, unexpected)
        raise ProviderUnavailable(self.name, f"unexpected {unexpected}")

    async def validate(self, symbol: str) -> Verdict:
        return await self._guarded(lambda: self.inner.validate(symbol))

    async def search(self, query: str, limit: int = 10) -> list[AssetProfile]:
        return await self._guarded(lambda: self.inner.search(query, limit))

    async def aclose(self) -> None:
        await self.inner.aclose()
