"""Scenario 8: `screen_assets` and `search_assets` with filters over 100,000 assets, on SQLite and PostgreSQL.

Server time (the envelope's ``metadata.elapsed_ms``, measured inside the server by ``UniverseMCPServer.call_tool``
around the whole call) against the SQL floor: each call's statements, as the repository builds them
(``storage.repositories.screening.screen`` / ``search_screened``, and ``assets.search_assets`` for a plain query),
captured while the call runs and executed again right after it, in one transaction on a bare connection to the same
store (bench/floors.py). Target (issue 17): p99 <= 1.5x the floor's p99. The calls go through the in-memory MCP
client (the transport is scenario 2's subject, not this one's). PostgreSQL is served as a non-owner role under
row-level security, as deployed; it is skipped, and said so, when none answers.

The mix: one filter, three filters, `any` of five, a `not`, index + sector, a sort by name; and searches with a
query and a filter, filters alone, an index alone.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench.common import Config, Row, bench_settings, error_text, fresh_dir, latency_row, percentile
from bench.floors import capture, dispose, floor_engine, replay
from bench.scenario_http import postgres_store
from bench.store import BENCH_INDEX, copy_store

SCREENS: dict[str, dict[str, Any]] = {
    "one filter": {"rules": {"field": "sector", "op": "eq", "value": "Information Technology"}},
    "three filters": {
        "rules": {
            "all": [
                {"field": "sector", "op": "eq", "value": "Financials"},
                {"field": "country", "op": "eq", "value": "United States"},
                {"field": "market_cap", "op": "gte", "value": 1e9},
            ]
        }
    },
    "any of five": {
        "rules": {
            "any": [
                {"field": "industry", "op": "eq", "value": "Robotics Products"},
                {"field": "industry", "op": "eq", "value": "Solar Products"},
                {"field": "industry", "op": "contains", "value": "wind"},
                {"field": "country", "op": "eq", "value": "Japan"},
                {"field": "ipo_year", "op": "gte", "value": 2025},
            ]
        }
    },
    "not": {
        "rules": {
            "all": [
                {"field": "sector", "op": "eq", "value": "Energy"},
                {"not": {"field": "country", "op": "eq", "value": "United States"}},
            ]
        }
    },
    "index + sector": {
        "rules": {
            "all": [
                {"field": "index", "op": "eq", "value": BENCH_INDEX},
                {"field": "sector", "op": "eq", "value": "Industrials"},
            ]
        }
    },
    "sorted by name": {"rules": {"field": "country", "op": "eq", "value": "Germany"}, "sort_by": "name"},
}
SEARCHES: dict[str, dict[str, Any]] = {
    "query + country": {"query": "robotics", "country": "United States"},
    "industry alone": {"industry": "solar"},
    "index alone": {"index": BENCH_INDEX},
    "query + sector + cap": {"query": "bank", "sector": "Financials", "min_market_cap": 1e9},
    "type + query": {"query": "gold", "asset_type": "equity"},
}


P99_MAX = 1.5  # server time / the statements' floor, at p99
REPOSITORY_CALLS = (
    "storage.repositories.screening.screen",
    "storage.repositories.screening.search_screened",
    "storage.repositories.assets.search_assets",
)
Times = dict[str, dict[str, list[list[float]]]]  # tool -> call name -> runs of milliseconds


async def _measure(cfg: Config, settings: Any) -> tuple[Times, Times, str | None]:
    """(server times, SQL floor times, the floor's error if it failed), each call's floor right after it."""
    from mcp import Client

    from server.app import build_server

    calls = [("screen_assets", k, v) for k, v in SCREENS.items()] + [
        ("search_assets", k, v) for k, v in SEARCHES.items()
    ]
    ours: Times = {tool: {name: [] for t, name, _ in calls if t == tool} for tool in TOOLS}
    floor: Times = {tool: {name: [] for t, name, _ in calls if t == tool} for tool in TOOLS}
    # Each call is followed by its floor: a third fewer rounds than before the floors keeps the scenario's time.
    rounds = max(10, cfg.calls // (3 * len(calls)))
    per_run = max(1, -(-rounds // cfg.runs))
    engine, error = floor_engine(settings.sqlalchemy_url)
    with capture(*REPOSITORY_CALLS) as captured:
        async with Client(build_server(settings)) as client:
            for i in range(rounds + 3):
                timed = i >= 3  # three warm-up rounds: vocabularies read, statements compiled, pages cached
                if timed and (i - 3) % per_run == 0:
                    for store in (ours, floor):
                        for per in store.values():
                            for runs in per.values():
                                runs.append([])
                for tool, name, arguments in calls:
                    before = len(captured.calls)
                    result = await client.call_tool(tool, arguments)
                    envelope = result.structured_content or {}
                    if result.is_error:
                        raise RuntimeError(f"{tool} {name} failed: {envelope.get('error')}")
                    if timed:
                        ours[tool][name][-1].append(envelope["metadata"]["elapsed_ms"])
                    if engine is None:
                        continue
                    try:
                        if len(captured.calls) == before:
                            raise RuntimeError(f"{tool} {name}: no repository call captured ({REPOSITORY_CALLS})")
                        elapsed = await replay(engine, captured.last)
                    except Exception as exc:  # the row reports it; the product's figures still come
                        error, engine = error_text(exc), None
                        continue
                    if timed:
                        floor[tool][name][-1].append(elapsed)
    if engine is not None:
        await dispose(engine)
    return ours, floor, error


TOOLS = ("screen_assets", "search_assets")


def _merged(per: dict[str, list[list[float]]]) -> list[list[float]]:
    """Every call name's times, run by run."""
    runs = max((len(v) for v in per.values()), default=0)
    return [[x for v in per.values() if i < len(v) for x in v[i]] for i in range(runs)]


def _flat(runs: list[list[float]]) -> list[float]:
    return [x for r in runs for x in r]


def _rows(store: str, measured: tuple[Times, Times, str | None], assets: int) -> list[Row]:
    ours, floor, error = measured
    rows = []
    for tool in TOOLS:
        per = ours[tool]
        p99s = {name: percentile(_flat(v), 99) for name, v in per.items()}
        slowest = max(p99s, key=lambda name: p99s[name])
        rows.append(
            latency_row(
                "8",
                f"{tool}{' with filters' if tool == 'search_assets' else ''} over {assets:,} assets, "
                f"server time, {store}",
                _merged(per),
                _merged(floor[tool]),
                floor=f"{'screen' if tool == 'screen_assets' else 'search'} SQL, bare connection",
                p99_max=P99_MAX,
                floor_error=error,
                note=f"slowest: {slowest!r} (p99 {p99s[slowest]:.1f} ms)",
                extra={
                    "per_call": {
                        name: {
                            "p50_ms": round(statistics.median(_flat(v)), 3),
                            "p99_ms": round(percentile(_flat(v), 99), 3),
                            "floor_p50_ms": round(statistics.median(_flat(f)), 3) if _flat(f) else None,
                            "floor_p99_ms": round(percentile(_flat(f), 99), 3) if _flat(f) else None,
                        }
                        for (name, v), f in zip(per.items(), floor[tool].values(), strict=True)
                    }
                },
            )
        )
    return rows


async def run(cfg: Config, ctx: dict) -> list[Row]:
    work = fresh_dir(cfg.work_dir / "s8")
    data_dir = copy_store(ctx["store"], work / "data")
    rows = _rows("SQLite", await _measure(cfg, bench_settings(data_dir)), cfg.store_assets)
    async with postgres_store(cfg, work / "pg-data") as pg_env:
        if pg_env is None:
            rows.append(Row(scenario="8", metric="screen_assets / search_assets, PostgreSQL", note="no PostgreSQL"))
        else:
            settings = {k.removeprefix("UNIVERSE_MCP_").lower(): v for k, v in pg_env.items()}
            rows += _rows(
                "PostgreSQL", await _measure(cfg, bench_settings(work / "pg-data", **settings)), cfg.store_assets
            )
    return rows
