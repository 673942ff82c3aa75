"""The seam between universe membership and symbol validation (implemented in services/validation.py)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from services.schemas import ValidationStatus

__all__ = ["SymbolCheck", "SymbolValidator"]


@dataclass(frozen=True, slots=True)
class SymbolCheck:
    """The verdict on one symbol, as far as it could be settled within the call's deadline."""

    symbol: str
    status: ValidationStatus
    source: str | None = None  # yahoo | alpha_vantage | catalog | cache | store
    reason: str | None = None
    candidates: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def unknown(cls, symbol: str) -> SymbolCheck:
        return cls(symbol=symbol, status="unknown")


class SymbolValidator(Protocol):
    async def check_many(
        self, session: AsyncSession, symbols: Sequence[str], *, owner_id: uuid.UUID | None = None
    ) -> dict[str, SymbolCheck]:
        """Verdicts for ``symbols``; records valid and pending assets in the store (never commits). The pending
        assets it creates count against ``owner_id``'s hourly quota and are visible to it alone until confirmed."""
        ...
