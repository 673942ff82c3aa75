"""The `universe-mcp` command line: serve, call, db, token, listings, worker, scheduler, config.

Exit codes (docs/DEPLOYMENT.md): 0 success; 1 invalid settings, or `call` got an error result; 2 bad command-line
usage; 3 the store cannot be used (data directory or database; one line on stderr names it and the setting).
Settings come from UNIVERSE_MCP_* environment variables and a `.env` file in the working directory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import textwrap
from typing import Any

from core.settings import Settings, load_settings
from server.preflight import EXIT_STORE_UNAVAILABLE, StoreUnavailable, check_listings_snapshot, check_store

__all__ = ["main"]


def _configure_logging(settings: Settings) -> None:
    # Operator logs go to stderr, in one format (log_format); stdout belongs to the MCP stdio protocol.
    from core.logs import configure_logging

    configure_logging(settings)


def cmd_serve(args: argparse.Namespace) -> int:
    settings = load_settings(
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


def _as_dict(result: Any) -> dict[str, Any]:
    if result.structured_content is not None:
        return {"is_error": result.is_error, **result.structured_content}
    return {"is_error": result.is_error, "content": [getattr(c, "text", None) for c in result.content]}


async def _call(
    settings: Settings,
    tool: str,
    arguments: dict[str, Any],
    url: str | None,
    *,
    wait: bool = False,
    poll_s: float = 1.0,
) -> dict[str, Any]:
    from mcp import Client

    from server.cli_progress import Progress, job_of, job_view

    if url:
        target: Any = url
    else:
        from server.app import build_server

        target = build_server(settings)
    progress = Progress(sys.stderr) if wait else None
    async with Client(target) as client:
        # With --wait, the tool's own progress notifications (start_bulk_validation's wait=true) drive the bar too.
        result = await client.call_tool(tool, arguments, progress_callback=progress.notified if progress else None)
        out = _as_dict(result)
        job_id = job_of(out) if wait and not out["is_error"] else None
        while job_id and progress is not None:
            status = _as_dict(await client.call_tool("get_job_status", {"job_id": job_id}))
            if status["is_error"]:
                out["job"] = status
                break
            view = job_view(status)
            progress.show(view)
            if view.done:
                out["job"] = status
                break
            await asyncio.sleep(poll_s)
        if progress is not None:
            progress.close()
    return out


def _read_arguments(args: argparse.Namespace) -> dict[str, Any] | str:
    """The tool arguments from --args or --args-file (``-``: stdin), or the problem with them, in words."""
    if args.args_file is not None:
        source = "--args-file"
        try:
            if args.args_file == "-":
                text = sys.stdin.read()
            else:
                with open(args.args_file, encoding="utf-8") as handle:
                    text = handle.read()
        except OSError as exc:
            return f"--args-file {args.args_file}: {exc.strerror or type(exc).__name__}"
        except UnicodeDecodeError:
            return f"--args-file {args.args_file}: not UTF-8 text"
    else:
        source, text = "--args", args.args
    try:
        arguments = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"{source} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    if not isinstance(arguments, dict):
        return f"{source} must hold a JSON object (the tool's arguments by name)"
    return arguments


def cmd_call(args: argparse.Namespace) -> int:
    arguments = _read_arguments(args)
    if isinstance(arguments, str):
        print(f"universe-mcp: {arguments}", file=sys.stderr)
        return 2
    settings = load_settings(log_level="WARNING")
    _configure_logging(settings)
    if not args.url:
        check_listings_snapshot(settings)
        asyncio.run(check_store(settings))
    out = asyncio.run(_call(settings, args.tool, arguments, args.url, wait=args.wait))
    print(json.dumps(out, indent=2, default=str))
    failed = out.get("is_error") or (out.get("job") or {}).get("is_error")
    return 1 if failed else 0


def cmd_db(args: argparse.Namespace) -> int:
    from storage import migrate
    from storage.db import make_engine

    settings = load_settings()
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


_EPILOG = """\
settings: UNIVERSE_MCP_* environment variables, or the same names in a .env file in the working directory
(the environment wins); `universe-mcp config docs` lists them all.
"""


def _parser(sub: Any, name: str, help: str, description: str | None = None, epilog: str | None = None) -> Any:
    return sub.add_parser(
        name,
        help=help,
        description=textwrap.fill(description or help[0].upper() + help[1:] + ".", 100),
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def build_parser() -> argparse.ArgumentParser:
    from server.version import __version__

    parser = argparse.ArgumentParser(
        prog="universe-mcp",
        description="An MCP server for investment universes: named, owned, validated lists of securities.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"universe-mcp {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = _parser(
        sub,
        "serve",
        "run the MCP server (streamable HTTP by default, or stdio)",
        epilog="examples:\n"
        "  universe-mcp serve                      # http://127.0.0.1:8000/mcp, /metrics, dashboard at /\n"
        "  universe-mcp serve --transport stdio    # what MCP clients that start the server use\n\n" + _EPILOG,
    )
    serve.add_argument("--transport", choices=["http", "stdio"], help="default: UNIVERSE_MCP_TRANSPORT, else http")
    serve.add_argument("--host", help="HTTP bind address (default: UNIVERSE_MCP_HOST, else 127.0.0.1)")
    serve.add_argument("--port", type=int, help="HTTP port (default: UNIVERSE_MCP_PORT, else 8000)")
    serve.add_argument("--toolsets", help="comma-separated toolsets to expose (default: all)")
    serve.add_argument("--read-only", action="store_true", help="expose only tools that change nothing")
    serve.set_defaults(func=cmd_serve)

    call = _parser(
        sub,
        "call",
        "call one tool and print its structured result as JSON",
        description="Call one tool, in-process on the local store or on a running server (--url), and print its "
        "result envelope as JSON on stdout. Exit code 1 when the tool answers with an error.",
        epilog="examples:\n"
        "  universe-mcp call list_universes\n"
        '  universe-mcp call validate_symbols --args \'{"symbols": ["AAPL", "MSFT"]}\'\n'
        "  jq -n --rawfile csv big.csv '{name: \"Big\", csv_text: $csv}' | universe-mcp call import_universe_csv "
        "--args-file - --wait\n\n" + _EPILOG,
    )
    call.add_argument("tool", help="the tool's name (e.g. list_universes; `tools/list` shows them all)")
    given = call.add_mutually_exclusive_group()
    given.add_argument("--args", default="{}", help="tool arguments as an inline JSON object (default: {})")
    given.add_argument(
        "--args-file",
        metavar="FILE",
        help="read the arguments' JSON object from FILE, or from stdin with `-` (for arguments too large for the "
        "command line, such as a CSV file's text)",
    )
    call.add_argument("--url", help="a running server's MCP URL (default: in-process on the local store)")
    call.add_argument(
        "--wait",
        action="store_true",
        help="when the call starts a background job (bulk validation, a large CSV import), show its progress on "
        "stderr and wait until it finishes; the job's final status is added to the output as `job`",
    )
    call.set_defaults(func=cmd_call)

    db = _parser(
        sub,
        "db",
        "apply or undo store migrations",
        description="Apply (upgrade) or undo (downgrade) store migrations, as the role that owns the tables "
        "(UNIVERSE_MCP_DATABASE_ADMIN_URL, else UNIVERSE_MCP_DATABASE_URL). `serve` upgrades on start by itself.",
        epilog=_EPILOG,
    )
    db.add_argument("action", choices=["upgrade", "downgrade"], help="upgrade or downgrade")
    db.add_argument("revision", nargs="?", help="target revision (default: head for upgrade, -1 for downgrade)")
    db.set_defaults(func=cmd_db)

    from server.cli_tokens import add_token_commands

    add_token_commands(sub)
    from server.cli_listings import add_listings_commands

    add_listings_commands(sub)  # `listings build-snapshot` and `listings sync`
    from workers.cli import add_worker_commands

    add_worker_commands(sub)  # `worker` and `scheduler`

    config = _parser(
        sub,
        "config",
        "print the settings reference: every UNIVERSE_MCP_* setting, its default and meaning (Markdown)",
        epilog=_EPILOG,
    )
    config.add_argument("what", choices=["docs"], help="docs: the settings reference, as Markdown")
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
