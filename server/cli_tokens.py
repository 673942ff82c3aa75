"""`universe-mcp token create|list|revoke`: bearer tokens for UNIVERSE_MCP_AUTH=token."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from core.settings import Settings

__all__ = ["add_token_commands"]


async def _with_store(settings: Settings, work: Callable[[Any], Awaitable[Any]]) -> Any:
    from server.preflight import check_store
    from storage.db import make_engine, make_sessionmaker, unit_of_work

    await check_store(settings)  # migrates as the owner; a store it cannot use is one line (exit code 3)
    engine = make_engine(settings.admin_sqlalchemy_url)
    try:
        async with unit_of_work(make_sessionmaker(engine)) as session:
            return await work(session)
    finally:
        await engine.dispose()


def _run(args: argparse.Namespace) -> int:
    from services.errors import UniverseMCPError
    from services.tokens import issue_token, list_tokens, parse_duration, revoke_token

    settings = Settings()
    try:
        if args.token_command == "create":
            expires = parse_duration(args.expires) if args.expires else None
            scopes = [s.strip() for s in args.scopes.split(",") if s.strip()] if args.scopes else None
            issued = asyncio.run(_with_store(settings, lambda s: issue_token(s, args.user, scopes, expires)))
            print(issued.token)
            print(
                f"token {issued.id} for {issued.user}: scopes {' '.join(issued.scopes)}; "
                f"expires {issued.expires_at.isoformat() if issued.expires_at else 'never'}. "
                "It is shown only now: store it safely.",
                file=sys.stderr,
            )
        elif args.token_command == "list":
            rows = asyncio.run(_with_store(settings, lambda s: list_tokens(s, args.user)))
            print(f"{'id':36}  {'prefix':12}  {'user':16}  {'scopes':22}  {'expires':20}  {'revoked':20}  last used")
            for t in rows:
                print(
                    f"{t.id!s:36}  {t.prefix:12}  {t.user:16}  {' '.join(sorted(t.scopes)):22}  "
                    f"{t.expires_at.isoformat()[:19] if t.expires_at else 'never':20}  "
                    f"{t.revoked_at.isoformat()[:19] if t.revoked_at else '-':20}  "
                    f"{t.last_used_at.isoformat()[:19] if t.last_used_at else '-'}"
                )
        else:
            asyncio.run(_with_store(settings, lambda s: revoke_token(s, args.token)))
            print(f"revoked {args.token}; replicas stop accepting it within {settings.token_cache_s:g} s")
    except UniverseMCPError as exc:
        print(f"universe-mcp: {exc.message}" + (f" {exc.hint}" if exc.hint else ""), file=sys.stderr)
        return 2
    return 0


def add_token_commands(sub: Any) -> None:
    token = sub.add_parser(
        "token",
        help="issue, list and revoke bearer tokens",
        description="Issue, list and revoke the bearer tokens HTTP clients send when UNIVERSE_MCP_AUTH=token. "
        "Tokens are stored hashed in the store; a token is shown once, when issued.",
    )
    actions = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = actions.add_parser(
        "create",
        help="issue a token (printed once)",
        description="Issue a token for an owner (created when new) and print it once, on stdout.",
    )
    create.add_argument("--user", required=True, help="owner name (created when new)")
    create.add_argument(
        "--scopes",
        help="comma-separated: read,write,validate,admin (default: read,write,validate; admin adds "
        "infrastructure detail to get_service_health)",
    )
    create.add_argument("--expires", help="lifetime such as 12h, 90d or 4w (default: no expiry)")
    listing = actions.add_parser(
        "list",
        help="list tokens (never the tokens themselves)",
        description="List tokens: id, prefix, owner, scopes, expiry, revocation and last use (never the tokens).",
    )
    listing.add_argument("--user", help="only this owner's tokens (default: every owner's)")
    revoke = actions.add_parser(
        "revoke",
        help="revoke a token by id or prefix",
        description="Revoke a token by id or prefix; replicas stop accepting it within token_cache_s seconds.",
    )
    revoke.add_argument("token", help="token id or its prefix as shown by `token list`")
    token.set_defaults(func=_run)
