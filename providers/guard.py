"""Circuit breaker + shared rate limit around any provider.

Why a home-made breaker rather than pybreaker: pybreaker's ``call`` is synchronous and its async support
(``call_async``) is built on Tornado; wrapping coroutines in it would need a thread or Tornado. The state machine is
small, and ours knows our error classes: only ``ProviderUnavailable`` (and cancellations and unexpected exceptions)
count as failures; ``ProviderRateLimited`` is neutral (the provider is healthy, just busy); ``ProviderMisconfigured``
opens the breaker at once for ``misconfigured_hold_s`` (a rejected API key stays rejected, so asking again only
burns quota), and while it is open for that reason callers get the same ``ProviderMisconfigured`` back, fast.

The rate limit uses the ``limits`` library with async storage: ``async+memory://`` in one process, or Redis
(``redis://...``) so every replica and worker shares one budget. If the storage fails (Redis down), the limit falls
back to an in-process memory storage for ``fallback_s`` instead of failing the call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

import anyio

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

__all__ = ["BreakerState", "CircuitBreaker", "GuardedProvider", "RateLimit"]

logger = logging.getLogger(__name__)

BreakerState = Literal["closed", "open", "half_open"]
T = TypeVar("T")


class CircuitBreaker:
    """Closed -> (``fail_max`` consecutive failures) -> open -> (``reset_timeout_s``) -> half-open -> one trial call.

    A successful trial closes the breaker; a failed one opens it again. While open, ``before_call`` raises in
    microseconds. Thread-safe (a lock guards every transition), so one breaker may serve several event loops.
    """

    def __init__(
        self,
        name: str,
        fail_max: int = 5,
        reset_timeout_s: float = 30.0,
        misconfigured_hold_s: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if fail_max < 1:
            raise ValueError("fail_max must be at least 1")
        self.name = name
        self.fail_max = fail_max
        self.reset_timeout_s = reset_timeout_s
        self.misconfigured_hold_s = misconfigured_hold_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._hold_s = reset_timeout_s
        self._trial_in_flight = False
        self._held_error: ProviderMisconfigured | None = None

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._state_locked()

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    @property
    def misconfigured(self) -> str | None:
        """The configuration error holding the breaker open, if that is why it is open."""
        held = self._held_error
        return held.message if held is not None else None

    def _state_locked(self) -> BreakerState:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self._hold_s:
            return "half_open"
        return "open"

    def before_call(self) -> None:
        """Let a call through or raise at once (open, or half-open with its one trial already running)."""
        with self._lock:
            state = self._state_locked()
            if state == "closed":
                return
            if state == "half_open" and not self._trial_in_flight:
                self._trial_in_flight = True
                return
            held = self._held_error
        if held is not None:
            raise ProviderMisconfigured(held.provider, held.message)
        raise ProviderUnavailable(
            self.name, "circuit open after repeated failures; not calling the provider", cause="circuit_open"
        )

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_in_flight = False
            self._held_error = None

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._trial_in_flight or self._failures >= self.fail_max:
                self._held_error = None
                self._open_locked(self.reset_timeout_s)

    def record_neutral(self) -> None:
        """Neither success nor failure (rate limited): frees a half-open trial without deciding anything."""
        with self._lock:
            self._trial_in_flight = False

    def trip(self, error: ProviderMisconfigured) -> None:
        """Open for ``misconfigured_hold_s``, answering every call with ``error`` meanwhile."""
        with self._lock:
            self._held_error = error
            self._open_locked(self.misconfigured_hold_s)

    def _open_locked(self, hold_s: float) -> None:
        self._opened_at = self._clock()
        self._hold_s = hold_s
        self._trial_in_flight = False


class RateLimit:
    """A named budget such as ``"5/second"`` or ``"1/second;25/day"`` shared through a ``limits`` storage.

    ``storage_uri`` is ``async+memory://`` (default), or a Redis URL (``redis://``, ``rediss://`` or their
    ``async+`` forms), used with redis-py. ``acquire`` takes one unit from every limit, shortest window first (so a
    refused burst does not spend the daily budget), and raises ``ProviderRateLimited`` with the wait until the
    refusing window frees a unit.
    """

    def __init__(
        self,
        key: str,
        limits: str,
        storage_uri: str = "async+memory://",
        strategy: Literal["moving-window", "fixed-window", "sliding-window-counter"] = "moving-window",
        storage_timeout_s: float = 0.5,
        fallback_s: float = 30.0,
    ) -> None:
        from limits import parse_many

        self.key = key
        self.items = sorted(parse_many(limits), key=lambda item: item.get_expiry())
        self.storage_uri = storage_uri if storage_uri.startswith("async+") else f"async+{storage_uri}"
        self.strategy = strategy
        self.storage_timeout_s = storage_timeout_s
        self.fallback_s = fallback_s
        self._primary = None
        self._memory = None
        self._fallback_until = 0.0

    @property
    def degraded(self) -> bool:
        """True while the shared storage is failing and a per-process memory limit is used instead."""
        return time.monotonic() < self._fallback_until

    def _make_limiter(self, uri: str) -> Any:  # limits' strategy classes share no public base class
        from limits.aio import strategies
        from limits.storage import storage_from_string

        options: dict[str, float | str | bool] = {}
        if "redis" in uri:
            # implementation="redispy": we ship redis-py, not coredis. Short timeouts: a hung Redis must not hang us.
            options = {
                "implementation": "redispy",
                "socket_timeout": self.storage_timeout_s,
                "socket_connect_timeout": self.storage_timeout_s,
                "wrap_exceptions": True,
            }
        storage = storage_from_string(uri, **options)
        cls = {
            "moving-window": strategies.MovingWindowRateLimiter,
            "fixed-window": strategies.FixedWindowRateLimiter,
            "sliding-window-counter": strategies.SlidingWindowCounterRateLimiter,
        }[self.strategy]
        return cls(storage)

    async def _acquire_with(self, limiter: Any) -> None:
        for item in self.items:
            if not await limiter.hit(item, self.key):
                stats = await limiter.get_window_stats(item, self.key)
                wait = max(0.0, stats.reset_time - time.time())
                raise ProviderRateLimited(self.key, f"local rate limit {item} reached", retry_after_s=round(wait, 3))

    async def acquire(self) -> None:
        """Take one unit, or raise ``ProviderRateLimited(retry_after_s)``. Never fails because of the storage."""
        if not self.degraded and not self.storage_uri.startswith("async+memory"):
            try:
                if self._primary is None:
                    self._primary = self._make_limiter(self.storage_uri)
                with anyio.fail_after(self.storage_timeout_s * 2):
                    await self._acquire_with(self._primary)
                return
            except ProviderRateLimited:
                raise
            except Exception as exc:  # storage failure of any kind; the URI may hold a password, so type only
                logger.warning(
                    "rate limit %s: storage failed (%s); using in-process limits", self.key, type(exc).__name__
                )
                self._fallback_until = time.monotonic() + self.fallback_s
        if self._memory is None:
            self._memory = self._make_limiter("async+memory://")
        await self._acquire_with(self._memory)

    async def remaining(self) -> dict[str, int]:
        """Units left in each window (``{"5 per 1 second": 3}``), read from the storage the budget is spent in;
        empty when that storage does not answer (metrics skip it then)."""
        limiter = self._memory
        if not self.degraded and not self.storage_uri.startswith("async+memory"):
            if self._primary is None:
                self._primary = self._make_limiter(self.storage_uri)
            limiter = self._primary
        if limiter is None:  # in-process budget never spent yet
            return {str(item): item.amount for item in self.items}
        out: dict[str, int] = {}
        try:
            with anyio.fail_after(self.storage_timeout_s * 2):
                for item in self.items:
                    out[str(item)] = int((await limiter.get_window_stats(item, self.key)).remaining)
        except Exception:  # a failing storage is reported by acquire(); metrics just go without
            return {}
        return out


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
