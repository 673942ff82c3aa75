"""What the program says names settings and values, not files of this repository, which a user of the wheel (or of
the container image) does not have."""

from __future__ import annotations

import ast
import re
import tomllib

from tests.packaging.support import ROOT
from tests.support.servers import run_command, server_env

# `config docs` writes docs/CONFIGURATION.md itself: its header names the file it is meant to be saved as.
WRITES_DOCS = {"server/config_docs.py"}
REPOSITORY_FILE = re.compile(r"\b(docs|tests|bench|deploy)/|\b[A-Z_]+\.md\b")


def _docstrings(tree: ast.AST) -> set[int]:
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def test_no_message_points_at_a_file_of_the_repository():
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    packages = [pattern.rstrip("*").rstrip(".") for pattern in find["include"]]
    offending = []
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative in WRITES_DOCS:
                continue
            tree = ast.parse(path.read_text())
            docstrings = _docstrings(tree)
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                    if REPOSITORY_FILE.search(node.value):
                        offending.append(f"{relative}:{node.lineno}: {node.value[:100]!r}")
    assert not offending, "name the setting and value instead:\n" + "\n".join(offending)


def test_a_public_bind_without_auth_says_which_settings_fix_it(tmp_path):
    done = run_command(["serve", "--host", "0.0.0.0", "--port", "0"], env=server_env(tmp_path / "data"), timeout_s=120)
    assert done.returncode != 0
    refusal = done.stderr.strip().splitlines()[-1]
    assert refusal.startswith("Refusing to serve 0.0.0.0:0 without authentication"), done.stderr
    for remedy in ("UNIVERSE_MCP_HOST=127.0.0.1", "UNIVERSE_MCP_AUTH=token", "universe-mcp token create"):
        assert remedy in refusal, refusal
    assert not REPOSITORY_FILE.search(refusal), refusal
