"""Scheduled rebalances as periodic jobs: the embedded server runs them on its own, the worker's actor and the
scheduler's plan carry them in distributed mode, and a listings sync that changed the security master is followed
by one rebalance of every scheduled dynamic universe — a delisting reaches a dynamic universe that day, while a
static one keeps the name and says it is delisted."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import anyio
import pytest
import redis
from dramatiq.brokers.stub import StubBroker
from mcp import Client
from sqlalchemy import select, update

from core.settings import Settings
from server.app import build_server
from server.lifespan import open_app_state
from services.rebalancing import DynamicUniverses
from services.schedules import period_key
from services.security_master import live
from services.universes import UniverseService
from storage.db import utcnow
from storage.models import RebalanceRun, Universe, UniverseAssetEvent
from storage.repositories import universes as universes_repo
from tests.conftest import Call
from tests.providers.listings.conftest import ListingServer, listing_server  # noqa: F401 - a fixture
from tests.services.security_master.test_live_sync import live_settings, serve
from workers import batches, runtime
from workers.actors import declare_actors
from workers.scheduler import build_scheduler

pytestmark = pytest.mark.anyio

ENERGY = {"field": "sector", "op": "eq", "value": "Energy"}


async def _runs(state: Any, uid: str) -> list[tuple[str, str | None]]:
    async with state.unit_of_work() as session:
        rows = await session.execute(
            select(RebalanceRun.trigger, RebalanceRun.period)
            .where(RebalanceRun.universe_id == uuid.UUID(uid))
            .order_by(RebalanceRun.started_at, RebalanceRun.id)
        )
        return [tuple(r) for r in rows.all()]


async def _due_now(state: Any, uid: str) -> None:
    async with state.unit_of_work() as session:
        await session.execute(
            update(Universe).where(Universe.id == uuid.UUID(uid)).values(next_rebalance_at=utcnow() - timedelta(1))
        )


async def _dynamic(state: Any, name: str, rules: dict[str, Any], rebalance: str | None = "daily") -> str:
    async with state.unit_of_work() as session:
        summary, _ = await DynamicUniverses(session, state.local_caller).create(name, rules, rebalance=rebalance)
    return summary.id


async def test_an_embedded_server_rebalances_a_due_universe_on_its_own(make_settings: Callable[..., Settings]) -> None:
    async with open_app_state(make_settings(rebalance_check_interval_s=1)) as state:
        uid = await _dynamic(state, "Energy", ENERGY)
        await _due_now(state, uid)
        with anyio.fail_after(60):
            while len(await _runs(state, uid)) < 2:  # noqa: ASYNC110
                await anyio.sleep(0.1)
        assert (await _runs(state, uid))[1] == ("scheduled", period_key("daily", utcnow()))


async def _await(coro: Any) -> Any:
    return await coro


async def test_the_workers_actor_rebalances_what_is_due_and_the_scheduler_sends_it(
    make_settings: Callable[..., Settings], redis_url: str
) -> None:
    async with open_app_state(make_settings()) as state:
        assert isinstance(state.jobs, runtime.JobRuntime)
        env = state.jobs.env
        uid = await _dynamic(state, "Energy", ENERGY)
        await _due_now(state, uid)

        async def get_env() -> batches.JobEnv:
            return env

        actors = declare_actors(
            StubBroker(), run=lambda coro: anyio.from_thread.run(_await, coro), env=get_env, settings=state.settings
        )
        assert (actors.rebalance_due.actor_name, actors.rebalance_due.queue_name) == (
            "maintenance.rebalance_due",
            "background",
        )
        await anyio.to_thread.run_sync(actors.rebalance_due.fn)  # what a worker does with the scheduler's message
        assert [trigger for trigger, _ in await _runs(state, uid)] == ["create", "scheduled"]

    namespace = f"test-rebalance-{uuid.uuid4().hex[:8]}"
    settings = make_settings(redis_url=redis_url, broker_namespace=namespace, rebalance_check_interval_s=300)
    scheduler, ticks = build_scheduler(settings, blocking=False)
    assert scheduler.get_job("rebalance").trigger.interval == timedelta(seconds=300)
    assert ticks["rebalance"]()  # this slot's message, sent once however many schedulers tick
    assert not ticks["rebalance"]()
    client = redis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=2)
    try:
        messages = [json.loads(m) for m in client.hvals(f"{namespace}:background.msgs")]
        assert [m["actor_name"] for m in messages] == ["maintenance.rebalance_due"]
    finally:
        keys = list(client.scan_iter(f"{namespace}:*"))
        if keys:
            client.delete(*keys)


async def test_after_a_listings_sync_that_delists_a_member_a_dynamic_universe_drops_it_and_a_static_one_flags_it(
    make_settings: Callable[..., Settings],
    listing_server: ListingServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(live, "_BREAKERS", {})  # the sources not served here fail: this test's breakers only
    settings = live_settings(make_settings, listing_server, alpha_vantage_api_key=None)
    async with open_app_state(settings) as state:
        assert isinstance(state.jobs, runtime.JobRuntime)
        serve(listing_server, directory="2022-05-11")  # ZoomInfo listed as ZI
        first = await state.jobs.run_listings_sync()
        assert first.applied is not None and batches.sync_changed(first) == first.applied.sync_id
        names = ["ZI", "ZION", "ZIMV"]  # ZI and ZIMV are gone from the newer copy
        dynamic = await _dynamic(state, "Z names", {"field": "symbol", "op": "in", "value": names})
        manual = await _dynamic(state, "Z names, on request", {"field": "symbol", "op": "in", "value": names}, None)
        async with state.unit_of_work() as session:
            static, _ = await UniverseService(session, state.local_caller).create(
                "Z list", symbols=names, validate=False
            )

        serve(listing_server, directory="2026-03-03")  # ZI is gone (nothing yet links it to GTM): delisted
        second = await state.jobs.run_listings_sync()
        sync_id = batches.sync_changed(second)
        assert second.applied is not None and second.applied.delisted >= 1 and sync_id is not None
        # Once for this sync, and only for the universe with a schedule.
        assert await _runs(state, dynamic) == [("create", None), ("listings_sync", f"sync:{sync_id}")]
        assert await _runs(state, manual) == [("create", None)]
        async with state.unit_of_work() as session:
            held = {s for s, _ in await session.run_sync(universes_repo.member_symbols, uuid.UUID(dynamic))}
            assert held == {"ZION"}
            reasons = await session.execute(
                select(UniverseAssetEvent.action, UniverseAssetEvent.reason).where(
                    UniverseAssetEvent.universe_id == uuid.UUID(dynamic), UniverseAssetEvent.action == "removed"
                )
            )
            assert sorted(reasons.all()) == [("removed", "rebalance: delisted on 2026-03-03")] * 2
        # The same sync again (a retried message): nothing more.
        again = await batches.rebalance_after_sync(state.jobs.env, sync_id)
        assert (again.applied, again.done_already) == (0, 1)
        # A sync that changed nothing is followed by no rebalance.
        assert batches.sync_changed(await state.jobs.run_listings_sync()) is None
        assert len(await _runs(state, dynamic)) == 2

    async with Client(build_server(settings)) as client:
        call = Call(client)
        kept = await call.ok("get_universe", universe_id=static.id)
        assert {a["symbol"] for a in kept["assets"]} == set(names)
        assert sorted(m["symbol"] for m in kept["delisted_members"]) == ["ZI", "ZIMV"]
        dropped = await call.ok("get_universe", universe_id=dynamic)
        assert [a["symbol"] for a in dropped["assets"]] == ["ZION"] and dropped["delisted_members"] == []
