"""A pytest plugin for mutation runs (scripts/mutate.py passes ``-p tests.support.fastest_first``): the selected
tests run fastest first, by the durations mutmut recorded in its clean run (``mutmut-stats.json``).

mutmut runs each mutant's tests with ``-x`` but hands them over in no particular order, so a mutant that the first
100 ms test would kill often waits for a 16 s test first. Most mutants are killed, so their cost is the time to the
first failing test: ordering by duration cuts a module's run several-fold and changes no verdict (the same tests
run; a survivor still runs all of them). Without the stats file (mutmut's own clean run) nothing is reordered.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

_STATS = ("mutmut-stats.json", "mutants/mutmut-stats.json")


def _durations() -> dict[str, float]:
    for name in _STATS:
        path = Path(name)
        if path.is_file():
            try:
                return dict(json.loads(path.read_text()).get("duration_by_test", {}))
            except (OSError, ValueError):
                return {}
    return {}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    durations = _durations()
    if not durations:
        return
    # Unknown tests (none, normally: mutmut recorded every selected test) go last; the sort is stable.
    # mutmut records node ids relative to the workspace, without its "mutants/" folder.
    items.sort(key=lambda item: durations.get(item.nodeid.removeprefix("mutants/"), math.inf))
