"""workers/batches.py on its own: the retry schedule a batch asks for, driven batch by batch with the jitter fixed.

No broker and no sleeping: ``process_batch`` returns the delay it wants before the next delivery (the actor turns it
into ``dramatiq.Retry(delay=...)``), so the schedule is checked as numbers, try after try, on a real store.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import timedelta

import anyio
import pytest
from mcp import Client
from sqlalchemy import update

from core.redis import redis_client
from providers.base import AssetProfile
from providers.catalog import CatalogProvider
from providers.fake import FakeProvider
from server.app import build_server
from server.lifespan import open_app_state
from services import telemetry
from services.jobs import JobService
from services.schemas import SymbolVerdict
from storage.db import utcnow
from storage.models import Asset, ValidationJob
from storage.repositories import jobs as repo
from tests.conftest import Call
from tests.workers.stores import postgres_store
from workers import batches
from workers.batches import JobConfig, JobEnv
from workers.live import RedisLiveCounters, queued_key

pytestmark = pytest.mark.anyio


async def _job(state, symbols: list[str], *, force_refresh: bool = False) -> uuid.UUID:
    async with state.unit_of_work(owner_id=state.local_caller.owner_id) as session:
        status, _ = await JobService(session, state.local_caller).create(symbols=symbols, force_refresh=force_refresh)
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


async def _job_row(state, job_id: uuid.UUID):
    async with state.unit_of_work() as session:
        return await repo.get_job(session, job_id)


async def test_a_batch_comes_back_after_the_longest_wait_any_of_its_symbols_needs(make_settings):
    # OUTA has failed twice already (its next wait is 4 s), OUTB not yet (1 s): waking after the shorter wait would
    # ask OUTA's provider again before its backoff is over.
    down = FakeProvider(known={s: AssetProfile(symbol=s) for s in ("OUTA", "OUTB")}, fail_symbols={"OUTA", "OUTB"})
    async with open_app_state(make_settings(), providers=[down]) as state:
        env = JobEnv(JobConfig(retry_base_s=1.0, max_retries=6), state.sessions, state.validation, jitter=lambda: 1.0)
        job_id, owner = await _job(state, ["OUTA", "OUTB"]), state.local_caller.owner_id
        first = await batches.process_batch(env, job_id, owner, ["OUTA"])
        second = await batches.process_batch(env, job_id, owner, ["OUTA"])
        both = await batches.process_batch(env, job_id, owner, ["OUTA", "OUTB"])
        assert [r.retry_in_s for r in (first, second, both)] == [1.0, 2.0, 4.0]
        assert (both.waiting, both.settled, both.skipped, both.status) == (2, 0, False, "running")
        items = await _items(state, job_id)
        assert items["OUTA"] == ("queued", 3, "no provider could answer (fake: simulated outage); retry 3 of 6 queued")
        assert items["OUTB"] == ("queued", 1, "no provider could answer (fake: simulated outage); retry 1 of 6 queued")
        # Each symbol was asked once per batch that held it, no more.
        assert (down.calls_by_symbol["OUTA"], down.calls_by_symbol["OUTB"]) == (3, 1)


async def test_a_provider_asking_for_exactly_the_maximum_wait_is_still_waited_for(make_settings):
    limited = FakeProvider(known={"BUSY": AssetProfile(symbol="BUSY")}, rate_limit_every=1, retry_after_s=10.0)
    async with open_app_state(make_settings(), providers=[limited]) as state:
        config = JobConfig(retry_base_s=1.0, max_rate_limit_retries=3, retry_max_delay_s=10.0)
        env = JobEnv(config, state.sessions, state.validation, jitter=lambda: 1.0)
        job_id = await _job(state, ["BUSY"])
        result = await batches.process_batch(env, job_id, state.local_caller.owner_id, ["BUSY"])
        assert (result.retry_in_s, result.waiting, result.settled) == (10.0, 1, 0)
        assert (await _items(state, job_id))["BUSY"][:2] == ("queued", 1)


async def test_a_job_runs_marks_itself_running_then_completes_with_a_summary_of_its_outcomes(make_settings):
    known = {s: AssetProfile(symbol=s) for s in ("GOOD1", "GOOD2", "LATE")}
    fake = FakeProvider(known=known, fail_symbols={"LATE"})
    async with open_app_state(make_settings(), providers=[fake]) as state:
        env = JobEnv(JobConfig(max_retries=0), state.sessions, state.validation, jitter=lambda: 1.0)
        owner = state.local_caller.owner_id
        job_id = await _job(state, ["GOOD1", "NOPE1", "GOOD2", "LATE"])
        queued = await _job_row(state, job_id)
        assert (queued.status, queued.started_at, queued.message) == ("queued", None, None)

        part = await batches.process_batch(env, job_id, owner, ["GOOD1", "NOPE1"])
        assert (part.settled, part.waiting, part.retry_in_s, part.status) == (2, 0, None, "running")
        running = await _job_row(state, job_id)
        assert running.status == "running" and running.started_at is not None and running.finished_at is None
        assert (running.processed, running.valid_count, running.invalid_count) == (2, 1, 1)
        assert (await _items(state, job_id))["NOPE1"] == ("invalid", 1, "fake does not list NOPE1")  # nothing similar

        rest = await batches.process_batch(env, job_id, owner, ["GOOD2", "LATE"])
        assert (rest.settled, rest.status) == (2, "completed")
        done = await _job_row(state, job_id)
        assert done.status == "completed" and done.finished_at is not None and done.started_at == running.started_at
        assert done.message == "Validated 4 of 4 symbols: 2 valid, 1 invalid, 1 pending."
        assert (done.processed, done.valid_count, done.invalid_count, done.pending_count) == (4, 2, 1, 1)
        status, attempts, reason = (await _items(state, job_id))["LATE"]
        assert (status, attempts, reason) == (
            "pending",
            1,
            "no provider could answer (fake: simulated outage) (gave up after 1 tries)",
        )

        # A redelivered batch of a finished job is skipped and says why.
        again = await batches.process_batch(env, job_id, owner, ["GOOD2", "LATE"])
        assert (again.skipped, again.status, again.settled) == (True, "completed", 0)
        assert fake.calls_by_symbol["LATE"] == 1
        missing = await batches.process_batch(env, uuid.uuid4(), owner, ["GOOD1"])
        assert (missing.skipped, missing.status) == (True, None)


def test_the_job_settings_reach_the_batches(make_settings):
    settings = make_settings(
        job_batch_size=7,
        job_batch_deadline_s=11.5,
        job_max_retries=2,
        job_max_rate_limit_retries=9,
        job_retry_base_s=0.5,
        job_retry_max_delay_s=42.0,
        job_retention_s=3600,
        job_stall_s=120,
        job_max_resumes=5,
        job_watch_interval_s=4,
        refresh_max_age_s=7200,
        refresh_limit=33,
    )
    assert JobConfig.from_settings(settings) == JobConfig(
        batch_size=7,
        batch_deadline_s=11.5,
        max_retries=2,
        max_rate_limit_retries=9,
        retry_base_s=0.5,
        retry_max_delay_s=42.0,
        retention_s=3600,
        stall_s=120,
        max_resumes=5,
        lost_grace_s=4.0,
        refresh_max_age_s=7200,
        refresh_limit=33,
    )
    # The grace before a job counts as lost is the watch interval, but never more than 10 s.
    assert JobConfig.from_settings(make_settings(job_watch_interval_s=300)).lost_grace_s == 10.0


def test_the_default_jitter_only_ever_stretches_a_delay_by_up_to_a_fifth(make_settings):
    env = JobEnv(JobConfig(), sessions=None, validation=None)
    factors = [env.jitter() for _ in range(2000)]
    assert all(1.0 <= f <= 1.2 for f in factors)
    # Spread over the whole range (2,000 draws all in one half: a chance of 2**-2000).
    assert min(factors) < 1.1 < max(factors)


async def test_the_refresh_plans_pending_symbols_first_then_members_by_the_age_of_their_verdict(make_settings):
    symbols = ["ZPEND", "ZLONEPEND", "ZOLD", "ZOLDER", "ZFRESH", "ZNEVER", "ZGONE", "ZLONE", "ZUNK"]
    fake = FakeProvider(known={s: AssetProfile(symbol=s) for s in symbols})
    settings = make_settings(refresh_max_age_s=86_400, refresh_limit=100)
    server = build_server(settings, providers=[fake])
    async with Client(server) as client:
        call = Call(client)
        members = [s for s in symbols if s not in ("ZLONEPEND", "ZLONE")]
        await call.ok("create_universe", name="Held", symbols=members, validate=False)
        await call.ok("validate_symbols", symbols=["ZLONEPEND", "ZLONE"])  # known to the store, in no universe
        state = server.app_state
        now = utcnow()
        days = lambda n: now - timedelta(days=n)  # noqa: E731
        verdicts = {  # symbol: (validation_status, last_validated_at, listing_status)
            "ZPEND": ("pending", days(1), "listed"),
            "ZLONEPEND": ("pending", days(2), "listed"),  # pending is re-checked even outside any universe
            "ZOLD": ("valid", days(3), "listed"),
            "ZOLDER": ("invalid", days(5), "listed"),
            "ZFRESH": ("valid", now - timedelta(hours=1), "listed"),  # younger than refresh_max_age_s
            "ZNEVER": ("valid", None, "listed"),
            "ZGONE": ("valid", days(5), "delisted"),  # delisted: nothing more to learn
            "ZLONE": ("valid", days(5), "listed"),  # in no universe: nobody relies on it
            "ZUNK": ("unknown", days(5), "listed"),  # never validated: not the refresh's business
        }
        async with state.unit_of_work() as session:
            for symbol, (status, at, listing) in verdicts.items():
                await session.execute(
                    update(Asset)
                    .where(Asset.symbol == symbol)
                    .values(validation_status=status, last_validated_at=at, listing_status=listing)
                )
        env = JobEnv(JobConfig.from_settings(settings), state.sessions, state.validation)
        due = await batches.plan_refresh(env)
        # Pending first (oldest first), then stale verdicts oldest first; a never-dated verdict is due as well
        # (where it sorts depends on the database's NULL order).
        assert [s for s in due if s != "ZNEVER"] == ["ZLONEPEND", "ZPEND", "ZOLDER", "ZOLD"] and "ZNEVER" in due
        capped = JobEnv(JobConfig(refresh_max_age_s=86_400, refresh_limit=2), state.sessions, state.validation)
        assert await batches.plan_refresh(capped) == ["ZLONEPEND", "ZPEND"]
        fake.calls_by_symbol.clear()
        # The refresh asks the providers again even about a verdict that is still fresh.
        assert await batches.revalidate(env, ["ZFRESH", "ZOLD", "ZNOTLISTED"]) == {"valid": 2, "invalid": 1}
        assert fake.calls_by_symbol == {"ZFRESH": 1, "ZOLD": 1, "ZNOTLISTED": 1}


async def _idle(state, job_id: uuid.UUID, *, for_s: float, status: str = "running", resumes: int = 0) -> None:
    """Make the job look as if nothing happened to it for ``for_s`` seconds (after ``resumes`` resumptions)."""
    async with state.unit_of_work() as session:
        await session.execute(
            update(ValidationJob)
            .where(ValidationJob.id == job_id)
            .values(status=status, resumes=resumes, updated_at=utcnow() - timedelta(seconds=for_s))
        )


async def test_the_watch_resumes_only_the_job_whose_batches_redis_lost_once_its_grace_is_over(
    make_settings, redis_url, caplog
):
    caplog.set_level(logging.WARNING, logger="workers.batches")
    caplog.set_level(logging.INFO, logger="universe_mcp.access")
    fake = FakeProvider.with_generated(21)
    racing: list[uuid.UUID] = []

    class RacingCounters(RedisLiveCounters):
        """The real counters, with a batch of each job in ``racing`` committing while the watch is at work: after it
        read the jobs, before it acts on them."""

        async def lost(self, job_ids: Sequence[str]) -> set[str]:
            found = await super().lost(job_ids)
            for job_id in racing:
                queued = await _items(state, job_id)
                await batches.process_batch(env, job_id, owner, [s for s, v in queued.items() if v[0] == "queued"][:1])
            return found

    async with open_app_state(make_settings(), providers=[fake]) as state:
        client = redis_client(redis_url, "live")
        namespace = f"umcp-test-{uuid.uuid4().hex[:10]}"
        live = RacingCounters(client, namespace, ttl_s=60)
        config = JobConfig(stall_s=1800, max_resumes=3, lost_grace_s=10.0)
        env = JobEnv(config, state.sessions, state.validation, live=live, jitter=lambda: 1.0)
        owner = state.local_caller.owner_id
        sym = [f"SYM{i:05d}" for i in range(1, 22)]
        lost = await _job(state, sym[0:3], force_refresh=True)  # marker gone, idle for a minute: batches gone
        marked = await _job(state, sym[3:6])  # idle for a minute, but its batches are still queued
        fresh = await _job(state, sym[6:9])  # marker gone, but idle for less than the grace: may still be sending
        finished = await _job(state, sym[9:12])  # every item settled; only its completion was missed
        hopeless = await _job(state, sym[12:15])  # batches still queued, but no progress through three resumptions
        # As lost and as hopeless, but a batch of each commits while the watch is at work: neither is stuck.
        lost_but_running, hopeless_but_running = await _job(state, sym[15:18]), await _job(state, sym[18:21])
        racing += [lost_but_running, hopeless_but_running]
        await batches.process_batch(env, finished, owner, sym[9:12])
        await batches.process_batch(env, lost, owner, sym[0:1])  # one of the lost job's symbols had settled
        for job_id in (lost, marked, finished, lost_but_running):
            await _idle(state, job_id, for_s=60)
        await _idle(state, fresh, for_s=1, status="queued")
        await _idle(state, finished, for_s=3600)
        await _idle(state, hopeless, for_s=3600, resumes=3)
        await _idle(state, hopeless_but_running, for_s=3600, resumes=3)
        try:
            for job_id in (marked, hopeless, hopeless_but_running):
                await client.set(queued_key(namespace, str(job_id)), "1")
            before = await _job_row(state, lost)
            report = await batches.watch(env)

            assert report.failed == [hopeless]
            [resumed] = report.resumed
            assert (resumed.job_id, resumed.owner_id, resumed.force_refresh, resumed.symbols) == (
                lost,
                owner,
                True,
                sym[1:3],
            )
            row = await _job_row(state, lost)
            assert row.resumes == 1 and row.updated_at > before.updated_at and row.status == "running"
            assert row.message == (
                f"Resumed at {row.updated_at:%Y-%m-%d %H:%M} UTC: the job queue had lost its batches (the broker "
                "restarted without its data); 2 symbols queued again (resumption 1 of at most 3 without progress)."
            )
            # The live copy (which a Redis restart loses too) is written again.
            assert (await live.read(str(lost)))["processed"] == 1
            for untouched in (marked, fresh):
                row = await _job_row(state, untouched)
                assert (row.resumes, row.message) == (0, None), row
            for raced in (lost_but_running, hopeless_but_running):
                row = await _job_row(state, raced)
                assert (row.status, row.message, row.processed) == ("running", None, 1), row
            done = await _job_row(state, finished)
            assert (done.status, done.resumes) == ("completed", 0)
            assert done.message == "Validated 3 of 3 symbols: 3 valid."
            assert (await live.read(str(finished)))["status"] == "completed"
            failed = await _job_row(state, hopeless)
            assert (failed.status, failed.error_count) == ("failed", 3)
            assert failed.expires_at == failed.finished_at + timedelta(seconds=config.retention_s)  # then cleaned
            assert failed.message == (
                f"Stopped at {failed.finished_at:%Y-%m-%d %H:%M} UTC: no progress for 60 min, after its remaining "
                "symbols had been queued again 3 times without progress (is any worker running? see "
                "get_service_health); 3 symbols recorded as error. Start a new job for them."
            )
            reasons = {reason for _, _, reason in (await _items(state, hopeless)).values()}
            assert reasons == {"not validated: the job stalled (no progress for 60 min) and was stopped"}
            assert (await live.read(str(hopeless)))["status"] == "failed"
            # Each job that reached its end has its one line, with its counts.
            lines = {r.fields["job_id"]: r.fields for r in caplog.records if getattr(r, "event", None) == "job"}
            digest = telemetry.owner_digest(owner)
            assert {k: v for k, v in lines[str(hopeless)].items() if k != "elapsed_ms"} == {
                "job_id": str(hopeless),
                "owner": digest,
                "outcome": "failed",
                "error": 3,
            }
            assert {k: v for k, v in lines[str(finished)].items() if k != "elapsed_ms"} == {
                "job_id": str(finished),
                "owner": digest,
                "outcome": "completed",
                "total": 3,
                "valid": 3,
                "invalid": 0,
                "pending": 0,
                "error": 0,
            }
            assert set(lines) == {str(hopeless), str(finished)}
            assert lines[str(hopeless)]["elapsed_ms"] > 0  # from its creation to its failure
            # What the operator's log says.
            warnings = [r.getMessage() for r in caplog.records if r.name == "workers.batches"]
            assert warnings == [
                f"job {lost} resumed: 2 symbols queued again",
                f"job {hopeless} stopped: it made no progress after 3 resumptions",
            ]
        finally:
            keys = [k async for k in client.scan_iter(f"{namespace}:*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()


async def test_an_unlisted_symbols_outcome_names_the_symbols_the_user_may_have_meant(make_settings):
    async with open_app_state(make_settings(), providers=[FakeProvider(), CatalogProvider()]) as state:
        env = JobEnv(JobConfig(), state.sessions, state.validation, jitter=lambda: 1.0)
        job_id = await _job(state, ["AAPLX"])
        await batches.process_batch(env, job_id, state.local_caller.owner_id, ["AAPLX"])
        status, _, reason = (await _items(state, job_id))["AAPLX"]
        suggested = await state.validation.suggest(None, "AAPLX")
        assert status == "invalid" and "AAPL" in suggested and len(suggested) <= 5
        assert reason == f"fake does not list AAPLX; similar: {', '.join(suggested)}"


async def test_a_batch_never_waits_past_its_deadline_for_a_hanging_provider(make_settings):
    async with open_app_state(make_settings(), providers=[FakeProvider(hang=True)]) as state:
        env = JobEnv(JobConfig(batch_deadline_s=0.2), state.sessions, state.validation, jitter=lambda: 1.0)
        job_id = await _job(state, ["ZZHANG"])
        with anyio.fail_after(30):  # a hang detector, not a speed bound: the provider never answers
            result = await batches.process_batch(env, job_id, state.local_caller.owner_id, ["ZZHANG"])
        assert (result.waiting, result.settled, result.retry_in_s, result.status) == (1, 0, 5.0, "running")
        reason = "no provider answered within the deadline; retry 1 of 4 queued"
        assert (await _items(state, job_id))["ZZHANG"] == ("queued", 1, reason)


async def test_a_batch_out_of_retries_records_only_its_own_queued_symbols_as_error(make_settings):
    fake = FakeProvider.with_generated(4)
    async with open_app_state(make_settings(), providers=[fake]) as state:
        env = JobEnv(JobConfig(), state.sessions, state.validation, jitter=lambda: 1.0)
        owner = state.local_caller.owner_id
        job_id = await _job(state, ["SYM00001", "SYM00002", "SYM00003", "SYM00004"])
        await batches.process_batch(env, job_id, owner, ["SYM00001"])
        await batches.fail_batch(env, job_id, owner, ["SYM00001", "SYM00002"], "timed out 3 times")
        items = await _items(state, job_id)
        assert items["SYM00001"] == ("valid", 1, None)  # settled before: kept
        assert items["SYM00002"] == ("error", 1, "timed out 3 times")
        assert items["SYM00003"][0] == items["SYM00004"][0] == "queued"  # another batch's
        row = await _job_row(state, job_id)
        assert (row.status, row.processed, row.error_count) == ("running", 2, 1)
        await batches.fail_batch(env, job_id, owner, ["SYM00003", "SYM00004"], "timed out 3 times")
        done = await _job_row(state, job_id)
        assert (done.status, done.message) == ("completed", "Validated 4 of 4 symbols: 1 valid, 3 error.")


async def test_a_restart_requeues_the_older_active_jobs_with_only_their_queued_symbols(make_settings):
    fake = FakeProvider.with_generated(6)
    async with open_app_state(make_settings(), providers=[fake]) as state:
        env = JobEnv(JobConfig(), state.sessions, state.validation, jitter=lambda: 1.0)
        owner = state.local_caller.owner_id
        sym = [f"SYM{i:05d}" for i in range(1, 7)]
        async with state.unit_of_work() as session:
            older, _ = await JobService(session, state.local_caller).create(symbols=sym[:3], force_refresh=True)
        settled_only = await _job(state, sym[3:4])
        await batches.process_batch(env, settled_only, owner, sym[3:4])
        await _idle(state, settled_only, for_s=0)  # all settled, its completion missed: nothing to queue
        cutoff = utcnow()
        newer = await _job(state, sym[4:6])  # started by this process: already queued here
        await batches.process_batch(env, uuid.UUID(older.job_id), owner, sym[:1])
        [job] = await batches.unfinished(env, created_before=cutoff)
        assert (str(job.job_id), job.owner_id, job.force_refresh, job.symbols) == (older.job_id, owner, True, sym[1:3])
        # Only its creation time kept the newer job out.
        later = await batches.unfinished(env, created_before=utcnow())
        assert [j.job_id for j in later] == [uuid.UUID(older.job_id), newer]


async def test_the_refresh_is_bounded_by_the_batch_deadline_not_the_inline_one(make_settings):
    # The inline deadline is a minute; the refresh's own (batch) deadline a fifth of a second. The provider answers
    # after 3 s: within the inline deadline (a wrong deadline shows as a verdict, not only as a hang), past the batch
    # one.
    settings = make_settings(validation_deadline_s=60)
    slow = FakeProvider(known={"ZZSLOW": AssetProfile(symbol="ZZSLOW")}, latency_s=3.0)
    async with open_app_state(settings, providers=[slow]) as state:
        env = JobEnv(JobConfig(batch_deadline_s=0.2), state.sessions, state.validation)
        with anyio.fail_after(30):  # a hang detector, not a speed bound
            assert await batches.revalidate(env, ["ZZSLOW"]) == {"pending": 1}


async def test_cleanup_reports_and_logs_what_it_deleted(make_settings, caplog):
    caplog.set_level(logging.INFO, logger="workers.batches")
    async with open_app_state(make_settings(), providers=[FakeProvider()]) as state:
        env = JobEnv(JobConfig(), state.sessions, state.validation)
        expired = await _job(state, ["SYM00001"])
        await _job(state, ["SYM00002"])
        async with state.unit_of_work() as session:
            await session.execute(
                update(ValidationJob).where(ValidationJob.id == expired).values(expires_at=utcnow() - timedelta(1))
            )
        assert (await batches.cleanup(env)).deleted_jobs == 1
        assert (await batches.cleanup(env)).deleted_jobs == 0  # nothing more: nothing logged
        assert await _job_row(state, expired) is None
    assert [r.getMessage() for r in caplog.records if r.name == "workers.batches"] == [
        "cleanup: deleted 1 expired jobs"
    ]


async def test_on_postgresql_a_batch_acts_for_the_jobs_owner_under_row_level_security(make_settings, postgres_url):
    """Here the store's role does not own the tables, so row-level security shows a transaction only the rows of the
    owner it acts for: a batch step that forgot to act for the job's owner would see no job and no items. (The job
    runtime itself connects as the tables' owner, so that its watch sees every owner's jobs.)"""
    fake = FakeProvider(known={s: AssetProfile(symbol=s) for s in ("ZRA", "ZRB", "ZRC")}, fail_symbols={"ZRC"})
    async with postgres_store(postgres_url) as overrides:
        async with open_app_state(make_settings(**overrides), providers=[fake]) as state:
            env = JobEnv(JobConfig(max_retries=3), state.sessions, state.validation, scoped=True)
            owner = state.local_caller.owner_id
            job_id = await _job(state, ["ZRA", "ZRB", "ZRC"])
            result = await batches.process_batch(env, job_id, owner, ["ZRA", "ZRB", "ZRC"])
            assert (result.settled, result.waiting, result.status) == (2, 1, "running")
            await batches.fail_batch(env, job_id, owner, ["ZRC"], "timed out 4 times")
            async with state.unit_of_work(owner_id=owner) as session:
                row = await repo.get_job(session, job_id)
            assert (row.status, row.valid_count, row.error_count) == ("completed", 2, 1)
            # Unscoped, this role sees nothing of it: the steps above did act for the owner.
            async with state.unit_of_work() as session:
                assert await repo.get_job(session, job_id) is None


def test_an_outcome_row_holds_only_statuses_an_item_may_hold_and_at_most_five_suggestions():
    """``_outcome`` turns a verdict into the row ``settle_items`` writes. The items' CHECK constraint admits no
    ``unknown``, so any status but valid, invalid and pending is stored as pending; the did-you-mean list is cut at
    five, and an invalid verdict that came without a reason still says what it is."""
    unknown = batches._outcome(SymbolVerdict(symbol="ZUNK", status="unknown", source="fake", reason="never asked"))
    assert unknown == {"symbol": "ZUNK", "status": "pending", "source": "fake", "reason": "never asked"}
    for status in ("valid", "invalid", "pending"):
        assert batches._outcome(SymbolVerdict(symbol="ZOK", status=status))["status"] == status
    many = [f"ZC{i}" for i in range(1, 8)]
    bare = batches._outcome(SymbolVerdict(symbol="ZNOPE", status="invalid", candidates=many), note=" (late)")
    assert bare["reason"] == "not a listed security; similar: ZC1, ZC2, ZC3, ZC4, ZC5 (late)"


async def test_the_watch_judges_a_job_lost_or_stalled_only_once_it_was_idle_for_longer_than_the_limit(
    make_settings, redis_url, monkeypatch
):
    """The grace and stall limits are strict: a job idle for exactly ``lost_grace_s`` (its marker gone) or exactly
    ``stall_s`` (its marker there) is left alone; one microsecond more and it is resumed. The watch reads the clock
    itself, so it is fixed here to stage the boundary."""
    now = utcnow()
    monkeypatch.setattr(batches, "utcnow", lambda: now)
    fake = FakeProvider.with_generated(8)
    async with open_app_state(make_settings(), providers=[fake]) as state:
        client = redis_client(redis_url, "live")
        namespace = f"umcp-test-{uuid.uuid4().hex[:10]}"
        config = JobConfig(stall_s=1800, lost_grace_s=10.0)
        env = JobEnv(config, state.sessions, state.validation, live=RedisLiveCounters(client, namespace, ttl_s=60))
        sym = [f"SYM{i:05d}" for i in range(1, 9)]
        tick = timedelta(microseconds=1)
        idle = {  # job: (idle for, marker still there)
            await _job(state, sym[0:2]): (timedelta(seconds=10), False),
            await _job(state, sym[2:4]): (timedelta(seconds=10) + tick, False),
            await _job(state, sym[4:6]): (timedelta(seconds=1800), True),
            await _job(state, sym[6:8]): (timedelta(seconds=1800) + tick, True),
        }
        at_grace, past_grace, at_stall, past_stall = idle
        try:
            async with state.unit_of_work() as session:
                for job_id, (for_, marked) in idle.items():
                    await session.execute(
                        update(ValidationJob)
                        .where(ValidationJob.id == job_id)
                        .values(status="running", updated_at=now - for_)
                    )
                    if marked:
                        await client.set(queued_key(namespace, str(job_id)), "1")
            report = await batches.watch(env)
            assert sorted(str(j.job_id) for j in report.resumed) == sorted([str(past_grace), str(past_stall)])
            for left_alone in (at_grace, at_stall):
                assert (await _job_row(state, left_alone)).resumes == 0
        finally:
            keys = [k async for k in client.scan_iter(f"{namespace}:*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()
