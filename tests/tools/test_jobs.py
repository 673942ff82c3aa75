"""The jobs toolset end to end in embedded mode: the in-memory MCP client, a StubBroker and the in-process Worker,
no Redis. Providers are FakeProviders (latency, rate limits, outages on demand)."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from datetime import timedelta

import anyio
import jsonschema
import pytest
from mcp import Client, MCPError
from mcp.shared.subscriptions import ResourceUpdated
from sqlalchemy import func, select, update

from providers.base import AssetProfile, ProviderMisconfigured
from providers.catalog import CatalogProvider
from providers.fake import FakeProvider
from server.app import build_server
from storage.db import utcnow
from storage.models import ValidationJob, ValidationJobItem
from tests.conftest import Call
from tests.workers.stores import postgres_store
from workers.runtime import RESUME_DELAY_S

pytestmark = pytest.mark.anyio

FAST = {"job_batch_size": 10, "job_retry_base_s": 0.05, "job_auto_delay_s": 600}


def syms(n: int, start: int = 1) -> list[str]:
    return [f"SYM{i:05d}" for i in range(start, start + n)]


class TimedFake(FakeProvider):
    """A FakeProvider that also records when each symbol was asked about."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.times: dict[str, list[float]] = defaultdict(list)

    async def validate(self, symbol: str):
        self.times[symbol.upper()].append(time.monotonic())
        return await super().validate(symbol)


async def wait_done(call: Call, job_id: str, timeout_s: float = 20.0) -> dict:
    with anyio.fail_after(timeout_s):
        while True:
            data = await call.ok("get_job_status", job_id=job_id)
            if data["status"] in ("completed", "failed", "cancelled"):
                return data
            await anyio.sleep(0.05)


async def all_items(call: Call, job_id: str, **filters) -> list[dict]:
    items, cursor = [], None
    while True:
        page = await call.ok(
            "get_job_status",
            job_id=job_id,
            include_items=True,
            limit=200,
            **filters,
            **({"cursor": cursor} if cursor else {}),
        )
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def test_a_job_runs_end_to_end_with_progress_notifications_and_paginated_outcomes(make_settings):
    fake = FakeProvider.with_generated(200, latency_s=0.01)
    async with Client(build_server(make_settings(**FAST), providers=[fake])) as client:
        call = Call(client)
        events: list[tuple[float, float | None, str | None]] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            events.append((progress, total, message))

        symbols = syms(150) + ["nope1", "NOPE1", "NOPE2"]  # normalised and de-duplicated: 152 distinct
        result = await client.call_tool(
            "start_bulk_validation", {"symbols": symbols, "wait": True}, progress_callback=on_progress
        )
        envelope = result.structured_content
        assert not result.is_error, envelope
        job = envelope["data"]
        assert job["status"] == "completed" and job["progress"] == 1.0
        assert job["counts"] | {} == {
            "total": 152,
            "processed": 152,
            "valid": 150,
            "invalid": 2,
            "pending": 0,
            "error": 0,
            "cancelled": 0,
            "queued": 0,
            "retrying": 0,
        }
        assert envelope["metadata"]["job_id"] == job["job_id"]
        # The official client received progress notifications, in order, ending at the total.
        assert len(events) >= 2, events
        assert [e[0] for e in events] == sorted(e[0] for e in events)
        assert events[-1][0] == 152 and events[-1][1] == 152 and "152 of 152" in events[-1][2]

        items = await all_items(call, job["job_id"])
        assert [i["symbol"] for i in items] == syms(150) + ["NOPE1", "NOPE2"]  # input order, each once
        invalid = await all_items(call, job["job_id"], item_status="invalid")
        assert [(i["symbol"], i["status"], i["source"]) for i in invalid] == [
            ("NOPE1", "invalid", "fake"),
            ("NOPE2", "invalid", "fake"),
        ]
        assert "does not list" in invalid[0]["reason"]
        # next_actions point at the invalid ones.
        assert {
            "tool": "get_job_status",
            "arguments": {"job_id": job["job_id"], "include_items": True, "item_status": "invalid"},
            "reason": "see the invalid symbols and why",
        } in envelope["next_actions"]


async def test_a_job_handle_comes_back_at_once_and_the_job_finishes_in_the_background(make_settings):
    fake = GatedFake.with_generated(100)
    # job_wait_s=600: a start that waited for its job would wait past the hang detector below.
    server = build_server(make_settings(**FAST, job_wait_s=600), providers=[fake])
    async with Client(server) as client:
        call = Call(client)
        # The provider answers nothing until the gate opens, after the handle came back: a start that waited for
        # the job would not return (a hang detector, not a speed bound).
        with anyio.fail_after(60):
            envelope = await call("start_bulk_validation", symbols=syms(100))
        job = envelope["data"]
        assert job["status"] in ("queued", "running") and job["counts"]["total"] == 100
        assert job["counts"]["processed"] == 0
        fake.gate.set()
        assert [a["tool"] for a in envelope["next_actions"]] == ["get_job_status", "cancel_job"]
        done = await wait_done(call, job["job_id"])
        assert done["counts"]["valid"] == 100 and done["finished_at"] and done["expires_at"]
        # A batch delivered after its job finished is skipped (redeliveries mid-job: the test below).
        calls_before = fake.calls
        state = server.app_state
        await state.jobs.submit(job["job_id"], state.local_caller.owner_id, syms(100))
        await anyio.sleep(0.3)
        again = await call.ok("get_job_status", job_id=job["job_id"])
        assert again["counts"] == done["counts"] and fake.calls == calls_before


async def test_redelivered_batches_mid_job_reach_the_idempotency_guards(make_settings):
    """At-least-once delivery, while the job is still running (a finished job returns before either guard):
    a batch delivered again after it settled asks no provider and changes nothing (only queued items are read),
    and a message delivered twice at once is validated by both copies but settled once (only a queued item is
    updated)."""
    first, second = syms(8), syms(8, start=9)  # 8 per batch: all of a batch's calls are in flight at once
    fake = GatedFake.with_generated(16, gated=set())
    server = build_server(make_settings(**FAST | {"job_batch_size": 8}), providers=[fake])
    async with Client(server) as client:
        call = Call(client)
        runtime, owner = server.app_state.jobs, server.app_state.local_caller.owner_id
        # The assets exist already (two copies of a batch creating the same new asset rows at once is a different
        # race); force_refresh makes the job ask the provider anyway.
        await call.ok("validate_symbols", symbols=first + second)
        fake.calls_by_symbol.clear()
        fake.gated = set(second)  # batch 1 answers at once, batch 2 waits at the gate
        job_id = (await call.ok("start_bulk_validation", symbols=first + second, force_refresh=True))["job_id"]
        try:
            with anyio.fail_after(10):
                while (await call.ok("get_job_status", job_id=job_id))["counts"]["processed"] < 8:  # noqa: ASYNC110
                    await anyio.sleep(0.02)
                while any(fake.waiting[s] < 1 for s in second):  # noqa: ASYNC110
                    await anyio.sleep(0.02)
            settled = (await all_items(call, job_id))[:8]
            assert {i["status"] for i in settled} == {"valid"}

            # 1. Batch 1 again, mid-job: nothing of it is queued any more.
            handled = runtime.heartbeat.processed
            await runtime.submit(job_id, owner, first, True)
            with anyio.fail_after(10):
                while runtime.heartbeat.processed == handled:  # noqa: ASYNC110 - the worker took the message
                    await anyio.sleep(0.02)
            assert [fake.calls_by_symbol[s] for s in first] == [1] * 8  # no provider was asked again
            assert (await all_items(call, job_id))[:8] == settled  # same outcomes, attempts, times
            status = await call.ok("get_job_status", job_id=job_id)
            assert status["status"] == "running" and status["counts"]["processed"] == 8

            # 2. Batch 2 a second time while its first delivery still waits for the provider.
            await runtime.submit(job_id, owner, second, True)
            with anyio.fail_after(10):
                while any(fake.waiting[s] < 2 for s in second):  # noqa: ASYNC110 - both copies are in flight
                    await anyio.sleep(0.02)
        finally:
            fake.gate.set()
        done = await wait_done(call, job_id)
        assert (done["counts"]["valid"], done["counts"]["processed"], done["counts"]["total"]) == (16, 16, 16)
        assert [fake.calls_by_symbol[s] for s in second] == [2] * 8  # both copies validated ...
        items = await all_items(call, job_id)
        assert [(i["symbol"], i["attempts"]) for i in items] == [(s, 1) for s in first + second]  # ... once settled


async def test_a_rate_limited_provider_is_retried_after_its_retry_after_and_every_symbol_settles(make_settings):
    fake = TimedFake(known={s: AssetProfile(symbol=s) for s in syms(30)}, rate_limit_every=4, retry_after_s=0.3)
    async with Client(build_server(make_settings(**FAST), providers=[fake])) as client:
        call = Call(client)
        job = await call.ok("start_bulk_validation", symbols=syms(30), wait=True)
        assert job["status"] == "completed" and job["counts"]["valid"] == 30, job["counts"]
        items = await all_items(call, job["job_id"])
        retried = [i for i in items if i["attempts"] > 1]
        assert retried, "some symbols were rate limited and retried"
        for item in retried:
            asked = fake.times[item["symbol"]]
            # The retry came after the provider's retry-after, not before.
            assert asked[1] - asked[0] >= 0.3 - 0.01, (item, asked)


async def test_symbols_no_provider_can_answer_are_recorded_pending_with_the_reason_and_the_job_finishes(make_settings):
    fake = FakeProvider(known={s: AssetProfile(symbol=s) for s in syms(5)}, fail_symbols={"SYM00002"})
    async with Client(build_server(make_settings(**FAST, job_max_retries=2), providers=[fake])) as client:
        call = Call(client)
        job = await call.ok("start_bulk_validation", symbols=syms(5), wait=True)
        assert job["status"] == "completed"
        assert (job["counts"]["valid"], job["counts"]["pending"]) == (4, 1)
        [pending] = await all_items(call, job["job_id"], item_status="pending")
        assert pending["symbol"] == "SYM00002" and pending["attempts"] == 3
        assert "simulated outage" in pending["reason"] and "gave up after 3 tries" in pending["reason"]
        assert fake.calls_by_symbol["SYM00002"] == 3


async def test_a_batch_over_its_time_limit_is_retried_then_recorded_as_error(make_settings):
    hanging = FakeProvider(hang=True)
    settings = make_settings(**FAST, job_batch_time_limit_s=1, job_batch_deadline_s=30, job_max_retries=1)
    async with Client(build_server(settings, providers=[hanging])) as client:
        call = Call(client)
        # The provider hangs forever: only the 1 s batch time limit ends each try (the 30 s deadline would give
        # another reason). A hang detector, not a speed bound.
        with anyio.fail_after(60):
            job = await call.ok("start_bulk_validation", symbols=["SLOW1", "SLOW2"], wait=True)
        assert job["status"] == "completed" and job["counts"]["error"] == 2, job
        items = await all_items(call, job["job_id"])
        assert items and all("timed out 2 times" in i["reason"] for i in items), items
        assert hanging.calls_by_symbol == {"SLOW1": 2, "SLOW2": 2}  # one try plus one retry (job_max_retries=1)


async def test_cancel_stops_a_job_and_is_idempotent(make_settings):
    fake = FakeProvider.with_generated(300, latency_s=0.1)
    async with Client(build_server(make_settings(**FAST, embedded_worker_threads=1), providers=[fake])) as client:
        call = Call(client)
        job = await call.ok("start_bulk_validation", symbols=syms(300))
        await anyio.sleep(0.2)
        cancelled = await call("cancel_job", job_id=job["job_id"])
        data = cancelled["data"]
        assert data["status"] == "cancelled" and cancelled["metadata"]["cancelled"] is True
        assert data["counts"]["cancelled"] > 200 and data["counts"]["queued"] == 0
        await anyio.sleep(0.5)  # the batch in flight finishes; its symbols are no longer queued, so nothing counts
        later = await call.ok("get_job_status", job_id=job["job_id"])
        assert later["status"] == "cancelled"
        assert later["counts"]["processed"] + later["counts"]["cancelled"] == 300
        assert later["counts"]["processed"] <= data["counts"]["processed"] + 10
        again = await call("cancel_job", job_id=job["job_id"])
        assert again["metadata"]["cancelled"] is False and "nothing to cancel" in again["message"]


async def test_jobs_are_scoped_to_their_owner(make_settings):
    fake = FakeProvider.with_generated(10)
    settings = make_settings(**FAST)
    async with Client(build_server(settings, providers=[fake])) as alice:
        job = await Call(alice).ok("start_bulk_validation", symbols=syms(10), wait=True)
    bob_settings = make_settings(**FAST, local_user="bob")
    async with Client(build_server(bob_settings, providers=[fake])) as bob:
        call = Call(bob)
        await call.error("get_job_status", "not_found", job_id=job["job_id"])
        await call.error("cancel_job", "not_found", job_id=job["job_id"])
        await call.error("get_job_status", "invalid_argument", job_id="not-a-job")
        with pytest.raises(MCPError) as missing:
            await bob.read_resource(f"jobs://{job['job_id']}")
        # Someone else's job reads as a missing resource (invalid params), not as a forbidden one.
        assert missing.value.code == -32602 and "No job with id" in missing.value.message, missing.value
        assert missing.value.data == {"uri": f"jobs://{job['job_id']}"}


async def test_a_universe_job_and_bad_requests(make_settings):
    fake = FakeProvider.with_generated(20)
    async with Client(
        build_server(make_settings(**FAST, max_bulk_symbols=30, max_active_jobs=2), providers=[fake])
    ) as client:
        call = Call(client)
        uid = (await call.ok("create_universe", name="U", symbols=syms(12), validate=False))["universe"]["id"]
        envelope = await call("start_bulk_validation", universe_id=uid, wait=True)
        job = envelope["data"]
        assert job["universe_id"] == uid and job["counts"]["valid"] == 12
        assert {
            "tool": "get_universe",
            "arguments": {"universe_id": uid},
            "reason": "review the universe with its refreshed validation status",
        } in envelope["next_actions"]
        assert (await call.ok("get_universe", universe_id=uid))["counts_by_status"] == {"valid": 12}

        await call.error("start_bulk_validation", "invalid_argument")
        await call.error("start_bulk_validation", "invalid_argument", symbols=["A"], universe_id=uid)
        await call.error("start_bulk_validation", "not_found", universe_id="00000000-0000-0000-0000-000000000000")
        await call.error("start_bulk_validation", "invalid_argument", symbols=["GOOD", "BAD TICKER"])
        too_many = await call.error("start_bulk_validation", "limit_exceeded", symbols=syms(31))
        assert too_many["next_actions"][0]["arguments"]["symbols"] == syms(30)
        # Two unfinished jobs at most (max_active_jobs=2): a slow provider keeps them running.
        fake.latency_s = 0.2
        await call.ok("start_bulk_validation", symbols=syms(20))
        await call.ok("start_bulk_validation", symbols=syms(20))
        await call.error("start_bulk_validation", "limit_exceeded", symbols=syms(2))


async def test_pending_symbols_added_to_a_universe_are_queued_as_a_job(make_settings):
    known = {s: AssetProfile(symbol=s, name="New Co") for s in ("NEWCO", "NEWCO2")}
    fake = FakeProvider(known=known, fail_symbols={"NEWCO", "NEWCO2"})
    # While the provider is down the jobs keep retrying (every 0.2 s at most), so they stay active until it is back.
    settings = make_settings(**(FAST | {"job_auto_delay_s": 0.2, "job_max_retries": 50, "job_retry_max_delay_s": 0.2}))
    async with Client(build_server(settings, providers=[fake])) as client:
        call = Call(client)
        envelope = await call("create_universe", name="P", symbols=["NEWCO"])
        assert envelope["data"]["report"]["results"][0]["validation_status"] == "pending"
        job_id = envelope["metadata"]["validation_job_id"]
        assert envelope["next_actions"][0] == {
            "tool": "get_job_status",
            "arguments": {"job_id": job_id},
            "reason": "1 pending symbol(s) are re-checked in the background by this job",
        }
        # No second job is suggested for symbols this one already validates (issue 10, item 21) ...
        assert "start_bulk_validation" not in [a["tool"] for a in envelope["next_actions"]], envelope["next_actions"]
        uid = envelope["data"]["universe"]["id"]
        added = await call("add_assets_to_universe", universe_id=uid, symbols=["NEWCO2"])
        assert [a["tool"] for a in added["next_actions"]].count("start_bulk_validation") == 0, added["next_actions"]
        assert added["next_actions"][0]["arguments"] == {"job_id": added["metadata"]["validation_job_id"]}
        # ... and get_universe points at the running job too, while there is one.
        detail = await call("get_universe", universe_id=uid)
        assert detail["data"]["counts_by_status"] == {"pending": 2}
        suggested = [a for a in detail["next_actions"] if a["tool"] in ("get_job_status", "start_bulk_validation")]
        assert suggested == [
            {
                "tool": "get_job_status",
                "arguments": {"job_id": added["metadata"]["validation_job_id"]},
                "reason": "a validation job is already checking this universe's pending or unknown members",
            }
        ]
        fake.fail_symbols.clear()  # the provider is back
        done = await wait_done(call, job_id)
        assert done["counts"]["valid"] == 1 and done["universe_id"] == envelope["data"]["universe"]["id"]
        await wait_done(call, added["metadata"]["validation_job_id"])
        members = await call("get_universe", universe_id=done["universe_id"])
        assert members["data"]["counts_by_status"] == {"valid": 2}
        assert not [a for a in members["next_actions"] if a["tool"] in ("get_job_status", "start_bulk_validation")]
        # Adding symbols that validate at once queues nothing.
        plain = await call("add_assets_to_universe", universe_id=done["universe_id"], symbols=["NEWCO"])
        assert "validation_job_id" not in plain["metadata"]


async def test_the_periodic_refresh_settles_a_pending_symbol(make_settings):
    fake = FakeProvider(known={"LATE": AssetProfile(symbol="LATE", name="Late Listing")}, fail_symbols={"LATE"})
    server = build_server(make_settings(**FAST), providers=[fake])  # job_auto_delay_s=600: only the refresh runs
    async with Client(server) as client:
        call = Call(client)
        uid = (await call.ok("create_universe", name="R", symbols=["LATE"]))["universe"]["id"]
        assert (await call.ok("get_universe", universe_id=uid))["counts_by_status"] == {"pending": 1}
        fake.fail_symbols.clear()
        totals = await server.app_state.jobs.run_refresh()
        assert totals == {"valid": 1}  # the one pending symbol; nothing else in the store is due
        got = await call.ok("get_universe", universe_id=uid)
        assert got["counts_by_status"] == {"valid": 1} and got["assets"][0]["name"] == "Late Listing"


async def test_cleanup_deletes_expired_jobs(make_settings):
    fake = FakeProvider.with_generated(10)
    server = build_server(make_settings(**FAST, job_retention_s=60), providers=[fake])
    async with Client(server) as client:
        call = Call(client)
        old = await call.ok("start_bulk_validation", symbols=syms(4), wait=True)
        kept = await call.ok("start_bulk_validation", symbols=syms(4), wait=True)
        async with server.app_state.unit_of_work() as session:
            await session.execute(
                update(ValidationJob)
                .where(ValidationJob.id == uuid.UUID(old["job_id"]))
                .values(expires_at=utcnow() - timedelta(hours=1))
            )
        report = await server.app_state.jobs.run_cleanup()
        assert report.deleted_jobs == 1
        await call.error("get_job_status", "not_found", job_id=old["job_id"])
        assert (await call.ok("get_job_status", job_id=kept["job_id"]))["status"] == "completed"


async def _stall(state, job_id: str, *, resumes: int = 0) -> None:
    """Make a finished job look like one whose messages were lost an hour ago: active, items queued, idle."""
    async with state.unit_of_work(owner_id=state.local_caller.owner_id) as session:
        jid = uuid.UUID(job_id)
        await session.execute(
            update(ValidationJob)
            .where(ValidationJob.id == jid)
            .values(
                status="running",
                finished_at=None,
                processed=0,
                valid_count=0,
                resumes=resumes,
                updated_at=utcnow() - timedelta(hours=1),
            )
        )
        await session.execute(
            update(ValidationJobItem)
            .where(ValidationJobItem.job_id == jid)
            .values(status="queued", source=None, reason=None, attempts=0, finished_at=None)
        )


async def test_the_watch_resumes_a_stalled_job_and_fails_one_that_keeps_stalling(make_settings, store):
    fake = GatedFake.with_generated(20, gated=set())
    settings = make_settings(**FAST, **store, job_stall_s=60, job_max_resumes=2)
    server = build_server(settings, providers=[fake])
    async with Client(server) as client:
        call = Call(client)
        state = server.app_state
        stalled = await call.ok("start_bulk_validation", symbols=syms(3), wait=True)
        hopeless = await call.ok("start_bulk_validation", symbols=syms(3, start=4), wait=True)
        await _stall(state, stalled["job_id"])
        await _stall(state, hopeless["job_id"], resumes=2)  # already queued again twice without progress
        fake.gated = set(syms(2, start=7))
        healthy = await call.ok("start_bulk_validation", symbols=syms(2, start=7))  # running, just not answered yet
        try:
            report = await state.jobs.run_watch()
            assert [str(j.job_id) for j in report.resumed] == [stalled["job_id"]]
            assert [str(j) for j in report.failed] == [hopeless["job_id"]]
            # The resumed one says why and finishes; its progress clears the count of resumptions.
            resumed = await call.ok("get_job_status", job_id=stalled["job_id"])
            assert resumed["message"].startswith("Resumed at ") and "no progress for 60 min" in resumed["message"]
            assert "3 symbols queued again (resumption 1 of at most 2" in resumed["message"]
            done = await wait_done(call, stalled["job_id"])
            assert done["counts"]["valid"] == 3 and done["status"] == "completed"
            async with state.unit_of_work(owner_id=state.local_caller.owner_id) as session:
                assert (
                    await session.scalar(
                        select(ValidationJob.resumes).where(ValidationJob.id == uuid.UUID(stalled["job_id"]))
                    )
                    == 0
                )
            # The hopeless one is failed with a reason a user can act on, never left running.
            failed = await call("get_job_status", job_id=hopeless["job_id"])
            assert failed["data"]["status"] == "failed" and failed["data"]["counts"]["error"] == 3
            assert "queued again 2 times without progress" in failed["data"]["message"]
            assert "get_service_health" in failed["data"]["message"]
            items = await all_items(call, hopeless["job_id"])
            assert {i["reason"] for i in items} == {
                "not validated: the job stalled (no progress for 60 min) and was stopped"
            }
            # The healthy job was left alone.
            still = await call.ok("get_job_status", job_id=healthy["job_id"])
            assert still["status"] in ("queued", "running") and still["message"] is None
        finally:
            fake.gate.set()
        assert (await wait_done(call, healthy["job_id"]))["counts"]["valid"] == 2


async def test_the_job_resource_and_its_update_events(make_settings):
    fake = FakeProvider.with_generated(60, latency_s=0.03)
    async with Client(build_server(make_settings(**FAST, embedded_worker_threads=1), providers=[fake])) as client:
        call = Call(client)
        job = await call.ok("start_bulk_validation", symbols=syms(60))
        uri = f"jobs://{job['job_id']}"
        seen = 0
        async with client.listen(resource_subscriptions=[uri]) as subscription:
            with anyio.fail_after(15):
                async for event in subscription:
                    assert isinstance(event, ResourceUpdated) and event.uri == uri
                    seen += 1
                    body = json.loads((await client.read_resource(uri, cache_mode="refresh")).contents[0].text)
                    if body["status"] == "completed":
                        break
        assert seen >= 2
        assert body["counts"]["valid"] == 60 and len(body["items"]) == 60


async def test_every_next_action_of_the_jobs_tools_is_valid_for_its_tool(make_settings):
    fake = FakeProvider.with_generated(30, latency_s=0.05)
    async with Client(build_server(make_settings(**FAST), providers=[fake])) as client:
        schemas = {t.name: t.input_schema for t in (await client.list_tools()).tools}
        envelopes = []
        job = (await client.call_tool("start_bulk_validation", {"symbols": syms(30) + ["NOPE1"]})).structured_content
        envelopes.append(job)
        jid = job["data"]["job_id"]
        envelopes.append(
            (
                await client.call_tool("get_job_status", {"job_id": jid, "include_items": True, "limit": 5})
            ).structured_content
        )
        await wait_done(Call(client), jid)
        envelopes.append((await client.call_tool("get_job_status", {"job_id": jid})).structured_content)
        envelopes.append((await client.call_tool("cancel_job", {"job_id": jid})).structured_content)
        envelopes.append((await client.call_tool("start_bulk_validation", {"symbols": syms(30)})).structured_content)
        envelopes.append(
            (await client.call_tool("cancel_job", {"job_id": envelopes[-1]["data"]["job_id"]})).structured_content
        )
        envelopes.append((await client.call_tool("get_service_health", {})).structured_content)
        count = 0
        for envelope in envelopes:
            for action in envelope["next_actions"]:
                assert action["tool"] in schemas, action
                jsonschema.validate(action["arguments"], schemas[action["tool"]])
                count += 1
        assert count >= 6


async def test_an_embedded_job_cut_short_by_a_restart_resumes_on_the_next_start(make_settings):
    settings = make_settings(**FAST, embedded_worker_threads=1)
    slow = FakeProvider.with_generated(100, latency_s=0.1)
    # A hang detector, not a speed bound; it covers the shutdown when the client block is left.
    with anyio.fail_after(60):
        async with Client(build_server(settings, providers=[slow])) as client:
            call = Call(client)
            job = await call.ok("start_bulk_validation", symbols=syms(100))
            while (await call.ok("get_job_status", job_id=job["job_id"]))["counts"]["processed"] < 10:  # noqa: ASYNC110
                await anyio.sleep(0.05)
    # Shutting down finished (or cut) the running batch only: the queued rest was not drained first.
    assert sum(slow.calls_by_symbol.values()) < 100, sum(slow.calls_by_symbol.values())
    fast = FakeProvider.with_generated(100)
    async with Client(build_server(settings, providers=[fast])) as client:  # the in-memory queue was lost
        call = Call(client)
        done = await wait_done(call, job["job_id"])
        assert done["counts"]["valid"] == 100 and done["counts"]["processed"] == 100
        # Only what was left was asked again.
        assert 0 < sum(fast.calls_by_symbol.values()) < 100


# --- the active-jobs cap under concurrency (issue 10, item 4) ---------------------------------------------------------
class GatedFake(FakeProvider):
    """Answers about ``gated`` symbols (all, by default) only once ``gate`` is set, so the jobs it serves stay active
    as long as a test needs; ``waiting`` counts the calls that reached the gate."""

    def __init__(self, *args, gated: set[str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.gate = anyio.Event()
        self.gated = gated
        self.waiting: Counter[str] = Counter()

    async def validate(self, symbol: str):
        if self.gated is None or symbol in self.gated:
            self.waiting[symbol] += 1
            await self.gate.wait()
        return await super().validate(symbol)


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request) -> AsyncIterator[dict[str, str]]:
    """Settings for the store: the embedded SQLite file, or PostgreSQL with a non-owner role and row-level security."""
    if request.param == "sqlite":
        yield {}
        return
    async with postgres_store(request.getfixturevalue("postgres_url")) as overrides:
        yield overrides


async def test_concurrent_job_starts_never_exceed_the_active_jobs_cap(make_settings, store):
    gated = GatedFake.with_generated(40)
    settings = make_settings(**FAST, **store, max_active_jobs=10)
    server = build_server(settings, providers=[gated])
    async with Client(server) as client:
        call = Call(client)
        results: list[dict] = []

        async def start(i: int) -> None:
            results.append(await call("start_bulk_validation", symbols=syms(2, start=1 + 2 * i)))

        try:
            async with anyio.create_task_group() as tg:
                for i in range(16):
                    tg.start_soon(start, i)
            codes = sorted("ok" if r["success"] else r["error"]["code"] for r in results)
            assert codes == ["limit_exceeded"] * 6 + ["ok"] * 10, codes
            refused = next(r for r in results if not r["success"])
            assert refused["error"]["details"] == {"limit": 10, "active": 10}
            # The store agrees: exactly ten unfinished jobs, and the refused starts left nothing behind.
            state = server.app_state
            async with state.unit_of_work(owner_id=state.local_caller.owner_id) as session:
                statuses = select(ValidationJob.status, func.count()).group_by(ValidationJob.status)
                jobs = {status: n for status, n in (await session.execute(statuses)).all()}
                items = await session.scalar(select(func.count()).select_from(ValidationJobItem))
            assert set(jobs) <= {"queued", "running"} and sum(jobs.values()) == 10, jobs
            assert items == 20
        finally:
            gated.gate.set()  # the providers answer: every accepted job finishes
        accepted = [r for r in results if r["success"]]
        assert len(accepted) == 10
        for r in accepted:
            assert (await wait_done(call, r["data"]["job_id"]))["counts"]["valid"] == 2


# --- sources that can never answer vs transient failures (issue 10, item 18) ------------------------------------------
class CountingCatalog(CatalogProvider):
    """The real offline catalog, counting what it is asked."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: Counter[str] = Counter()

    async def validate(self, symbol: str):
        self.asked[symbol] += 1
        return await super().validate(symbol)


class Unconfigured:
    """A provider that is not configured (as Alpha Vantage answers without a usable key)."""

    name = "alpha_vantage"

    async def validate(self, symbol: str):
        raise ProviderMisconfigured(self.name, "no Alpha Vantage API key is configured")

    async def search(self, query: str, limit: int = 10):
        raise ProviderMisconfigured(self.name, "no Alpha Vantage API key is configured")

    async def aclose(self) -> None:
        return None


async def test_symbols_no_configured_source_can_answer_are_pending_at_once_without_retries(make_settings):
    catalog = CountingCatalog()
    # Retries would be quick here (FAST), so only the attempts and the provider calls tell a retry apart.
    async with Client(build_server(make_settings(**FAST), providers=[Unconfigured(), catalog])) as client:
        call = Call(client)
        job = await call.ok("start_bulk_validation", symbols=["AAPL", "ZZUNKN1", "MSFT", "ZZUNKN2"], wait=True)
        assert job["status"] == "completed", job
        assert (job["counts"]["valid"], job["counts"]["pending"], job["counts"]["retrying"]) == (2, 2, 0)
        pending = await all_items(call, job["job_id"], item_status="pending")
        assert [(i["symbol"], i["attempts"]) for i in pending] == [("ZZUNKN1", 1), ("ZZUNKN2", 1)]
        for item in pending:
            assert "not in the offline catalog" in item["reason"] and "no API key" not in item["reason"]
            assert "no configured source can answer it now" in item["reason"], item["reason"]
        assert catalog.asked["ZZUNKN1"] == 1 and catalog.asked["ZZUNKN2"] == 1  # asked once, never retried


async def test_a_rate_limit_ahead_of_a_catalog_miss_is_still_retried_after_its_retry_after(make_settings):
    # Yahoo is rate limited on every other call; the catalog behind it does not know the symbol. The symbol is
    # worth a retry (the rate limit is transient), after Yahoo's retry-after, and then Yahoo settles it.
    yahoo = TimedFake(
        name="yahoo", known={"ZZNEW": AssetProfile(symbol="ZZNEW")}, rate_limit_every=1, retry_after_s=0.3
    )
    catalog = CountingCatalog()
    async with Client(build_server(make_settings(**FAST), providers=[yahoo, catalog])) as client:
        call = Call(client)
        job = await call.ok("start_bulk_validation", symbols=["ZZNEW"])
        with anyio.fail_after(10):
            while not yahoo.times["ZZNEW"] or len(yahoo.times["ZZNEW"]) < 2:  # noqa: ASYNC110
                await anyio.sleep(0.02)
        yahoo.rate_limit_every = 0  # the limit lifts
        done = await wait_done(call, job["job_id"])
        [item] = await all_items(call, job["job_id"])
        assert (done["counts"]["valid"], item["source"]) == (1, "yahoo"), (done, item)
        asked = yahoo.times["ZZNEW"]
        assert asked[1] - asked[0] >= 0.3 - 0.01, asked  # the retry honoured Yahoo's retry-after


async def test_the_resume_after_start_leaves_jobs_of_this_process_alone(make_settings):
    # Embedded mode queues again, shortly after start, the jobs a previous process left unfinished. A job this
    # process started meanwhile is already queued here: queueing it again would validate its symbols twice.
    fake = GatedFake.with_generated(5)
    async with Client(build_server(make_settings(**FAST), providers=[fake])) as client:
        call = Call(client)
        job = await call.ok("start_bulk_validation", symbols=syms(5))
        try:
            with anyio.fail_after(10):
                while sum(fake.waiting.values()) < 5:  # noqa: ASYNC110 - the batch waits at the gate
                    await anyio.sleep(0.02)
            await anyio.sleep(RESUME_DELAY_S + 0.5)  # the resume step has run
        finally:
            fake.gate.set()
        done = await wait_done(call, job["job_id"])
        assert done["counts"]["valid"] == 5
        assert [fake.calls_by_symbol[s] for s in syms(5)] == [1] * 5, fake.calls_by_symbol
