"""What a process does when a dependency it can live without fails: one circuit breaker, one fallback limiter.

* :class:`CircuitBreaker` stops calling a dependency that keeps failing and probes it again later. Used by the
  cache (storage/cache.py: Redis), the provider guard (providers/guard.py: each market-data provider), the live job
  counters (workers/live.py) and the job broker (workers/runtime.py: enqueueing in the distributed mode).
* :class:`FallbackLimiter` spends rate limits in a shared storage (Redis, through the ``limits`` library) so that
  every replica and worker shares one budget; when that storage fails it answers from exact in-process moving
  windows for ``fallback_s`` instead of failing the call (a limit is a protection, not a feature), then tries the
  shared storage again. Used by the per-owner rate limits (services/ratelimit.py) and the per-provider budgets
  (providers/guard.py).

Why home-made rather than pybreaker, aiobreaker or purgatory: pybreaker wraps synchronous (or Tornado) callables;
aiobreaker and purgatory wrap a coroutine per call (a context manager or decorator, and purgatory an async state
store), which costs more than the Redis round trip of a cache hit it would guard, and neither lets exactly one
coroutine probe while the others take the fallback at once, nor holds a breaker open for a caller-chosen time (a
rejected API key). The state machine is forty lines.

The in-process windows are ours, not ``limits``' async memory storage: that storage starts a clean-up task on nearly
every hit and the task hops to a worker thread, which cost about 0.2 ms per tool call (measured by `make bench`,
docs/BENCHMARKS.md). The semantics are the same: a call is allowed while fewer than N calls fell inside the last
window.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import anyio

if TYPE_CHECKING:
    from limits import RateLimitItem

__all__ = ["BreakerState", "CircuitBreaker", "FallbackLimiter", "LocalWindows", "Ticket"]

logger = logging.getLogger(__name__)

BreakerState = Literal["closed", "open", "half_open"]
Ticket = Literal["call", "probe"]


class CircuitBreaker:
    """Closed → (``fail_max`` consecutive failures) → open → (``reset_timeout_s``) → half-open → one probe call.

    ``acquire`` answers ``"call"`` (closed), ``"probe"`` (the one half-open probe) or None (refused: use the
    fallback, or fail fast); pass the ticket back to :meth:`success`, :meth:`failure` or :meth:`release` (the call
    ended without a verdict: cancelled, or the dependency was merely busy). A successful probe closes the breaker, a
    failed one opens it for another ``reset_timeout_s``. :meth:`hold` opens it for a chosen time (a verdict that
    will not change soon, such as a rejected API key).

    Thread-safe: a lock guards every transition, so one breaker may serve several event loops (the provider
    guard's, shared by the embedded worker threads). A closed breaker's ``acquire`` and a success with no failure
    to forget take no lock: the hot path of a healthy dependency is an attribute read.
    """

    def __init__(
        self,
        name: str = "redis",
        fail_max: int = 3,
        reset_timeout_s: float = 5.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if fail_max < 1:
            raise ValueError("fail_max must be at least 1")
        if reset_timeout_s <= 0:
            raise ValueError("reset_timeout_s must be positive")
        self.name = name
        self.fail_max = fail_max
        self.reset_timeout_s = reset_timeout_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._hold_s = reset_timeout_s
        self._probing = False

    @property
    def state(self) -> BreakerState:
        with self._lock:
            if self._opened_at is None:
                return "closed"
            if self._probing or self._clock() - self._opened_at >= self._hold_s:
                return "half_open"
            return "open"

    @property
    def failures(self) -> int:
        """Consecutive failures recorded since the last success."""
        return self._failures

    @property
    def probing(self) -> bool:
        """True while the half-open probe is out."""
        return self._probing

    def acquire(self) -> Ticket | None:
        if self._opened_at is None:
            return "call"
        with self._lock:
            if self._opened_at is None:
                return "call"
            if self._probing or self._clock() - self._opened_at < self._hold_s:
                return None
            self._probing = True
            return "probe"

    def success(self, ticket: Ticket = "call") -> None:
        if self._failures == 0 and self._opened_at is None:
            return
        with self._lock:
            if self._opened_at is not None:
                logger.info("circuit %s closed: the dependency answers again", self.name)
            self._failures = 0
            self._opened_at = None
            self._probing = False

    def failure(self, ticket: Ticket = "call") -> bool:
        """Record a failed call; True when it opened (or re-opened) the breaker."""
        with self._lock:
            self._failures += 1
            if ticket == "probe":
                self._open_locked(self.reset_timeout_s)
                return True
            if self._failures >= self.fail_max:
                if self._opened_at is None:
                    logger.warning(
                        "circuit %s opened after %d consecutive failures; retrying in %.1f s",
                        self.name,
                        self._failures,
                        self.reset_timeout_s,
                    )
                self._open_locked(self.reset_timeout_s)
                return True
            return False

    def release(self, ticket: Ticket = "call") -> None:
        """The call ended without a verdict: if it was the probe, another caller may probe."""
        if ticket == "probe":
            with self._lock:
                self._probing = False

    def hold(self, seconds: float) -> None:
        """Open now for ``seconds``, whatever the state."""
        with self._lock:
            self._open_locked(seconds)

    def _open_locked(self, hold_s: float) -> None:
        self._opened_at = self._clock()
        self._hold_s = hold_s
        self._probing = False


class LocalWindows:
    """Exact moving windows in process memory: one deque of recent hit times per (item, identifiers).

    A deque holds only hits inside its window (older ones are dropped on each hit), so it never exceeds the
    item's amount; keys idle for longer than their window are swept every ``sweep_every`` hits.
    """

    def __init__(self, sweep_every: int = 10_000) -> None:
        self._hits: dict[tuple[Any, ...], tuple[deque[float], float]] = {}
        self._sweep_every = sweep_every
        self._since_sweep = 0

    def hit(self, item: RateLimitItem, *identifiers: str) -> float | None:
        """Spend one unit; None when allowed, else the seconds until the oldest hit leaves the window."""
        now = time.monotonic()
        span = float(item.get_expiry())
        key = (id(item), *identifiers)
        entry = self._hits.get(key)
        if entry is None:
            entry = self._hits[key] = (deque(), span)
        hits = entry[0]
        start = now - span
        while hits and hits[0] < start:
            hits.popleft()
        if len(hits) >= item.amount:
            return hits[0] + span - now
        hits.append(now)
        self._since_sweep += 1
        if self._since_sweep >= self._sweep_every:
            self._sweep(now)
        return None

    def remaining(self, item: RateLimitItem, *identifiers: str) -> int:
        entry = self._hits.get((id(item), *identifiers))
        if entry is None:
            return item.amount
        start = time.monotonic() - entry[1]
        return item.amount - sum(1 for t in entry[0] if t >= start)

    def _sweep(self, now: float) -> None:
        self._since_sweep = 0
        for key in [k for k, (hits, span) in self._hits.items() if not hits or hits[-1] < now - span]:
            del self._hits[key]


# (the refusing item, seconds until it frees a unit)
Refusal = tuple["RateLimitItem", float]


class FallbackLimiter:
    """Moving-window limits in a shared ``limits`` storage (``redis_url``; core/redis.py's ``limits`` row), or in
    process memory when there is none and for ``fallback_s`` after the shared storage failed.

    ``hit`` spends one unit of every item, in the order given (shortest window first, so a refused burst does not
    spend a daily budget), and answers None (allowed) or the first refusal with its wait. A call to the shared
    storage is bounded by twice its socket timeout: a hung Redis is given up on like a refusing one. The failure
    is logged once per fallback period, by its type only (a URL may hold a password).
    """

    def __init__(
        self,
        name: str,
        redis_url: str | None = None,
        *,
        timeout_s: float = 0.5,
        fallback_s: float = 30.0,
    ) -> None:
        self.name = name
        self.redis_url = redis_url
        self.timeout_s = timeout_s
        self.fallback_s = fallback_s
        self.local = LocalWindows()
        self.shared: Any = None  # the limits strategy on the shared storage, built on first use
        self.fallback_until = 0.0

    @property
    def degraded(self) -> bool:
        """True while the shared storage is failing and the in-process windows are used instead."""
        return self.redis_url is not None and time.monotonic() < self.fallback_until

    def _shared(self) -> Any:
        if self.shared is None:
            from limits.aio.strategies import MovingWindowRateLimiter

            from core.redis import limits_storage

            assert self.redis_url is not None
            self.shared = MovingWindowRateLimiter(limits_storage(self.redis_url, timeout_s=self.timeout_s))
        return self.shared

    async def hit(self, items: Sequence[RateLimitItem], *identifiers: str) -> Refusal | None:
        if self.redis_url is not None and time.monotonic() >= self.fallback_until:
            try:
                with anyio.fail_after(self.timeout_s * 2):
                    return await self._hit_shared(self._shared(), items, identifiers)
            except Exception as exc:  # a storage failure of any kind
                logger.warning(
                    "rate limit %s: storage failed (%s); using in-process limits", self.name, type(exc).__name__
                )
                self.fallback_until = time.monotonic() + self.fallback_s
        for item in items:
            wait = self.local.hit(item, *identifiers)
            if wait is not None:
                return item, wait
        return None

    @staticmethod
    async def _hit_shared(limiter: Any, items: Sequence[RateLimitItem], identifiers: tuple[str, ...]) -> Refusal | None:
        for item in items:
            if not await limiter.hit(item, *identifiers):
                stats = await limiter.get_window_stats(item, *identifiers)
                return item, stats.reset_time - time.time()
        return None

    async def remaining(self, items: Sequence[RateLimitItem], *identifiers: str) -> dict[str, int]:
        """Units left in each window (``{"5 per 1 second": 3}``) where the budget is spent now; empty when the
        shared storage does not answer."""
        if self.redis_url is None or self.degraded:
            return {str(item): self.local.remaining(item, *identifiers) for item in items}
        out: dict[str, int] = {}
        try:
            limiter = self._shared()
            with anyio.fail_after(self.timeout_s * 2):
                for item in items:
                    out[str(item)] = int((await limiter.get_window_stats(item, *identifiers)).remaining)
        except Exception:  # a failing storage is reported by hit(); metrics just go without
            return {}
        return out
