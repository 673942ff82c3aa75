"""The daily listings sync as a periodic job: `universe-mcp scheduler` sends it (only when online, unless turned
off), the worker's actor runs a live sync, and an embedded server runs it in process on its own schedule."""

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
from sqlalchemy import select

from core.settings import Settings
from server.lifespan import open_app_state
from storage.models import ListingSync
from tests.providers.listings.conftest import ListingServer, listing_server  # noqa: F401 - a fixture
from tests.services.security_master.test_live_sync import live_settings, serve
from workers import batches, runtime
from workers.actors import declare_actors
from workers.scheduler import build_scheduler

pytestmark = pytest.mark.anyio


def test_the_scheduler_sends_the_listings_sync_daily_only_when_online(
    make_settings: Callable[..., Settings], redis_url: str
) -> None:
    namespace = f"test-listings-{uuid.uuid4().hex[:8]}"
    online = make_settings(offline=False, yahoo_enabled=False, redis_url=redis_url, broker_namespace=namespace)
    scheduler, ticks = build_scheduler(online, blocking=False)
    assert scheduler.get_job("listings_sync").trigger.interval == timedelta(days=1)
    assert ticks["listings_sync"]()  # this day's slot: sent once
    assert not ticks["listings_sync"]()
    client = redis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=2)
    messages = [json.loads(m) for m in client.hvals(f"{namespace}:background.msgs")]
    assert [m["actor_name"] for m in messages] == ["maintenance.listings_sync"]

    for settings in (
        make_settings(offline=True, redis_url=redis_url, broker_namespace=namespace),
        make_settings(offline=False, listings_sync_interval_s=0, redis_url=redis_url, broker_namespace=namespace),
    ):
        scheduler, ticks = build_scheduler(settings, blocking=False)
        assert "listings_sync" not in ticks and scheduler.get_job("listings_sync") is None


async def _await(coro: Any) -> Any:
    return await coro


async def _ok_syncs(state) -> list[tuple[str, str]]:
    async with state.unit_of_work() as session:
        rows = await session.execute(select(ListingSync.source, ListingSync.status).order_by(ListingSync.id))
        return [tuple(r) for r in rows]


async def test_the_workers_actor_runs_a_live_sync(
    make_settings: Callable[..., Settings],
    listing_server: ListingServer,  # noqa: F811
) -> None:
    serve(listing_server, directory="2026-03-03", sec="2025-12-14")
    settings = live_settings(make_settings, listing_server, alpha_vantage_api_key=None)
    async with open_app_state(settings) as state:
        assert isinstance(state.jobs, runtime.JobRuntime)
        env = state.jobs.env

        async def get_env() -> batches.JobEnv:
            return env

        actors = declare_actors(
            StubBroker(), run=lambda coro: anyio.from_thread.run(_await, coro), env=get_env, settings=settings
        )
        assert actors.listings_sync.actor_name == "maintenance.listings_sync"
        await anyio.to_thread.run_sync(actors.listings_sync.fn)  # what a worker does with the scheduler's message
        assert sorted(await _ok_syncs(state)) == [
            ("alpha_vantage_listing_status", "failed"),  # skipped: no key
            ("master", "ok"),
            ("nasdaq_screener", "failed"),  # nothing served
            ("nasdaq_trader", "ok"),
            ("sec", "ok"),
        ]


async def test_an_embedded_server_runs_the_listings_sync_on_its_own_when_online(
    make_settings: Callable[..., Settings],
    listing_server: ListingServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    serve(listing_server, directory="2026-03-03")
    # A store that never synced gets its first sync this long after start (ten minutes in production).
    monkeypatch.setattr(runtime, "LISTINGS_FIRST_DELAY_S", 0.2)
    settings = live_settings(
        make_settings, listing_server, offline=False, yahoo_enabled=False, alpha_vantage_api_key=None
    )
    async with open_app_state(settings) as state:
        with anyio.fail_after(180):
            while ("master", "ok") not in await _ok_syncs(state):  # noqa: ASYNC110
                await anyio.sleep(0.2)
        # The next one is a day after this one, whenever the server starts again.
        assert isinstance(state.jobs, runtime.JobRuntime)
        assert await state.jobs._first_listings_sync_in() > 86_400 - 600
    offline = live_settings(make_settings, listing_server, offline=True)
    assert not runtime.listings_sync_enabled(offline)
