"""The `universe-mcp` command line: serve, call, db, token, listings, worker, scheduler, config.

Exit codes (docs/DEPLOYMENT.md): 0 success; 1 invalid settings, or `call` got an error result; 2 bad command-line
usage; 3 the store cannot be used (data directory or database; one line on stderr names it and the setting).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from typing import Any

from pydantic import ValidationError

from server.preflight import EXIT_STORE_UNAVAILABLE, StoreUnavailable, check_listings_snapshot, check_store
from server.settings import Settings

__all__ = ["main"]


def _settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False))
        raise SystemExit(f"universe-mcp: invalid settings: {problems}") from None


def _configure_logging(settings: Settings) -> None:
    # Operator logs go to stderr; stdout belongs to the MCP stdio protocol.
    logging.basicConfig(
        level=settings.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("httpx", "httpcore", "alembic.runtime.migration", "yfinance", "peewee"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(
        args,
        transport=args.transport,
        host=args.host,
        port=args.port,
        toolsets=args.toolsets,
        read_only=True if args.read_only else None,
    )
    _configure_logging(settings)
    # A store it cannot use is one line and exit code 3, not a traceback; checked before the server's own imports.
    # So is a damaged listings snapshot (loaded into the store on start).
    check_listings_snapshot(settings)
    asyncio.run(check_store(settings))
    from server.app import build_server
    from server.transports import banner, run_http, run_stdio

    server = build_server(settings)
    print(banner(settings), file=sys.stderr, flush=True)
    if settings.transport == "stdio":
        asyncio.run(run_stdio(server, settings))
    else:
        run_http(server, settings)
    return 0


async def _call(settings: Settings, tool: str, arguments: dict[str, Any], url: str | None) -> dict[str, Any]:
    from mcp import Client

    if url:
        target: Any = url
    else:
        from server.app import build_server

        target = build_server(settings)
    async with Client(target) as client:
        result = await client.call_tool(tool, arguments)
    if result.structured_content is not None:
        return {"is_error": result.is_error, **result.structured_content}
    return {"is_error": result.is_error, "content": [getattr(c, "text", None) for c in result.content]}


def cmd_call(args: argparse.Namespace) -> int:
    try:
        arguments = json.loads(args.args)
    except json.JSONDecodeError as exc:
        print(f"universe-mcp: --args is not JSON: {exc.msg} at position {exc.pos}", file=sys.stderr)
        return 2
    if not isinstance(arguments, dict):
        print("universe-mcp: --args must be a JSON object", file=sys.stderr)
        return 2
    settings = _settings(args, log_level="WARNING")
    _configure_logging(settings)
    if not args.url:
        check_listings_snapshot(settings)
        asyncio.run(check_store(settings))
    out = asyncio.run(_call(settings, args.tool, arguments, args.url))
    print(json.dumps(out, indent=2, default=str))
    return 1 if out.get("is_error") else 0


def cmd_db(args: argparse.Namespace) -> int:
    from storage import migrate
    from storage.db import make_engine

    settings = _settings(args)
    _configure_logging(settings)

    async def run() -> None:
        await check_store(settings, migrate_store=False)
        # As the role that owns the tables (UNIVERSE_MCP_DATABASE_ADMIN_URL, else the one URL), granting the
        # server's role access (UNIVERSE_MCP_DATABASE_APP_ROLE): exactly what `serve` does on start. Run as the
        # server's role, tables would be created owned by it (where it may create them), and row-level security
        # would not apply to the server.
        engine = make_engine(settings.admin_sqlalchemy_url)
        try:
            if args.action == "upgrade":
                await migrate.upgrade(engine, args.revision or "head", app_role=settings.database_app_role)
            else:
                await migrate.downgrade(engine, args.revision or "-1")
        finally:
            await engine.dispose()
        if args.action == "upgrade" and settings.admin_sqlalchemy_url != settings.sqlalchemy_url:
            await check_store(settings, migrate_store=False)  # the server's role: connects, and RLS applies to it

    asyncio.run(run())
    print(
        f"store {settings.describe_store()} is at revision {args.revision or ('head' if args.action == 'upgrade' else '-1')}"
    )
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from server.config_docs import render

    print(render(), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="universe-mcp", description="An MCP server for investment universes.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the MCP server (streamable HTTP by default, or stdio)")
    serve.add_argument("--transport", choices=["http", "stdio"])
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--toolsets", help="comma-separated toolsets to expose")
    serve.add_argument("--read-only", action="store_true", help="expose only tools that change nothing")
    serve.set_defaults(func=cmd_serve)

    call = sub.add_parser("call", help="call one tool and print its structured result")
    call.add_argument("tool")
    call.add_argument("--args", default="{}", help="tool arguments as a JSON object")
    call.add_argument("--url", help="a running server's MCP URL (default: in-process on the local store)")
    call.set_defaults(func=cmd_call)

    db = sub.add_parser("db", help="store migrations")
    db.add_argument("action", choices=["upgrade", "downgrade"])
    db.add_argument("revision", nargs="?")
    db.set_defaults(func=cmd_db)

    from server.cli_tokens import add_token_commands

    add_token_commands(sub)
    from server.cli_listings import add_listings_commands

    add_listings_commands(sub)  # `listings build-snapshot` and `listings sync`
    from workers.cli import add_worker_commands

    add_worker_commands(sub)  # `worker` and `scheduler`

    config = sub.add_parser(
        "config", help="print the settings reference: every UNIVERSE_MCP_* setting, its default and meaning (Markdown)"
    )
    config.add_argument("what", choices=["docs"])
    config.set_defaults(func=cmd_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except StoreUnavailable as exc:
        print(f"universe-mcp: {exc}", file=sys.stderr)
        return EXIT_STORE_UNAVAILABLE


if __name__ == "__main__":
    sys.exit(main())
