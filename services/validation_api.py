"""The seam between universe membership and symbol validation (implemented in services/validation.py)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from services.schemas import SymbolVerdict

__all__ = ["SymbolCheck", "SymbolValidator"]


# The verdict membership reads (status, source, reason, candidates) is the validation verdict itself: one shape from
# the validation service to the universe service (services/schemas.py: SymbolVerdict; ``SymbolCheck.unknown(symbol)``
# when no verdict was asked).
SymbolCheck = SymbolVerdict


class SymbolValidator(Protocol):
    async def check_many(
        self, session: AsyncSession, symbols: Sequence[str], *, owner_id: uuid.UUID | None = None
    ) -> dict[str, SymbolCheck]:
        """Verdicts for ``symbols``; records valid and pending assets in the store (never commits). The pending
        assets it creates count against ``owner_id``'s hourly quota and are visible to it alone until confirmed."""
        ...
