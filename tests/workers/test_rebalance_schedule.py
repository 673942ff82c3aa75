"""Scheduled rebalances (workers/batches.py ``rebalance_due``): each due dynamic universe rebalanced once per period
of its schedule, whatever the number of schedulers, restarts and retries; none half-applied; one failing universe
never stops the others. On SQLite and on PostgreSQL laid out as in production (the server's role under row-level
security, the job runtime as the tables' owner), with two owners' universes.

Time is injected (``now``): a universe is due from the start of the period after its last run, so "a period later"
is a day later for a daily schedule. Expected members are read from the store's own asset rows here, never from the
answer under test."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import bindparam, func, select, text, update

from core.settings import Settings
from server.lifespan import open_app_state
from services.quotas import Quotas
from services.rebalancing import DynamicUniverses
from services.schedules import next_period_start, period_key
from services.schemas import Caller
from services.universes import Limits
from storage.models import RebalanceRun, Universe, UniverseAsset, UniverseAssetEvent
from storage.repositories import universes as universes_repo
from storage.repositories.users import get_or_create_user
from tests.workers.stores import postgres_store
from workers import batches, runtime

pytestmark = pytest.mark.anyio


def sectors(*names: str) -> dict[str, Any]:
    return {"field": "sector", "op": "in", "value": list(names)}


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, make_settings: Callable[..., Settings]) -> AsyncIterator[Settings]:
    """Settings of a fresh store holding the offline catalog (3,692 listed securities with sectors)."""
    if request.param == "sqlite":
        yield make_settings()
        return
    async with postgres_store(request.getfixturevalue("postgres_url")) as overrides:
        yield make_settings(**overrides)


class Store:
    """An open server state (its job runtime's environment: the tables' owner) and helpers over it."""

    def __init__(self, state: Any) -> None:
        self.state = state
        assert isinstance(state.jobs, runtime.JobRuntime)
        self.env: batches.JobEnv = state.jobs.env

    async def owner(self, name: str) -> uuid.UUID:
        async with self.env.uow() as session:
            return (await get_or_create_user(session, name)).id

    async def dynamic(self, owner: uuid.UUID, name: str, rules: dict[str, Any], rebalance: str | None = "daily") -> str:
        async with self.state.unit_of_work(owner) as session:
            summary, _ = await DynamicUniverses(session, Caller(owner_id=owner, name="test")).create(
                name, rules, rebalance=rebalance
            )
        return summary.id

    async def redefine(self, owner: uuid.UUID, uid: str, rules: dict[str, Any]) -> None:
        async with self.state.unit_of_work(owner) as session:
            await DynamicUniverses(session, Caller(owner_id=owner, name="test")).redefine(uid, rules=rules)

    async def selected(self, *names: str) -> set[str]:
        """What rules over these sectors select, from the asset rows."""
        query = text(
            "SELECT symbol FROM assets WHERE sector IN :names AND listing_status = 'listed' "
            "AND validation_status != 'invalid' AND created_by IS NULL"
        ).bindparams(bindparam("names", expanding=True))
        async with self.env.uow() as session:
            return set((await session.scalars(query, {"names": list(names)})).all())

    async def members(self, uid: str) -> set[str]:
        async with self.env.uow() as session:
            return {s for s, _ in await session.run_sync(universes_repo.member_symbols, uuid.UUID(uid))}

    async def runs(self, uid: str) -> list[tuple[str, str | None, int, int]]:
        async with self.env.uow() as session:
            rows = await session.execute(
                select(RebalanceRun.trigger, RebalanceRun.period, RebalanceRun.additions, RebalanceRun.removals)
                .where(RebalanceRun.universe_id == uuid.UUID(uid))
                .order_by(RebalanceRun.started_at, RebalanceRun.id)
            )
            return [tuple(r) for r in rows.all()]  # type: ignore[misc]

    async def state_of(self, uid: str) -> dict[str, Any]:
        """Everything a rebalance writes for the universe: members with positions, events, runs, next due time."""
        universe_id = uuid.UUID(uid)
        async with self.env.uow() as session:
            members = await session.execute(
                select(UniverseAsset.asset_id, UniverseAsset.position).where(UniverseAsset.universe_id == universe_id)
            )
            events = await session.execute(
                select(UniverseAssetEvent.id, UniverseAssetEvent.action, UniverseAssetEvent.asset_id).where(
                    UniverseAssetEvent.universe_id == universe_id
                )
            )
            runs = await session.scalars(select(RebalanceRun.id).where(RebalanceRun.universe_id == universe_id))
            universe = await session.get(Universe, universe_id)
            assert universe is not None
            return {
                "members": sorted(map(tuple, members.all())),
                "events": sorted(map(tuple, events.all())),
                "runs": sorted(runs.all()),
                "next": universe.next_rebalance_at,
                "updated_at": universe.updated_at,
            }

    async def next_due(self, uid: str) -> datetime:
        async with self.env.uow() as session:
            due = await session.scalar(select(Universe.next_rebalance_at).where(Universe.id == uuid.UUID(uid)))
        assert due is not None
        return due

    async def set_next_due(self, uid: str, at: datetime) -> None:
        async with self.env.uow() as session:
            await session.execute(
                update(Universe)
                .where(Universe.id == uuid.UUID(uid))
                .values(next_rebalance_at=at, updated_at=Universe.updated_at)
            )


async def test_two_schedulers_at_once_rebalance_each_due_universe_once_per_period(store: Settings) -> None:
    async with AsyncExitStack() as stack:
        # Two servers on one store, each with its own job runtime: two schedulers.
        a = Store(await stack.enter_async_context(open_app_state(store)))
        b = Store(await stack.enter_async_context(open_app_state(store)))
        alice, bob = await a.owner("alice"), await a.owner("bob")
        daily = await a.dynamic(alice, "Utilities", sectors("Utilities", "Real Estate"))
        weekly = await a.dynamic(bob, "Energy", sectors("Energy"), rebalance="weekly")
        manual = await a.dynamic(bob, "Manual", sectors("Energy"), rebalance=None)
        later = await a.dynamic(alice, "Later", sectors("Materials"))
        # New rules: the next scheduled rebalance has changes to make (104 out, 172 in for the daily one).
        await a.redefine(alice, daily, sectors("Real Estate", "Energy"))
        await a.redefine(bob, weekly, sectors("Energy", "Utilities"))
        await a.redefine(bob, manual, sectors("Utilities"))
        await a.redefine(alice, later, sectors("Utilities"))
        # Due at once: the start of the next week is after the next day's.
        now = max(await a.next_due(daily), await a.next_due(weekly))
        await a.set_next_due(later, now + timedelta(hours=1))  # not due yet
        untouched = {uid: await a.state_of(uid) for uid in (manual, later)}

        utilities, real_estate = await a.selected("Utilities"), await a.selected("Real Estate")
        energy = await a.selected("Energy")
        one, two = await asyncio.gather(batches.rebalance_due(a.env, now), batches.rebalance_due(b.env, now))
        assert one.failed == two.failed == 0
        assert one.applied + two.applied == 2  # each universe once, by one scheduler or the other
        assert await a.runs(daily) == [
            ("create", None, len(utilities | real_estate), 0),
            ("scheduled", period_key("daily", now), len(energy), len(utilities)),
        ]
        assert await a.runs(weekly) == [
            ("create", None, len(energy), 0),
            ("scheduled", period_key("weekly", now), len(utilities), 0),
        ]
        assert await a.members(daily) == real_estate | energy
        assert await a.members(weekly) == energy | utilities
        for uid in (manual, later):
            assert await a.state_of(uid) == untouched[uid]
        # Each change written once, with its run.
        async with a.env.uow() as session:
            events = await session.execute(
                select(UniverseAssetEvent.action, func.count())
                .where(UniverseAssetEvent.universe_id == uuid.UUID(daily), UniverseAssetEvent.run_id.is_not(None))
                .group_by(UniverseAssetEvent.action)
            )
            assert dict(events.all()) == {
                "added": len(utilities | real_estate) + len(energy),
                "removed": len(utilities),
            }
        assert await a.next_due(daily) == next_period_start("daily", now)
        assert await a.next_due(weekly) == next_period_start("weekly", now)

        # A restart within the period: nothing is due any more, nothing changes.
        done = {uid: await a.state_of(uid) for uid in (daily, weekly)}
        again = await batches.rebalance_due(b.env, now + timedelta(minutes=5))
        assert (again.seen, again.applied) == (0, 0)
        # A scheduler that read the universe as due before the run committed: the period's key stops it.
        await a.set_next_due(daily, now)
        late = await batches.rebalance_due(b.env, now + timedelta(minutes=5))
        assert (late.seen, late.applied, late.done_already) == (1, 0, 1)
        assert await a.next_due(daily) == next_period_start("daily", now)  # and it is not due again in this period
        for uid in (daily, weekly):
            assert await a.state_of(uid) == done[uid]

        # The next period: one new run for the daily universe (the rules changed since), none for the weekly one;
        # the universe that was not due yet is due now.
        await a.redefine(alice, daily, sectors("Energy"))
        tomorrow = next_period_start("daily", now)
        next_day = await batches.rebalance_due(a.env, tomorrow)
        assert (next_day.seen, next_day.applied, next_day.failed) == (2, 2, 0)
        assert (await a.runs(daily))[1:] == [
            ("scheduled", period_key("daily", now), len(energy), len(utilities)),
            ("scheduled", period_key("daily", tomorrow), 0, len(real_estate)),
        ]
        assert len(await a.runs(weekly)) == 2
        assert await a.members(daily) == energy
        assert [r[:2] for r in await a.runs(later)] == [("create", None), ("scheduled", period_key("daily", tomorrow))]
        assert await a.members(later) == utilities
        assert len(await a.runs(manual)) == 1  # no schedule: only its creation


async def test_a_crash_inside_the_write_leaves_the_universe_exactly_as_it_was_and_still_due(
    store: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_app_state(store) as state:
        s = Store(state)
        owner = await s.owner("carol")
        uid = await s.dynamic(owner, "Crash", sectors("Utilities", "Real Estate"))
        await s.redefine(owner, uid, sectors("Real Estate", "Energy"))
        now = await s.next_due(uid)
        before = await s.state_of(uid)

        def crash(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError("the process died here")

        # After the run row and the removals (and their events) were written, before the additions.
        monkeypatch.setattr(universes_repo, "add_members", crash)
        report = await batches.rebalance_due(s.env, now)
        assert (report.applied, report.failed, report.failures) == (0, 1, [(uuid.UUID(uid), "internal")])
        assert await s.state_of(uid) == before  # members, events, runs and the due time: nothing half-applied
        monkeypatch.undo()

        retried = await batches.rebalance_due(s.env, now + timedelta(minutes=5))  # still due: the next pass does it
        assert (retried.applied, retried.additions, retried.removals) == (
            1,
            len(await s.selected("Energy")),
            len(await s.selected("Utilities")),
        )
        assert await s.members(uid) == await s.selected("Real Estate", "Energy")


async def test_a_failing_universe_is_counted_and_postponed_while_the_others_are_rebalanced(
    store: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    async with open_app_state(store) as state:
        s = Store(state)
        owner = await s.owner("dave")
        broken = await s.dynamic(owner, "Broken", sectors("Utilities"))
        big = await s.dynamic(owner, "Big", sectors("Utilities"))
        fine = await s.dynamic(owner, "Fine", sectors("Utilities"))
        await s.redefine(owner, fine, sectors("Energy"))
        await s.redefine(owner, big, sectors("Industrials"))  # 658: more than the quota below
        async with s.env.uow() as session:  # rules saved once, no longer valid (a field the rules no longer know)
            await session.execute(
                update(Universe)
                .where(Universe.id == uuid.UUID(broken))
                .values(rules={"field": "sectr", "op": "eq", "value": "Utilities"})
            )
        now = await s.next_due(fine)
        before = {uid: await s.state_of(uid) for uid in (broken, big)}
        s.env.limits = Limits(quotas=Quotas(members_per_universe=500))

        with caplog.at_level(logging.WARNING, logger="workers.batches"):
            report = await batches.rebalance_due(s.env, now)
        assert (report.seen, report.applied, report.failed) == (3, 1, 2)
        assert sorted(code for _, code in report.failures) == ["conflict", "limit_exceeded"]
        assert await s.members(fine) == await s.selected("Energy")
        # Not tried again before their next period; nothing else of theirs changed.
        for uid in (broken, big):
            after = await s.state_of(uid)
            assert after["next"] == next_period_start("daily", now)
            assert {**after, "next": None} == {**before[uid], "next": None}
        again = await batches.rebalance_due(s.env, now + timedelta(minutes=5))
        assert again.seen == 0
        messages = [r.getMessage() for r in caplog.records]
        assert any(broken in m and "no longer check" in m and "before its next period" in m for m in messages)
        assert any(big in m and "500" in m for m in messages)


async def test_a_failed_scheduled_rebalance_shows_on_its_universe_until_a_rebalance_succeeds(store: Settings) -> None:
    """A log line reaches no owner: get_universe shows the failure (when, which slot, why) and points at a preview;
    the next rebalance that succeeds, or a new definition, clears it, without touching the universe's updated_at."""
    from services.universes import UniverseService

    async with open_app_state(store) as state:
        s = Store(state)
        owner = await s.owner("erin")
        big = await s.dynamic(owner, "Big", sectors("Industrials"))  # 658 members: more than the quota below
        twin = await s.dynamic(owner, "Big twin", sectors("Industrials"))

        async def definition(uid: str) -> Any:
            async with state.unit_of_work(owner) as session:
                detail = await UniverseService(session, Caller(owner_id=owner, name="test")).get(uid)
            assert detail.definition is not None
            return detail.universe, detail.definition

        now = await s.next_due(big)
        s.env.limits = Limits(quotas=Quotas(members_per_universe=500))
        report = await batches.rebalance_due(s.env, now)
        assert (report.failed, {code for _, code in report.failures}) == (2, {"limit_exceeded"})
        for uid in (big, twin):
            universe, shown = await definition(uid)
            failure = shown.last_failure
            assert failure is not None and (failure.trigger, failure.code) == ("scheduled", "limit_exceeded")
            assert failure.period == period_key("daily", now) and failure.at == now
            assert "500" in failure.message
            assert shown.next_rebalance_at == next_period_start("daily", now)  # postponed, as before

        # A rebalance that succeeds clears it; the universe's updated_at stays (nothing of it changed).
        s.env.limits = Limits()
        before, _ = await definition(big)
        async with state.unit_of_work(owner) as session:
            await DynamicUniverses(session, Caller(owner_id=owner, name="test")).rebalance(big, dry_run=False)
        after, shown = await definition(big)
        assert shown.last_failure is None and after.updated_at == before.updated_at

        # So does a new definition: the failure was about the rules it replaces.
        await s.redefine(owner, twin, sectors("Energy"))
        _, shown = await definition(twin)
        assert shown.last_failure is None
