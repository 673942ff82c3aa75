"""The domain error tree. Services raise these; server/errors.py turns them into tool results, once.

UniverseMCPError
├── InvalidArgument          invalid_argument
│   └── InvalidSymbols       invalid_argument (names each bad symbol)
├── NotFound                 not_found
│   ├── UniverseNotFound
│   ├── AssetNotFound
│   └── JobNotFound
├── AlreadyExists            already_exists
│   └── UniverseExists
├── InvalidSymbol            invalid_symbol
├── LimitExceeded            limit_exceeded
├── RateLimited              rate_limited (retry_after_s)
├── ProviderUnavailable      provider_unavailable
├── Unauthorized             unauthorized
├── Forbidden                forbidden
├── Conflict                 conflict
└── InternalError            internal (error id only)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

__all__ = [
    "ERROR_CODES",
    "AlreadyExists",
    "AssetNotFound",
    "Conflict",
    "Forbidden",
    "InternalError",
    "InvalidArgument",
    "InvalidSymbol",
    "InvalidSymbols",
    "JobNotFound",
    "LimitExceeded",
    "NextActionHint",
    "NotFound",
    "ProviderUnavailable",
    "RateLimited",
    "Unauthorized",
    "UniverseExists",
    "UniverseMCPError",
    "UniverseNotFound",
]

ERROR_CODES = (
    "invalid_argument",
    "not_found",
    "already_exists",
    "invalid_symbol",
    "limit_exceeded",
    "rate_limited",
    "provider_unavailable",
    "unauthorized",
    "forbidden",
    "conflict",
    "internal",
)

# (tool, arguments, reason): services stay MCP-free, the tool layer types these as NextAction.
NextActionHint = tuple[str, Mapping[str, Any], str]


class UniverseMCPError(Exception):
    """Base of every error a caller can read and act on."""

    code: ClassVar[str] = "internal"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        details: Mapping[str, Any] | None = None,
        candidates: Sequence[str] = (),
        next_actions: Sequence[NextActionHint] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = dict(details or {})
        if candidates:
            self.details["candidates"] = list(candidates)
        self.next_actions = list(next_actions)


class InvalidArgument(UniverseMCPError):
    """An argument is malformed, out of range or not allowed."""

    code = "invalid_argument"


class InvalidSymbols(InvalidArgument):
    """One or more symbols are not syntactically valid tickers."""

    def __init__(self, bad: Mapping[str, str], **kwargs: Any) -> None:
        listed = ", ".join(f"{s!r} ({why})" for s, why in list(bad.items())[:20])
        more = f" and {len(bad) - 20} more" if len(bad) > 20 else ""
        super().__init__(
            f"{len(bad)} symbol(s) are not valid tickers: {listed}{more}.",
            hint="Tickers are 1-20 characters: letters, digits and . - ^ = / (e.g. AAPL, BRK.B, ^GSPC, EURUSD=X). "
            "Use search_assets to find a ticker by company name.",
            details={"invalid_symbols": dict(list(bad.items())[:100])},
            **kwargs,
        )


class NotFound(UniverseMCPError):
    """The thing named does not exist for this caller."""

    code = "not_found"


class UniverseNotFound(NotFound):
    """No universe with that id belongs to the caller."""


class AssetNotFound(NotFound):
    """No asset with that symbol is known."""


class JobNotFound(NotFound):
    """No job with that id belongs to the caller."""


class AlreadyExists(UniverseMCPError):
    """Creating this would duplicate something that exists."""

    code = "already_exists"


class UniverseExists(AlreadyExists):
    """The caller already has a universe with that name."""


class InvalidSymbol(UniverseMCPError):
    """A provider says the symbol does not exist."""

    code = "invalid_symbol"


class LimitExceeded(UniverseMCPError):
    """The request is larger than one call may be."""

    code = "limit_exceeded"


class RateLimited(UniverseMCPError):
    """The caller (or a provider) is over its rate limit; retry after `retry_after_s`."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: float, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after_s = round(max(retry_after_s, 0.0), 3)
        self.details["retry_after_s"] = self.retry_after_s


class ProviderUnavailable(UniverseMCPError):
    """No market-data provider could answer in time."""

    code = "provider_unavailable"


class Unauthorized(UniverseMCPError):
    """The caller is not authenticated."""

    code = "unauthorized"


class Forbidden(UniverseMCPError):
    """The caller's token does not allow this operation."""

    code = "forbidden"


class Conflict(UniverseMCPError):
    """The operation conflicts with the current state (e.g. a concurrent change)."""

    code = "conflict"


class InternalError(UniverseMCPError):
    """Something broke on our side; the error id finds the details in the server log."""

    code = "internal"
