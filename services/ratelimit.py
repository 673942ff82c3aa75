"""Per-owner rate limits by tool class (read, write, validate), on the `limits` library.

The budgets are spent through core/resilience.py's ``FallbackLimiter``: in Redis when configured, so every replica
shares one budget per owner; when Redis fails, in per-process memory for a while instead of failing calls (a limit
is a protection, not a feature); without Redis, in exact in-process moving windows.
"""

from __future__ import annotations

from collections.abc import Mapping

from limits import RateLimitItem, parse_many

from core.resilience import FallbackLimiter
from services.errors import RateLimited

__all__ = ["OwnerRateLimiter"]


class OwnerRateLimiter:
    def __init__(
        self, limits_by_class: Mapping[str, str], redis_url: str | None = None, fallback_s: float = 30.0
    ) -> None:
        self.items: dict[str, list[RateLimitItem]] = {
            cls: sorted(parse_many(spec), key=lambda i: i.get_expiry()) for cls, spec in limits_by_class.items() if spec
        }
        self.limiter = FallbackLimiter("per-owner", redis_url or None, fallback_s=fallback_s)

    async def hit(self, owner: str, tool_class: str) -> None:
        """Spend one call of ``owner``'s ``tool_class`` budget, or raise RateLimited with the wait."""
        items = self.items.get(tool_class)
        if not items:
            return
        refused = await self.limiter.hit(items, "owner", owner, tool_class)
        if refused is not None:
            raise _limited(refused[0], tool_class, refused[1])


def _limited(item: RateLimitItem, tool_class: str, wait_s: float) -> RateLimited:
    wait = max(0.05, wait_s)
    return RateLimited(
        f"Too many {tool_class} calls: the limit is {item}.",
        retry_after_s=wait,
        hint=f"Wait {wait:.1f} s before the next {tool_class} call, or batch work into fewer calls.",
        details={"limit": str(item), "tool_class": tool_class},
    )
