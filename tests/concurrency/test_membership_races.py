"""Many clients writing one universe at once over real streamable HTTP (issue 10, items 1-4).

Runs against SQLite and against PostgreSQL, where the server connects as a non-owner role under row-level security.
Each store gets one server process; the scenarios run one after another against it. After each, the invariants of
tests/concurrency/invariants.py hold and no call answered ``internal``: a lost race is ``already_exists``,
``not_found`` or ``conflict``, and an idempotent operation simply succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from typing import Any

import pytest

from providers.catalog import CatalogProvider
from tests.concurrency.invariants import check_invariants, code_of
from tests.tenancy.conftest import connect, envelope

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

# Real tickers the offline catalog confirms at once: validation costs no provider call.
KNOWN = sorted(p.symbol for p in CatalogProvider().entries() if p.symbol.isalpha())[:460]


async def _create(client: Any, name: str, symbols: list[str] | None = None) -> str:
    result = envelope(await client.call_tool("create_universe", {"name": name, "symbols": symbols or []}))
    assert result["success"], result.get("error")
    return result["data"]["universe"]["id"]


async def _disjoint_adds(clients: list[Any], round_: int) -> None:
    """Item 1: two adds of 150 symbols at once on a one-member universe keep all 301; replace leaves one."""
    a, b = clients[0], clients[1]
    uid = await _create(a, f"Disjoint {round_}", [KNOWN[0]])
    first, second = KNOWN[1:151], KNOWN[151:301]
    results = await asyncio.gather(
        a.call_tool("add_assets_to_universe", {"universe_id": uid, "symbols": first}),
        b.call_tool("add_assets_to_universe", {"universe_id": uid, "symbols": second}),
    )
    assert [code_of(r) for r in results] == ["ok", "ok"], [envelope(r).get("error") for r in results]
    figures = await check_invariants(a, uid)
    assert figures["count"] == 301
    assert sorted(figures["members"]) == sorted(KNOWN[:301])
    replaced = envelope(
        await a.call_tool(
            "import_universe_csv", {"universe_id": uid, "csv_text": f"symbol\n{KNOWN[400]}\n", "mode": "replace"}
        )
    )
    assert replaced["success"], replaced.get("error")
    figures = await check_invariants(a, uid)
    assert figures["members"] == [KNOWN[400]]


async def _churn(clients: list[Any], operations: int) -> None:
    """Item 2: many clients adding and removing single symbols of a small pool; history must equal membership and
    each reported outcome must match exactly one event."""
    uid = await _create(clients[0], f"Churn {len(clients)}")
    pool = KNOWN[:24]
    reported: Counter[str] = Counter()
    codes: Counter[str] = Counter()

    async def worker(client: Any, seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(operations):
            symbol = rng.choice(pool)
            tool = "add_assets_to_universe" if rng.random() < 0.55 else "remove_assets_from_universe"
            result = await client.call_tool(tool, {"universe_id": uid, "symbols": [symbol]})
            codes[code_of(result)] += 1
            body = envelope(result)
            if body["success"]:
                for outcome in body["data"]["report"]["results"]:
                    reported[outcome["outcome"]] += 1

    await asyncio.gather(*(worker(c, i) for i, c in enumerate(clients)))
    assert set(codes) <= {"ok", "conflict"}, codes
    assert codes["ok"] >= sum(codes.values()) * 0.9, codes  # conflicts are rare retries, not the rule
    figures = await check_invariants(clients[0], uid)
    # One event per row actually inserted or deleted: no 'removed' for a symbol that was not a member.
    assert figures["turnover"]["additions"] == reported["added"], (figures["turnover"], reported)
    assert figures["turnover"]["removals"] == reported["removed"], (figures["turnover"], reported)


async def _add_while_delete(clients: list[Any]) -> None:
    """Item 3: adds racing a delete end as ok (before) or not_found (after), never internal."""
    uid = await _create(clients[0], "Doomed", KNOWN[:3])
    adds = [
        c.call_tool("add_assets_to_universe", {"universe_id": uid, "symbols": KNOWN[10 + 5 * i : 15 + 5 * i]})
        for i, c in enumerate(clients[1:])
    ]
    results = await asyncio.gather(clients[0].call_tool("delete_universe", {"universe_id": uid}), *adds)
    assert code_of(results[0]) == "ok"
    assert {code_of(r) for r in results[1:]} <= {"ok", "not_found"}, [code_of(r) for r in results[1:]]
    gone = envelope(await clients[0].call_tool("get_universe", {"universe_id": uid}))
    assert gone["error"]["code"] == "not_found"


async def _same_name_creates(clients: list[Any]) -> None:
    """Item 3: sixteen creates of one name: one universe, the others already_exists with its id."""
    results = await asyncio.gather(*(c.call_tool("create_universe", {"name": "Race Leaders"}) for c in clients))
    codes = Counter(code_of(r) for r in results)
    assert codes == Counter({"ok": 1, "already_exists": len(clients) - 1}), codes
    winner = next(envelope(r)["data"]["universe"]["id"] for r in results if code_of(r) == "ok")
    for r in results:
        if code_of(r) == "already_exists":
            assert envelope(r)["error"]["details"]["existing_id"] == winner


async def _same_name_renames(clients: list[Any]) -> None:
    """Item 3: sixteen universes renamed to one name at once: one succeeds, the others already_exists."""
    ids = [await _create(c, f"Rename source {i}") for i, c in enumerate(clients)]
    results = await asyncio.gather(
        *(
            c.call_tool("update_universe", {"universe_id": uid, "name": "Rename Target"})
            for c, uid in zip(clients, ids, strict=True)
        )
    )
    codes = Counter(code_of(r) for r in results)
    assert codes == Counter({"ok": 1, "already_exists": len(clients) - 1}), codes


async def _same_new_ticker(clients: list[Any]) -> None:
    """Item 3: one ticker nobody has seen, added unvalidated to sixteen universes at once: one asset, sixteen adds."""
    ids = [await _create(c, f"New ticker {i}") for i, c in enumerate(clients)]
    results = await asyncio.gather(
        *(
            c.call_tool("add_assets_to_universe", {"universe_id": uid, "symbols": ["QQZX", "QQZY"], "validate": False})
            for c, uid in zip(clients, ids, strict=True)
        )
    )
    assert [code_of(r) for r in results] == ["ok"] * len(clients), [envelope(r).get("error") for r in results]
    for client, uid in zip(clients, ids, strict=True):
        assert (await check_invariants(client, uid))["count"] == 2


async def _job_starts(clients: list[Any]) -> None:
    """Item 4: concurrent job starts never fail as internal. (These jobs finish at once, freeing their slots; the
    cap itself under concurrency is tests/tools/test_jobs.py's, with jobs held running by a slow provider.)"""
    results = await asyncio.gather(
        *(c.call_tool("start_bulk_validation", {"symbols": KNOWN[i : i + 3]}) for i, c in enumerate(clients))
    )
    codes = Counter(code_of(r) for r in results)
    assert set(codes) <= {"ok", "limit_exceeded"}, codes


TECH = {"field": "sector", "op": "eq", "value": "Information Technology"}


def _cap_floor(floor: float) -> dict[str, Any]:
    return {"all": [TECH, {"field": "market_cap", "op": "gte", "value": floor}]}


async def _dynamic_rebalances(clients: list[Any]) -> None:
    """Issue 14: rebalances and redefinitions of one dynamic universe at once. Every call succeeds or is a
    conflict; the history still replays to the members; several rebalances of one definition change it once; and a
    last rebalance leaves exactly what the rules select."""
    a = clients[0]
    created = envelope(await a.call_tool("create_universe", {"name": "Dynamic race", "rules": _cap_floor(2e11)}))
    assert created["success"], created.get("error")
    uid = created["data"]["universe"]["id"]
    calls = [
        c.call_tool("update_universe", {"universe_id": uid, "rules": _cap_floor(5e10 if i % 8 == 0 else 1e11)})
        if i % 4 == 0
        else c.call_tool("rebalance_universe", {"universe_id": uid, "dry_run": False})
        for i, c in enumerate(clients)
    ]
    results = await asyncio.gather(*calls)
    codes = Counter(code_of(r) for r in results)
    assert set(codes) <= {"ok", "conflict"}, [envelope(r).get("error") for r in results]
    await check_invariants(a, uid)

    # One definition, many rebalances at once: one run makes the changes; the others return it or find nothing.
    updated = envelope(await a.call_tool("update_universe", {"universe_id": uid, "rules": _cap_floor(3e10)}))
    assert updated["success"], updated.get("error")
    results = await asyncio.gather(
        *(c.call_tool("rebalance_universe", {"universe_id": uid, "dry_run": False}) for c in clients[:6])
    )
    assert [code_of(r) for r in results] == ["ok"] * 6, [envelope(r).get("error") for r in results]
    runs = [envelope(r)["data"] for r in results]
    changing = {r["run"]["id"] for r in runs if r["addition_count"] or r["removal_count"]}
    assert len(changing) == 1, runs
    for r in runs:
        assert r["run"]["id"] in changing or (r["addition_count"] == r["removal_count"] == 0)
    figures = await check_invariants(a, uid)

    selected: list[str] = []
    args: dict[str, Any] = {"rules": _cap_floor(3e10), "limit": 200}
    while True:
        page = envelope(await a.call_tool("screen_assets", args))["data"]
        selected += [x["symbol"] for x in page["assets"]]
        if not page["next_cursor"]:
            break
        args["cursor"] = page["next_cursor"]
    assert sorted(figures["members"]) == sorted(selected)
    refused = envelope(await a.call_tool("add_assets_to_universe", {"universe_id": uid, "symbols": ["KO"]}))
    assert refused["error"]["code"] == "conflict"


async def _scenarios(clients: list[Any]) -> None:
    for round_ in range(2):
        await _disjoint_adds(clients, round_)
    await _churn(clients[:2], operations=40)
    await _churn(clients, operations=12)
    await _add_while_delete(clients)
    await _same_name_creates(clients)
    await _same_name_renames(clients)
    await _same_new_ticker(clients)
    await _job_starts(clients)


async def test_many_writers_keep_membership_and_history_consistent(deployment, tmp_path):
    token = await deployment.token("racer")
    failure: AssertionError | None = None
    # One owner plays every client: its per-owner rate limits are off, so the load is the stores', not the limiter's.
    unlimited = {f"UNIVERSE_MCP_RATE_LIMIT_{kind}": "" for kind in ("READ", "WRITE", "VALIDATE")}
    with deployment.server(tmp_path / "run", UNIVERSE_MCP_MAX_ACTIVE_JOBS="4", **unlimited) as url:
        async with contextlib.AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(connect(url, token)) for _ in range(16)]
            try:
                await _scenarios(clients)
            except AssertionError as exc:  # raised after the clients close, not wrapped in their task groups
                failure = exc
    if failure is not None:
        raise failure


async def test_rebalances_and_redefinitions_at_once_keep_history_consistent(deployment, tmp_path):
    """Issue 14 over real HTTP on both stores: dynamic universes need the security master, so this server loads it."""
    token = await deployment.token("rebalancer")
    failure: AssertionError | None = None
    unlimited = {f"UNIVERSE_MCP_RATE_LIMIT_{kind}": "" for kind in ("READ", "WRITE", "VALIDATE")}
    with deployment.server(tmp_path / "run", UNIVERSE_MCP_LISTINGS_LOAD="1", **unlimited) as url:
        async with contextlib.AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(connect(url, token)) for _ in range(8)]
            try:
                await _dynamic_rebalances(clients)
            except AssertionError as exc:
                failure = exc
    if failure is not None:
        raise failure
