"""storage/repositories/jobs.py on a real store: the guards that keep a job's record right when batches are delivered
twice, recounts race, a watch and a batch run at once, or two job starts of one owner race (PostgreSQL).

Each test drives the repository the way the workers and services do and asserts what a user of the job would see:
an outcome written once, counters that never go back, a job failed or resumed only as the watch saw it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import anyio
import pytest
from mcp import Client
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from server.app import build_server
from server.lifespan import open_app_state
from storage.db import utcnow
from storage.models import Asset, ValidationJob, ValidationJobItem
from storage.repositories import jobs as repo
from storage.repositories.users import get_user_by_name
from tests.conftest import Call
from tests.workers.stores import postgres_store

pytestmark = pytest.mark.anyio


@pytest.fixture
async def state(make_settings) -> AsyncIterator:
    async with open_app_state(make_settings(), providers=[]) as app_state:
        yield app_state


async def _job(state, symbols: list[str], *, now: datetime | None = None, universe_id=None) -> uuid.UUID:
    now = now or utcnow()
    async with state.unit_of_work() as session:
        job = await repo.create_job(
            session,
            owner_id=state.local_caller.owner_id,
            total=len(symbols),
            universe_id=universe_id,
            force_refresh=False,
            now=now,
            expires_at=now + timedelta(days=7),
        )
        await repo.create_job_items(session, job.id, state.local_caller.owner_id, symbols)
        return job.id


async def _row(state, job_id: uuid.UUID) -> ValidationJob | None:
    async with state.unit_of_work() as session:
        return await repo.get_job(session, job_id)


async def _items(state, job_id: uuid.UUID) -> dict[str, tuple]:
    async with state.unit_of_work() as session:
        rows = await repo.list_items(session, job_id, after_position=None, limit=10_000)
    return {r.symbol: (r.status, r.attempts, r.reason, r.source) for r in rows}


async def test_an_outcome_is_written_once_and_only_over_a_queued_item(state):
    job_id = await _job(state, ["AAA", "BBB", "CCC"])
    async with state.unit_of_work() as session:
        await repo.settle_items(
            session,
            job_id,
            [
                {"symbol": "AAA", "status": "valid", "source": "fake", "reason": ""},
                {"symbol": "BBB", "status": "invalid", "source": "fake", "reason": "x" * 400},
            ],
            utcnow(),
        )
        # A second delivery of the same outcomes, with other answers, changes nothing.
        await repo.settle_items(session, job_id, [{"symbol": "AAA", "status": "invalid", "source": "other"}], utcnow())
        await repo.bump_attempts(session, job_id, {"AAA": "should not count", "CCC": "y" * 400})
        await repo.settle_items(session, job_id, [], utcnow())
        await repo.bump_attempts(session, job_id, {})
    items = await _items(state, job_id)
    assert items["AAA"] == ("valid", 1, None, "fake")  # an empty reason is stored as none
    assert items["BBB"] == ("invalid", 1, "x" * 300, "fake")  # reasons are cut to the column's 300 characters
    assert items["CCC"] == ("queued", 1, "y" * 300, None)
    async with state.unit_of_work() as session:
        counts = await repo.item_counts(session, job_id)
        assert await repo.queued_items(session, job_id) == {"CCC": 1}
    assert counts.as_dict() == {
        "total": 3,
        "processed": 2,
        "valid": 1,
        "invalid": 1,
        "pending": 0,
        "error": 0,
        "cancelled": 0,
        "queued": 1,
        "retrying": 1,
    }


async def test_long_jobs_are_written_and_read_in_chunks_without_losing_an_item(state):
    symbols = [f"S{i:04d}" for i in range(1_203)]  # more than two chunks of 500 bound rows
    job_id = await _job(state, symbols)
    settled = symbols[::2]
    async with state.unit_of_work() as session:
        await repo.settle_items(session, job_id, [{"symbol": s, "status": "valid"} for s in settled], utcnow())
        queued = await repo.queued_items(session, job_id, symbols)
        every = await repo.queued_items(session, job_id)
        counts = await repo.item_counts(session, job_id)
    assert queued == dict.fromkeys(symbols[1::2], 0)
    assert list(every) == symbols[1::2]  # in input order
    assert (counts.total, counts.valid, counts.queued) == (1_203, 602, 601)
    async with state.unit_of_work() as session:
        page = await repo.list_items(session, job_id, after_position=499, limit=3)
        valid = await repo.list_items(session, job_id, after_position=None, limit=2, status="valid")
    assert [(i.symbol, i.position) for i in page] == [("S0500", 500), ("S0501", 501), ("S0502", 502)]
    assert [i.symbol for i in valid] == ["S0000", "S0002"]


async def test_a_stale_recount_never_overwrites_a_newer_one_and_only_progress_clears_resumptions(state):
    job_id = await _job(state, ["AAA", "BBB", "CCC"])
    t0 = utcnow()
    async with state.unit_of_work() as session:
        await session.execute(update(ValidationJob).where(ValidationJob.id == job_id).values(resumes=2))
        await repo.write_counts(session, job_id, repo.ItemCounts(total=3, valid=1, invalid=1, queued=1), t0)
    row = await _row(state, job_id)
    assert (row.processed, row.valid_count, row.invalid_count, row.resumes) == (2, 1, 1, 0)  # progress: reset

    async with state.unit_of_work() as session:
        # (updated_at given: the column's onupdate would stamp this statement's time)
        await session.execute(update(ValidationJob).where(ValidationJob.id == job_id).values(resumes=1, updated_at=t0))
        # A recount that lost a race (fewer processed) lands later: ignored, heartbeat included.
        await repo.write_counts(session, job_id, repo.ItemCounts(total=3, valid=1, queued=2), t0 + timedelta(1))
    row = await _row(state, job_id)
    assert (row.processed, row.invalid_count, row.resumes, row.updated_at) == (2, 1, 1, t0)

    # The same count again (a batch whose symbols all wait for a retry): a heartbeat, but not progress.
    later = t0 + timedelta(minutes=5)
    async with state.unit_of_work() as session:
        same = repo.ItemCounts(total=3, valid=1, pending=1, error=0, queued=1)
        await repo.write_counts(session, job_id, same, later)
    row = await _row(state, job_id)
    assert (row.processed, row.pending_count, row.invalid_count, row.resumes, row.updated_at) == (2, 1, 0, 1, later)
    async with state.unit_of_work() as session:
        await repo.write_counts(session, job_id, repo.ItemCounts(total=3, valid=1, error=2), later)
    row = await _row(state, job_id)
    assert (row.processed, row.error_count, row.resumes) == (3, 2, 0)


async def test_the_watch_fails_or_resumes_a_job_only_as_it_saw_it(state):
    """A batch that ran between the watch reading a job and acting on it moved ``updated_at``: the job is not stuck,
    and neither failing nor resuming may touch it."""
    job_id = await _job(state, ["AAA", "BBB"])
    seen = (await _row(state, job_id)).updated_at
    now = seen + timedelta(hours=1)
    long_message = "m" * 600
    async with state.unit_of_work() as session:
        stale = seen - timedelta(seconds=1)
        assert not await repo.fail_job(
            session, job_id, now=now, expires_at=now, message="x", item_reason="y", seen_updated_at=stale
        )
        assert not await repo.mark_resumed(session, job_id, seen_updated_at=stale, now=now, message="x")
    row = await _row(state, job_id)
    assert (row.status, row.resumes, row.message, row.updated_at) == ("queued", 0, None, seen)
    assert {s for s, *_ in (await _items(state, job_id)).values()} == {"queued"}

    async with state.unit_of_work() as session:
        assert await repo.mark_resumed(session, job_id, seen_updated_at=seen, now=now, message=long_message)
        assert not await repo.mark_resumed(session, job_id, seen_updated_at=seen, now=now, message="again")
    row = await _row(state, job_id)
    assert (row.status, row.resumes, row.message, row.updated_at) == ("queued", 1, "m" * 500, now)

    later = now + timedelta(minutes=1)
    async with state.unit_of_work() as session:
        await repo.settle_items(session, job_id, [{"symbol": "AAA", "status": "valid"}], later)
        assert await repo.fail_job(
            session, job_id, now=later, expires_at=later, message=long_message, seen_updated_at=now
        )
    row = await _row(state, job_id)
    assert (row.status, row.finished_at, row.expires_at, row.message) == ("failed", later, later, "m" * 500)
    items = await _items(state, job_id)
    assert items["AAA"][0] == "valid" and items["BBB"] == ("error", 0, "m" * 300, None)  # the message, cut
    async with state.unit_of_work() as session:
        assert not await repo.fail_job(session, job_id, now=later, expires_at=later, message="twice")
        assert not await repo.complete_job(session, job_id, now=later, expires_at=later, message="done")
        assert not await repo.cancel_job(session, job_id, now=later, expires_at=later)
    assert (await _row(state, job_id)).message == "m" * 500


async def test_failing_a_job_gives_its_queued_items_the_item_reason(state):
    job_id = await _job(state, ["AAA", "BBB"])
    now = utcnow()
    async with state.unit_of_work() as session:
        assert await repo.fail_job(session, job_id, now=now, expires_at=now, message="stopped", item_reason="r" * 400)
    assert {v[:3] for v in (await _items(state, job_id)).values()} == {("error", 0, "r" * 300)}


async def test_cancel_and_complete_touch_only_an_active_job_and_its_queued_items(state):
    job_id = await _job(state, ["AAA", "BBB"])
    now = utcnow()
    async with state.unit_of_work() as session:
        await repo.settle_items(session, job_id, [{"symbol": "AAA", "status": "valid"}], now)
        assert await repo.cancel_job(session, job_id, now=now, expires_at=now + timedelta(days=1))
    row = await _row(state, job_id)
    assert (row.status, row.finished_at, row.message) == ("cancelled", now, "cancelled by its owner")
    items = await _items(state, job_id)
    assert items["AAA"][0] == "valid"
    assert items["BBB"] == ("cancelled", 0, "job cancelled before this symbol was validated", None)

    other = await _job(state, ["CCC"])
    async with state.unit_of_work() as session:
        await repo.mark_running(session, other, now)
        assert await repo.complete_job(session, other, now=now, expires_at=now, message="d" * 600)
        await repo.mark_running(session, other, now + timedelta(1))  # never back to running
    row = await _row(state, other)
    assert (row.status, row.started_at, row.message) == ("completed", now, "d" * 500)


async def test_expiry_cleanup_deletes_only_jobs_past_their_expiry_with_their_items(state):
    now = utcnow()
    old, due, kept = [await _job(state, ["AAA"]) for _ in range(3)]
    async with state.unit_of_work() as session:
        for job_id, expires in ((old, now - timedelta(1)), (due, now), (kept, now + timedelta(1))):
            await session.execute(update(ValidationJob).where(ValidationJob.id == job_id).values(expires_at=expires))
    async with state.unit_of_work() as session:
        assert await repo.delete_expired_jobs(session, now) == 1  # expiring exactly now: not yet
        assert await repo.delete_expired_jobs(session, now) == 0
    assert await _row(state, old) is None and await _items(state, old) == {}
    assert await _row(state, due) is not None and await _row(state, kept) is not None


async def test_active_jobs_by_owner_universe_age_and_status(state, make_settings):
    now = utcnow()
    early = await _job(state, ["AAA"], now=now - timedelta(hours=2))
    late = await _job(state, ["BBB"], now=now - timedelta(hours=1))
    done = await _job(state, ["CCC"], now=now - timedelta(hours=3))
    owner = state.local_caller.owner_id
    async with state.unit_of_work() as session:
        await repo.mark_running(session, late, now)
        await repo.complete_job(session, done, now=now, expires_at=now, message="done")
    async with state.unit_of_work() as session:
        assert [j.id for j in await repo.unfinished_jobs(session)] == [early, late]  # oldest first
        assert [j.id for j in await repo.unfinished_jobs(session, created_before=now - timedelta(hours=1))] == [early]
        assert await repo.unfinished_counts(session) == {"queued": 1, "running": 1}
        assert await repo.active_job_count(session, owner) == 2
        assert await repo.active_job_count(session, uuid.uuid4()) == 0
        assert await repo.get_owned_job(session, owner, late) is not None
        assert await repo.get_owned_job(session, uuid.uuid4(), late) is None


# --- PostgreSQL: job starts of one owner are serialised ---------------------------------------------------------------
async def _lock_times_out(state, owner_id: uuid.UUID) -> bool:
    """Whether ``lock_owner_jobs`` has to wait (gives up after 300 ms: a hang detector, not a speed bound)."""
    try:
        async with state.unit_of_work() as session:
            await session.execute(text("SET LOCAL lock_timeout = '300ms'"))
            await repo.lock_owner_jobs(session, owner_id)
    except DBAPIError as exc:
        assert "lock timeout" in str(exc.orig).lower() or "canceling statement" in str(exc.orig).lower(), exc
        return True
    return False


async def test_on_postgresql_two_job_starts_of_one_owner_wait_for_each_other_and_other_owners_do_not(
    make_settings, postgres_url
):
    # Owner ids whose first bytes have the top bit set: the lock key is read as a signed 32-bit number.
    alice, bob = uuid.UUID("f1000000-0000-4000-8000-000000000001"), uuid.UUID("e2000000-0000-4000-8000-000000000002")
    async with (
        postgres_store(postgres_url) as overrides,
        open_app_state(make_settings(**overrides), providers=[]) as st,
    ):
        held = anyio.Event()
        release = anyio.Event()

        async def hold() -> None:
            async with st.unit_of_work() as session:
                await repo.lock_owner_jobs(session, alice)
                held.set()
                await release.wait()

        async with anyio.create_task_group() as tg:
            tg.start_soon(hold)
            with anyio.fail_after(30):
                await held.wait()
            try:
                assert await _lock_times_out(st, alice)  # the same owner waits for the first start to commit
                assert not await _lock_times_out(st, bob)  # another owner does not
            finally:
                release.set()
        assert not await _lock_times_out(st, alice)  # released at the end of the transaction
        async with st.unit_of_work() as session:  # the owners' rows need not exist: nothing was written
            assert await session.scalar(select(ValidationJob.id).limit(1)) is None


async def _finished_at(state, job_id: uuid.UUID) -> dict[str, datetime | None]:
    async with state.unit_of_work() as session:
        rows = await session.execute(
            select(ValidationJobItem.symbol, ValidationJobItem.finished_at).where(ValidationJobItem.job_id == job_id)
        )
        return dict(rows.all())


async def test_cancelling_or_failing_one_job_leaves_every_other_job_alone(state):
    cancelled, failed, bystander = [await _job(state, [s]) for s in ("AAA", "BBB", "CCC")]
    now = utcnow() + timedelta(minutes=5)  # not the statements' own time: shows which time was written
    expires = now + timedelta(days=1)
    async with state.unit_of_work() as session:
        assert await repo.cancel_job(session, cancelled, now=now, expires_at=expires)
        assert await repo.fail_job(session, failed, now=now, expires_at=expires, message="stopped")
    for job_id, status in ((cancelled, "cancelled"), (failed, "failed")):
        row = await _row(state, job_id)
        assert (row.status, row.finished_at, row.updated_at, row.expires_at) == (status, now, now, expires)
        assert list((await _finished_at(state, job_id)).values()) == [now]  # its one item, at the same time
    row = await _row(state, bystander)
    assert (row.status, row.finished_at, row.expires_at) == ("queued", None, row.created_at + timedelta(days=7))
    assert (await _items(state, bystander))["CCC"][0] == "queued"


async def test_a_resumption_applies_to_the_one_active_job_it_names(state):
    seen = utcnow() - timedelta(hours=1)
    target, twin, finished = [await _job(state, [s]) for s in ("AAA", "BBB", "CCC")]
    async with state.unit_of_work() as session:
        # Three jobs last touched at the same moment: only the id tells them apart.
        await session.execute(
            update(ValidationJob).where(ValidationJob.id.in_([target, twin, finished])).values(updated_at=seen)
        )
        await session.execute(
            update(ValidationJob).where(ValidationJob.id == finished).values(status="completed", updated_at=seen)
        )
    now = utcnow()
    async with state.unit_of_work() as session:
        assert await repo.mark_resumed(session, target, seen_updated_at=seen, now=now, message="resumed")
        assert not await repo.mark_resumed(session, finished, seen_updated_at=seen, now=now, message="resumed")
    assert [(await _row(state, j)).resumes for j in (target, twin, finished)] == [1, 0, 0]
    assert (await _row(state, finished)).message is None


async def test_expiry_cleanup_keeps_the_items_of_jobs_it_keeps_and_handles_thousands(state):
    now = utcnow()
    kept = await _job(state, ["KEPT"])
    owner = state.local_caller.owner_id
    expired = [uuid.uuid4() for _ in range(1_001)]  # more than two chunks of ids
    async with state.unit_of_work() as session:
        await session.execute(
            insert(ValidationJob),
            [
                {"id": j, "owner_id": owner, "status": "completed", "total": 1, "created_at": now, "updated_at": now,
                 "expires_at": now - timedelta(hours=1)}
                for j in expired
            ],
        )  # fmt: skip
        await session.execute(
            insert(ValidationJobItem),
            [{"job_id": j, "symbol": "OLD", "owner_id": owner, "position": 0, "status": "valid"} for j in expired],
        )
    async with state.unit_of_work() as session:
        assert await repo.delete_expired_jobs(session, now) == 1_001
        left = await session.scalar(select(func.count()).select_from(ValidationJob))
        items = (await session.execute(select(ValidationJobItem.job_id, ValidationJobItem.symbol))).all()
    assert left == 1 and items == [(kept, "KEPT")]


async def test_a_universes_members_and_active_job_are_read_for_their_owner_only(make_settings):
    symbols = [f"ZM{c}" for c in "QWERTYUIOP"]  # position order, which is not alphabetical
    async with Client(build_server(make_settings(local_user="alice"))) as client:
        call = Call(client)
        uid = (await call.ok("create_universe", name="Mine", symbols=symbols, validate=False))["universe"]["id"]
        other = (await call.ok("create_universe", name="Other", symbols=["ZOTHER"], validate=False))["universe"]["id"]
    async with Client(build_server(make_settings(local_user="bob"))) as client:
        bobs = (await Call(client).ok("create_universe", name="B", symbols=["ZBOB"], validate=False))["universe"]["id"]
    uid, other, bobs = uuid.UUID(uid), uuid.UUID(other), uuid.UUID(bobs)
    async with open_app_state(make_settings(local_user="alice"), providers=[]) as state:
        alice = state.local_caller.owner_id
        async with state.unit_of_work() as session:
            bob = (await get_user_by_name(session, "bob")).id
            assert await repo.universe_member_symbols(session, alice, uid, limit=100) == symbols
            assert await repo.universe_member_symbols(session, alice, uid, limit=3) == symbols[:3]
            assert await repo.universe_member_symbols(session, alice, bobs, limit=100) == []
            assert await repo.universe_member_symbols(session, bob, bobs, limit=100) == ["ZBOB"]

        now = utcnow()
        jobs = {}
        for name, owner, universe, hours_ago, status in (
            ("older", alice, uid, 3, "queued"),
            ("newest active", alice, uid, 2, "running"),
            ("finished", alice, uid, 1, "completed"),
            ("other universe", alice, other, 0.5, "queued"),
            ("bob's", bob, uid, 0.1, "queued"),
        ):
            async with state.unit_of_work() as session:
                job = await repo.create_job(
                    session, owner_id=owner, total=0, universe_id=universe, force_refresh=False,
                    now=now - timedelta(hours=hours_ago), expires_at=now,
                )  # fmt: skip
                job.status = status
                jobs[name] = job.id
        async with state.unit_of_work() as session:
            assert await repo.active_job_for_universe(session, alice, uid) == jobs["newest active"]
            assert await repo.active_job_for_universe(session, alice, bobs) is None


async def test_a_verdict_exactly_as_old_as_the_cutoff_is_not_stale_yet(state, make_settings):
    cutoff = utcnow() - timedelta(days=1)
    async with Client(build_server(make_settings())) as client:
        await Call(client).ok("create_universe", name="Held", symbols=["ZEDGE", "ZPAST"], validate=False)
    async with state.unit_of_work() as session:
        for symbol, at in (("ZEDGE", cutoff), ("ZPAST", cutoff - timedelta(microseconds=1))):
            await session.execute(
                update(Asset).where(Asset.symbol == symbol).values(validation_status="valid", last_validated_at=at)
            )
    async with state.unit_of_work() as session:
        assert await repo.refresh_candidates(session, validated_before=cutoff, limit=100) == ["ZPAST"]


async def test_the_unfinished_job_metrics_say_zero_for_a_status_no_job_has(state):
    async with state.unit_of_work() as session:
        assert await repo.unfinished_counts(session) == {"queued": 0, "running": 0}
    await _job(state, ["AAA"])
    async with state.unit_of_work() as session:
        assert await repo.unfinished_counts(session) == {"queued": 1, "running": 0}


async def test_a_new_job_starts_queued_with_zero_counts_and_its_items_in_input_order(state, make_settings):
    async with Client(build_server(make_settings())) as client:
        uid = (await Call(client).ok("create_universe", name="U", validate=False))["universe"]["id"]
    now, owner = utcnow(), state.local_caller.owner_id
    async with state.unit_of_work() as session:
        job = await repo.create_job(
            session,
            owner_id=owner,
            total=3,
            universe_id=uuid.UUID(uid),
            force_refresh=True,
            now=now,
            expires_at=now + timedelta(days=2),
            message="queued for a universe",
        )
        await repo.create_job_items(session, job.id, owner, ["ZCC", "ZAA", "ZBB"])
        job_id = job.id
    row = await _row(state, job_id)
    assert {
        k: getattr(row, k)
        for k in (
            "owner_id", "universe_id", "status", "force_refresh", "total", "processed", "valid_count",
            "invalid_count", "pending_count", "error_count", "resumes", "message", "created_at", "updated_at",
            "started_at", "finished_at", "expires_at",
        )
    } == {
        "owner_id": owner, "universe_id": uuid.UUID(uid), "status": "queued", "force_refresh": True, "total": 3,
        "processed": 0, "valid_count": 0, "invalid_count": 0, "pending_count": 0, "error_count": 0, "resumes": 0,
        "message": "queued for a universe", "created_at": now, "updated_at": now, "started_at": None,
        "finished_at": None, "expires_at": now + timedelta(days=2),
    }  # fmt: skip
    async with state.unit_of_work() as session:
        items = await repo.list_items(session, job_id, after_position=None, limit=10)
        plain = await repo.create_job(
            session, owner_id=owner, total=0, universe_id=None, force_refresh=False, now=now, expires_at=now
        )
    assert [
        (i.symbol, i.position, i.owner_id, i.status, i.attempts, i.reason, i.source, i.finished_at) for i in items
    ] == [
        ("ZCC", 0, owner, "queued", 0, None, None, None),
        ("ZAA", 1, owner, "queued", 0, None, None, None),
        ("ZBB", 2, owner, "queued", 0, None, None, None),
    ]
    assert ((await _row(state, plain.id)).message, (await _row(state, plain.id)).force_refresh) == (None, False)


async def test_a_retry_counts_against_its_own_job_only(state):
    mine, other = await _job(state, ["SAME"]), await _job(state, ["SAME"])  # two jobs validating one symbol
    async with state.unit_of_work() as session:
        await repo.bump_attempts(session, mine, {"SAME": "rate limited; retry 1 of 4 queued"})
    assert (await _items(state, mine))["SAME"] == ("queued", 1, "rate limited; retry 1 of 4 queued", None)
    assert (await _items(state, other))["SAME"] == ("queued", 0, None, None)
