"""Scheduled rebalances as periodic jobs: the embedded server runs them on its own, the worker's actor and the
scheduler's plan carry them in distributed mode, and a listings sync that changed the security master is followed
by one rebalance of every scheduled dynamic universe — a delisting reaches a dynamic universe that day, while a
static one keeps the name and says it is delisted."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
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
from services.security_master.store import SYNC_SOURCE
from services.universes import UniverseService
from storage.db import utcnow
from storage.models import RebalanceRun, Universe, UniverseAssetEvent
from storage.repositories import listings as listings_repo
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


async def _members(state: Any, uid: str) -> set[str]:
    async with state.unit_of_work() as session:
        return {s for s, _ in await session.run_sync(universes_repo.member_symbols, uuid.UUID(uid))}


async def _next_due(state: Any, uid: str) -> datetime:
    async with state.unit_of_work() as session:
        due = await session.scalar(select(Universe.next_rebalance_at).where(Universe.id == uuid.UUID(uid)))
    assert due is not None
    return due


async def _due_now(state: Any, uid: str) -> None:
    async with state.unit_of_work() as session:
        await session.execute(
            update(Universe).where(Universe.id == uuid.UUID(uid)).values(next_rebalance_at=utcnow() - timedelta(1))
        )


async def _dynamic(state: Any, name: str, rules: dict[str, Any], rebalance: str | None = "daily") -> str:
    async with state.unit_of_work() as session:
        summary, _ = await DynamicUniverses(session, state.local_caller).create(name, rules, rebalance=rebalance)
    return summary.id


async def test_an_embedded_server_rebalances_due_universes_on_its_own_soon_after_start_then_every_interval(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(rebalance_check_interval_s=1)
    async with open_app_state(settings) as state:
        first = await _dynamic(state, "Energy", ENERGY)
        await _due_now(state, first)
        with anyio.fail_after(60):
            while len(await _runs(state, first)) < 2:  # noqa: ASYNC110
                await anyio.sleep(0.1)
        assert (await _runs(state, first))[1] == ("scheduled", period_key("daily", utcnow()))
        second = await _dynamic(state, "Energy again", ENERGY)
        await _due_now(state, second)
        with anyio.fail_after(60):
            while len(await _runs(state, second)) < 2:  # noqa: ASYNC110
                await anyio.sleep(0.1)
        # Due again within the period it ran for (its due time moved back by hand): no second run; not due after.
        await _due_now(state, first)
        with anyio.fail_after(60):
            while await _next_due(state, first) < utcnow():  # noqa: ASYNC110
                await anyio.sleep(0.1)
        assert len(await _runs(state, first)) == 2

    # A universe that fell due while no server ran: the first check comes soon after start, not an interval later.
    monkeypatch.setattr(runtime, "REBALANCE_FIRST_DELAY_S", 0.2)
    async with open_app_state(settings.model_copy(update={"rebalance_check_interval_s": 86_400})) as state:
        third = await _dynamic(state, "Energy once more", ENERGY)
        await _due_now(state, third)
        with anyio.fail_after(60):
            while len(await _runs(state, third)) < 2:  # noqa: ASYNC110
                await anyio.sleep(0.1)


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


async def test_after_each_listings_sync_a_scheduled_dynamic_universe_follows_listings_and_delistings_once(
    make_settings: Callable[..., Settings],
    listing_server: ListingServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(live, "_BREAKERS", {})  # the sources not served here fail: this test's breakers only
    settings = live_settings(make_settings, listing_server, alpha_vantage_api_key=None)
    async with open_app_state(settings) as state:
        assert isinstance(state.jobs, runtime.JobRuntime)
        env = state.jobs.env
        names = ["ZI", "ZION", "ZIMV"]  # listed in the older directory copy; ZI and ZIMV gone from the newer one
        rules = {"field": "symbol", "op": "in", "value": names}
        dynamic = await _dynamic(state, "Z names", rules)  # an empty master: no members yet
        manual = await _dynamic(state, "Z names, on request", rules, None)

        # The embedded server's sync: the names join the scheduled universe the day they are listed.
        serve(listing_server, directory="2022-05-11")
        first = await state.jobs.run_listings_sync()
        first_id = batches.sync_changed(first)
        assert first.applied is not None and first_id == first.applied.sync_id is not None
        assert await _runs(state, dynamic) == [("create", None), ("listings_sync", f"sync:{first_id}")]
        assert await _members(state, dynamic) == set(names)
        async with state.unit_of_work() as session:
            static, _ = await UniverseService(session, state.local_caller).create(
                "Z list", symbols=names, validate=False
            )

        # A worker's sync (distributed mode): ZI and ZIMV are gone, nothing links them to another ticker: delisted.
        async def get_env() -> batches.JobEnv:
            return env

        actors = declare_actors(
            StubBroker(), run=lambda coro: anyio.from_thread.run(_await, coro), env=get_env, settings=settings
        )
        serve(listing_server, directory="2026-03-03")
        await anyio.to_thread.run_sync(actors.listings_sync.fn)
        async with state.unit_of_work() as session:
            sync_id = (await listings_repo.last_ok_sync(session, SYNC_SOURCE)).id  # type: ignore[union-attr]
        assert sync_id != first_id
        # Once for this sync, and only for the universe with a schedule.
        assert (await _runs(state, dynamic))[2:] == [("listings_sync", f"sync:{sync_id}")]
        assert await _runs(state, manual) == [("create", None)]
        assert await _members(state, dynamic) == {"ZION"}
        async with state.unit_of_work() as session:
            reasons = await session.execute(
                select(UniverseAssetEvent.action, UniverseAssetEvent.reason).where(
                    UniverseAssetEvent.universe_id == uuid.UUID(dynamic), UniverseAssetEvent.action == "removed"
                )
            )
            assert sorted(reasons.all()) == [("removed", "rebalance: delisted on 2026-03-03")] * 2
        # The same sync again (a retried message): nothing more.
        again = await batches.rebalance_after_sync(env, sync_id)
        assert (again.applied, again.done_already) == (0, 1)
        # A sync that changed nothing is followed by no rebalance.
        assert batches.sync_changed(await state.jobs.run_listings_sync()) is None
        assert len(await _runs(state, dynamic)) == 3

    async with Client(build_server(settings)) as client:
        call = Call(client)
        kept = await call.ok("get_universe", universe_id=static.id)
        assert {a["symbol"] for a in kept["assets"]} == set(names)
        assert sorted(m["symbol"] for m in kept["delisted_members"]) == ["ZI", "ZIMV"]
        dropped = await call.ok("get_universe", universe_id=dynamic)
        assert [a["symbol"] for a in dropped["assets"]] == ["ZION"] and dropped["delisted_members"] == []
