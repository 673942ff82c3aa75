"""The command line: --version, settings from .env, --args-file (stdin too) with --wait, complete --help, the banner."""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
from importlib.metadata import version

import pytest

from core.settings import Settings
from server.cli import build_parser, main
from server.cli_progress import Progress, job_of, job_view
from server.transports import banner
from tests.support.servers import run_command, server_env


@pytest.fixture
def root_logging():
    """cmd_call configures the root logger and quiets third-party loggers (core/logs.py); give pytest its handlers
    and every logger its level back afterwards (later tests read httpx's own lines)."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    levels = {
        name: log.level for name, log in logging.root.manager.loggerDict.items() if isinstance(log, logging.Logger)
    }
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])
    for name, log in logging.root.manager.loggerDict.items():
        if isinstance(log, logging.Logger):
            log.setLevel(levels.get(name, logging.NOTSET))


@pytest.fixture
def cli_env(monkeypatch, tmp_path):
    for key in [k for k in os.environ if k.startswith("UNIVERSE_MCP_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray .env from the checkout
    monkeypatch.setenv("UNIVERSE_MCP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("UNIVERSE_MCP_OFFLINE", "1")
    return tmp_path


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"universe-mcp {version('universe-mcp')}"


def test_settings_from_a_dotenv_file_with_the_environment_winning(cli_env, monkeypatch):
    (cli_env / ".env").write_text(
        "# operator settings\nUNIVERSE_MCP_LOCAL_USER=alice\nUNIVERSE_MCP_PORT=9123\nOTHER_TOOL_SETTING=ignored\n"
    )
    settings = Settings()
    assert (settings.local_user, settings.port) == ("alice", 9123)
    monkeypatch.setenv("UNIVERSE_MCP_PORT", "9200")
    assert Settings().port == 9200


def test_a_bad_dotenv_value_is_named_like_any_setting(cli_env, capsys):
    (cli_env / ".env").write_text("UNIVERSE_MCP_LOG_FORMAT=yaml\n")
    with pytest.raises(SystemExit) as exit_:
        main(["db", "upgrade"])
    assert "log_format" in str(exit_.value.code)


def test_args_file_from_stdin_and_from_a_file(cli_env, monkeypatch, capsys, root_logging):
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps({"symbols": ["AAPL", "MSFT"]})))
    assert main(["call", "validate_symbols", "--args-file", "-"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [v["symbol"] for v in out["data"]["verdicts"]] == ["AAPL", "MSFT"]

    path = cli_env / "args.json"
    path.write_text(json.dumps({"name": "From a file", "symbols": ["AAPL"], "validate": False}))
    assert main(["call", "create_universe", "--args-file", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["data"]["universe"]["name"] == "From a file"


def test_args_file_problems_are_usage_errors(cli_env, monkeypatch, capsys, root_logging):
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"symbols": [\n  "AAPL",\n}'))
    assert main(["call", "validate_symbols", "--args-file", "-"]) == 2
    assert "--args-file is not JSON" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", io.StringIO('["AAPL"]'))
    assert main(["call", "validate_symbols", "--args-file", "-"]) == 2
    assert "must hold a JSON object" in capsys.readouterr().err
    assert main(["call", "validate_symbols", "--args-file", str(cli_env / "missing.json")]) == 2
    assert "missing.json" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["call", "validate_symbols", "--args", "{}", "--args-file", "-"])
    assert exit_.value.code == 2


@pytest.mark.slow
def test_a_large_import_from_stdin_waits_for_its_job_with_progress(tmp_path):
    """More text than one command-line argument may hold (128 KiB on Linux), piped in, and the job followed."""
    rows = ["symbol,note"] + [f"SYM{i:05d},exported from a spreadsheet with a long note column" for i in range(3000)]
    payload = json.dumps({"name": "Big import", "csv_text": "\n".join(rows)})
    assert len(payload) > 131_072
    env = server_env(tmp_path / "data")
    command = ["call", "import_universe_csv"]
    with pytest.raises(OSError, match="Argument list too long"):
        run_command([*command, "--args", payload], env=env, cwd=tmp_path)
    done = run_command([*command, "--args-file", "-", "--wait"], env=env, cwd=tmp_path, input=payload, timeout_s=180)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["success"] and out["job"]["data"]["status"] == "completed"
    assert out["job"]["data"]["counts"]["processed"] == 3000
    progress = done.stderr.strip().splitlines()
    assert progress[-1].startswith("job completed: 3000 of 3000 symbols"), done.stderr
    assert len(progress) <= 12, "a line per tenth of the job at most, not one per poll"


def test_wait_finds_the_job_in_any_result_shape_and_draws_a_bar():
    assert job_of({"data": {"job_id": "j1", "status": "queued"}}) == "j1"
    assert job_of({"data": {"job_id": "j1", "status": "completed"}}) is None
    assert job_of({"data": {}, "metadata": {"job_id": "j2", "job_status": "running"}}) == "j2"
    assert job_of({"data": [], "next_actions": [{"tool": "get_job_status", "arguments": {"job_id": "j3"}}]}) == "j3"
    assert job_of({"data": {"universe": {}}, "next_actions": []}) is None

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Tty()
    bar = Progress(screen)
    envelope = {"data": {"status": "running", "counts": {"total": 200, "processed": 50, "valid": 40, "invalid": 10}}}
    bar.show(job_view(envelope))
    bar.close()
    assert "]  25% 50/200 running (40 valid, 10 invalid)" in screen.getvalue()
    assert screen.getvalue().startswith("\r[#######.")


def _commands(parser: argparse.ArgumentParser, path: str = "universe-mcp"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, f"{path} {name}")


def test_every_command_and_option_has_help():
    commands = dict(_commands(build_parser()))
    assert {"universe-mcp serve", "universe-mcp call", "universe-mcp token create", "universe-mcp worker"} <= set(
        commands
    )
    for path, parser in commands.items():
        assert parser.description, f"{path} has no description"
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._VersionAction | argparse._SubParsersAction):
                continue
            assert action.help, f"{path} {action.option_strings or action.dest} has no help"
        parser.format_help()  # renders


def test_the_banner_says_version_mode_listings_and_how_to_connect():
    text = banner(Settings(offline=True, port=8123, _env_file=None))
    assert f"Universe MCP {version('universe-mcp')}" in text
    assert "mode         : offline" in text
    assert "listings     : offline catalog as of 20" in text
    assert "claude mcp add --transport http universe-http http://127.0.0.1:8123/mcp" in text
    assert "metrics      : http://127.0.0.1:8123/metrics" in text
    online = banner(Settings(transport="stdio", _env_file=None))
    assert "mode         : online (Yahoo Finance, offline catalog)" in online and "stdin/stdout" in online
