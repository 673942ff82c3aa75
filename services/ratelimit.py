"""Per-owner rate limits by tool class (read, write, validate), on the `limits` library.

Storage is Redis when configured, so every replica shares one budget per owner; when Redis fails the limiter
falls back to per-process memory for a while instead of failing calls (a limit is a protection, not a feature).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from limits import RateLimitItem, parse_many
from limits.aio import strategies
from limits.storage import storage_from_string

from services.errors import RateLimited

__all__ = ["OwnerRateLimiter"]

logger = logging.getLogger(__name__)


class OwnerRateLimiter:
    def __init__(self, limits_by_class: Mapping[str, str], redis_url: str | None = None, fallback_s: float = 30.0) -> None:
        self.items: dict[str, list[RateLimitItem]] = {
            cls: sorted(parse_many(spec), key=lambda i: i.get_expiry()) for cls, spec in limits_by_class.items() if spec
        }
        self._memory = strategies.MovingWindowRateLimiter(storage_from_string("async+memory://"))
        self._shared = None
        if redis_url:
            storage = storage_from_string(
                "async+" + redis_url, implementation="redispy", wrap_exceptions=True,
                socket_timeout=0.5, socket_connect_timeout=0.5,
            )
            self._shared = strategies.MovingWindowRateLimiter(storage)
        self.fallback_s = fallback_s
        self._fallback_until = 0.0

    async def hit(self, owner: str, tool_class: str) -> None:
        """Spend one call of ``owner``'s ``tool_class`` budget, or raise RateLimited with the wait."""
        items = self.items.get(tool_class)
        if not items:
            return
        limiter = self._memory
        if self._shared is not None and time.monotonic() >= self._fallback_until:
            limiter = self._shared
        try:
            await self._hit(limiter, items, owner, tool_class)
        except RateLimited:
            raise
        except Exception as exc:  # storage failure (Redis down): per-process limits for a while
            logger.warning("rate-limit storage failed (%s); using in-process limits", type(exc).__name__)
            self._fallback_until = time.monotonic() + self.fallback_s
            await self._hit(self._memory, items, owner, tool_class)

    async def _hit(self, limiter, items: list[RateLimitItem], owner: str, tool_class: str) -> None:  # noqa: ANN001
        for item in items:
            if not await limiter.hit(item, "owner", owner, tool_class):
                stats = await limiter.get_window_stats(item, "owner", owner, tool_class)
                wait = max(0.05, stats.reset_time - time.time())
                raise RateLimited(
                    f"Too many {tool_class} calls: the limit is {item}.",
                    retry_after_s=wait,
                    hint=f"Wait {wait:.1f} s before the next {tool_class} call, or batch work into fewer calls.",
                    details={"limit": str(item), "tool_class": tool_class},
                )
