"""pyproject.toml bounds its dependencies and constraints.txt pins them: every package a runtime or test install
brings in has a pin, every pin satisfies every requirement on it (pyproject's bounds first), and the environment
the tests run in is the pinned one (so the pins are the tested versions). `make constraints` regenerates the file.
"""

from __future__ import annotations

import importlib.metadata
import tomllib
from collections.abc import Iterable

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.packaging.support import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
REGENERATE = "run `make constraints`, then `make test`"


def pins() -> dict[str, Version]:
    pinned: dict[str, Version] = {}
    for number, raw in enumerate((ROOT / "constraints.txt").read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        specs = list(requirement.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"constraints.txt:{number}: not an exact pin: {raw!r}"
        name = canonicalize_name(requirement.name)
        assert name not in pinned, f"constraints.txt:{number}: {name} pinned twice"
        pinned[name] = Version(specs[0].version)
    return pinned


def closure(roots: Iterable[Requirement]) -> dict[str, list[Requirement]]:
    """Every distribution these requirements install (markers evaluated here), with the requirements on each."""
    found: dict[str, list[Requirement]] = {}
    visited: set[tuple[str, str]] = set()
    pending = [(req, "") for req in roots]
    while pending:
        requirement, extra = pending.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        found.setdefault(name, []).append(requirement)
        for wanted in ["", *sorted(requirement.extras)]:
            if (name, wanted) in visited:
                continue
            visited.add((name, wanted))
            try:
                requires = importlib.metadata.distribution(name).requires or []
            except importlib.metadata.PackageNotFoundError:
                pytest.fail(f"{name} (needed by {requirement}) is not installed: run `make test`")
            for line in requires:
                sub = Requirement(line)
                # Requirements of the base package carry no extra marker; those of an extra are evaluated with it.
                pending.append((sub, wanted))
    return found


def runtime() -> dict[str, list[Requirement]]:
    return closure(Requirement(line) for line in PYPROJECT["dependencies"])


def with_tests() -> dict[str, list[Requirement]]:
    return closure(Requirement(line) for line in PYPROJECT["dependencies"] + PYPROJECT["optional-dependencies"]["dev"])


def test_every_runtime_dependency_has_an_upper_bound():
    unbounded = [
        line
        for line in PYPROJECT["dependencies"]
        if not any(s.operator in ("<", "<=", "==", "~=") for s in Requirement(line).specifier)
    ]
    assert not unbounded, f"give these an upper bound (the next major release): {unbounded}"


def test_constraints_pin_every_installed_dependency_within_every_bound():
    pinned = pins()
    needed = with_tests()
    missing = sorted(set(needed) - set(pinned))
    assert not missing, f"constraints.txt does not pin {missing}: {REGENERATE}"
    outside = [
        f"{name}=={pinned[name]} does not satisfy {req}"
        for name, requirements in needed.items()
        for req in requirements
        if not req.specifier.contains(pinned[name], prereleases=True)
    ]
    assert not outside, f"{outside}: {REGENERATE}"
    assert set(runtime()) <= set(pinned)  # the runtime alone is a subset (what `make serve` installs)


def test_the_tests_run_on_the_pinned_versions():
    pinned = pins()
    drift = {
        name: (importlib.metadata.version(name), str(pinned[name]))
        for name in with_tests()
        if Version(importlib.metadata.version(name)) != pinned[name]
    }
    assert not drift, f"installed vs pinned: {drift}: run `make test` (it installs with -c constraints.txt)"
