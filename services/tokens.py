"""Bearer tokens for multi-tenant HTTP: issue, list, revoke, verify. MCP-free.

A token is ``umcp_`` + 32 random bytes (urlsafe base64). Only its SHA-256 is stored; it is printed once at creation.
Scopes: ``read`` (read tools), ``write`` (tools that change universes or jobs), ``validate`` (tools that ask
market-data providers) and ``admin`` (infrastructure detail in get_service_health: worker hosts, pids, queue
depths). A token gets the first three unless told otherwise; ``admin`` is only ever given on purpose.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from services.errors import InvalidArgument, NotFound
from services.schemas import ALL_SCOPES
from storage.db import utcnow
from storage.models import ApiToken
from storage.repositories import tokens as repo
from storage.repositories.users import get_or_create_user

__all__ = [
    "ADMIN_SCOPE",
    "KNOWN_SCOPES",
    "IssuedToken",
    "TokenInfo",
    "hash_token",
    "issue_token",
    "list_tokens",
    "parse_duration",
    "revoke_token",
    "verify_token",
]

PREFIX = "umcp_"
ADMIN_SCOPE = "admin"
KNOWN_SCOPES = ALL_SCOPES | {ADMIN_SCOPE}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text)
    if not match:
        raise InvalidArgument(f"{text!r} is not a duration; use e.g. 30m, 12h, 90d or 4w.")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def parse_scopes(scopes: list[str] | None) -> list[str]:
    chosen = sorted(set(scopes or ALL_SCOPES))
    unknown = set(chosen) - KNOWN_SCOPES
    if unknown:
        raise InvalidArgument(f"unknown scope(s) {sorted(unknown)}; choose from {sorted(KNOWN_SCOPES)}.")
    return chosen


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str  # shown once
    id: uuid.UUID
    user: str
    scopes: list[str]
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: uuid.UUID
    user_id: uuid.UUID
    user: str
    scopes: frozenset[str]
    expires_at: datetime | None
    prefix: str
    created_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


async def issue_token(
    session: AsyncSession, user: str, scopes: list[str] | None = None, expires_in: timedelta | None = None
) -> IssuedToken:
    if not re.fullmatch(r"[A-Za-z0-9_.@-]{1,64}", user):
        raise InvalidArgument("user names are 1-64 letters, digits, '_', '.', '@' or '-'.")
    chosen = parse_scopes(scopes)
    owner = await get_or_create_user(session, user)
    raw = PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    token = await repo.add_token(
        session,
        ApiToken(
            id=uuid.uuid4(),
            user_id=owner.id,
            token_hash=hash_token(raw),
            prefix=raw[:12],
            scopes=" ".join(chosen),
            created_at=now,
            expires_at=now + expires_in if expires_in else None,
        ),
    )
    return IssuedToken(token=raw, id=token.id, user=owner.name, scopes=chosen, expires_at=token.expires_at)


async def verify_token(session: AsyncSession, raw: str) -> TokenInfo | None:
    """The token's owner and scopes, or None when unknown, revoked or expired."""
    if not raw.startswith(PREFIX) or len(raw) > 200:
        return None
    digest = hash_token(raw)
    found = await repo.find_by_hash(session, digest)
    if found is None:
        return None
    token, user = found
    # The lookup is by the SHA-256 of the whole token, never by its public prefix. Checking the stored hash again,
    # in constant time, keeps a forged token out even if a lookup ever matched too loosely (a case-insensitive
    # collation, a prefix index): only the holder of the exact token gets past this line.
    if not hmac.compare_digest(token.token_hash, digest):
        return None
    now = utcnow()
    if token.revoked_at is not None or (token.expires_at is not None and token.expires_at <= now):
        return None
    return TokenInfo(
        id=token.id,
        user_id=user.id,
        user=user.name,
        scopes=frozenset(token.scopes.split()),
        expires_at=token.expires_at,
        prefix=token.prefix,
        last_used_at=token.last_used_at,
    )


async def list_tokens(session: AsyncSession, user: str | None = None) -> list[TokenInfo]:
    return [
        TokenInfo(
            id=t.id,
            user_id=u.id,
            user=u.name,
            scopes=frozenset(t.scopes.split()),
            expires_at=t.expires_at,
            prefix=t.prefix,
            created_at=t.created_at,
            revoked_at=t.revoked_at,
            last_used_at=t.last_used_at,
        )
        for t, u in await repo.list_tokens(session, user)
    ]


async def revoke_token(session: AsyncSession, id_or_prefix: str) -> int:
    count = await repo.revoke(session, id_or_prefix.strip(), utcnow())
    if count == 0:
        raise NotFound(
            f"No active token matches {id_or_prefix!r}.", hint="`universe-mcp token list` shows ids and prefixes."
        )
    return count


async def touch_token(session: AsyncSession, token_id: uuid.UUID) -> None:
    await repo.touch(session, token_id, utcnow())
