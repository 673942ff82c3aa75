"""services/jobs.py's ``JobDesk`` driven directly, as tools/_deps.py builds it for a call: the one way a job is started
(create and commit, then queue; a queue that cannot take it fails the job), its status with paged outcomes, cancel,
the active-jobs cap and owner separation.

A real migrated SQLite store and the server's real job runtime (workers/runtime.py): embedded, so batches run in this
process against a FakeProvider; distributed against a Redis that is not there, for the queue that cannot take a job.
The MCP view of the same operations is tests/tools/test_jobs.py; the batch steps alone, tests/workers/test_batches.py.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import anyio
import pytest
from sqlalchemy import select

from core.settings import Settings
from core.wiring import AppState
from providers.fake import FakeProvider
from server.lifespan import open_app_state
from services.errors import (
    InvalidArgument,
    InvalidSymbols,
    JobNotFound,
    LimitExceeded,
    ProviderUnavailable,
    UniverseNotFound,
)
from services.jobs import JobDesk, JobLimits, JobQueue, JobStatus
from services.schemas import Caller
from services.universes import UniverseService
from storage.models import ValidationJob
from storage.repositories import jobs as repo
from storage.repositories.users import get_or_create_user
from tests.support.services import free_port
from workers import batches

pytestmark = pytest.mark.anyio

KNOWN = 12  # the provider knows SYM00001 ... SYM00012; anything else it calls invalid
LATER = 600.0  # a start delay no test waits out: the job stays queued (embedded mode queues it on a timer)


def syms(n: int, start: int = 1) -> list[str]:
    return [f"SYM{i:05d}" for i in range(start, start + n)]


@pytest.fixture
async def state(make_settings: Callable[..., Settings]) -> AsyncIterator[AppState]:
    async with open_app_state(make_settings(), providers=[FakeProvider.with_generated(KNOWN)]) as app_state:
        yield app_state


def desk(
    state: AppState, caller: Caller | None = None, *, limits: JobLimits | None = None, queue: Any = ...
) -> JobDesk:
    """A caller's desk over the state's store and runtime, built as ``ToolDeps.jobs`` builds it."""
    who = caller or state.local_caller
    return JobDesk(
        lambda: state.unit_of_work(owner_id=who.owner_id),
        who,
        limits or state.job_limits,
        state.jobs if queue is ... else queue,
    )


async def other_caller(state: AppState, name: str = "bob") -> Caller:
    async with state.unit_of_work() as session:
        user = await get_or_create_user(session, name)
    return Caller(owner_id=user.id, name=user.name)


async def stored_jobs(state: AppState, owner_id: uuid.UUID) -> list[ValidationJob]:
    """The owner's jobs as the store holds them (read in a unit of work of its own: only what was committed)."""
    async with state.unit_of_work() as session:
        rows = await session.scalars(select(ValidationJob).where(ValidationJob.owner_id == owner_id))
        return list(rows)


async def wait_done(jobs: JobDesk, job_id: str) -> JobStatus:
    with anyio.fail_after(30):  # a hang detector, not a speed bound
        while not (status := await jobs.status(job_id)).done:  # noqa: ASYNC110 - polling the store, as a client does
            await anyio.sleep(0.05)
    return status


class CommitWitness:
    """The runtime's queue, checking at each submit what a separate unit of work sees of the job: a batch (another
    transaction, perhaps another process) must find the job and its items already committed."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self.real: JobQueue = state.jobs  # type: ignore[assignment]
        self.embedded = self.real.embedded
        self.redis = self.real.redis
        self.seen: list[tuple[str, str | None, int, list[str]]] = []

    async def submit(
        self, job_id: Any, owner_id: Any, symbols: Sequence[str], force_refresh: bool = False, **kwargs: Any
    ) -> int:
        async with self.state.unit_of_work() as session:
            job = await session.get(ValidationJob, uuid.UUID(str(job_id)))
            queued = await repo.queued_items(session, uuid.UUID(str(job_id))) if job is not None else {}
        self.seen.append((str(owner_id), job.status if job else None, len(queued), list(symbols)))
        return await self.real.submit(job_id, owner_id, symbols, force_refresh, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


# --- start ----------------------------------------------------------------------------------------------------------
async def test_a_started_job_is_committed_before_it_is_queued_and_the_runtime_settles_it(state):
    witness = CommitWitness(state)
    jobs = desk(state, queue=witness)
    status, wanted = await jobs.start(symbols=["sym00001", " SYM00002 ", "SYM00001", "ZZNOPE"])

    assert wanted == ["SYM00001", "SYM00002", "ZZNOPE"]  # normalised: upper-cased, trimmed, de-duplicated in order
    assert (status.status, status.counts.total, status.counts.queued, status.progress) == ("queued", 3, 3, 0.0)
    assert status.universe_id is None and not status.done
    owner = str(state.local_caller.owner_id)
    assert witness.seen == [(owner, "queued", 3, ["SYM00001", "SYM00002", "ZZNOPE"])]

    done = await wait_done(jobs, status.job_id)
    assert (done.status, done.progress) == ("completed", 1.0)
    assert (done.counts.processed, done.counts.valid, done.counts.invalid, done.counts.queued) == (3, 2, 1, 0)
    assert done.message == "Validated 3 of 3 symbols: 2 valid, 1 invalid."
    items = (await jobs.status(status.job_id, include_items=True)).items
    assert [(i.symbol, i.status, i.source) for i in items] == [
        ("SYM00001", "valid", "fake"),
        ("SYM00002", "valid", "fake"),
        ("ZZNOPE", "invalid", "fake"),
    ]


async def test_a_queue_that_cannot_take_the_job_fails_it_so_it_never_looks_stuck(make_settings):
    # Distributed mode against a port where no Redis listens: the broker refuses the job's batches.
    settings = make_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0", broker_namespace="umcp-desk-test")
    async with open_app_state(settings, providers=[FakeProvider.with_generated(KNOWN)]) as state:
        jobs = desk(state)
        with anyio.fail_after(120):  # a hang detector: the redis client's own retries decide how long it takes
            with pytest.raises(ProviderUnavailable, match="queue is unreachable"):
                await jobs.start(symbols=syms(3))
        (job,) = await stored_jobs(state, state.local_caller.owner_id)
        assert (job.status, job.message) == ("failed", "could not be queued")
        failed = await jobs.status(str(job.id), include_items=True)
        assert [(i.symbol, i.status) for i in failed.items] == [(s, "error") for s in syms(3)]
        assert failed.counts.queued == 0 and failed.done
        async with state.unit_of_work() as session:
            assert await repo.active_job_count(session, state.local_caller.owner_id) == 0  # it holds no place


async def test_without_a_job_runtime_nothing_is_started_and_nothing_is_stored(state):
    with pytest.raises(ProviderUnavailable, match="No job runtime runs in this process"):
        await desk(state, queue=None).start(symbols=syms(2))
    assert await stored_jobs(state, state.local_caller.owner_id) == []


async def test_a_refused_start_stores_nothing(state):
    jobs = desk(state, limits=JobLimits(max_symbols=3))
    async with state.unit_of_work() as session:
        empty, _ = await UniverseService(session, state.local_caller).create("Empty", validate=False)
    refusals = [
        ({}, InvalidArgument, "exactly one of them"),
        ({"symbols": syms(1), "universe_id": str(empty.id)}, InvalidArgument, "exactly one of them"),
        ({"symbols": []}, InvalidArgument, "symbols is empty"),
        ({"symbols": ["AAPL", "NOT A SYMBOL!"]}, InvalidSymbols, "NOT A SYMBOL!"),
        ({"symbols": syms(4)}, LimitExceeded, "4 symbols in one job; the limit is 3"),
        ({"universe_id": str(uuid.uuid4())}, UniverseNotFound, "No universe with id"),
        ({"universe_id": str(empty.id)}, InvalidArgument, "no members to validate"),
    ]
    for arguments, error, message in refusals:
        with pytest.raises(error) as raised:
            await jobs.start(**arguments)
        assert message in str(raised.value), (arguments, raised.value)
    assert await stored_jobs(state, state.local_caller.owner_id) == []


async def test_a_universe_job_validates_its_members_and_is_the_universes_active_job(state):
    async with state.unit_of_work() as session:
        universe, _ = await UniverseService(session, state.local_caller).create(
            "Members", symbols=["SYM00003", "ZZGONE"], validate=False
        )
    uid = str(universe.id)
    jobs = desk(state)
    queued, wanted = await jobs.start(universe_id=uid, delay_s=LATER)
    assert (queued.universe_id, wanted) == (uid, ["SYM00003", "ZZGONE"])
    linked, _ = await jobs.start(symbols=["SYM00004"], linked_universe_id=uid, delay_s=LATER)
    assert linked.universe_id == uid
    async with state.unit_of_work() as session:
        assert await jobs.service(session).active_for_universe(uid) == linked.job_id  # the newest unfinished one
    await jobs.cancel(linked.job_id)
    async with state.unit_of_work() as session:
        assert await jobs.service(session).active_for_universe(uid) == queued.job_id
    await jobs.cancel(queued.job_id)
    async with state.unit_of_work() as session:
        assert await jobs.service(session).active_for_universe(uid) is None

    started, _ = await jobs.start(universe_id=uid, force_refresh=True)
    done = await wait_done(jobs, started.job_id)
    assert (done.universe_id, done.force_refresh, done.counts.valid, done.counts.invalid) == (uid, True, 1, 1)


# --- the active-jobs cap and owners ---------------------------------------------------------------------------------
async def test_the_active_jobs_cap_counts_only_the_owners_unfinished_jobs(state):
    limits = JobLimits(max_active=2)
    alice = desk(state, limits=limits)
    first, _ = await alice.start(symbols=syms(1), delay_s=LATER)
    await alice.start(symbols=syms(1, 2), delay_s=LATER)
    with pytest.raises(LimitExceeded) as refused:
        await alice.start(symbols=syms(1, 3), delay_s=LATER)
    assert refused.value.details == {"limit": 2, "active": 2}
    assert len(await stored_jobs(state, state.local_caller.owner_id)) == 2  # the refused insert was rolled back

    bob = desk(state, await other_caller(state), limits=limits)
    await bob.start(symbols=syms(1), delay_s=LATER)  # another owner's jobs do not count against alice's cap

    await alice.cancel(first.job_id)  # a finished job frees its place
    third, _ = await alice.start(symbols=syms(1, 3), delay_s=LATER)
    assert third.status == "queued"


async def test_another_owners_job_is_not_found_and_stays_untouched(state):
    alice = desk(state)
    job, _ = await alice.start(symbols=syms(2), delay_s=LATER)
    bob = desk(state, await other_caller(state))
    with pytest.raises(JobNotFound, match=f"No job with id {job.job_id} exists for you"):
        await bob.status(job.job_id)
    with pytest.raises(JobNotFound):
        await bob.cancel(job.job_id)
    assert (await alice.status(job.job_id)).status == "queued"
    with pytest.raises(InvalidArgument, match="is not a job id"):
        await alice.status("not-a-job")


# --- status and cancel ------------------------------------------------------------------------------------------
async def test_status_pages_outcomes_in_input_order_and_filters_them(state):
    jobs = desk(state, limits=JobLimits(page_size_default=2, page_size_max=3))
    symbols = ["ZZBAD1", *syms(3), "ZZBAD2"]
    status, _ = await jobs.start(symbols=symbols)
    await wait_done(jobs, status.job_id)

    seen, cursor = [], None
    while True:
        page = await jobs.status(status.job_id, include_items=True, cursor=cursor)
        assert len(page.items) <= 2
        seen += [i.symbol for i in page.items]
        if (cursor := page.next_cursor) is None:
            break
    assert seen == symbols
    invalid = await jobs.status(status.job_id, include_items=True, item_status="invalid", limit=3)
    assert [i.symbol for i in invalid.items] == ["ZZBAD1", "ZZBAD2"] and invalid.next_cursor is None
    assert (await jobs.status(status.job_id)).items is None  # outcomes only when asked
    for bad in (0, 4):
        with pytest.raises(InvalidArgument, match="limit must be between 1 and 3"):
            await jobs.status(status.job_id, include_items=True, limit=bad)
    with pytest.raises(InvalidArgument):
        await jobs.status(status.job_id, include_items=True, cursor="not-a-cursor")


async def test_cancel_settles_every_queued_item_once_and_a_late_batch_changes_nothing(state):
    jobs = desk(state)
    job, wanted = await jobs.start(symbols=syms(4), delay_s=LATER)
    status, cancelled = await jobs.cancel(job.job_id)
    assert cancelled and status.done
    assert (status.status, status.counts.cancelled, status.counts.queued, status.progress) == ("cancelled", 4, 0, 1.0)
    assert status.finished_at is not None and status.expires_at > status.finished_at

    again, cancelled_again = await jobs.cancel(job.job_id)
    assert not cancelled_again and again.status == "cancelled" and again.counts.cancelled == 4

    # The batch the runtime would have sent later finds a finished job: it validates and settles nothing.
    late = await batches.process_batch(state.jobs.env, uuid.UUID(job.job_id), state.local_caller.owner_id, wanted)
    assert (late.skipped, late.status, late.settled) == (True, "cancelled", 0)
    after = await jobs.status(job.job_id, include_items=True)
    assert {i.status for i in after.items} == {"cancelled"} and after.counts.processed == 0


async def test_a_finished_job_cannot_be_cancelled(state):
    jobs = desk(state)
    job, _ = await jobs.start(symbols=syms(2))
    done = await wait_done(jobs, job.job_id)
    status, cancelled = await jobs.cancel(job.job_id)
    assert not cancelled
    assert (status.status, status.counts.valid, status.finished_at) == ("completed", 2, done.finished_at)
