"""workers/batches.py on its own: the retry schedule a batch asks for, driven batch by batch with the jitter fixed.

No broker and no sleeping: ``process_batch`` returns the delay it wants before the next delivery (the actor turns it
into ``dramatiq.Retry(delay=...)``), so the schedule is checked as numbers, try after try, on a real store.
"""

from __future__ import annotations

import uuid

import pytest

from providers.base import AssetProfile
from providers.fake import FakeProvider
from server.lifespan import open_app_state
from services.jobs import JobService
from storage.repositories import jobs as repo
from workers import batches
from workers.batches import JobConfig, JobEnv

pytestmark = pytest.mark.anyio


async def _job(state, symbols: list[str]) -> uuid.UUID:
    async with state.unit_of_work() as session:
        status, _ = await JobService(session, state.local_caller).create(symbols=symbols)
    return uuid.UUID(status.job_id)


async def _items(state, job_id: uuid.UUID) -> dict[str, tuple[str, int, str | None]]:
    async with state.unit_of_work() as session:
        rows = await repo.list_items(session, job_id, after_position=None, limit=100)
    return {r.symbol: (r.status, r.attempts, r.reason) for r in rows}


async def test_retry_delays_double_from_the_base_up_to_the_cap_then_the_symbol_is_given_up(make_settings):
    down = FakeProvider(known={"OUTAGE": AssetProfile(symbol="OUTAGE")}, fail_symbols={"OUTAGE"})
    async with open_app_state(make_settings(), providers=[down]) as state:
        config = JobConfig(retry_base_s=1.0, max_retries=6, retry_max_delay_s=20.0)
        env = JobEnv(config, state.sessions, state.validation, jitter=lambda: 1.0)
        job_id = await _job(state, ["OUTAGE"])
        owner = state.local_caller.owner_id
        delays = [(await batches.process_batch(env, job_id, owner, ["OUTAGE"])).retry_in_s for _ in range(7)]
        # 1, 2, 4, 8, 16 (doubling), then 32 capped at 20; the 7th try exceeds max_retries: recorded, no retry.
        assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 20.0, None]
        status, attempts, reason = (await _items(state, job_id))["OUTAGE"]
        assert (status, attempts) == ("pending", 7)
        assert "simulated outage" in reason and "gave up after 7 tries" in reason
        # The jitter stretches a delay (never shrinks it) and the cap still holds.
        stretched = JobEnv(config, state.sessions, state.validation, jitter=lambda: 1.2)
        again = await _job(state, ["OUTAGE"])
        assert [(await batches.process_batch(stretched, again, owner, ["OUTAGE"])).retry_in_s for _ in range(6)] == [
            1.2,
            2.4,
            4.8,
            9.6,
            19.2,
            20.0,
        ]


async def test_a_rate_limit_is_retried_after_the_providers_wait_unless_it_asks_for_more_than_the_maximum(make_settings):
    limited = FakeProvider(known={"BUSY": AssetProfile(symbol="BUSY")}, rate_limit_every=1, retry_after_s=7.5)
    async with open_app_state(make_settings(), providers=[limited]) as state:
        owner = state.local_caller.owner_id
        config = JobConfig(retry_base_s=1.0, max_rate_limit_retries=3, retry_max_delay_s=10.0)
        env = JobEnv(config, state.sessions, state.validation, jitter=lambda: 1.0)
        job_id = await _job(state, ["BUSY"])
        # The provider's retry-after (7.5 s), not our backoff, and not growing: the provider said when.
        assert [(await batches.process_batch(env, job_id, owner, ["BUSY"])).retry_in_s for _ in range(3)] == [7.5] * 3
        assert (await _items(state, job_id))["BUSY"][:2] == ("queued", 3)

        # A provider asking to wait longer than job_retry_max_delay_s: recorded pending at once, no retry queued.
        limited.retry_after_s = 600.0
        later = await _job(state, ["BUSY"])
        result = await batches.process_batch(env, later, owner, ["BUSY"])
        assert (result.retry_in_s, result.waiting, result.settled, result.status) == (None, 0, 1, "completed")
        status, attempts, reason = (await _items(state, later))["BUSY"]
        assert (status, attempts) == ("pending", 1)
        assert "rate limited" in reason and "asked to wait too long" in reason
