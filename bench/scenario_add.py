"""Scenario 3: `add_assets_to_universe` with 1,000 symbols whose verdicts are cached, over stdio.

The 1,000 symbols are validated first (validate_symbols, 50 at a time), so every verdict is in the cache and every
asset in the store. Each timed call adds all 1,000 to a fresh, empty universe (created untimed just before). The
target applies to the round trip as the client sees it; the server time (``metadata.elapsed_ms``) is kept too.

The storage floor (issue 17): the same rows written with bare SQLAlchemy Core in one transaction on the same file.
After each add, the 1,000 member rows and 1,000 event rows it wrote are read back (untimed) and written again,
with ``insert()`` executemany into another fresh universe (created untimed through the product, so every
constraint holds), on a synchronous pysqlite connection with the product's pragmas (bench/floors.py): the product's
own writer thread uses the same kind of connection. Target: p50 and p99 <= 2x the floor's.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from bench.common import (
    Config,
    Latency,
    Row,
    bench_settings,
    child_env,
    error_text,
    fresh_dir,
    latency_row,
    stdio_client,
    timed_calls,
)
from bench.floors import dispose, floor_engine

RATIO_MAX = 2.0  # ours / the storage floor, at p50 and at p99
SYMBOLS = [f"SYM{i:05d}" for i in range(1, 1001)]  # known to bench.serve's fake provider


def written_rows(engine: Any, universe_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The member and event rows an add wrote into ``universe_id`` (untimed; events without their serial id)."""
    from sqlalchemy import select

    from storage.models import UniverseAsset, UniverseAssetEvent

    uid = uuid.UUID(universe_id)
    members, events = UniverseAsset.__table__, UniverseAssetEvent.__table__
    with engine.connect() as conn:
        m = [dict(r._mapping) for r in conn.execute(select(members).where(members.c.universe_id == uid))]
        e = [
            {k: v for k, v in r._mapping.items() if k != "id"}
            for r in conn.execute(select(events).where(events.c.universe_id == uid))
        ]
    return m, e


def storage_floor(engine: Any, members: list[dict[str, Any]], events: list[dict[str, Any]], into: str) -> float:
    """Milliseconds to insert ``members`` and ``events`` into universe ``into`` in one transaction (Core)."""
    from storage.models import UniverseAsset, UniverseAssetEvent

    uid = uuid.UUID(into)
    m = [{**row, "universe_id": uid} for row in members]
    e = [{**row, "universe_id": uid} for row in events]
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(UniverseAsset.__table__.insert(), m)
        conn.execute(UniverseAssetEvent.__table__.insert(), e)
    return (time.perf_counter() - started) * 1000


async def run(cfg: Config, _ctx: dict) -> list[Row]:
    work = fresh_dir(cfg.work_dir / "s3")
    env = child_env(work / "data")
    adds_per_run = 3 if cfg.quick else 10
    our_runs: list[list[float]] = []
    server_runs: list[list[float]] = []
    floor_runs: list[list[float]] = []
    storage_runs: list[list[float]] = []
    engine, storage_error = floor_engine(bench_settings(work / "data").sqlalchemy_url)
    async with (
        stdio_client(["-m", "bench.serve", "--transport", "stdio", "--floor"], env, work / "floor.log") as floor,
        stdio_client(["-m", "bench.serve", "--transport", "stdio"], env, work / "server.log") as ours,
    ):
        for start in range(0, len(SYMBOLS), 50):
            result = await ours.call_tool("validate_symbols", {"symbols": SYMBOLS[start : start + 50]})
            assert not result.is_error, result.structured_content
        counter = 0
        universe_id = ""
        server_ms: list[float] = []

        async def create() -> None:
            nonlocal counter, universe_id
            counter += 1
            created = await ours.call_tool("create_universe", {"name": f"Bench {counter}", "validate": False})
            universe_id = created.structured_content["data"]["universe"]["id"]

        async def add() -> None:
            result = await ours.call_tool("add_assets_to_universe", {"universe_id": universe_id, "symbols": SYMBOLS})
            envelope = result.structured_content
            if result.is_error or envelope["data"]["report"]["counts"].get("added") != len(SYMBOLS):
                raise RuntimeError(f"add_assets_to_universe did not add every symbol: {str(envelope)[:500]}")
            server_ms.append(envelope["metadata"]["elapsed_ms"])

        async def ping() -> None:
            await floor.call_tool("ping", {})

        def floor_once() -> float | None:
            """The storage floor of the add just made (None once it has failed: the row reports the error)."""
            nonlocal storage_error
            if storage_error is not None:
                return None
            try:
                members, events = written_rows(engine, universe_id)
                if len(members) != len(SYMBOLS) or len(events) != len(SYMBOLS):
                    raise RuntimeError(f"the add wrote {len(members)} members and {len(events)} events")
                return storage_floor(engine, members, events, floor_universe)
            except Exception as exc:
                storage_error = error_text(exc)
                return None

        floor_universe = ""

        async def create_floor_universe() -> None:
            nonlocal floor_universe, counter
            counter += 1
            created = await ours.call_tool("create_universe", {"name": f"Floor {counter}", "validate": False})
            floor_universe = created.structured_content["data"]["universe"]["id"]

        await create()
        await add()  # warm-up
        await create_floor_universe()
        floor_once()  # warm-up
        for _ in range(cfg.runs):
            times: list[float] = []
            floors: list[float] = []
            server_ms.clear()
            for _ in range(adds_per_run):
                await create()
                times += await timed_calls(add, 1)
                await create_floor_universe()
                elapsed = floor_once()
                if elapsed is not None:
                    floors.append(elapsed)
            our_runs.append(times)
            storage_runs.append(floors)
            server_runs.append(list(server_ms))
            floor_runs.append(await timed_calls(ping, 200, 20))
    if engine is not None:
        await dispose(engine)
    server = Latency.of(server_runs)
    sdk = Latency.of(floor_runs)
    return [
        latency_row(
            "3",
            "add_assets_to_universe, 1,000 cached symbols, stdio round trip",
            our_runs,
            storage_runs,
            floor="storage floor (1,000 members + 1,000 events, Core)",
            p50_max=RATIO_MAX,
            p99_max=RATIO_MAX,
            floor_error=storage_error,
            note=f"server time p50 {server.p50:.1f} ms, p99 {server.p99:.1f} ms; SDK ping over stdio p50 "
            f"{sdk.p50:.2f} ms, p99 {sdk.p99:.2f} ms",
            extra={"server_ms": server.as_dict(), "sdk_floor": sdk.as_dict(), "adds_per_run": adds_per_run},
        )
    ]
