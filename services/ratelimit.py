"""Per-owner rate limits by tool class (read, write, validate), on the `limits` library.

Storage is Redis when configured, so every replica shares one budget per owner; when Redis fails the limiter
falls back to per-process memory for a while instead of failing calls (a limit is a protection, not a feature).

The per-process limiter is a moving window of its own (``_LocalWindows``), not ``limits``' async memory storage:
that storage starts a clean-up task on nearly every hit and the task hops to a worker thread, which cost about
0.2 ms per tool call (measured by `make bench`, docs/BENCHMARKS.md). The semantics are the same: a call is allowed
while fewer than N calls fell inside the last window.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Mapping

from limits import RateLimitItem, parse_many
from limits.aio import strategies
from limits.storage import storage_from_string

from services.errors import RateLimited

__all__ = ["OwnerRateLimiter"]

logger = logging.getLogger(__name__)


class _LocalWindows:
    """Exact moving windows in process memory: one deque of recent hit times per (item, owner, class).

    A deque holds only hits inside its window (older ones are dropped on each hit), so it never exceeds the
    item's amount; keys idle for longer than their window are swept every ``sweep_every`` hits.
    """

    def __init__(self, sweep_every: int = 10_000) -> None:
        self._hits: dict[tuple[int, str, str], tuple[deque[float], float]] = {}
        self._sweep_every = sweep_every
        self._since_sweep = 0

    def hit(self, item: RateLimitItem, owner: str, tool_class: str) -> float | None:
        """Spend one call; None when allowed, else the seconds until the oldest call leaves the window."""
        now = time.monotonic()
        span = float(item.get_expiry())
        key = (id(item), owner, tool_class)
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

    def _sweep(self, now: float) -> None:
        self._since_sweep = 0
        for key in [k for k, (hits, span) in self._hits.items() if not hits or hits[-1] < now - span]:
            del self._hits[key]


class OwnerRateLimiter:
    def __init__(
        self, limits_by_class: Mapping[str, str], redis_url: str | None = None, fallback_s: float = 30.0
    ) -> None:
        self.items: dict[str, list[RateLimitItem]] = {
            cls: sorted(parse_many(spec), key=lambda i: i.get_expiry()) for cls, spec in limits_by_class.items() if spec
        }
        self._memory = _LocalWindows()
        self._shared = None
        if redis_url:
            storage = storage_from_string(
                "async+" + redis_url,
                implementation="redispy",
                wrap_exceptions=True,
                socket_timeout=0.5,
                socket_connect_timeout=0.5,
            )
            self._shared = strategies.MovingWindowRateLimiter(storage)
        self.fallback_s = fallback_s
        self._fallback_until = 0.0

    async def hit(self, owner: str, tool_class: str) -> None:
        """Spend one call of ``owner``'s ``tool_class`` budget, or raise RateLimited with the wait."""
        items = self.items.get(tool_class)
        if not items:
            return
        if self._shared is None or time.monotonic() < self._fallback_until:
            self._hit_memory(items, owner, tool_class)
            return
        try:
            await self._hit_shared(self._shared, items, owner, tool_class)
        except RateLimited:
            raise
        except Exception as exc:  # storage failure (Redis down): per-process limits for a while
            logger.warning("rate-limit storage failed (%s); using in-process limits", type(exc).__name__)
            self._fallback_until = time.monotonic() + self.fallback_s
            self._hit_memory(items, owner, tool_class)

    def _hit_memory(self, items: list[RateLimitItem], owner: str, tool_class: str) -> None:
        for item in items:
            wait = self._memory.hit(item, owner, tool_class)
            if wait is not None:
                raise _limited(item, tool_class, wait)

    async def _hit_shared(self, limiter, items: list[RateLimitItem], owner: str, tool_class: str) -> None:  # noqa: ANN001
        for item in items:
            if not await limiter.hit(item, "owner", owner, tool_class):
                stats = await limiter.get_window_stats(item, "owner", owner, tool_class)
                raise _limited(item, tool_class, stats.reset_time - time.time())


def _limited(item: RateLimitItem, tool_class: str, wait_s: float) -> RateLimited:
    wait = max(0.05, wait_s)
    return RateLimited(
        f"Too many {tool_class} calls: the limit is {item}.",
        retry_after_s=wait,
        hint=f"Wait {wait:.1f} s before the next {tool_class} call, or batch work into fewer calls.",
        details={"limit": str(item), "tool_class": tool_class},
    )
