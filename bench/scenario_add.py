"""Scenario 3: `add_assets_to_universe` with 1,000 symbols whose verdicts are cached, over stdio.

The 1,000 symbols are validated first (validate_symbols, 50 at a time), so every verdict is in the cache and every
asset in the store. Each timed call adds all 1,000 to a fresh, empty universe (created untimed just before). The
target applies to the round trip as the client sees it; the server time (``metadata.elapsed_ms``) is kept too.
"""

from __future__ import annotations

from bench.common import Config, Latency, Row, child_env, fresh_dir, stdio_client, timed_calls

SYMBOLS = [f"SYM{i:05d}" for i in range(1, 1001)]  # known to bench.serve's fake provider


async def run(cfg: Config, _ctx: dict) -> list[Row]:
    work = fresh_dir(cfg.work_dir / "s3")
    env = child_env(work / "data")
    adds_per_run = 3 if cfg.quick else 10
    our_runs: list[list[float]] = []
    server_runs: list[list[float]] = []
    floor_runs: list[list[float]] = []
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

        await create()
        await add()  # warm-up
        for _ in range(cfg.runs):
            times: list[float] = []
            server_ms.clear()
            for _ in range(adds_per_run):
                await create()
                times += await timed_calls(add, 1)
            our_runs.append(times)
            server_runs.append(list(server_ms))
            floor_runs.append(await timed_calls(ping, 200, 20))
    ours_lat, server, floor_lat = Latency.of(our_runs), Latency.of(server_runs), Latency.of(floor_runs)
    return [
        Row(
            scenario="3",
            metric="add_assets_to_universe, 1,000 cached symbols, stdio",
            p50_ms=ours_lat.p50,
            p99_ms=ours_lat.p99,
            floor_p50_ms=floor_lat.p50,
            floor_p99_ms=floor_lat.p99,
            target="p99 <= 150 ms (round trip)",
            met=ours_lat.p99 <= 150.0,
            note=f"server time p50 {server.p50:.1f} ms, p99 {server.p99:.1f} ms",
            extra={
                "ours": ours_lat.as_dict(),
                "server_ms": server.as_dict(),
                "floor": floor_lat.as_dict(),
                "adds_per_run": adds_per_run,
            },
        )
    ]
