"""Mutation testing of the security and integrity core with mutmut 3 (`make mutate`; docs/TESTING.md).

Each target module (scripts/mutation_targets.toml) runs in a workspace of its own, build/mutation/<module>/: a copy
of the packages and the tests, and a pyproject whose ``[tool.mutmut]`` section mutates that module only and selects
only the tests listed for it. mutmut then runs, for each mutant, just the tests that executed the mutated function
(it records that in a first, clean run), so a module costs seconds to minutes rather than one suite per mutant.

The report (build/mutation/report.md and report.json) gives per module: mutants, killed, survived, timeouts,
mutants no selected test reached, mutants explained as equivalent (listed with the reason in the targets file),
the score = killed / (mutants - equivalent), and the diff of every mutant that was not killed. Survivors listed
under ``explained`` (not equivalent, but not observable by an honest test here, e.g. a tuning constant whose only
effect is speed) are shown with their explanation and still count against the score.

    python scripts/mutate.py                                  # every target
    python scripts/mutate.py --module services/tokens.py     # one (repeat --module, or comma-separate)
    python scripts/mutate.py --list                           # the targets and their tests

Exit status: 0 when every module ran (whatever its score), 1 when a run failed (e.g. the clean test run failed),
2 for bad arguments.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS_FILE = ROOT / "scripts" / "mutation_targets.toml"
# Everything a test may import: the packages of the project and the tests themselves.
PACKAGES = ("core", "server", "tools", "services", "providers", "storage", "workers")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "artifacts", ".pytest_cache", "node_modules")
KILLED = {"killed", "timeout", "caught by type check"}  # a timeout is the test run noticing the mutant (a hang)


@dataclass
class Target:
    module: str  # a path such as services/tokens.py
    tests: list[str]
    functions: list[str] = field(default_factory=list)  # only these functions' mutants (globs); all when empty
    equivalent: list[dict[str, str]] = field(default_factory=list)  # {function, line, reason}: left out of the score
    explained: list[dict[str, str]] = field(default_factory=list)  # {function, line, reason}: survivors, with why

    @property
    def dotted(self) -> str:
        return self.module.removesuffix(".py").replace("/", ".")

    @property
    def slug(self) -> str:
        return self.module.removesuffix(".py").replace("/", "-")

    def selects(self, mutant: str) -> bool:
        return not self.functions or any(fnmatch.fnmatch(function_of(mutant), f) for f in self.functions)


@dataclass
class Survivor:
    name: str
    function: str
    status: str
    diff: str
    equivalent_because: str | None = None
    explanation: str | None = None  # a survivor that is not equivalent but cannot be killed here, and why


@dataclass
class ModuleResult:
    module: str
    tests: list[str]
    seconds: float
    counts: dict[str, int]
    equivalent: int
    score: float | None  # killed / (mutants - equivalent), as a percentage
    survivors: list[Survivor]
    error: str | None = None


def load_targets(path: Path = TARGETS_FILE) -> dict[str, Target]:
    data = tomllib.loads(path.read_text())
    targets = {}
    for raw in data["target"]:
        target = Target(
            module=raw["module"],
            tests=list(raw["tests"]),
            functions=list(raw.get("functions", [])),
            equivalent=list(raw.get("equivalent", [])),
            explained=list(raw.get("explained", [])),
        )
        targets[target.module] = target
    return targets


def function_of(mutant: str) -> str:
    """``services.tokens.x_verify_token__mutmut_3`` -> ``verify_token``; methods -> ``Class.method``."""
    last = mutant.rsplit(".", 1)[-1].split("__mutmut_")[0]
    if last.startswith("xǁ"):
        return ".".join(part for part in last[2:].split("ǁ") if part)
    return last.removeprefix("x_")


def changed_lines(diff: str, sign: str) -> list[str]:
    """The lines a mutant's diff adds (``sign`` "+") or removes ("-"), stripped."""
    return [line[1:].strip() for line in diff.splitlines() if line[:1] == sign and line[:3] != sign * 3]


def _mutmut_section(target: Target) -> str:
    """The per-target ``[tool.mutmut]`` section (JSON string arrays are valid TOML arrays)."""
    base = tomllib.loads((ROOT / "pyproject.toml").read_text()).get("tool", {}).get("mutmut", {})
    values = dict(base)
    values["source_paths"] = list(PACKAGES)
    values["only_mutate"] = [target.module]
    values["pytest_add_cli_args_test_selection"] = target.tests
    # Each mutant's tests fastest first (tests/support/fastest_first.py): -x then stops at the cheapest failure.
    values["pytest_add_cli_args"] = [*values.get("pytest_add_cli_args", []), "-p", "tests.support.fastest_first"]
    lines = ["[tool.mutmut]"]
    for key, value in values.items():
        lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def prepare_workspace(target: Target, base: Path) -> Path:
    """A fresh copy of the packages and tests, with a pyproject that mutates ``target.module`` only."""
    work = base / target.slug
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    for package in (*PACKAGES, "tests"):
        shutil.copytree(ROOT / package, work / package, ignore=IGNORED)
    pyproject = (ROOT / "pyproject.toml").read_text()
    # Drop the project's own [tool.mutmut] table (its keys are merged into the generated one).
    pyproject = re.sub(r"(?ms)^\[tool\.mutmut\]\n.*?(?=^\[|\Z)", "", pyproject)
    (work / "pyproject.toml").write_text(pyproject.rstrip() + "\n\n" + _mutmut_section(target))
    return work


def _mutmut(work: Path, *args: str, log: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("CI", None)  # CI=true turns every skip into a failure; mutants are run the same way anywhere
    return subprocess.run(
        [sys.executable, "-m", "mutmut", *args],
        cwd=work,
        env=env,
        text=True,
        stdout=log.open("w") if log else subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
    )


def read_results(work: Path, target: Target) -> dict[str, int | None]:
    """mutant name -> mutmut exit code (None: not run), read from mutmut's own metadata file."""
    meta = work / "mutants" / (target.module + ".meta")
    if not meta.exists():
        return {}
    codes = json.loads(meta.read_text()).get("exit_code_by_key", {})
    return {name: code for name, code in codes.items() if target.selects(name)}


def _status(code: int | None) -> str:
    from mutmut.stats import status_by_exit_code  # mutmut's own mapping, so new codes read the same

    return status_by_exit_code[code]


def _reason(entries: list[dict[str, str]], function: str, diff: str) -> str | None:
    """The reason given for this mutant in the targets file. An entry's ``function`` is a glob; its ``line`` is the
    mutated line as the mutant has it, or, starting with "-", the original line: then every mutant of that line
    matches (deletions too)."""
    added, removed = changed_lines(diff, "+"), changed_lines(diff, "-")
    for entry in entries:
        line = entry["line"].strip()
        wanted, lines = (line[1:].strip(), removed) if line.startswith("-") else (line, added)
        if fnmatch.fnmatch(function, entry["function"]) and wanted in lines:
            return entry["reason"]
    return None


def run_target(target: Target, base: Path, max_children: int, *, report_only: bool = False) -> ModuleResult:
    """Mutate ``target.module`` in a fresh workspace and summarise; with ``report_only``, summarise the results the
    workspace already holds (after a run, or after re-testing its survivors there with ``mutmut run NAME...``)."""
    started = time.monotonic()
    work = base / target.slug
    log = base / f"{target.slug}.log"
    returncode = 0
    if not report_only:
        work = prepare_workspace(target, base)
        names: list[str] = []  # no names: every mutant of the module
        for pattern in target.functions:
            names += [
                f"{target.dotted}.x_{pattern}__mutmut_*",
                f"{target.dotted}.xǁ{pattern.replace('.', 'ǁ')}__mutmut_*",
            ]
        # Generate all mutants of the module, then test the selected ones (names are globs over mutant names).
        returncode = _mutmut(work, "run", "--max-children", str(max_children), *names, log=log).returncode
    seconds = time.monotonic() - started
    codes = read_results(work, target)
    error = None
    if returncode != 0 or not codes:
        if report_only:
            error = f"no mutation results in {work}"
        else:
            tail = log.read_text(errors="replace").strip().splitlines()[-15:]
            error = f"mutmut run exited {returncode}; see {log}:\n" + "\n".join(tail)
    counts: dict[str, int] = {}
    survivors: list[Survivor] = []
    for name, code in sorted(codes.items(), key=lambda item: _mutant_order(item[0])):
        status = _status(code)
        counts[status] = counts.get(status, 0) + 1
        if status in KILLED:
            continue
        shown = _mutmut(work, "show", name)
        diff = "\n".join(line for line in shown.stdout.splitlines() if not line.startswith("# "))
        function = function_of(name)
        equivalent = _reason(target.equivalent, function, diff)
        explained = None if equivalent else _reason(target.explained, function, diff)
        survivors.append(Survivor(name, function, status, diff, equivalent, explained))
    total = sum(counts.values())
    equivalent = sum(1 for s in survivors if s.equivalent_because)
    killed = sum(n for status, n in counts.items() if status in KILLED)
    scored = total - equivalent
    score = round(100 * killed / scored, 1) if scored and not error else None
    return ModuleResult(target.module, target.tests, round(seconds, 1), counts, equivalent, score, survivors, error)


def _mutant_order(name: str) -> tuple[str, int]:
    head, _, number = name.rpartition("__mutmut_")
    return head, int(number) if number.isdigit() else 0


def write_report(results: list[ModuleResult], base: Path, total_s: float) -> tuple[Path, Path]:
    base.mkdir(parents=True, exist_ok=True)
    json_path, md_path = base / "report.json", base / "report.md"
    json_path.write_text(
        json.dumps({"seconds": round(total_s, 1), "modules": [asdict(r) for r in results]}, indent=2) + "\n"
    )
    lines = [
        "# Mutation testing report",
        "",
        f"mutmut, {len(results)} module(s), {total_s / 60:.1f} min. Score = killed / (mutants - equivalent).",
        "",
        "| module | mutants | killed | survived | no tests | timeout | equivalent | explained | score | time |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        killed = sum(n for status, n in r.counts.items() if status in KILLED)
        score = "error" if r.error else (f"{r.score:.1f} %" if r.score is not None else "-")
        lines.append(
            f"| {r.module} | {sum(r.counts.values())} | {killed} | {r.counts.get('survived', 0)} | "
            f"{r.counts.get('no tests', 0)} | {r.counts.get('timeout', 0)} | {r.equivalent} | "
            f"{sum(1 for s in r.survivors if s.explanation)} | {score} | {r.seconds:.0f} s |"
        )
    for r in results:
        lines += ["", f"## {r.module}", "", f"Tests: {', '.join(r.tests)}", ""]
        if r.error:
            lines += ["```", r.error, "```", ""]
        if not r.survivors:
            lines.append("Every mutant was killed.")
        for s in r.survivors:
            label = (
                f"equivalent: {s.equivalent_because}"
                if s.equivalent_because
                else f"{s.status.upper()}, explained: {s.explanation}"
                if s.explanation
                else s.status.upper()
            )
            lines += [f"### {s.name} ({s.function}) - {label}", "", "```diff", s.diff.strip(), "```", ""]
    md_path.write_text("\n".join(lines).rstrip() + "\n")
    return md_path, json_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--module", action="append", default=[], help="module path(s) to mutate (default: all)")
    parser.add_argument("--targets", type=Path, default=TARGETS_FILE, help="the targets file")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "mutation", help="workspaces and report")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2, help="parallel mutant runs")
    parser.add_argument("--list", action="store_true", help="print the targets and their tests, run nothing")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="run nothing: report what the workspaces under --out already hold (e.g. after re-testing survivors)",
    )
    args = parser.parse_args(argv)

    args.out = args.out.resolve()
    targets = load_targets(args.targets)
    chosen = [m.strip() for value in args.module for m in value.split(",") if m.strip()] or list(targets)
    unknown = [m for m in chosen if m not in targets]
    if unknown:
        print(f"unknown module(s) {unknown}; targets: {', '.join(targets)}", file=sys.stderr)
        return 2
    if args.list:
        for module in chosen:
            print(f"{module}: {' '.join(targets[module].tests)}")
        return 0

    started = time.monotonic()
    results = []
    for module in chosen:
        print(f"mutating {module} (tests: {' '.join(targets[module].tests)}) ...", flush=True)
        result = run_target(targets[module], args.out, args.max_children, report_only=args.report_only)
        results.append(result)
        killed = sum(n for status, n in result.counts.items() if status in KILLED)
        score = f"{result.score:.1f} %" if result.score is not None else "n/a"
        print(
            f"  {module}: score {score} ({killed} killed of {sum(result.counts.values())}, "
            f"{result.equivalent} equivalent) in {result.seconds:.0f} s"
            + (f"\n  ERROR {result.error}" if result.error else ""),
            flush=True,
        )
    md, js = write_report(results, args.out, time.monotonic() - started)
    print(f"report: {md.relative_to(ROOT) if md.is_relative_to(ROOT) else md} ({js.name} beside it)")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
