"""Who is calling: bearer tokens (our own, or JWTs from an identity provider) mapped to an owner and scopes.

The SDK's bearer middleware calls a TokenVerifier on every HTTP request and answers 401 itself for a missing or
rejected token; tools then read the verified AccessToken (``subject`` = owner id, ``scopes``) through
``get_access_token()``. Verifications are cached for a few seconds, which bounds how long a revoked token keeps
working on any replica.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from pydantic import AnyHttpUrl

from core.settings import Settings
from services.tokens import touch_token, verify_token
from storage.repositories.users import get_or_create_user

if TYPE_CHECKING:
    from core.wiring import AppState

__all__ = ["JwtVerifier", "StoreTokenVerifier", "auth_settings", "build_verifier", "subject_user_name"]

logger = logging.getLogger(__name__)
SCOPE_ALIASES = {
    "universe:read": "read",
    "universe:write": "write",
    "universe:validate": "validate",
    "universe:admin": "admin",
}
JWT_SCOPES = frozenset({"read", "write", "validate", "admin"})
USER_NAME_MAX = 64  # users.name
DIGEST_MARK = "sub~sha256~"  # '~' cannot appear in names `token create` accepts


def subject_user_name(subject: str) -> str:
    """The owner name of a JWT subject: the subject itself when it fits, else a digest of all of it.

    Owner names hold 64 characters and subjects may be longer (the JWT spec sets no limit); cutting them made two
    subjects that share their first 64 characters one tenant. Longer subjects, and any that could be taken for a
    digest, become ``sub~sha256~`` + the unpadded base64url SHA-256 of the whole subject (54 characters): distinct
    subjects stay distinct owners, and short subjects keep the names they always had.
    """
    if len(subject) <= USER_NAME_MAX and not subject.startswith(DIGEST_MARK):
        return subject
    digest = base64.urlsafe_b64encode(hashlib.sha256(subject.encode()).digest()).rstrip(b"=").decode()
    return DIGEST_MARK + digest


class _BoundVerifier(TokenVerifier):
    """A verifier that needs the process's AppState (bound by the lifespan once the store is open)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state: AppState | None = None
        self._cache: dict[str, tuple[AccessToken | None, float]] = {}

    def bind(self, state: AppState) -> None:
        self.state = state

    async def verify_token(self, token: str) -> AccessToken | None:
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[1] > now:
            return hit[0]
        if self.state is None:
            return None
        try:
            verified = await self._verify(token)
        except Exception as exc:  # a verifier must answer, never crash the request with details
            logger.warning("token verification failed: %s", type(exc).__name__)
            verified = None
        if verified is not None and verified.expires_at is not None and verified.expires_at <= time.time():
            verified = None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (verified, now + self.settings.token_cache_s)
        return verified

    async def _verify(self, token: str) -> AccessToken | None:
        raise NotImplementedError


class StoreTokenVerifier(_BoundVerifier):
    """Tokens issued by `universe-mcp token create`, looked up by hash in the store."""

    _touched: dict[uuid.UUID, float]

    async def _verify(self, token: str) -> AccessToken | None:
        assert self.state is not None
        async with self.state.unit_of_work() as session:
            info = await verify_token(session, token)
            if info is None:
                return None
            # last_used_at is informational: write it at most once a minute per token.
            touched = getattr(self, "_touched", {})
            self._touched = touched
            if touched.get(info.id, 0) < time.monotonic() - 60:
                touched[info.id] = time.monotonic()
                await touch_token(session, info.id)
        return AccessToken(
            token=token,
            client_id=info.user,
            subject=str(info.user_id),
            scopes=sorted(info.scopes),
            expires_at=int(info.expires_at.timestamp()) if info.expires_at else None,
        )


class JwtVerifier(_BoundVerifier):
    """JWTs signed by an identity provider: signature (JWKS), issuer, audience and expiry are checked."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        import jwt

        # The key set is cached for 5 minutes (lifespan), so a key the provider withdraws stops working within
        # them. No per-key cache (cache_keys): PyJWT's never expires, and would trust a withdrawn key until restart.
        self._jwks = jwt.PyJWKClient(settings.jwt_jwks_url or "", lifespan=300, timeout=5)

    async def _verify(self, token: str) -> AccessToken | None:
        import jwt

        assert self.state is not None
        try:
            key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=["RS256", "ES256", "PS256", "EdDSA"],
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                options={"require": ["exp", "sub", "iss"]},
            )
        except jwt.PyJWTError as exc:
            logger.info("rejected a JWT: %s", type(exc).__name__)
            return None
        raw_scopes = claims.get("scope", claims.get("scp", ""))
        names = raw_scopes.split() if isinstance(raw_scopes, str) else list(raw_scopes)
        scopes = sorted({SCOPE_ALIASES.get(s, s) for s in names} & JWT_SCOPES)
        subject = str(claims["sub"])
        async with self.state.unit_of_work() as session:
            user = await get_or_create_user(session, subject_user_name(subject))
        return AccessToken(
            token=token,
            client_id=user.name,
            subject=str(user.id),
            scopes=scopes,
            expires_at=int(claims["exp"]),
            claims={"iss": claims.get("iss")},
        )


def build_verifier(settings: Settings) -> _BoundVerifier | None:
    if settings.auth == "token":
        return StoreTokenVerifier(settings)
    if settings.auth == "jwt":
        missing = [n for n in ("jwt_issuer", "jwt_audience", "jwt_jwks_url") if not getattr(settings, n)]
        if missing:
            raise SystemExit(f"UNIVERSE_MCP_AUTH=jwt needs {', '.join('UNIVERSE_MCP_' + m.upper() for m in missing)}.")
        return JwtVerifier(settings)
    return None


def auth_settings(settings: Settings) -> AuthSettings | None:
    if settings.auth == "none":
        return None
    public = settings.public_url or f"http://{settings.host}:{settings.port}/mcp"
    if settings.auth == "jwt":
        assert settings.jwt_issuer is not None, "build_verifier stops the server first when auth=jwt has no issuer"
        issuer = settings.jwt_issuer
    else:
        issuer = public.rsplit("/mcp", 1)[0] or public
    return AuthSettings(
        issuer_url=AnyHttpUrl(issuer),
        resource_server_url=AnyHttpUrl(public),
        required_scopes=None,  # scopes are checked per tool (read, write, validate)
        validate_token_resource=False,
    )
